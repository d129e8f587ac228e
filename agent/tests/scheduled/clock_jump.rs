//! A clock jump on the agent's host: the wall clock of the agent process (and its
//! pg_dump) jumps three hours forward in the middle of one job and six hours back in
//! the middle of the next — libfaketime preloaded, the monotonic clock left alone, as
//! when NTP or an operator sets the clock. The agent's timers run on the monotonic
//! clock; what reads the wall clock (its certificate's validity, TLS, when to renew)
//! must neither fail the job nor stop the agent, and the control plane (whose clock
//! did not move) records each backup once.

use crate::common;
use crate::kill_checks::{self, Stored};
use crate::scene;
use dbcrate_control::backups::scheduler;
use dbcrate_testkit::Deps;
use std::collections::HashMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agents_clock_jumping_mid_job() {
    let scene = scene::scene(17).await;
    let (basis, enrolled) = (&scene.basis, &scene.enrolled);
    let offset = basis.dir.path().join("faketime-offset");
    std::fs::write(&offset, "+0\n").unwrap();
    let slow = common::wrapped_pg_dump(
        basis.dir.path(),
        &basis.server,
        "sleep 4; exec \"$REAL\" \"$@\"",
    );
    let path = format!(
        "{}:{}",
        slow.display(),
        scene::path_with_tools(&basis.server)
    );
    let mut agent = scene::agent_run(&enrolled.data)
        .env("PATH", path)
        .env("LD_PRELOAD", Deps::from_env().libfaketime().unwrap())
        .env("FAKETIME_TIMESTAMP_FILE", &offset)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .spawn()
        .unwrap();

    for jump in ["+3h", "-3h"] {
        let now = dbcrate_core::time::unix_now();
        let job = scheduler::run_now(
            &basis.db,
            &basis.org.id,
            &enrolled.schedule_id,
            "user:test",
            now,
        )
        .await
        .unwrap();
        scene::wait_for("the job to start", Duration::from_secs(30), || async {
            let (state, _, _) = scene::job_state(&basis.db, &job).await;
            (state == "running").then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        std::fs::write(&offset, format!("{jump}\n")).unwrap();
        let (state, error) =
            scene::wait_for_attempt(&basis.db, &job, 1, Duration::from_secs(90)).await;
        assert_eq!(state, "succeeded", "the clock jumped {jump}: {error:?}");
        let (_, attempt, _) = scene::job_state(&basis.db, &job).await;
        assert_eq!(attempt, 1, "the clock jumped {jump}: the job was redone");
        assert!(
            agent.try_wait().unwrap().is_none(),
            "the agent stopped when its clock jumped {jump}"
        );
    }
    let wrong = kill_checks::violations(
        &basis.db,
        &basis.org.id,
        &Stored::Files(enrolled.target.clone()),
        &mut HashMap::new(),
    )
    .await;
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let _ = agent.start_kill();
    let out = agent.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("panicked"), "{log}");
    // The jumps happened: the agent's own log says when each job ended by its clock.
    let ended: Vec<i64> = log
        .lines()
        .filter(|l| l.contains("job succeeded"))
        .filter_map(|l| {
            let stamp = l.split_whitespace().next()?;
            dbcrate_core::time::parse_rfc3339(&format!("{}Z", stamp.split('.').next()?))
        })
        .collect();
    let real = dbcrate_core::time::unix_now();
    assert_eq!(ended.len(), 2, "{log}");
    assert!(ended[0] > real + 2 * 3600, "no jump forward: {log}");
    assert!(ended[1] < real - 2 * 3600, "no jump back: {log}");
}
