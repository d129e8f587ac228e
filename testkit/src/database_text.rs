//! Every text in a database, for the scans that prove a secret is stored nowhere in
//! clear.
//!
//! Why here: the control plane's API tests and the agent's scheduled tests both scanned
//! the control plane's database for secrets (passwords, tokens, a backup's file key),
//! each with a copy of the same loop over its own list of tables — and a table missing
//! from a list was a place a leak went unseen. This reads every table there is. It takes
//! a plain `sqlx::AnyPool` (what `dbcrate_control::db::Db::pool` gives) because the kit
//! does not depend on the control plane, whose tests depend on the kit.

use sqlx::{AnyPool, Row};

/// Every text and blob value of every table in `pool`'s database (SQLite, or the current
/// schema of PostgreSQL), one value a line: text as it is, a blob both as (lossy) UTF-8
/// and as lowercase hex, so that a secret written raw, as text or hex-encoded is found by
/// `contains`.
///
/// # Panics
/// When the database cannot be read or has no table: a scan that read nothing must not
/// pass.
pub async fn every_text_in_database(pool: &AnyPool) -> String {
    let mut conn = pool.acquire().await.expect("a connection to scan");
    let tables_sql = match conn.backend_name() {
        "SQLite" => "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
        "PostgreSQL" => {
            "SELECT CAST(tablename AS TEXT) FROM pg_tables \
             WHERE schemaname = current_schema() ORDER BY 1"
        }
        other => panic!("scanning a {other} database is not supported"),
    };
    let tables: Vec<String> = sqlx::query_scalar(tables_sql)
        .fetch_all(&mut *conn)
        .await
        .expect("the list of tables");
    assert!(!tables.is_empty(), "the database has no table to scan");
    let mut out = String::new();
    for table in tables {
        let rows = sqlx::query(&format!("SELECT * FROM \"{}\"", table.replace('"', "\"\"")))
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("reading table {table}: {e}"));
        for row in rows {
            for i in 0..row.len() {
                if let Ok(text) = row.try_get::<String, _>(i) {
                    out.push_str(&text);
                } else if let Ok(blob) = row.try_get::<Vec<u8>, _>(i) {
                    out.push_str(&String::from_utf8_lossy(&blob));
                    out.push('\n');
                    out.push_str(&dbcrate_core::hex::encode(&blob));
                }
                out.push('\n');
            }
        }
    }
    out
}
