//! The kit's scans of a control plane's database read what they say on both engines:
//! every table (whatever its name), text as it is, blobs as UTF-8 and as hex; the audit
//! assertions find actions in a chain, in order, and fail naming a missing one.

use dbcrate_testkit::{
    assert_audited, audited_actions, every_text_in_database, sqlite_url, PgServer, TempDir,
};
use sqlx::AnyPool;

async fn fill(pool: &AnyPool) {
    for statement in [
        "CREATE TABLE audit_log (id BIGINT PRIMARY KEY, org_id TEXT NOT NULL, action TEXT NOT NULL)",
        "INSERT INTO audit_log VALUES (1, 'org-a', 'org.create'), (2, 'org-b', 'agent.enrol'), \
         (3, 'org-a', 'secret.unwrap')",
        "CREATE TABLE \"odd \"\"name\" (t TEXT, b BYTEA, n BIGINT, missing TEXT)",
        "INSERT INTO \"odd \"\"name\" VALUES ('plain text', NULL, 42, NULL)",
    ] {
        let statement = if pool.acquire().await.unwrap().backend_name() == "SQLite" {
            statement.replace("BYTEA", "BLOB")
        } else {
            statement.to_string()
        };
        sqlx::query(&statement).execute(pool).await.unwrap();
    }
    // A blob of UTF-8 text, and one that is not UTF-8.
    for blob in [b"raw bytes".to_vec(), vec![0xff, 0x00, 0xab]] {
        sqlx::query("INSERT INTO \"odd \"\"name\" (b) VALUES ($1)")
            .bind(blob)
            .execute(pool)
            .await
            .unwrap();
    }
}

async fn scans(pool: AnyPool) {
    fill(&pool).await;
    let text = every_text_in_database(&pool).await;
    assert!(text.contains("plain text"), "{text}");
    assert!(text.contains("org.create") && text.contains("agent.enrol"));
    assert!(text.contains("raw bytes"), "a blob as UTF-8: {text}");
    assert!(text.contains("726177206279746573"), "a blob as hex: {text}");
    assert!(text.contains("ff00ab"), "a binary blob as hex: {text}");

    assert_eq!(
        audited_actions(&pool, "org-a").await,
        ["org.create", "secret.unwrap"]
    );
    assert_audited(&pool, "org-a", &["secret.unwrap", "org.create"]).await;
    let missing = tokio::spawn({
        let pool = pool.clone();
        async move { assert_audited(&pool, "org-a", &["agent.enrol"]).await }
    })
    .await
    .unwrap_err();
    let message = missing.into_panic();
    let message = message
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains("no agent.enrol in audit chain org-a"),
        "{message}"
    );
}

#[tokio::test]
async fn sqlite_scans() {
    sqlx::any::install_default_drivers();
    let dir = TempDir::new("kit-scans").unwrap();
    let pool = AnyPool::connect(&sqlite_url(&dir.path().join("c.db")))
        .await
        .unwrap();
    scans(pool).await;
}

#[tokio::test]
async fn postgres_scans() {
    sqlx::any::install_default_drivers();
    let server = PgServer::start(17).unwrap();
    server.create_database("control").unwrap();
    let pool = AnyPool::connect(&server.url("control")).await.unwrap();
    scans(pool).await;
}
