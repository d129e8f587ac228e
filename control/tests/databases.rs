//! Editing a database on both engines: where it is reached, as whom and through which
//! agent change; its name (the folder its backups go into) stays; the stored password is
//! kept, replaced or removed — a replaced or removed one is gone from the database, the
//! new one sealed — and never appears in a row, an answer or the audit detail. Bad input
//! changes nothing.

mod common;

use dbcrate_control::backups::databases::{self, DatabaseEdit, NewDatabase, PasswordChange};
use dbcrate_control::db::Db;
use dbcrate_control::error::Code;
use dbcrate_control::secrets::{self, Owner, SecretRef};
use dbcrate_control::{audit, local, orgs};
use dbcrate_core::secret::SecretString;

const NOW: &str = "2026-11-29T05:00:00Z";
const T: i64 = 1_800_000_000;

async fn secret_id(db: &Db, id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT password_secret_id FROM databases WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await
        .unwrap()
}

async fn secrets_count(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM secrets WHERE purpose = $1")
        .bind(databases::PASSWORD_PURPOSE)
        .fetch_one(db.pool())
        .await
        .unwrap()
}

async fn editing_a_database(db: Db) {
    db.migrate().await.unwrap();
    let keys = common::keys_with_audit_key(&db, NOW).await;
    let org = orgs::create(&db, &keys, "Acme", "system:test", NOW)
        .await
        .unwrap();
    let other = orgs::create(&db, &keys, "Other", "system:test", NOW)
        .await
        .unwrap();
    let agent = |org: String| {
        let (db, keys) = (&db, &keys);
        async move {
            local::enrol_agent(db, keys, &org, T)
                .await
                .unwrap()
                .0
                .agent_id
        }
    };
    let (a1, a2, foreign) = (
        agent(org.id.clone()).await,
        agent(org.id.clone()).await,
        agent(other.id.clone()).await,
    );
    let first = SecretString::new("first secret pw".into());
    let new = NewDatabase {
        name: "app",
        host: "db.internal",
        port: 5432,
        dbname: "app",
        username: "backup",
        tls_mode: "require",
        password: Some(&first),
        agent_id: &a1,
    };
    let created = databases::create(&db, &keys, &org.id, &new, "user:x", T)
        .await
        .unwrap();
    let first_secret = secret_id(&db, &created.id).await.unwrap();

    // Everything but the password: the same sealed secret stays.
    let mut edit = DatabaseEdit {
        host: "db2.internal",
        port: 5433,
        dbname: "app2",
        username: "backup2",
        tls_mode: "verify-full",
        agent_id: &a2,
        password: PasswordChange::Keep,
    };
    let edited = databases::update(&db, &keys, &org.id, &created.id, &edit, "user:x", T + 1)
        .await
        .unwrap();
    assert_eq!(
        (
            edited.name.as_str(),
            edited.host.as_str(),
            edited.port,
            edited.dbname.as_str(),
            edited.username.as_str(),
            edited.tls_mode.as_str(),
            edited.agent_id.as_str(),
            edited.has_password
        ),
        (
            "app",
            "db2.internal",
            5433,
            "app2",
            "backup2",
            "verify-full",
            a2.as_str(),
            true
        )
    );
    assert_eq!(
        secret_id(&db, &created.id).await,
        Some(first_secret.clone())
    );

    // A new password: sealed anew, the old secret gone.
    let second = SecretString::new("second secret pw".into());
    edit.password = PasswordChange::Set(&second);
    databases::update(&db, &keys, &org.id, &created.id, &edit, "user:x", T + 2)
        .await
        .unwrap();
    let second_secret = secret_id(&db, &created.id).await.unwrap();
    assert_ne!(second_secret, first_secret);
    assert_eq!(
        secrets_count(&db).await,
        1,
        "the replaced secret is deleted"
    );
    let opened = secrets::unwrap(
        &db,
        &keys,
        SecretRef {
            owner: Owner::Org(&org.id),
            id: &second_secret,
            purpose: databases::PASSWORD_PURPOSE,
        },
        "user:x",
        "test",
        NOW,
    )
    .await
    .unwrap();
    assert_eq!(&opened[..], b"second secret pw");

    // Bad input changes nothing and says what is wrong.
    let before = databases::get(&db, &org.id, &created.id).await.unwrap();
    let revoked = agent(org.id.clone()).await;
    dbcrate_control::agents::revoke(&db, &keys, &org.id, &revoked, "user:x", T)
        .await
        .unwrap();
    for (bad, needle) in [
        (DatabaseEdit { port: 0, ..edit }, "port"),
        (
            DatabaseEdit {
                tls_mode: "none",
                ..edit
            },
            "tls_mode",
        ),
        (
            DatabaseEdit {
                host: "a b",
                ..edit
            },
            "host",
        ),
        (
            DatabaseEdit {
                agent_id: &foreign,
                ..edit
            },
            "no such agent",
        ),
        (
            DatabaseEdit {
                agent_id: &revoked,
                ..edit
            },
            "revoked",
        ),
        (
            DatabaseEdit {
                agent_id: "not-an-id",
                ..edit
            },
            "agent",
        ),
    ] {
        let e = databases::update(&db, &keys, &org.id, &created.id, &bad, "user:x", T + 3)
            .await
            .unwrap_err();
        assert_eq!(e.code, Code::InvalidInput, "{}", e.message);
        assert!(
            e.message.contains(needle),
            "{needle:?} not in {}",
            e.message
        );
    }
    // Another organisation's database, or none, is not found.
    let e = databases::update(&db, &keys, &other.id, &created.id, &edit, "user:x", T + 3)
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    let missing = "dbs_00000000000000000000000000000000";
    let e = databases::update(&db, &keys, &org.id, missing, &edit, "user:x", T + 3)
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::NotFound);
    assert_eq!(
        databases::get(&db, &org.id, &created.id).await.unwrap(),
        before
    );
    assert_eq!(secret_id(&db, &created.id).await, Some(second_secret));

    // Removed: no password, no secret.
    edit.password = PasswordChange::Remove;
    let removed = databases::update(&db, &keys, &org.id, &created.id, &edit, "user:x", T + 4)
        .await
        .unwrap();
    assert!(!removed.has_password);
    assert_eq!(secret_id(&db, &created.id).await, None);
    assert_eq!(secrets_count(&db).await, 0);

    // Audited each time, with what changed and what happened to the password, never it.
    let rows: Vec<_> = audit::rows(&db, &org.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "database.update")
        .collect();
    let details: Vec<&str> = rows.iter().map(|r| r.details.as_str()).collect();
    assert_eq!(rows.len(), 3, "{details:?}");
    for (row, password) in rows.iter().zip(["kept", "replaced", "removed"]) {
        assert_eq!(row.target, format!("database:{}", created.id));
        assert!(
            row.details
                .contains(&format!("\"password\":\"{password}\"")),
            "{}",
            row.details
        );
        assert!(!row.details.contains("secret pw"), "{}", row.details);
    }
    assert!(details[0].contains("db2.internal"), "{}", details[0]);
}

crate::sqlite_and_postgres!(
    sqlite_editing_a_database,
    postgres_editing_a_database,
    editing_a_database
);
