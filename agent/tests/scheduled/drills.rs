//! Restore drills of broken backups: one whose object was damaged in storage, one
//! whose restored rows do not match those counted at backup time. Each fails with the
//! reason, drops its throwaway database, and is a `drill_failed` alert. (Drills that
//! pass, for every major: `every_major.rs`.)

use crate::scene::{self, Scene};
use dbcrate_control::alerts::conditions::{self, AlertKind};
use dbcrate_control::backups::drills;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drills_of_broken_backups_fail_and_alert() {
    let Scene {
        basis,
        control,
        enrolled,
    } = scene::scene(17).await;
    let (db, org, now, server) = (&basis.db, &basis.org, basis.now, &basis.server);
    let settings = drills::DrillSettings {
        every: 1000,
        database_id: enrolled.database.id.clone(),
        check_query: None,
    };
    let schedule = &enrolled.schedule_id;
    assert!(
        drills::set(db, &org.id, schedule, Some(&settings), "user:owner", now)
            .await
            .unwrap()
    );
    let _scheduler = control.run_scheduler(Duration::from_millis(500));
    let agent = scene::run_agent(server, &enrolled.data, None);
    let job = scene::wait_for_backup_job(db).await;
    scene::wait_for_success(db, &job, Duration::from_secs(60)).await;
    let (backup_id, key): (String, String) =
        sqlx::query_as("SELECT id, object_key FROM backups WHERE job_id = $1")
            .bind(&job)
            .fetch_one(db.pool())
            .await
            .unwrap();

    // Rows that are not what was counted at backup time.
    let counted: String = sqlx::query_scalar("SELECT row_counts FROM backups WHERE id = $1")
        .bind(&backup_id)
        .fetch_one(db.pool())
        .await
        .unwrap();
    let mut counts: serde_json::Value = serde_json::from_str(&counted).unwrap();
    counts["sales.orders"] = serde_json::json!(301);
    sqlx::query("UPDATE backups SET row_counts = $1 WHERE id = $2")
        .bind(counts.to_string())
        .bind(&backup_id)
        .execute(db.pool())
        .await
        .unwrap();
    let drill = drills::queue(db, &org.id, &backup_id, "user:owner", now)
        .await
        .unwrap();
    let (state, error) = scene::wait_for_end(db, &drill, Duration::from_secs(60)).await;
    let error = error.unwrap_or_default();
    assert_eq!(state, "failed", "{error}");
    assert!(
        error.contains("sales.orders has 300 rows, 301 at backup time"),
        "{error}"
    );

    // An object damaged in storage.
    let object = enrolled.target.join(&key);
    let mut bytes = std::fs::read(&object).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&object, bytes).unwrap();
    let damaged = drills::queue(db, &org.id, &backup_id, "user:owner", now)
        .await
        .unwrap();
    let (state, error) = scene::wait_for_end(db, &damaged, Duration::from_secs(60)).await;
    assert_eq!(state, "failed", "{error:?}");
    scene::stop(agent).await;

    let results = drills::results(db, &org.id, None, 10).await.unwrap();
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results.iter().all(|r| r.passed == 0), "{results:?}");
    let left = server
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'dbcrate_drill%'",
        )
        .unwrap();
    assert_eq!(left, "0", "a failed drill left its database");

    // Each failed drill is one alert condition (and not also a failed job).
    let held = conditions::current(db, dbcrate_core::time::unix_now())
        .await
        .unwrap();
    for job in [&drill, &damaged] {
        let of_job: Vec<_> = held.iter().filter(|c| &c.subject == job).collect();
        assert_eq!(of_job.len(), 1, "{held:#?}");
        assert_eq!(of_job[0].kind, AlertKind::DrillFailed);
        assert!(
            of_job[0].summary.contains(&backup_id),
            "{}",
            of_job[0].summary
        );
    }
}
