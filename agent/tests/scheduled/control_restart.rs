//! The control plane killed (SIGKILL) and started again while an agent runs a job: the
//! agent keeps working, retries its report until the control plane is back, and the
//! backup is recorded once, as the same attempt (not redone).

use crate::common;
use crate::scene::{self, Storage, K1};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

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
struct Served {
    child: Child,
    fingerprint: String,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Served {
    fn start(basis: &scene::Basis, api_port: u16, agent_port: u16, log: &str) -> Self {
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
            .env("DBCRATE_METRICS_LISTEN", "off")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut fingerprint = None;
        let mut line = String::new();
        loop {
            line.clear();
            let read = stdout.read_line(&mut line).unwrap();
            assert!(read > 0, "dbcrate-control serve exited: {:?}", child.wait());
            if let Some(f) = line
                .trim()
                .strip_prefix("TLS certificate SHA-256 fingerprint: ")
            {
                fingerprint = Some(f.to_string());
            }
            if line.starts_with("listening on") {
                break;
            }
        }
        Self {
            child,
            fingerprint: fingerprint.expect("serve printed no fingerprint"),
            _stdout: stdout,
        }
    }

    fn kill(&mut self) {
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
fn two_free_ports() -> (u16, u16) {
    let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let second = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = |l: &std::net::TcpListener| l.local_addr().unwrap().port();
    (port(&first), port(&second))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_restarted_mid_job_gets_the_report_and_records_the_backup_once() {
    let basis = scene::basis(17).await;
    let (api_port, agent_port) = two_free_ports();
    let mut control = Served::start(&basis, api_port, agent_port, "control-1.log");
    let agent_url = format!("https://127.0.0.1:{agent_port}");
    let enrolled =
        scene::enrol_and_schedule(&basis, &agent_url, &control.fingerprint, Storage::Directory)
            .await;
    let db = &basis.db;

    // The first pg_dump waits 12 s before dumping: long enough to kill the control
    // plane while the job runs.
    let once = basis.dir.path().join("slow-once");
    let slow = common::wrapped_pg_dump(
        basis.dir.path(),
        &basis.server,
        &format!(
            "if [ ! -e {once:?} ]; then touch {once:?}; sleep 12; fi\nexec \"$REAL\" \"$@\"",
            once = once.display().to_string()
        ),
    );
    let agent_log = basis.dir.path().join("agent.log");
    let path = format!(
        "{}:{}:{}",
        slow.display(),
        basis.server.bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut agent = scene::agent_run(&enrolled.data)
        .env("PATH", path)
        .stderr(std::fs::File::create(&agent_log).unwrap())
        .spawn()
        .unwrap();
    let log = || std::fs::read_to_string(&agent_log).unwrap_or_default();
    let job = scene::wait_for_running_job(db).await;
    // The credentials are marked fetched before the answer is sent: wait until the agent
    // has them (its pg_dump started and touched the marker), or a kill in between would
    // leave it without them and nothing to report.
    scene::wait_for("pg_dump to start", Duration::from_secs(30), || async {
        once.exists().then_some(())
    })
    .await;
    control.kill();
    // The dump finishes while the control plane is down: the object is under its final
    // name and the agent's report fails (and is retried).
    let started = std::time::Instant::now();
    while !log().contains("reporting the job failed, retrying") {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "no failed report within 90 s; the agent's log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let finals = scene::final_objects(&enrolled.target);
    let backups = finals
        .iter()
        .filter(|f| f.ends_with(dbcrate_core::object_key::BACKUP_SUFFIX));
    assert_eq!(backups.count(), 1, "{finals:?}");
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent stopped while the control plane was down"
    );
    let (state, _, _) = scene::job_state(db, &job).await;
    assert_eq!(state, "running", "nothing could have reported the job yet");

    // Back on the same ports (and the same certificate): the agent's retried report
    // lands, for the same attempt.
    let control = Served::start(&basis, api_port, agent_port, "control-2.log");
    let attempt = scene::wait_for_success(db, &job, Duration::from_secs(60)).await;
    assert_eq!(attempt, 1, "the backup was redone instead of reported");
    let keys: Vec<String> = sqlx::query_scalar("SELECT object_key FROM backups WHERE job_id = $1")
        .bind(&job)
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert!(enrolled.target.join(&keys[0]).is_file());
    drop(control);
    scene::stop(agent).await;
    let log = log();
    assert!(
        log.contains("reporting the job failed, retrying"),
        "the agent never had to retry its report: {log}"
    );
}
