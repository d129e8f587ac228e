//! `dbcrate-control serve` as a process of its own, on the scene's database and fixed
//! loopback ports, so that it can be killed (SIGKILL) and started again where the agent
//! finds it.

use crate::scene::{self, K1};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// `dbcrate-control`, built next to this test's binary (nextest builds every binary of
/// the workspace before running tests).
fn control_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("dbcrate-control"))
        .unwrap();
    assert!(
        path.exists(),
        "{} is missing: build it first (`cargo build -p dbcrate-control`)",
        path.display()
    );
    path
}

/// `dbcrate-control serve` on the scene's database, on fixed loopback ports (so the
/// agent finds it again after a restart). Killed on drop.
pub struct Served {
    child: Child,
    pub fingerprint: String,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Served {
    /// Starts it and waits until it listens.
    pub fn start(basis: &scene::Basis, api_port: u16, agent_port: u16, log: &str) -> Self {
        let mut served = Self::spawn(basis, api_port, agent_port, log);
        served.wait_listening();
        served
    }

    /// Starts it without waiting: it may be killed while it starts up (its
    /// `fingerprint` is empty until [`Self::wait_listening`]).
    pub fn spawn(basis: &scene::Basis, api_port: u16, agent_port: u16, log: &str) -> Self {
        let log = std::fs::File::create(basis.dir.path().join(log)).unwrap();
        let mut cmd = Command::new(control_binary());
        cmd.arg("--data-dir")
            .arg(basis.dir.path().join("control"))
            .arg("serve");
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("DBCRATE_")) {
            cmd.env_remove(k);
        }
        let mut child = cmd
            .env("DATABASE_URL", &basis.db_url)
            .env("DBCRATE_MASTER_KEY", K1)
            .env("DBCRATE_LISTEN", format!("127.0.0.1:{api_port}"))
            .env("DBCRATE_AGENT_LISTEN", format!("127.0.0.1:{agent_port}"))
            .env("DBCRATE_AGENT_POLL_INTERVAL_SECS", "1")
            .env("DBCRATE_AGENT_HEARTBEAT_SECS", "1")
            .env("DBCRATE_METRICS_LISTEN", "off")
            // Its own retention and sweeps reach the scenes' directory destinations.
            .env("DBCRATE_DIRECTORY_ROOTS", basis.dir.path())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            fingerprint: String::new(),
            stdout,
        }
    }

    /// Reads its output until it listens; keeps the certificate's fingerprint.
    pub fn wait_listening(&mut self) {
        let mut line = String::new();
        loop {
            line.clear();
            let read = self.stdout.read_line(&mut line).unwrap();
            assert!(
                read > 0,
                "dbcrate-control serve exited: {:?}",
                self.child.wait()
            );
            if let Some(f) = line
                .trim()
                .strip_prefix("TLS certificate SHA-256 fingerprint: ")
            {
                self.fingerprint = f.to_string();
            }
            if line.starts_with("listening on") {
                break;
            }
        }
        assert!(!self.fingerprint.is_empty(), "serve printed no fingerprint");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Two distinct loopback ports that were free a moment ago (both held while chosen).
pub fn two_free_ports() -> (u16, u16) {
    let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let second = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = |l: &std::net::TcpListener| l.local_addr().unwrap().port();
    (port(&first), port(&second))
}
