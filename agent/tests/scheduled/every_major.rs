//! Scheduled backups end to end for every PostgreSQL major: a schedule in the control
//! plane (in this process, over mutual TLS) fires, the enrolled agent (`dbcrate-agent
//! run`) claims the job, fetches its credentials once, backs the database up into the
//! destination and reports; the control plane records the backup; the object restores
//! with stock age (and the organisation's exported recovery key), zstd and pg_restore;
//! and a managed restore through the control plane gives the agent only the file key.

use crate::common;
use crate::scene::{self, Scene};
use dbcrate_control::backups::{drills, restores};
use dbcrate_control::orgs;
use dbcrate_testkit::PgServer;
use sha2::Digest;
use std::time::Duration;

async fn scheduled_backup_restores_with_stock_tools(major: u32) {
    let Scene {
        basis,
        control,
        enrolled,
    } = scene::scene(major).await;
    let scene::Basis {
        server,
        dir,
        db,
        keys,
        org,
        now,
        ..
    } = &basis;
    let scene::Enrolled {
        data,
        agent_id,
        database,
        target,
        ..
    } = &enrolled;
    // Objects owned by and granted to roles of their own: a restore into a fresh server
    // needs the cluster's globals, saved next to the backup.
    server.psql("shop", common::CUSTOM_ROLES).unwrap();
    // A restore drill after every backup, next to the database itself, with a check.
    let drill_settings = drills::DrillSettings {
        every: 1,
        database_id: database.id.clone(),
        check_query: Some("SELECT count(*) = 300 FROM sales.orders".into()),
    };
    let schedule = &enrolled.schedule_id;
    assert!(drills::set(
        db,
        &org.id,
        schedule,
        Some(&drill_settings),
        "user:owner",
        *now
    )
    .await
    .unwrap());
    let _scheduler = control.run_scheduler(Duration::from_millis(500));

    // The agent runs with this major's client tools on PATH and no database password in
    // its environment: everything comes from the job. Its operator opted in to parallel
    // managed restores (the single stream is covered by registry_tools.rs).
    let staging = dir.path().join("restore-staging");
    std::fs::create_dir_all(&staging).unwrap();
    let mut agent = scene::agent_run(data)
        .env("PATH", scene::path_with_tools(server))
        .args(["--restore-jobs", "2", "--restore-staging-dir"])
        .arg(&staging)
        .spawn()
        .unwrap();
    let job = scene::wait_for_backup_job(db).await;
    scene::wait_for_success(db, &job, Duration::from_secs(60)).await;
    let (backup_id, key, size, sha256): (String, String, i64, String) =
        sqlx::query_as("SELECT id, object_key, size, sha256 FROM backups WHERE database_id = $1")
            .bind(&database.id)
            .fetch_one(db.pool())
            .await
            .unwrap();

    let (dump_size, duration_ms): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT dump_size, duration_ms FROM backups WHERE id = $1")
            .bind(&backup_id)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert!(dump_size.is_some_and(|n| n > 0), "no dump size recorded");
    assert!(duration_ms.is_some_and(|n| n > 0), "no duration recorded");

    // The drill the backup queued passes: every table's rows, as counted in the dump's
    // snapshot, are there after the restore; the check holds; its database is gone.
    let row_counts: Option<String> =
        sqlx::query_scalar("SELECT row_counts FROM backups WHERE id = $1")
            .bind(&backup_id)
            .fetch_one(db.pool())
            .await
            .unwrap();
    let row_counts: serde_json::Value = serde_json::from_str(&row_counts.unwrap()).unwrap();
    assert_eq!(row_counts["sales.orders"], 300, "{row_counts}");
    assert_eq!(
        row_counts["\"Ünïcode schéma\".\"tâble ✓\""], 100,
        "{row_counts}"
    );
    let drill = scene::wait_for_drill_of(db, &backup_id).await;
    scene::wait_for_success(db, &drill, Duration::from_secs(60)).await;
    let drilled = drills::results(db, &org.id, Some(&database.id), 10)
        .await
        .unwrap();
    assert_eq!(drilled.len(), 1, "{drilled:?}");
    let d = &drilled[0];
    assert_eq!((d.passed, d.check_query_passed), (1, Some(1)), "{d:?}");
    assert_eq!(
        d.tables_checked,
        row_counts.as_object().unwrap().len() as i64
    );
    assert!(
        d.tables_checked >= 5 && d.restore_ms.is_some_and(|ms| ms > 0),
        "{d:?}"
    );
    let left = server
        .psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'dbcrate_drill%'",
        )
        .unwrap();
    assert_eq!(left, "0", "the drill's database was not dropped");

    // A managed restore of that backup into another database on the same server, by the
    // same agent: it gets only the backup's file key.
    server.create_database("managed").unwrap();
    let target_db = scene::register_database(&basis, "managed", agent_id).await;
    let restore_job = restores::create(db, &org.id, &backup_id, &target_db.id, "user:owner", *now)
        .await
        .unwrap();
    scene::wait_for_success(db, &restore_job, Duration::from_secs(60)).await;

    // A managed restore into a fresh server applies the globals first; a role that
    // exists there is kept as it is.
    let fresh = PgServer::start(major).unwrap();
    fresh
        .psql(
            "postgres",
            "CREATE ROLE shop_reader LOGIN CONNECTION LIMIT 7",
        )
        .unwrap();
    fresh.create_database("fresh_shop").unwrap();
    let fresh_target = basis
        .tenant()
        .register_database(&fresh, "fresh_shop", agent_id)
        .await;
    let restore_job = restores::create(
        db,
        &org.id,
        &backup_id,
        &fresh_target.id,
        "user:owner",
        *now,
    )
    .await
    .unwrap();
    scene::wait_for_success(db, &restore_job, Duration::from_secs(60)).await;
    common::assert_same_database(server, "shop", &fresh, "fresh_shop");
    assert_eq!(
        common::custom_role_facts(&fresh),
        "Shop \"Clerk\" login=true limit=3 in=shop_reader set=\n\
         shop_owner login=false limit=-1 in= set=\n\
         shop_reader login=true limit=7 in= set=",
        "the backed-up roles were not created, or the existing one was changed"
    );

    assert_eq!(
        std::fs::read_dir(&staging).unwrap().count(),
        0,
        "a managed restore left its staged dump"
    );

    let _ = agent.start_kill();
    let out = agent.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !log.contains(server.password()),
        "the database password reached the agent's log"
    );
    // The drills (one per backup; the schedule may have fired more than once) and both
    // managed restores: every pg_restore ran as a parallel restore.
    let restores = log.matches("starting pg_restore").count();
    assert!(restores >= 3, "{log}");
    assert_eq!(
        log.matches("parallel restore done").count(),
        restores,
        "every restore ran in parallel: {log}"
    );
    common::assert_same_database(server, "shop", server, "managed");

    // The recorded object is there, with the recorded size and hash.
    let file = target.join(&key);
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(bytes.len() as i64, size);
    assert_eq!(
        dbcrate_core::hex::encode(&sha2::Sha256::digest(&bytes)),
        sha256
    );

    // Stock tools and the organisation's exported recovery key restore it.
    let recovery =
        orgs::export_recovery_key(db, keys, &org.id, "user:owner", "2026-11-29T05:00:00Z")
            .await
            .unwrap();
    let key_file = dir.path().join("recovery.key");
    std::fs::write(&key_file, recovery.expose_secret()).unwrap();
    common::stock_restore(server, &key_file, &file, "restored");
    common::assert_same_database(server, "shop", server, "restored");

    // The globals object sits next to the backup, recorded with it; with it, stock
    // psql, age, zstd and pg_restore restore into a fresh server with the same owners,
    // grants and roles.
    let (globals_size, globals_sha256): (Option<i64>, Option<String>) =
        sqlx::query_as("SELECT globals_size, globals_sha256 FROM backups WHERE id = $1")
            .bind(&backup_id)
            .fetch_one(db.pool())
            .await
            .unwrap();
    let globals_file = target.join(dbcrate_core::object_key::globals_key(&key).unwrap());
    let globals_bytes = std::fs::read(&globals_file).unwrap();
    assert_eq!(globals_size, Some(globals_bytes.len() as i64));
    assert_eq!(
        globals_sha256.as_deref(),
        Some(dbcrate_core::hex::encode(&sha2::Sha256::digest(&globals_bytes)).as_str())
    );
    let stock = PgServer::start(major).unwrap();
    common::stock_apply_globals(&stock, &key_file, &globals_file);
    common::stock_restore(&stock, &key_file, &file, "restored");
    common::assert_same_database(server, "shop", &stock, "restored");
    assert_eq!(
        common::custom_role_facts(&stock),
        common::custom_role_facts(server)
    );

    // The file key handed to the agent is in no row and no log line.
    let identity: age::x25519::Identity = recovery
        .expose_secret()
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        .parse()
        .unwrap();
    let head = &bytes[..bytes.len().min(4096)];
    let file_key = dbcrate_core::file_key::unwrap_file_key(head, &identity).unwrap();
    let file_key_hex = dbcrate_core::hex::encode(file_key.expose_secret());
    assert!(
        !log.contains(&file_key_hex),
        "the file key reached the agent's log"
    );
    let everything = dbcrate_testkit::every_text_in_database(db.pool()).await;
    assert!(
        !everything.contains(&file_key_hex),
        "the file key is stored in the database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg13_scheduled_backup_restores_with_stock_tools() {
    scheduled_backup_restores_with_stock_tools(13).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg14_scheduled_backup_restores_with_stock_tools() {
    scheduled_backup_restores_with_stock_tools(14).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg15_scheduled_backup_restores_with_stock_tools() {
    scheduled_backup_restores_with_stock_tools(15).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg16_scheduled_backup_restores_with_stock_tools() {
    scheduled_backup_restores_with_stock_tools(16).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg17_scheduled_backup_restores_with_stock_tools() {
    scheduled_backup_restores_with_stock_tools(17).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg18_scheduled_backup_restores_with_stock_tools() {
    scheduled_backup_restores_with_stock_tools(18).await;
}
