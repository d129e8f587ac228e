//! A writing transaction dropped before its end (a request cancelled because its client
//! went away) rolls back and releases its locks: the next writer proceeds at once and
//! sees nothing of it — on both engines.

mod common;

use dbcrate_control::db::{end_write, Db};
use std::time::{Duration, Instant};

async fn dropped_transactions_roll_back(db: Db) {
    db.migrate().await.unwrap();
    for _ in 0..3 {
        let mut tx = db.begin().await.unwrap();
        sqlx::query("INSERT INTO orgs (id, name, recipient, created_at) VALUES ('org_x', 'X', 'age1x', 'now')")
            .execute(&mut *tx)
            .await
            .unwrap();
        drop(tx);
    }
    let started = Instant::now();
    let tx = db.begin().await.unwrap();
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM orgs")
        .fetch_one(db.pool())
        .await
        .unwrap();
    end_write(tx, Ok::<(), sqlx::Error>(())).await.unwrap();
    assert_eq!(count, 0, "a dropped transaction's insert survived");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the next writer waited on a lock the dropped transaction kept"
    );
}

crate::sqlite_and_postgres!(
    sqlite_dropped_transactions_roll_back,
    postgres_dropped_transactions_roll_back,
    dropped_transactions_roll_back
);
