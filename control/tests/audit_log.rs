//! The audit log on both engines: append-only by trigger (UPDATE, DELETE, REPLACE and
//! upserts refused), and every edit, deletion, reordering or forged row made behind the
//! application's back is found by verification, which needs the master key. Rows
//! written before the chain was keyed still verify, up to where they were sealed. Also
//! the schema-version boot check.

mod common;

use dbcrate_control::audit::query::{self, Filter, Order};
use dbcrate_control::audit::{self, AuditAction, AuditEvent, INSTANCE_CHAIN};
use dbcrate_control::db::{binary_schema_version, Db, Engine};
use dbcrate_control::envelope::MasterKeys;
use dbcrate_control::secrets::audit_key;
use dbcrate_testkit::{PgServer, TempDir, TEST_MASTER_KEY as K1};
use sha2::{Digest, Sha256};

const NOW: &str = "2026-11-29T05:00:00Z";

async fn open_key(db: &Db) {
    common::keys_with_audit_key(db, NOW).await;
}

/// The unkeyed SHA-256 row hash of before migration 16: what anyone who can write the
/// database can compute.
fn unkeyed_hash(prev: &str, fields: [&str; 7]) -> String {
    let mut h = Sha256::new();
    for field in std::iter::once(prev).chain(fields) {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    dbcrate_core::hex::encode(&h.finalize())
}

/// Inserts a row with the unkeyed hash, linked to the chain's newest row: an appended
/// forgery (or, before the key exists, a row as the old binaries wrote it).
async fn append_unkeyed(db: &Db, chain: &str, action: &str) {
    use sqlx::Row;
    let last =
        sqlx::query("SELECT seq, hash FROM audit_log WHERE org_id = $1 ORDER BY seq DESC LIMIT 1")
            .bind(chain)
            .fetch_optional(db.pool())
            .await
            .unwrap();
    let (seq, prev) = match last {
        Some(r) => (r.get::<i64, _>(0) + 1, r.get::<String, _>(1)),
        None => (1, audit::GENESIS.to_string()),
    };
    let seq_text = seq.to_string();
    let fields = [chain, &seq_text, NOW, "user:mallory", action, "org:x", "{}"];
    let hash = unkeyed_hash(&prev, fields);
    sqlx::query(
        "INSERT INTO audit_log (org_id, seq, at, actor, action, target, details, prev_hash, hash) \
         VALUES ($1, $2, $3, 'user:mallory', $4, 'org:x', '{}', $5, $6)",
    )
    .bind(chain)
    .bind(seq)
    .bind(NOW)
    .bind(action)
    .bind(&prev)
    .bind(&hash)
    .execute(db.pool())
    .await
    .unwrap();
}

async fn write_five(db: &Db, org: &str) {
    for i in 1..=5 {
        let target = format!("secret:{i}");
        let event = AuditEvent {
            org_id: org,
            actor: "user:alice",
            action: AuditAction::SecretUnwrap,
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
    open_key(&db).await;

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
    // Replacing the newest row, or any row, in place: REPLACE on SQLite (which deletes
    // without firing DELETE triggers) and upserts on both engines.
    let columns = "org_id, seq, at, actor, action, target, details, prev_hash, hash";
    let forged = "'org-a', 5, 'x', 'user:mallory', 'x', 'x', '{}', 'x', 'x'";
    let mut replaces = vec![format!(
        "INSERT INTO audit_log ({columns}) VALUES ({forged}) \
         ON CONFLICT (org_id, seq) DO UPDATE SET actor = 'user:mallory'"
    )];
    if db.engine() == Engine::Sqlite {
        replaces.push(format!(
            "INSERT OR REPLACE INTO audit_log ({columns}) VALUES ({forged})"
        ));
        replaces.push(format!(
            "REPLACE INTO audit_log ({columns}) VALUES ({forged})"
        ));
        replaces.push(format!(
            "REPLACE INTO audit_log (id, {columns}) SELECT id, 'org-a', 99, 'x', 'x', 'x', 'x', \
             '{{}}', 'x', 'x' FROM audit_log WHERE org_id = 'org-a' AND seq = 5"
        ));
    }
    for sql in &replaces {
        let err = sqlx::raw_sql(sql).execute(db.pool()).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(audit::verify(&db, "org-a").await.unwrap(), Ok(5));

    // A forged row appended by someone who can write the database but has no master key
    // (the triggers allow appends): it cannot carry a hash that verifies.
    append_unkeyed(&db, "org-a", "recovery_key.export").await;
    let broken = audit::verify(&db, "org-a").await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 6, "{broken:?}");
    assert!(broken.reason.contains("master key"), "{broken:?}");
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

crate::sqlite_and_postgres!(sqlite_audit_log, postgres_audit_log, audit_log_properties);

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused() {
    let dir = TempDir::new("control-newer").unwrap();
    let db = common::sqlite_db(&dir).await;
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
    concurrent_appends(common::sqlite_db(&dir).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_appends_keep_one_chain() {
    let server = PgServer::start(17).unwrap();
    server.create_database("control").unwrap();
    concurrent_appends(Db::connect(&server.url("control")).await.unwrap()).await;
}

async fn concurrent_appends(db: Db) {
    db.migrate().await.unwrap();
    open_key(&db).await;
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
                action: AuditAction::SecretUnwrap,
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

/// Chains written before the key existed (unkeyed SHA-256, as binaries before schema 16
/// wrote them) are sealed when the key is created: they verify up to the sealed row and
/// go on keyed; an unkeyed row after that, or a new chain that starts unkeyed, does not.
async fn unkeyed_chains_are_sealed(db: Db) {
    db.migrate().await.unwrap();
    for _ in 0..3 {
        append_unkeyed(&db, "org-old", "member.add").await;
    }
    append_unkeyed(&db, INSTANCE_CHAIN, "auth.sign_in").await;
    open_key(&db).await;
    assert_eq!(audit::verify(&db, "org-old").await.unwrap(), Ok(3));
    // The seal row follows the instance chain's old row.
    assert_eq!(audit::verify(&db, INSTANCE_CHAIN).await.unwrap(), Ok(2));

    for _ in 0..5 {
        let event = AuditEvent {
            org_id: "org-old",
            actor: "user:alice",
            action: AuditAction::MemberAdd,
            target: "user:bob",
            details: "{}",
        };
        audit::append(&db, &event, NOW).await.unwrap();
    }
    assert_eq!(audit::verify(&db, "org-old").await.unwrap(), Ok(8));
    append_unkeyed(&db, "org-old", "recovery_key.export").await;
    let broken = audit::verify(&db, "org-old").await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 9, "{broken:?}");

    append_unkeyed(&db, "org-new", "org.create").await;
    let broken = audit::verify(&db, "org-new").await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 1, "{broken:?}");

    // Opening the key again (the next start) seals nothing new.
    open_key(&db).await;
    let broken = audit::verify(&db, "org-new").await.unwrap().unwrap_err();
    assert_eq!(broken.seq, 1, "{broken:?}");

    // The key's row cannot be changed or removed; removed behind the back, the control
    // plane refuses to start rather than make a new key that would vouch for forgeries.
    for sql in [
        "UPDATE audit_chain_key SET secret_id = 'sec_x'",
        "DELETE FROM audit_chain_key",
    ] {
        let err = sqlx::raw_sql(sql).execute(db.pool()).await.unwrap_err();
        assert!(err.to_string().contains("write-once"), "{sql}: {err}");
    }
    let off = match db.engine() {
        Engine::Sqlite => "DROP TRIGGER audit_chain_key_no_delete",
        Engine::Postgres => "ALTER TABLE audit_chain_key DISABLE TRIGGER USER",
    };
    sqlx::raw_sql(off).execute(db.pool()).await.unwrap();
    sqlx::raw_sql("DELETE FROM audit_chain_key")
        .execute(db.pool())
        .await
        .unwrap();
    let err = audit_key::load(&db, &MasterKeys::parse(K1).unwrap(), NOW)
        .await
        .unwrap_err();
    assert!(
        err.message.contains("audit_chain_key row is gone"),
        "{}",
        err.message
    );
}

crate::sqlite_and_postgres!(
    sqlite_unkeyed_chains_are_sealed,
    postgres_unkeyed_chains_are_sealed,
    unkeyed_chains_are_sealed
);

/// Pages of the log read newest first (the dashboard's order) and in chain order (the
/// API's): the same rows, each page continuing where the last ended, filters applied.
async fn pages_in_either_order(db: Db) {
    db.migrate().await.unwrap();
    open_key(&db).await;
    write_five(&db, "org-a").await;
    write_five(&db, "org-b").await;
    let seqs = |rows: Vec<audit::AuditRow>| rows.iter().map(|r| r.seq).collect::<Vec<_>>();
    let newest = |before| Filter {
        order: Order::NewestFirst,
        before,
        ..Filter::default()
    };
    let first = query::page(&db, "org-a", &newest(None), 2).await.unwrap();
    assert_eq!(seqs(first), [5, 4]);
    let next = query::page(&db, "org-a", &newest(Some(4)), 2)
        .await
        .unwrap();
    assert_eq!(seqs(next), [3, 2]);
    let last = query::page(&db, "org-a", &newest(Some(2)), 2)
        .await
        .unwrap();
    assert_eq!(seqs(last), [1]);
    let chain = Filter {
        after: Some(2),
        ..Filter::default()
    };
    assert_eq!(
        seqs(query::page(&db, "org-a", &chain, 10).await.unwrap()),
        [3, 4, 5]
    );
    let filtered = Filter {
        to: Some("2026-11-29T05:00:04Z".into()),
        ..newest(None)
    };
    assert_eq!(
        seqs(query::page(&db, "org-a", &filtered, 10).await.unwrap()),
        [3, 2, 1]
    );
    let bad = Filter {
        before: Some(-1),
        ..Filter::default()
    };
    assert!(bad.validate().is_err());
}

crate::sqlite_and_postgres!(
    sqlite_audit_pages,
    postgres_audit_pages,
    pages_in_either_order
);
