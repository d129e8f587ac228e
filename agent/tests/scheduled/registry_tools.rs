//! Jobs take pg_dump and pg_restore from the signed registry the control plane names
//! (`GET /agent/v1/config`), matched to the server's major, when the agent host has no
//! PostgreSQL client tools at all.

use crate::common;
use crate::common::registry::{serve, Registry};
use crate::scene::{self, Storage};
use dbcrate_control::backups::restores;
use dbcrate_control::config::AgentSettings;
use std::time::Duration;

const MAJOR: u32 = 16;

/// A scene (directory storage) whose control plane names the registry at `url`, trusted
/// through `root_key`.
async fn scene_with_registry(url: String, root_key: String) -> scene::Scene {
    scene::scene_with(
        MAJOR,
        AgentSettings {
            registry_url: Some(url),
            registry_root_keys: vec![root_key],
            ..scene::quick_settings()
        },
        Storage::Directory,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_use_the_control_planes_registry_when_the_host_has_no_tools() {
    let reg = Registry::new(&[MAJOR]);
    let served = serve(&reg.tree, reg.dir.path());
    let scene = scene_with_registry(served.url.clone(), reg.root_v1.clone()).await;
    let (basis, enrolled) = (&scene.basis, &scene.enrolled);
    let db = &basis.db;
    let _scheduler = scene.control.run_scheduler(Duration::from_millis(500));

    // No PostgreSQL tools anywhere on PATH: an empty directory is all of it.
    let empty = basis.dir.path().join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let mut agent = scene::agent_run(&enrolled.data)
        .arg("--registry-ca")
        .arg(&served.ca)
        .env("PATH", &empty)
        .spawn()
        .unwrap();
    let job = scene::wait_for_backup_job(db).await;
    scene::wait_for_success(db, &job, Duration::from_secs(90)).await;
    let (backup_id, pg_dump_version): (String, String) =
        sqlx::query_as("SELECT id, pg_dump_version FROM backups WHERE job_id = $1")
            .bind(&job)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert!(
        pg_dump_version.contains(&format!(" {MAJOR}.")),
        "{pg_dump_version}"
    );

    // A managed restore by the same agent uses the registry's pg_restore.
    basis.server.create_database("managed").unwrap();
    let target = scene::register_database(basis, "managed", &enrolled.agent_id).await;
    let restore = restores::create(
        db,
        &basis.org.id,
        &backup_id,
        &target.id,
        "user:owner",
        basis.now,
    )
    .await
    .unwrap();
    scene::wait_for_success(db, &restore, Duration::from_secs(60)).await;
    common::assert_same_database(&basis.server, "shop", &basis.server, "managed");

    let _ = agent.start_kill();
    let out = agent.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let tools = enrolled.data.display().to_string();
    for started in ["starting pg_dump", "starting pg_restore"] {
        let line = log
            .lines()
            .find(|l| l.contains(started))
            .unwrap_or_else(|| panic!("no {started:?} line: {log}"));
        assert!(
            line.contains(&tools),
            "the tool did not come from the registry into {tools}: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_settings_the_agent_cannot_use_fail_its_jobs_with_the_reason() {
    let scene = scene_with_registry(
        "https://registry.invalid/".into(),
        "RWQ this is not a minisign key".into(),
    )
    .await;
    let (basis, enrolled) = (&scene.basis, &scene.enrolled);
    let db = &basis.db;
    let _scheduler = scene.control.run_scheduler(Duration::from_millis(500));
    let mut agent = scene::run_agent(&basis.server, &enrolled.data, None);
    let job = scene::wait_for_backup_job(db).await;
    let error = scene::wait_for("the attempt to fail", Duration::from_secs(60), || async {
        match scene::job_state(db, &job).await {
            (state, _, Some(error)) if state != "running" => Some(error),
            (state, _, _) if state == "succeeded" => panic!("ran without usable settings"),
            _ => None,
        }
    })
    .await;
    assert!(
        error.contains("the control plane's registry settings are unusable"),
        "{error}"
    );
    assert_eq!(
        scene::audited(db, "job.credentials", &job).await,
        0,
        "credentials were handed out for a job that could not run"
    );
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent stopped instead of reporting"
    );
    scene::stop(agent).await;

    // With `--no-registry` the agent ignores those settings and uses the tools on PATH;
    // the retry (its wait made to pass) succeeds.
    let agent = scene::agent_run(&enrolled.data)
        .arg("--no-registry")
        .env("PATH", scene::path_with_tools(&basis.server))
        .spawn()
        .unwrap();
    scene::retry_now(db, &job).await;
    assert_eq!(
        scene::wait_for_success(db, &job, Duration::from_secs(60)).await,
        2
    );
    scene::stop(agent).await;
}
