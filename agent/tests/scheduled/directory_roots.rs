//! The agent reads and writes directory destinations only under the roots its operator
//! gave `dbcrate-agent run` (`--directory-root`, `DBCRATE_AGENT_DIRECTORY_ROOTS`),
//! whatever the control plane's destination says: a job whose directory lies elsewhere
//! fails before anything is written there, and is reported as a failed attempt.

use crate::scene;
use dbcrate_testkit::names_in;
use std::path::Path;
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

/// A job of the scene that the agent must refuse, and the destination directory as it
/// was before (the refusal must leave it so).
struct Refusal<'a> {
    db: &'a dbcrate_control::db::Db,
    job: &'a str,
    target: &'a Path,
    before: &'a [String],
}

impl Refusal<'_> {
    /// Waits until attempt `attempt` has failed; its error must name the destination
    /// and each of `needles`, and the directory must be as it was.
    async fn attempt(&self, attempt: i64, needles: &[&str]) {
        let error = failed_attempt(self.db, self.job, attempt).await;
        let target = self.target.display().to_string();
        for needle in std::iter::once(target.as_str()).chain(needles.iter().copied()) {
            assert!(error.contains(needle), "no {needle:?} in: {error}");
        }
        assert_eq!(
            names_in(self.target),
            self.before,
            "the refused job wrote into the directory"
        );
    }
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
    let path = scene::path_with_tools(&basis.server);
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
    let refusal = Refusal {
        db,
        job: &job,
        target,
        before: &before,
    };
    refusal
        .attempt(
            1,
            &[
                "not under a configured directory root",
                &elsewhere.display().to_string(),
                &other.display().to_string(),
                "--directory-root",
            ],
        )
        .await;
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent stopped instead of reporting"
    );
    scene::stop(agent).await;

    // No root at all: directory destinations are refused.
    scene::retry_now(db, &job).await;
    let agent = scene::agent_run_without_roots(&enrolled.data)
        .env("PATH", &path)
        .spawn()
        .unwrap();
    refusal
        .attempt(
            2,
            &[
                "no directory roots",
                "--directory-root",
                "DBCRATE_AGENT_DIRECTORY_ROOTS",
            ],
        )
        .await;
    scene::stop(agent).await;

    // With the root that holds it, the last attempt backs up there.
    scene::retry_now(db, &job).await;
    let agent = scene::run_agent(&basis.server, &enrolled.data, None);
    assert_eq!(
        scene::wait_for_success(db, &job, Duration::from_secs(60)).await,
        3
    );
    scene::stop(agent).await;
    let key: String = sqlx::query_scalar("SELECT object_key FROM backups WHERE job_id = $1")
        .bind(&job)
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(target.join(key).is_file());
}
