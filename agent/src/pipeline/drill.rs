//! A restore drill: the newest backup restored into a throwaway database, checked, and
//! dropped — proof, before anyone needs it, that the backup restores.
//!
//! On the drill's server (reached through the database the operator named, used only as
//! the way in), the agent creates `dbcrate_drill_<job>` from `template0`, restores the
//! backup into it exactly as a managed restore does (the backup's globals first, then
//! pg_restore in one transaction, with only the backup's file keys), then checks:
//! pg_restore succeeded; every table counted at backup time has the same rows; the
//! operator's check query, run read-only, returns true. Whatever happened, it drops the
//! database it created — `DROP DATABASE` of that one name is the only drop the agent
//! does, and only after its own `CREATE DATABASE` succeeded.

use super::restore::{run_restore, RestoreRequest};
use crate::error::{Error, ErrorKind, Result};
use crate::pg::row_counts::count_now;
use crate::pg::server::{connect, failure, within_timeout};
use crate::pg::DatabaseUrl;
use dbcrate_core::wire::{DrillPart, DrillReport, RowCounts};
use sqlx::{Connection, Row};
use std::time::Instant;

/// How long the operator's check query may run.
const CHECK_TIMEOUT_SECS: u32 = 300;

/// A drill: the restore (whose database is the way into the drill's server) and what
/// to check.
pub struct DrillRequest {
    /// The restore; its `database` is where the agent connects to create and drop the
    /// throwaway database, never restored into.
    pub restore: RestoreRequest,
    /// The job, which names the throwaway database.
    pub job_id: String,
    /// The recorded row counts and the check query.
    pub checks: DrillPart,
}

/// The throwaway database's name for `job_id`: `dbcrate_drill_` and the job id's
/// letters and digits (at most 63 bytes, PostgreSQL's limit).
pub fn throwaway_name(job_id: &str) -> String {
    let id: String = job_id
        .trim_start_matches("job_")
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .take(40)
        .collect();
    format!("dbcrate_drill_{id}")
}

/// Runs the drill; the report says as far as it got, the result whether it passed.
pub async fn run_drill(request: DrillRequest, object_url: &str) -> (DrillReport, Result<()>) {
    let DrillRequest {
        mut restore,
        job_id,
        checks,
    } = request;
    let mut report = DrillReport::default();
    let name = throwaway_name(&job_id);
    let urls = restore
        .database
        .with_database(&name)
        .and_then(|throwaway| Ok((throwaway.with_database(&name)?, throwaway)));
    let (checked_url, throwaway) = match urls {
        Ok(urls) => urls,
        Err(e) => return (report, Err(e)),
    };
    let way_in = std::mem::replace(&mut restore.database, throwaway);
    if let Err(e) = create(&way_in, &name).await {
        return (report, Err(e));
    }
    tracing::info!(database = %name, "restore drill: restoring into a throwaway database");
    let started = Instant::now();
    let outcome = match run_restore(restore, object_url).await {
        Ok(_) => {
            report.restore_ms =
                Some(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX));
            check(&checked_url, &checks, &mut report).await
        }
        Err(e) => Err(e),
    };
    let dropped = drop_database(&way_in, &name).await;
    let result = match (outcome, dropped) {
        (Ok(()), Ok(())) => Ok(()),
        (Ok(()), Err(e)) => Err(e.context(format!(
            "the drill passed but its database {name} was not dropped"
        ))),
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(d)) => Err(Error::new(
            e.kind(),
            format!("{e}; dropping {name} failed too: {d}"),
        )),
    };
    (report, result)
}

/// Creates the throwaway database (from `template0`: nothing of `template1` in the way).
async fn create(way_in: &DatabaseUrl, name: &str) -> Result<()> {
    execute(
        way_in,
        &format!("CREATE DATABASE \"{name}\" TEMPLATE template0"),
    )
    .await
    .map_err(|e| {
        e.context(format!(
            "creating the drill's database {name} (the role needs CREATEDB)"
        ))
    })
}

async fn drop_database(way_in: &DatabaseUrl, name: &str) -> Result<()> {
    execute(
        way_in,
        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    )
    .await
}

/// Runs one statement on its own connection to `url`.
async fn execute(url: &DatabaseUrl, statement: &str) -> Result<()> {
    let mut conn = connect(url).await?;
    within_timeout(url, async {
        sqlx::raw_sql(statement)
            .execute(&mut conn)
            .await
            .map_err(|e| failure(url, "a statement on", e))?;
        let _ = conn.close().await;
        Ok(())
    })
    .await
}

/// The checks after pg_restore succeeded: the recorded row counts, the check query.
async fn check(url: &DatabaseUrl, checks: &DrillPart, report: &mut DrillReport) -> Result<()> {
    let mut failures = Vec::new();
    if let Some(recorded) = &checks.row_counts {
        let tables: Vec<&str> = recorded.keys().map(String::as_str).collect();
        let restored = count_now(url, &tables).await?;
        report.tables_checked = i64::try_from(recorded.len()).unwrap_or(i64::MAX);
        failures.extend(differences(recorded, &restored));
    }
    if let Some(query) = checks
        .check_query
        .as_deref()
        .filter(|q| !q.trim().is_empty())
    {
        let passed = check_query(url, query).await?;
        report.check_query_passed = Some(passed);
        if !passed {
            failures.push("the check query did not return true".to_string());
        }
    }
    if failures.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::PgTool,
        format!(
            "the restored database failed its checks: {}",
            failures.join("; ")
        ),
    ))
}

/// What differs between the rows recorded at backup time and those restored.
fn differences(recorded: &RowCounts, restored: &RowCounts) -> Vec<String> {
    let mut out = Vec::new();
    for (table, rows) in recorded {
        match restored.get(table) {
            None => out.push(format!("{table} is missing")),
            Some(got) if got != rows => {
                out.push(format!("{table} has {got} rows, {rows} at backup time"))
            }
            Some(_) => {}
        }
    }
    out
}

/// Runs the operator's query in a read-only transaction with a time limit; whether it
/// returned one row whose first column is true.
async fn check_query(url: &DatabaseUrl, query: &str) -> Result<bool> {
    let mut conn = connect(url).await?;
    let fail = |e: sqlx::Error| {
        Error::new(
            ErrorKind::Database,
            url.redact(&format!("the check query failed: {e}")),
        )
    };
    let mut tx = conn.begin().await.map_err(fail)?;
    sqlx::raw_sql(&format!(
        "SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = '{CHECK_TIMEOUT_SECS}s'"
    ))
    .execute(&mut *tx)
    .await
    .map_err(fail)?;
    let row = sqlx::query(query)
        .fetch_optional(&mut *tx)
        .await
        .map_err(fail)?;
    let passed = match row {
        Some(row) => row.try_get::<Option<bool>, _>(0).map_err(fail)? == Some(true),
        None => false,
    };
    let _ = tx.rollback().await;
    let _ = conn.close().await;
    Ok(passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throwaway_name_is_the_jobs() {
        assert_eq!(
            throwaway_name("job_0123456789abcdef0123456789ABCDEF"),
            "dbcrate_drill_0123456789abcdef0123456789abcdef"
        );
        assert_eq!(throwaway_name("job_a\"; DROP x"), "dbcrate_drill_adropx");
        assert!(throwaway_name(&format!("job_{}", "f".repeat(80))).len() <= 63);
    }

    #[test]
    fn row_differences_name_each_table() {
        let recorded: RowCounts = [("a.t".to_string(), 3), ("a.u".to_string(), 1)].into();
        let restored: RowCounts = [("a.t".to_string(), 2)].into();
        assert_eq!(
            differences(&recorded, &restored),
            ["a.t has 2 rows, 3 at backup time", "a.u is missing"]
        );
        assert!(differences(&recorded, &recorded).is_empty());
    }
}
