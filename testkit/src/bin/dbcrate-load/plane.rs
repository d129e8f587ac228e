//! The control plane under load: `dbcrate-control serve` as a process of its own, so its
//! memory and descriptors are measured apart from the generator's.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the control plane keeps its state and how it is reached.
#[derive(Clone)]
pub struct PlaneConfig {
    pub binary: PathBuf,
    /// The data directory (TLS material, the SQLite database unless `database_url`).
    pub data_dir: PathBuf,
    /// `DATABASE_URL` (PostgreSQL), or the embedded SQLite when `None`.
    pub database_url: Option<String>,
    /// Directory destinations may be created under here.
    pub directory_root: PathBuf,
    /// The agents' long-poll hold, seconds.
    pub poll_interval_secs: u64,
    /// The agents' CRL interval, seconds.
    pub crl_interval_secs: u64,
}

/// A running `dbcrate-control serve`.
pub struct Plane {
    child: Child,
    pub api_url: String,
    pub agent_url: String,
    pub fingerprint: String,
}

impl PlaneConfig {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .args(args)
            .env("DBCRATE_MASTER_KEY", dbcrate_testkit::TEST_MASTER_KEY)
            .env("DBCRATE_LISTEN", "127.0.0.1:0")
            .env("DBCRATE_AGENT_LISTEN", "127.0.0.1:0")
            // Two replicas on one host cannot share the metrics port; not measured here.
            .env("DBCRATE_METRICS_LISTEN", "off")
            .env("DBCRATE_DIRECTORY_ROOTS", &self.directory_root)
            .env(
                "DBCRATE_AGENT_POLL_INTERVAL_SECS",
                self.poll_interval_secs.to_string(),
            )
            .env(
                "DBCRATE_AGENT_CRL_INTERVAL_SECS",
                self.crl_interval_secs.to_string(),
            )
            // Quiet: a line per request at thousands of agents is its own load.
            .env("RUST_LOG", "warn");
        match &self.database_url {
            Some(url) => cmd.env("DATABASE_URL", url),
            None => cmd.env_remove("DATABASE_URL"),
        };
        cmd
    }

    /// Runs `migrate` then `init`; returns the organisation id and the owner's one-time
    /// password.
    pub fn migrate_and_init(&self, owner: &str) -> Result<(String, String), String> {
        let run = |args: &[&str]| -> Result<String, String> {
            let out = self
                .command(args)
                .output()
                .map_err(|e| format!("running {}: {e}", self.binary.display()))?;
            if !out.status.success() {
                return Err(format!(
                    "dbcrate-control {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        run(&["migrate"])?;
        let said = run(&["init", "--org", "Load", "--owner", owner])?;
        let org = said
            .split(['(', ')'])
            .find(|part| part.starts_with("org_"))
            .ok_or_else(|| format!("no organisation id in: {said}"))?;
        let password = said
            .split("one-time password ")
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .ok_or_else(|| "no one-time password in init's output".to_string())?;
        Ok((org.to_string(), password.trim().to_string()))
    }

    /// Starts `serve` and waits until it says where it listens. Its stderr goes to
    /// `log`.
    pub fn serve(&self, log: &Path) -> Result<Plane, String> {
        let mut child = self
            .command(&["serve"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).map_err(|e| e.to_string())?)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.binary.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    // Keep draining, so the server never blocks on a full pipe.
                    continue;
                }
            }
        });
        let (mut api, mut agent, mut fingerprint) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(60);
        while api.is_none() || agent.is_none() || fingerprint.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).map_err(|_| {
                format!(
                    "the control plane did not say where it listens: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            })?;
            if let Some(f) = line.split("fingerprint: ").nth(1) {
                fingerprint = Some(f.trim().to_string());
            }
            if let Some(url) = line.split("agents connect to ").nth(1) {
                agent = url.split_whitespace().next().map(str::to_string);
            }
            if let Some(url) = line.split("listening on ").nth(1) {
                api = url.split_whitespace().next().map(str::to_string);
            }
        }
        Ok(Plane {
            child,
            api_url: api.expect("set"),
            agent_url: agent.expect("set"),
            fingerprint: fingerprint.expect("set"),
        })
    }
}

/// Memory and descriptors of a process at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
    pub fds: u64,
}

impl Plane {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its memory (VmRSS, VmHWM) and open descriptors now.
    pub fn usage(&self) -> Usage {
        usage_of(self.pid())
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        self.kill();
    }
}

/// VmRSS, VmHWM and the descriptor count of `pid` (zeros once it is gone).
pub fn usage_of(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    Usage {
        rss_kib: field("VmRSS:"),
        peak_rss_kib: field("VmHWM:"),
        fds,
    }
}
