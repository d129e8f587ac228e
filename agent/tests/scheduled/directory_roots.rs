//! The agent reads and writes directory destinations only under the roots its operator
//! gave `dbcrate-agent run` (`--directory-root`, `DBCRATE_AGENT_DIRECTORY_ROOTS`),
//! whatever the control plane's destination says: a job whose directory lies elsewhere
//! fails before anything is written there, and is reported as a failed attempt.

use crate::scene;
use dbcrate_testkit::names_in;
use std::time::Duration;

/// Waits until attempt `attempt` of `job` has failed, and returns its error.
async fn failed_attempt(db: &dbcrate_control::db::Db, job: &str, attempt: i64) -> String {
    scene::wait_for("the attempt to fail", Duration::from_secs(60), || async {
        match scene::job_state(db, job).await {
            (state, _, _) if state == "succeeded" => {
                panic!("the job ran outside the agent's directory roots")
            }
            (state, a, Some(error)) if state != "running" && a == attempt => Some(error),
            _ => None,
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_outside_the_agents_roots_fails_the_job_and_is_left_untouched() {
    // The control plane allows the destination (it is under the control plane's root);
    // the agent is given other roots.
    let scene = scene::scene(17).await;
    let (basis, enrolled) = (&scene.basis, &scene.enrolled);
    let db = &basis.db;
    let target = &enrolled.target;
    let _scheduler = scene.control.run_scheduler(Duration::from_millis(500));
    let before = names_in(target);
    let path = format!(
        "{}:{}",
        basis.server.bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let elsewhere = basis.dir.path().join("elsewhere");
    let other = basis.dir.path().join("other");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::create_dir(&other).unwrap();

    // Roots from the environment (comma-separated), neither holding the destination.
    let mut agent = scene::agent_run_without_roots(&enrolled.data)
        .env(
            "DBCRATE_AGENT_DIRECTORY_ROOTS",
            format!("{},{}", elsewhere.display(), other.display()),
        )
        .env("PATH", &path)
        .spawn()
        .unwrap();
    let job = scene::wait_for_backup_job(db).await;
    let error = failed_attempt(db, &job, 1).await;
    for needle in [
        &target.display().to_string(),
        "not under a configured directory root",
        &elsewhere.display().to_string(),
        &other.display().to_string(),
        "--directory-root",
    ] {
        assert!(error.contains(needle), "no {needle:?} in: {error}");
    }
    assert_eq!(
        names_in(target),
        before,
        "the refused job wrote into the directory"
    );
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent stopped instead of reporting"
    );
    let _ = agent.start_kill();
    let _ = agent.wait().await;

    // No root at all: directory destinations are refused.
    sqlx::query("UPDATE jobs SET retry_at = 0 WHERE id = $1")
        .bind(&job)
        .execute(db.pool())
        .await
        .unwrap();
    let mut agent = scene::agent_run_without_roots(&enrolled.data)
        .env("PATH", &path)
        .spawn()
        .unwrap();
    let error = failed_attempt(db, &job, 2).await;
    for needle in [
        &target.display().to_string(),
        "no directory roots",
        "--directory-root",
        "DBCRATE_AGENT_DIRECTORY_ROOTS",
    ] {
        assert!(error.contains(needle), "no {needle:?} in: {error}");
    }
    assert_eq!(
        names_in(target),
        before,
        "the refused job wrote into the directory"
    );
    let _ = agent.start_kill();
    let _ = agent.wait().await;

    // With the root that holds it, the last attempt backs up there.
    sqlx::query("UPDATE jobs SET retry_at = 0 WHERE id = $1")
        .bind(&job)
        .execute(db.pool())
        .await
        .unwrap();
    let mut agent = scene::run_agent(&basis.server, &enrolled.data, None);
    assert_eq!(
        scene::wait_for_success(db, &job, Duration::from_secs(60)).await,
        3
    );
    let _ = agent.start_kill();
    let _ = agent.wait().await;
    let key: String = sqlx::query_scalar("SELECT object_key FROM backups WHERE job_id = $1")
        .bind(&job)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(target.join(key).is_file());
}
