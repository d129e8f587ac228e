//! What the control plane and the agent depend on going away mid-job: the control
//! plane's own PostgreSQL restarted, an SFTP server dropping connections mid-transfer,
//! a destination's disk full. Each job either finishes or fails clearly and is retried,
//! and what is recorded is right (the backup's bytes are the recorded ones, nothing
//! unrecorded under a final name, the audit chain verifies).

use crate::common;
use crate::kill_checks::{self, Stored};
use crate::scene::{self, Storage};
use crate::served::{two_free_ports, Served};
use dbcrate_testkit::{PgServer, SftpServer, Tmpfs};
use std::collections::HashMap;
use std::time::Duration;

/// A pg_dump that writes the first `first_bytes` of its dump, pauses `pause_secs` (the
/// agent has streamed that much to storage meanwhile), then writes the rest. The dump
/// is staged in the test's own directory to split it; the agent stages nothing.
fn pausing_pg_dump(basis: &scene::Basis, first_bytes: u64, pause_secs: u64) -> std::path::PathBuf {
    let staged = basis.dir.path().join("staged-dump");
    common::wrapped_pg_dump(
        basis.dir.path(),
        &basis.server,
        &format!(
            "\"$REAL\" \"$@\" > {staged:?} || exit $?\n\
             head -c {first_bytes} {staged:?}\nsleep {pause_secs}\n\
             tail -c +{next} {staged:?}",
            staged = staged.display().to_string(),
            next = first_bytes + 1
        ),
    )
}

/// Writes `path` until its file system is full.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
}

/// Every invariant holds for the scene's storage, once no job is queued or running (the
/// schedule fires every minute).
async fn all_hold(basis: &scene::Basis, stored: &Stored<'_>) {
    scene::wait_for("the jobs to settle", Duration::from_secs(90), || async {
        let busy: i64 =
            sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")
                .fetch_one(basis.db.pool())
                .await
                .unwrap();
        (busy == 0).then_some(())
    })
    .await;
    let wrong =
        kill_checks::violations(&basis.db, &basis.org.id, stored, &mut HashMap::new()).await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_planes_postgres_restarted_mid_job() {
    let mut control_pg = PgServer::start(17).unwrap();
    control_pg.create_database("control").unwrap();
    let basis = scene::basis_with_control_db(17, Some(control_pg.url("control"))).await;
    let (api_port, agent_port) = two_free_ports();
    let mut control = Served::start(&basis, api_port, agent_port, "control.log");
    let agent_url = format!("https://127.0.0.1:{agent_port}");
    let enrolled =
        scene::enrol_and_schedule(&basis, &agent_url, &control.fingerprint, Storage::Directory)
            .await;
    // The dump pauses 8 s halfway: the database is away while the job runs, and the
    // job's heartbeats and its report meet a control plane without its database.
    let slow = pausing_pg_dump(&basis, 20_000, 8);
    let mut agent = scene::run_agent(&basis.server, &enrolled.data, Some(&slow));
    let job = scene::wait_for_running_job(&basis.db).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    control_pg.stop();
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(
        control.is_running(),
        "the control plane exited when its database went away"
    );
    control_pg.start_again().unwrap();

    let attempt = scene::wait_for_success(&basis.db, &job, Duration::from_secs(120)).await;
    assert_eq!(attempt, 1, "the backup was redone instead of reported");
    assert!(agent.try_wait().unwrap().is_none(), "the agent stopped");
    all_hold(&basis, &Stored::Files(enrolled.target.clone())).await;
    let backups: i64 = sqlx::query_scalar("SELECT count(*) FROM backups WHERE job_id = $1")
        .bind(&job)
        .fetch_one(basis.db.pool())
        .await
        .unwrap();
    assert_eq!(backups, 1);
    scene::stop(agent).await;
    control.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sftp_server_dropping_connections_mid_transfer() {
    let sftp = SftpServer::start().unwrap();
    let scene = scene::scene_with(17, scene::quick_settings(), Storage::Sftp(&sftp)).await;
    let (basis, enrolled) = (&scene.basis, &scene.enrolled);
    let _scheduler = scene.control.run_scheduler(Duration::from_millis(500));
    common::noise_table(&basis.server, "shop", 4);
    // 2 MB of the dump, then a pause: the agent has an upload open when it is cut.
    let slow = pausing_pg_dump(basis, 2_000_000, 4);
    let mut agent = scene::run_agent(&basis.server, &enrolled.data, Some(&slow));
    let job = scene::wait_for_running_job(&basis.db).await;
    let staged = basis.dir.path().join("staged-dump");
    scene::wait_for("the dump to pause", Duration::from_secs(30), || async {
        staged.exists().then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(sftp.drop_connections() > 0, "no SFTP connection was open");

    // The attempt fails, saying why; it is queued again, and the next one succeeds.
    let (state, error) = scene::wait_for_attempt(&basis.db, &job, 1, Duration::from_secs(60)).await;
    assert_eq!(state, "queued", "the attempt was not retried: {error:?}");
    let error = error.unwrap_or_default();
    assert!(
        error.contains("sftp") || error.contains("SFTP") || error.contains("storage"),
        "{error}"
    );
    let finals = scene::final_objects(&enrolled.target);
    assert!(finals.is_empty(), "a cut upload left {finals:?}");
    scene::retry_now(&basis.db, &job).await;
    let (state, error) = scene::wait_for_attempt(&basis.db, &job, 2, Duration::from_secs(90)).await;
    assert_eq!(state, "succeeded", "the retry: {error:?}");
    all_hold(basis, &Stored::Files(enrolled.target.clone())).await;
    assert!(agent.try_wait().unwrap().is_none());
    scene::stop(agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_at_the_destination() {
    let scene = scene::scene(17).await;
    let (basis, enrolled) = (&scene.basis, &scene.enrolled);
    let _scheduler = scene.control.run_scheduler(Duration::from_millis(500));
    // The destination is a 1 MiB file system, filled up.
    let target = &enrolled.target;
    let readme = std::fs::read(target.join("README-dbcrate.txt")).unwrap();
    let _mount = Tmpfs::mount(target, "1m");
    std::fs::write(target.join("README-dbcrate.txt"), &readme).unwrap();
    let filler = target.join(".filler");
    fill(&filler);
    let mut agent = scene::run_agent(&basis.server, &enrolled.data, None);
    let job = scene::wait_for_backup_job(&basis.db).await;

    let (state, error) = scene::wait_for_attempt(&basis.db, &job, 1, Duration::from_secs(60)).await;
    assert_eq!(state, "queued", "the attempt was not retried: {error:?}");
    let error = error.unwrap_or_default();
    assert!(
        error.contains("No space left on device") || error.contains("space"),
        "{error}"
    );
    assert!(scene::final_objects(target).is_empty());
    // Room again: the retry succeeds.
    std::fs::remove_file(&filler).unwrap();
    scene::retry_now(&basis.db, &job).await;
    let (state, error) = scene::wait_for_attempt(&basis.db, &job, 2, Duration::from_secs(90)).await;
    assert_eq!(state, "succeeded", "the retry: {error:?}");
    all_hold(basis, &Stored::Files(target.clone())).await;
    assert!(agent.try_wait().unwrap().is_none());
    scene::stop(agent).await;
}
