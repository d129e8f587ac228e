//! The audit log on both engines: append-only by trigger, and every edit, deletion or
//! reordering made behind the application's back is found by verification. Also the
//! schema-version boot check.

use dbcrate_control::audit::{self, AuditEvent};
use dbcrate_control::db::{binary_schema_version, Db, Engine};
use dbcrate_testkit::{PgServer, TempDir};

async fn sqlite(dir: &TempDir) -> Db {
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("control.db").display()
    );
    Db::connect(&url).await.unwrap()
}

async fn postgres(server: &PgServer) -> Db {
    server.create_database("control").unwrap();
    Db::connect(&server.url("control")).await.unwrap()
}

async fn write_five(db: &Db, org: &str) {
    for i in 1..=5 {
        let target = format!("secret:{i}");
        let event = AuditEvent {
            org_id: org,
            actor: "user:alice",
            action: "secret.unwrap",
            target: &target,
            details: r#"{"reason":"managed restore"}"#,
        };
        let row = audit::append(db, &event, &format!("2026-11-29T05:00:0{i}Z"))
            .await
            .unwrap();
        assert_eq!(row.seq, i);
    }
}

/// Runs `sql` as the database owner with the append-only triggers switched off, as an
/// attacker with direct database access would.
async fn behind_the_back(db: &Db, sql: &str) {
    let (off, on) = match db.engine() {
        Engine::Sqlite => (
            "DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;",
            "",
        ),
        Engine::Postgres => (
            "ALTER TABLE audit_log DISABLE TRIGGER USER;",
            "ALTER TABLE audit_log ENABLE TRIGGER USER;",
        ),
    };
    sqlx::raw_sql(off).execute(db.pool()).await.unwrap();
    sqlx::raw_sql(sql).execute(db.pool()).await.unwrap();
    if !on.is_empty() {
        sqlx::raw_sql(on).execute(db.pool()).await.unwrap();
    }
}

async fn audit_log_properties(db: Db) {
    assert!(db
        .check_schema()
        .await
        .unwrap_err()
        .to_string()
        .contains("dbcrate-control migrate"));
    assert_eq!(
        db.migrate().await.unwrap(),
        binary_schema_version() as usize
    );
    db.check_schema().await.unwrap();
    assert_eq!(db.migrate().await.unwrap(), 0, "migrate is idempotent");

    write_five(&db, "org-a").await;
    write_five(&db, "org-b").await;
    assert_eq!(audit::verify(&db, "org-a").await.unwrap(), Ok(5));

    for sql in [
        "UPDATE audit_log SET details = '{}' WHERE seq = 3",
        "DELETE FROM audit_log WHERE seq = 2",
    ] {
        let err = sqlx::raw_sql(sql).execute(db.pool()).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    if db.engine() == Engine::Postgres {
        let err = sqlx::raw_sql("TRUNCATE audit_log")
            .execute(db.pool())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
    }

    // Edited behind the application's back.
    behind_the_back(
        &db,
        "UPDATE audit_log SET actor = 'user:mallory' WHERE org_id = 'org-a' AND seq = 3",
    )
    .await;
    let broken = audit::verify(&db, "org-a").await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 3);
    assert!(broken.reason.contains("edited"), "{broken:?}");

    // Deleted.
    behind_the_back(
        &db,
        "DELETE FROM audit_log WHERE org_id = 'org-b' AND seq = 2",
    )
    .await;
    let broken = audit::verify(&db, "org-b").await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 3, "{broken:?}");
    assert!(broken.reason.contains("deleted"), "{broken:?}");

    // Reordered: two rows swap their positions (and sequence numbers) in the table.
    write_five(&db, "org-c").await;
    behind_the_back(
        &db,
        "UPDATE audit_log SET seq = -1 WHERE org_id = 'org-c' AND seq = 2; \
         UPDATE audit_log SET seq = 2 WHERE org_id = 'org-c' AND seq = 4; \
         UPDATE audit_log SET seq = 4 WHERE org_id = 'org-c' AND seq = -1;",
    )
    .await;
    let broken = audit::verify(&db, "org-c").await.unwrap().unwrap_err();
    assert!(
        broken.reason.contains("edited") || broken.reason.contains("reordered"),
        "{broken:?}"
    );

    // Other organisations' chains are untouched by all this.
    write_five(&db, "org-d").await;
    assert_eq!(audit::verify(&db, "org-d").await.unwrap(), Ok(5));
}

#[tokio::test]
async fn sqlite_audit_log() {
    let dir = TempDir::new("control-sqlite").unwrap();
    audit_log_properties(sqlite(&dir).await).await;
}

#[tokio::test]
async fn postgres_audit_log() {
    let server = PgServer::start(17).unwrap();
    audit_log_properties(postgres(&server).await).await;
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused() {
    let dir = TempDir::new("control-newer").unwrap();
    let db = sqlite(&dir).await;
    db.migrate().await.unwrap();
    sqlx::raw_sql("INSERT INTO dbcrate_schema (version) VALUES (999)")
        .execute(db.pool())
        .await
        .unwrap();
    let err = db.check_schema().await.unwrap_err().to_string();
    assert!(err.contains("newer than this binary"), "{err}");
    assert!(
        db.migrate().await.is_err(),
        "migrate must not touch a newer schema"
    );
}

#[tokio::test]
async fn concurrent_appends_keep_one_chain() {
    let dir = TempDir::new("control-concurrent").unwrap();
    concurrent_appends(sqlite(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_appends_keep_one_chain() {
    let server = PgServer::start(17).unwrap();
    server.create_database("control").unwrap();
    concurrent_appends(Db::connect(&server.url("control")).await.unwrap()).await;
}

async fn concurrent_appends(db: Db) {
    db.migrate().await.unwrap();
    let mut tasks = Vec::new();
    // Writers released together, each holding its transaction open a moment, so
    // unsynchronised writers would read the same last row.
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(16));
    for i in 0..16 {
        let db = db.clone();
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let target = format!("t{i}");
            let event = AuditEvent {
                org_id: "org-x",
                actor: "system",
                action: "test",
                target: &target,
                details: "{}",
            };
            gate.wait().await;
            let mut tx = db.begin().await.unwrap();
            audit::append_in(&mut tx, &event, "2026-11-29T05:00:00Z")
                .await
                .unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            dbcrate_control::db::end_write(tx, Ok::<(), sqlx::Error>(()))
                .await
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(audit::verify(&db, "org-x").await.unwrap(), Ok(16));
}
