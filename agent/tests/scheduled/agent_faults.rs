//! The agent's side going wrong during a scheduled job: killed mid-job (no object under a
//! final name; the lease lapses and the job runs again), and a job that outlives the
//! agent's certificate (renewed midway, reported with the new one).

use crate::common;
use crate::scene::{self, Storage};
use dbcrate_control::config::AgentSettings;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_job_leaves_no_backup_and_the_job_runs_again() {
    let scene = scene::scene(17).await;
    let (basis, enrolled) = (&scene.basis, &scene.enrolled);
    let _scheduler = scene.control.run_scheduler(Duration::from_millis(500));
    // First attempt: pg_dump takes its time, and the agent is killed while it runs.
    let slow = common::wrapped_pg_dump(
        basis.dir.path(),
        &basis.server,
        "sleep 30; exec \"$REAL\" \"$@\"",
    );
    let mut agent = scene::run_agent(&basis.server, &enrolled.data, Some(&slow));
    let job = scene::wait_for_running_job(&basis.db).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    agent.start_kill().unwrap();
    agent.wait().await.unwrap();
    let finals = scene::final_objects(&enrolled.target);
    assert!(finals.is_empty(), "a killed job left {finals:?}");

    // Its lease lapses (as if the time had passed): the job is queued again, and the
    // agent, back with working tools, runs it as attempt 2.
    let later = basis.now
        + dbcrate_control::backups::jobs::LEASE_SECS
        + dbcrate_control::backups::jobs::LEASE_GRACE_SECS
        + 3600;
    assert_eq!(
        dbcrate_control::backups::jobs::expire_leases(&basis.db, later)
            .await
            .unwrap(),
        1
    );
    let agent = scene::run_agent(&basis.server, &enrolled.data, None);
    let attempt = scene::wait_for_success(&basis.db, &job, Duration::from_secs(60)).await;
    assert_eq!(attempt, 2);
    scene::stop(agent).await;
    let key: String = sqlx::query_scalar("SELECT object_key FROM backups WHERE job_id = $1")
        .bind(&job)
        .fetch_one(basis.db.pool())
        .await
        .unwrap();
    assert!(enrolled.target.join(key).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_longer_than_the_certificate_renews_it_midway_and_reports() {
    // Ten-second certificates (renewed at 8 s) and a job that takes about 15 s: the
    // agent must renew while the job runs and report with the new certificate.
    let scene = scene::scene_with(
        17,
        AgentSettings {
            cert_lifetime_secs: 10,
            ..scene::quick_settings()
        },
        Storage::Directory,
    )
    .await;
    let (basis, enrolled) = (&scene.basis, &scene.enrolled);
    let _scheduler = scene.control.run_scheduler(Duration::from_millis(500));
    let slow = common::wrapped_pg_dump(
        basis.dir.path(),
        &basis.server,
        "sleep 15; exec \"$REAL\" \"$@\"",
    );
    let mut agent = scene::run_agent(&basis.server, &enrolled.data, Some(&slow));
    let job = scene::wait_for_backup_job(&basis.db).await;
    let started = std::time::Instant::now();
    loop {
        if let Ok(Some(status)) = agent.try_wait() {
            panic!("the agent stopped ({status}) before the job finished");
        }
        match scene::job_state(&basis.db, &job).await {
            (state, _, _) if state == "succeeded" => break,
            (state, _, error) if state == "failed" => panic!("the job failed: {error:?}"),
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no result within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = agent.start_kill();
    let out = agent.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("certificate renewed"), "{log}");
}
