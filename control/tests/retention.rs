//! Retention applied by the control plane to a real destination: what the rules no
//! longer keep is deleted from storage and marked, each deletion audited with its
//! storage outcome; a failed deletion is recorded and retried, never dropped; a recent
//! failed backup holds every deletion.

mod common;

use dbcrate_control::backups::{databases, destinations, restores, retention, schedules};
use dbcrate_control::db::Db;
use dbcrate_control::envelope::MasterKeys;
use dbcrate_control::{audit, orgs};
use dbcrate_core::retention::Rules;
use dbcrate_testkit::TempDir;
use serde_json::json;

const DAY: i64 = 86_400;
/// 2026-01-10T12:00:00Z.
const T0: i64 = 1_768_046_400;

struct World {
    db: Db,
    keys: MasterKeys,
    reach: std::sync::Arc<dbcrate_storage::reach::ReachPolicy>,
    org: String,
    agent: String,
    schedule: String,
    database: String,
    destination: String,
    dir: TempDir,
}

async fn world(db: Db) -> World {
    db.migrate().await.unwrap();
    let keys = common::keys_with_audit_key(&db, "2026-01-01T00:00:00Z").await;
    let org = orgs::create(&db, &keys, "Acme", "system:test", "2026-01-01T00:00:00Z")
        .await
        .unwrap();
    let agent = dbcrate_control::local::enrol_agent(&db, &keys, &org.id, T0)
        .await
        .unwrap()
        .0
        .agent_id;
    let database = databases::create(
        &db,
        &keys,
        &org.id,
        &databases::NewDatabase {
            dbname: "shop",
            ..common::remote_database("shop", &agent)
        },
        "system:test",
        T0,
    )
    .await
    .unwrap()
    .id;
    let dir = TempDir::new("control-retention").unwrap();
    let settings = json!({ "path": dir.path() });
    let reach =
        std::sync::Arc::new(dbcrate_control::local::loopback_reach(&std::env::temp_dir()).unwrap());
    let (destination, _) = destinations::create(
        &db,
        &keys,
        &reach,
        &org.id,
        &destinations::NewDestination {
            name: "local",
            kind: "directory",
            settings: &settings,
            credentials: None,
        },
        "system:test",
        T0,
    )
    .await
    .unwrap()
    .unwrap();
    let schedule = schedules::create(
        &db,
        &org.id,
        &schedules::NewSchedule {
            database_id: &database,
            destination_id: &destination.id,
            cron: "0 3 * * *",
            time_zone: "Europe/Berlin",
            retention: Rules {
                keep_last: 2,
                ..Rules::default()
            },
        },
        "system:test",
        T0 - 30 * DAY,
    )
    .await
    .unwrap()
    .id;
    World {
        db,
        keys,
        reach,
        org: org.id,
        agent,
        schedule,
        database,
        destination: destination.id,
        dir,
    }
}

/// The globals object saved next to the backup at `path`.
fn globals_of(path: &std::path::Path) -> std::path::PathBuf {
    let name = path.to_str().unwrap();
    dbcrate_core::object_key::globals_key(name).unwrap().into()
}

impl World {
    /// A finished backup `days_ago`, with its object in the directory.
    async fn backup(&self, days_ago: i64) -> (String, std::path::PathBuf) {
        let at = T0 - days_ago * DAY;
        let job = dbcrate_control::error::new_id("job").unwrap();
        sqlx::query(
            "INSERT INTO jobs (id, org_id, kind, schedule_id, database_id, destination_id, agent_id, \
             state, attempt, max_attempts, created_at, finished_at, progress_bytes, phase) \
             SELECT $1, org_id, 'backup', $2, id, $3, agent_id, 'succeeded', 1, 3, $4, $4, 0, 'done' \
             FROM databases WHERE id = $5",
        )
        .bind(&job).bind(&self.schedule).bind(&self.destination).bind(at).bind(&self.database)
        .execute(self.db.pool()).await.unwrap();
        let key = format!("shop/{days_ago}-{job}.pgdump.zst.age");
        let path = self.dir.path().join(&key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"ciphertext").unwrap();
        std::fs::write(globals_of(&path), b"globals").unwrap();
        let id = dbcrate_control::error::new_id("bkp").unwrap();
        sqlx::query(
            "INSERT INTO backups (id, org_id, job_id, schedule_id, database_id, destination_id, object_key, \
             size, sha256, started_at, finished_at, pg_server_version, pg_dump_version, delete_attempts, \
             globals_size, globals_sha256) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 10, $8, $9, $9, '17', '17', 0, 7, $8)",
        )
        .bind(&id).bind(&self.org).bind(&job).bind(&self.schedule).bind(&self.database)
        .bind(&self.destination).bind(&key).bind("00".repeat(32)).bind(at)
        .execute(self.db.pool()).await.unwrap();
        (id, path)
    }

    async fn failed_attempt(&self, days_ago: i64) {
        let at = T0 - days_ago * DAY;
        sqlx::query(
            "INSERT INTO jobs (id, org_id, kind, schedule_id, database_id, destination_id, agent_id, \
             state, attempt, max_attempts, created_at, finished_at, progress_bytes, phase, error) \
             SELECT $1, org_id, 'backup', $2, id, $3, agent_id, 'failed', 3, 3, $4, $4, 0, 'failed', 'x' \
             FROM databases WHERE id = $5",
        )
        .bind(dbcrate_control::error::new_id("job").unwrap())
        .bind(&self.schedule).bind(&self.destination).bind(at).bind(&self.database)
        .execute(self.db.pool()).await.unwrap();
    }

    async fn deleted(&self, id: &str) -> bool {
        let at: Option<i64> = sqlx::query_scalar("SELECT deleted_at FROM backups WHERE id = $1")
            .bind(id)
            .fetch_one(self.db.pool())
            .await
            .unwrap();
        at.is_some()
    }
}

async fn retention_deletes_what_rules_drop(db: Db) {
    let w = world(db).await;
    let mut made = Vec::new();
    for days_ago in [5, 4, 3, 2, 1] {
        made.push(w.backup(days_ago).await);
    }
    // A failure after the newest backup holds everything.
    w.failed_attempt(0).await;
    let held = retention::apply(&w.db, &w.keys, &w.reach, &w.schedule, T0)
        .await
        .unwrap();
    assert!(held.held);
    assert_eq!(held.deleted, 0);
    assert!(made.iter().all(|(_, path)| path.exists()));

    // A success after the failure: keep the last 2 (of 6), delete 4 — one of which
    // cannot be deleted (a directory sits where the object was) and is retried later.
    let newest = w.backup(-1).await; // finished after the failure (T0 + 1 day)
    let (stuck_id, stuck_path) = &made[0];
    std::fs::remove_file(stuck_path).unwrap();
    std::fs::create_dir(stuck_path).unwrap();
    std::fs::write(stuck_path.join("x"), b"x").unwrap();
    // An operator is restoring one of the doomed backups: it stays while that runs.
    let (restoring_id, restoring_path) = &made[1];
    let restore = restores::create(&w.db, &w.org, restoring_id, &w.database, "user:o", T0)
        .await
        .unwrap();
    let run = retention::apply(&w.db, &w.keys, &w.reach, &w.schedule, T0 + 2 * DAY)
        .await
        .unwrap();
    assert_eq!(
        (run.deleted, run.failed, run.held),
        (2, 1, false),
        "{run:?}"
    );
    assert!(
        !w.deleted(restoring_id).await && restoring_path.exists(),
        "a backup being restored was deleted"
    );
    for (id, path) in &made[2..4] {
        assert!(w.deleted(id).await && !path.exists());
        assert!(!globals_of(path).exists(), "its globals object stayed");
    }
    assert!(
        globals_of(stuck_path).exists() && globals_of(restoring_path).exists(),
        "the globals of a backup that stays were deleted"
    );
    // The restore ends: the backup goes with the next run (below).
    sqlx::query("UPDATE jobs SET state = 'succeeded' WHERE id = $1")
        .bind(&restore)
        .execute(w.db.pool())
        .await
        .unwrap();
    assert!(
        !w.deleted(&made[4].0).await && made[4].1.exists(),
        "the second newest stays"
    );
    assert!(
        !w.deleted(&newest.0).await && newest.1.exists(),
        "the newest stays"
    );
    assert!(
        !w.deleted(stuck_id).await,
        "a failed deletion does not drop the record"
    );
    let attempts: i64 = sqlx::query_scalar("SELECT delete_attempts FROM backups WHERE id = $1")
        .bind(stuck_id)
        .fetch_one(w.db.pool())
        .await
        .unwrap();
    assert_eq!(attempts, 1);

    // A failed deletion is not tried again every minute: the next run soon after leaves
    // it alone (no new audit rows; it does delete the backup whose restore ended), a
    // later one retries it.
    let soon = retention::apply(&w.db, &w.keys, &w.reach, &w.schedule, T0 + 2 * DAY + 30)
        .await
        .unwrap();
    assert_eq!((soon.deleted, soon.failed), (1, 0), "{soon:?}");
    assert!(w.deleted(restoring_id).await && !restoring_path.exists());

    // Next run: the obstacle is gone, the deletion is retried and succeeds.
    std::fs::remove_dir_all(stuck_path).unwrap();
    std::fs::write(stuck_path, b"ciphertext").unwrap();
    let again = retention::apply(&w.db, &w.keys, &w.reach, &w.schedule, T0 + 3 * DAY)
        .await
        .unwrap();
    assert_eq!((again.deleted, again.failed), (1, 0));
    assert!(w.deleted(stuck_id).await && !stuck_path.exists());
    assert!(!globals_of(stuck_path).exists());

    // Storage that vanished (a directory destination whose mount dropped: the object and
    // the README are both gone) is not taken as "already deleted": nothing is marked.
    let newer = w.backup(-2).await;
    let (gone_id, gone_path) = &made[4];
    let readme = w.dir.path().join("README-dbcrate.txt");
    let readme_text = std::fs::read(&readme).unwrap();
    std::fs::remove_file(&readme).unwrap();
    std::fs::remove_file(gone_path).unwrap();
    let vanished = retention::apply(&w.db, &w.keys, &w.reach, &w.schedule, T0 + 4 * DAY)
        .await
        .unwrap();
    assert_eq!((vanished.deleted, vanished.failed), (0, 1), "{vanished:?}");
    assert!(!w.deleted(gone_id).await);
    // The README back (the storage is there and the object really is gone): recorded.
    std::fs::write(&readme, readme_text).unwrap();
    let back = retention::apply(&w.db, &w.keys, &w.reach, &w.schedule, T0 + 5 * DAY)
        .await
        .unwrap();
    assert_eq!((back.deleted, back.failed), (1, 0), "{back:?}");
    assert!(w.deleted(gone_id).await);

    let rows = audit::rows(&w.db, &w.org).await.unwrap();
    assert_eq!(
        rows.iter().filter(|r| r.action == "backup.delete").count(),
        5
    );
    assert_eq!(
        rows.iter()
            .filter(|r| r.action == "backup.delete_failed")
            .count(),
        2
    );
    assert!(rows
        .iter()
        .any(|r| r.action == "backup.delete_failed" && r.details.contains("README-dbcrate.txt")));
    assert!(rows
        .iter()
        .any(|r| r.action == "backup.delete" && r.details.contains("\"storage\":\"deleted\"")));
    assert!(audit::verify(&w.db, &w.org).await.unwrap().is_ok());

    // A globals object that cannot be deleted keeps its backup recorded, and the
    // deletion is retried: the backup's own object, gone by then, counts as deleted.
    let _ = w.backup(-3).await;
    let _ = w.backup(-4).await;
    let (newest_id, newest_path) = &newest;
    let (newer_id, newer_path) = &newer;
    let stuck_globals = globals_of(newest_path);
    std::fs::remove_file(&stuck_globals).unwrap();
    std::fs::create_dir(&stuck_globals).unwrap();
    std::fs::write(stuck_globals.join("x"), b"x").unwrap();
    let run = retention::apply(&w.db, &w.keys, &w.reach, &w.schedule, T0 + 6 * DAY)
        .await
        .unwrap();
    assert_eq!((run.deleted, run.failed), (1, 1), "{run:?}");
    assert!(w.deleted(newer_id).await && !globals_of(newer_path).exists());
    assert!(!w.deleted(newest_id).await && !newest_path.exists());
    std::fs::remove_dir_all(&stuck_globals).unwrap();
    let run = retention::apply(&w.db, &w.keys, &w.reach, &w.schedule, T0 + 7 * DAY)
        .await
        .unwrap();
    assert_eq!((run.deleted, run.failed), (1, 0), "{run:?}");
    assert!(w.deleted(newest_id).await);
}

crate::sqlite_and_postgres!(
    sqlite_retention_deletes_what_rules_drop,
    postgres_retention_deletes_what_rules_drop,
    retention_deletes_what_rules_drop
);

/// An agent killed after storing a backup (or while saving the globals next to it) and
/// before its report leaves objects under final names that no backup records. When the
/// attempt's lease lapses the control plane deletes them, and looks again an hour and
/// a day later (an agent cut off from it may still be finishing); a key a running
/// attempt holds, or a backup records, is never touched.
async fn what_a_lapsed_attempt_stored_is_deleted(db: Db) {
    use dbcrate_control::backups::jobs::{self, abandoned};
    let w = world(db).await;
    let agent = dbcrate_control::pki::identity::AgentIdentity {
        org_id: w.org.clone(),
        agent_id: w.agent.clone(),
        serial: String::new(),
        not_before: 0,
        not_after: i64::MAX,
    };
    let job =
        dbcrate_control::backups::scheduler::run_now(&w.db, &w.org, &w.schedule, "user:o", T0)
            .await
            .unwrap();
    let claimed = jobs::claim_next(&w.db, &agent, T0).await.unwrap().unwrap();
    assert_eq!(claimed.id, job);
    let object = w.dir.path().join(&claimed.object_key);
    let store = |path: &std::path::Path| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"a complete backup nobody recorded").unwrap();
    };
    store(&object);
    store(&globals_of(&object));
    let sweep = |at: i64| abandoned::sweep(&w.db, &w.keys, &w.reach, at);

    // Within the lease nothing is abandoned.
    assert_eq!(
        sweep(T0 + 60).await.unwrap(),
        abandoned::SweepReport::default()
    );
    assert!(object.exists());
    let lapsed = T0 + jobs::LEASE_SECS + jobs::LEASE_GRACE_SECS + 1;
    assert_eq!(jobs::expire_leases(&w.db, lapsed).await.unwrap(), 1);
    let run = sweep(lapsed).await.unwrap();
    assert_eq!((run.looked, run.deleted, run.failed), (1, 2, 0), "{run:?}");
    assert!(!object.exists() && !globals_of(&object).exists());
    let audited: Vec<String> = audit::rows(&w.db, &w.org)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "job.abandoned_object_delete")
        .map(|r| {
            assert_eq!(r.target, format!("job:{job}"));
            r.details
        })
        .collect();
    assert_eq!(audited.len(), 2, "{audited:?}");
    assert!(audited[0].contains(&claimed.object_key), "{audited:?}");

    // An agent that was cut off finishes late: the next look, an hour on, deletes it.
    store(&object);
    assert_eq!(sweep(lapsed + 60).await.unwrap().looked, 0);
    assert!(object.exists());
    let run = sweep(lapsed + 3600).await.unwrap();
    assert_eq!((run.looked, run.deleted), (1, 1), "{run:?}");
    assert!(!object.exists());
    assert_eq!(sweep(lapsed + 86_400).await.unwrap().looked, 1);
    assert_eq!(
        sweep(lapsed + 10 * 86_400).await.unwrap().looked,
        0,
        "forgotten after a day"
    );

    // Attempts 2 and 3, claimed within the same second as attempt 1, get its key: attempt
    // 2 lapses too, and what is there is left alone while attempt 3 runs; once a backup
    // records the key it is never deleted.
    let second = jobs::claim_next(&w.db, &agent, T0).await.unwrap().unwrap();
    assert_eq!((second.id.as_str(), second.attempt), (job.as_str(), 2));
    assert_eq!(jobs::expire_leases(&w.db, lapsed).await.unwrap(), 1);
    let third = jobs::claim_next(&w.db, &agent, T0).await.unwrap().unwrap();
    assert_eq!(third.attempt, 3);
    assert_eq!(third.object_key, claimed.object_key);
    let object = w.dir.path().join(&third.object_key);
    store(&object);
    let run = sweep(lapsed).await.unwrap();
    assert_eq!((run.looked, run.deleted), (1, 0), "{run:?}");
    assert!(object.exists(), "a running attempt's object was deleted");
    sqlx::query(
        "INSERT INTO backups (id, org_id, job_id, schedule_id, database_id, destination_id, \
         object_key, size, sha256, started_at, finished_at, pg_server_version, pg_dump_version, \
         delete_attempts) VALUES ('bkp_recorded', $1, $2, $3, $4, $5, $6, 1, $7, $8, $8, '17', \
         '17', 0)",
    )
    .bind(&w.org)
    .bind(&job)
    .bind(&w.schedule)
    .bind(&w.database)
    .bind(&w.destination)
    .bind(&third.object_key)
    .bind("00".repeat(32))
    .bind(T0)
    .execute(w.db.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE jobs SET state = 'succeeded' WHERE id = $1")
        .bind(&job)
        .execute(w.db.pool())
        .await
        .unwrap();
    let run = sweep(lapsed + 86_400).await.unwrap();
    assert_eq!((run.looked, run.deleted), (1, 0), "{run:?}");
    assert!(object.exists(), "a recorded backup's object was deleted");
    assert_eq!(sweep(lapsed + 10 * 86_400).await.unwrap().looked, 0);
}

crate::sqlite_and_postgres!(
    sqlite_what_a_lapsed_attempt_stored_is_deleted,
    postgres_what_a_lapsed_attempt_stored_is_deleted,
    what_a_lapsed_attempt_stored_is_deleted
);
