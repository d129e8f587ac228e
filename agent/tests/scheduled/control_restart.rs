//! The control plane killed (SIGKILL) and started again while an agent runs a job: the
//! agent keeps working, retries its report until the control plane is back, and the
//! backup is recorded once, as the same attempt (not redone).

use crate::common;
use crate::scene::{self, Storage};
use crate::served::{two_free_ports, Served};
use std::time::Duration;

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
