//! Every table's rows, counted in the very snapshot pg_dump dumps, so that a restore
//! drill can compare what it restored with what was there.
//!
//! The agent opens a read-only repeatable-read transaction, exports its snapshot, gives
//! it to pg_dump (`--snapshot`), and counts while pg_dump dumps: both see the same
//! rows, however busy the database is. The transaction stays open until the dump has
//! ended (pg_dump must import the snapshot while it exists), then rolls back. Counting
//! reads every table once more, which is why only backups whose schedule has drills
//! count.
//!
//! The tables are those pg_dump dumps the data of: ordinary tables (partitions
//! included, their partitioned parents hold no rows of their own), unlogged ones too,
//! not temporary ones, not the catalogs, not tables that belong to an extension.

use super::conninfo::DatabaseUrl;
use super::server::{connect, failure, within_timeout};
use crate::error::{Error, ErrorKind, Result};
use dbcrate_core::wire::RowCounts;
use sqlx::{Connection, PgConnection};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// More tables than this are not counted (the report would outgrow its purpose; the
/// drill then checks pg_restore and the check query only).
pub use dbcrate_core::wire::MAX_COUNTED_TABLES as MAX_TABLES;

/// The tables whose rows are counted, as quoted qualified names.
const TABLES: &str = "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
    JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE c.relkind = 'r' AND c.relpersistence <> 't' \
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
        AND d.objid = c.oid AND d.deptype = 'e') \
    ORDER BY 1";

/// A count running in an exported snapshot.
pub struct SnapshotCount {
    snapshot: String,
    dump_ended: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<Option<RowCounts>>>>,
}

impl SnapshotCount {
    /// Opens the transaction on `url`, exports its snapshot and starts counting.
    pub async fn start(url: &DatabaseUrl) -> Result<Self> {
        let mut conn = connect(url).await?;
        let snapshot = within_timeout(url, async {
            sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut conn)
                .await
                .map_err(|e| failure(url, "starting a snapshot on", e))?;
            let snapshot: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| failure(url, "exporting a snapshot of", e))?;
            Ok(snapshot)
        })
        .await?;
        let (dump_ended, ended) = oneshot::channel();
        let task = tokio::spawn(async move {
            let counted = count_all(&mut conn).await;
            // The snapshot must outlive pg_dump's import of it: wait for the dump.
            let _ = ended.await;
            let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
            let _ = conn.close().await;
            counted
        });
        Ok(Self {
            snapshot,
            dump_ended: Some(dump_ended),
            task: Some(task),
        })
    }

    /// The snapshot's id, for `pg_dump --snapshot`.
    pub fn snapshot(&self) -> &str {
        &self.snapshot
    }

    /// The counts, once the dump has ended (`None`: more than [`MAX_TABLES`] tables).
    pub async fn finish(mut self) -> Result<Option<RowCounts>> {
        drop(self.dump_ended.take());
        let task = self.task.take().expect("finished once");
        task.await
            .map_err(|e| Error::new(ErrorKind::Database, format!("the row count stopped: {e}")))?
    }
}

impl Drop for SnapshotCount {
    /// A backup that failed does not wait for its count: the connection closes and the
    /// transaction ends with it.
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn count_all(conn: &mut PgConnection) -> Result<Option<RowCounts>> {
    let fail = |e: sqlx::Error| Error::new(ErrorKind::Database, format!("counting rows: {e}"));
    let tables: Vec<String> = sqlx::query_scalar(TABLES)
        .fetch_all(&mut *conn)
        .await
        .map_err(fail)?;
    if tables.len() > MAX_TABLES {
        tracing::warn!(
            tables = tables.len(),
            "more than {MAX_TABLES} tables: rows are not counted for drills"
        );
        return Ok(None);
    }
    let mut counts = RowCounts::new();
    for table in tables {
        // `table` is format('%I.%I'): quoted by the server, safe to splice.
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *conn)
            .await
            .map_err(fail)?;
        counts.insert(table, rows);
    }
    Ok(Some(counts))
}

/// Counts the rows of `tables` (names as recorded) in `url`'s database, as it is now.
pub async fn count_now(url: &DatabaseUrl, tables: &[&str]) -> Result<RowCounts> {
    let mut conn = connect(url).await?;
    let mut counts = RowCounts::new();
    for table in tables {
        let quoted_again: Option<String> = sqlx::query_scalar(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE format('%I.%I', n.nspname, c.relname) = $1",
        )
        .bind(table)
        .fetch_optional(&mut conn)
        .await
        .map_err(|e| failure(url, "looking up a table in", e))?;
        // A recorded name is spliced only once the server has quoted it itself.
        let Some(table) = quoted_again else {
            continue;
        };
        let rows: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut conn)
            .await
            .map_err(|e| failure(url, "counting rows in", e))?;
        counts.insert(table, rows);
    }
    let _ = conn.close().await;
    Ok(counts)
}
