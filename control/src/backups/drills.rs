//! Restore drills: after every Nth successful backup of a schedule, the control plane
//! queues a restore of that backup into a throwaway database on the server of a
//! database the operator named, checked and dropped by that database's agent
//! (`agent/src/pipeline/drill.rs`). Each drill's outcome is kept (`drill_results`):
//! whether it passed, the measured time to restore — the database's recovery time,
//! shown next to its recovery point — and why it failed; a failed drill is an alert.
//!
//! A drill is a managed restore in every trust rule: the agent gets the backup's file
//! keys only, never the organisation key. Backups of a schedule with drills are made
//! with their tables' row counts (counted in the dump's own snapshot), which the drill
//! compares with what it restored; an optional check query must return true.

use super::jobs::drill::enqueue_drill;
use crate::audit::{self, AuditAction};
use crate::db::{end_write, Db};
use crate::error::{is_id, Error, Result};
use dbcrate_core::wire::{DrillPart, RowCounts};
use serde::Serialize;

/// The most backups between drills.
pub const MAX_EVERY: i64 = 1000;
/// The longest check query, in bytes.
pub const MAX_CHECK_QUERY: usize = 10_000;

/// A schedule's drills as set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillSettings {
    /// A drill after every this many successful backups (1: after each).
    pub every: i64,
    /// The database whose server and agent run the drills (`dbs_…`); the throwaway
    /// database is made next to it, never in it.
    pub database_id: String,
    /// A query that must return one row whose first column is true.
    pub check_query: Option<String>,
}

/// Sets (or, with `None`, turns off) a schedule's drills; audited. `false` when there
/// is no such schedule in the organisation.
pub async fn set(
    db: &Db,
    org_id: &str,
    schedule_id: &str,
    settings: Option<&DrillSettings>,
    actor: &str,
    now: i64,
) -> Result<bool> {
    if let Some(s) = settings {
        check(s)?;
    }
    let mut tx = db.begin().await?;
    let done: Result<bool> = async {
        if let Some(s) = settings {
            let known: Option<String> =
                sqlx::query_scalar("SELECT id FROM databases WHERE id = $1 AND org_id = $2")
                    .bind(&s.database_id)
                    .bind(org_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if known.is_none() {
                return Err(Error::invalid(
                    "no such database in this organisation to run the drills on",
                ));
            }
        }
        let updated = sqlx::query(
            "UPDATE schedules SET drill_every = $1, drill_database_id = $2, \
             drill_check_query = $3 WHERE id = $4 AND org_id = $5",
        )
        .bind(settings.map(|s| s.every))
        .bind(settings.map(|s| s.database_id.as_str()))
        .bind(settings.and_then(|s| s.check_query.as_deref()))
        .bind(schedule_id)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        let details = serde_json::json!({ "drills": settings });
        let target = format!("schedule:{schedule_id}");
        let action = AuditAction::ScheduleDrill;
        audit::record_in(&mut tx, org_id, actor, action, &target, details, now).await?;
        Ok(true)
    }
    .await;
    end_write(tx, done).await
}

fn check(s: &DrillSettings) -> Result<()> {
    if !(1..=MAX_EVERY).contains(&s.every) {
        return Err(Error::invalid(format!(
            "every must be between 1 and {MAX_EVERY} backups"
        )));
    }
    if !is_id(&s.database_id, "dbs") {
        return Err(Error::invalid(
            "database_id must be a database's id (dbs_…)",
        ));
    }
    if s.check_query
        .as_ref()
        .is_some_and(|q| q.len() > MAX_CHECK_QUERY)
    {
        return Err(Error::invalid(format!(
            "the check query is longer than {MAX_CHECK_QUERY} bytes"
        )));
    }
    Ok(())
}

/// A schedule's drills, if it has them.
pub async fn settings(db: &Db, org_id: &str, schedule_id: &str) -> Result<Option<DrillSettings>> {
    let row: Option<(Option<i64>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT drill_every, drill_database_id, drill_check_query FROM schedules \
         WHERE id = $1 AND org_id = $2",
    )
    .bind(schedule_id)
    .bind(org_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some((Some(every), Some(database_id), check_query)) => Some(DrillSettings {
            every,
            database_id,
            check_query,
        }),
        _ => None,
    })
}

/// Queues a drill of `backup_id` now, with its schedule's drill settings (an operator's
/// "drill now"); the job's id. Refused when the backup's schedule has no drills or the
/// backup was deleted.
pub async fn queue(
    db: &Db,
    org_id: &str,
    backup_id: &str,
    actor: &str,
    now: i64,
) -> Result<String> {
    if !is_id(backup_id, "bkp") {
        return Err(Error::invalid("backup_id must be a backup's id (bkp_…)"));
    }
    let mut tx = db.begin().await?;
    let queued: Result<String> = async {
        let found: Option<(String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT b.destination_id, b.deleted_at, s.drill_database_id FROM backups b \
             LEFT JOIN schedules s ON s.id = b.schedule_id WHERE b.id = $1 AND b.org_id = $2",
        )
        .bind(backup_id)
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((destination_id, deleted_at, drill_database)) = found else {
            return Err(Error::invalid("no such backup in this organisation"));
        };
        if deleted_at.is_some() {
            return Err(Error::invalid("that backup was deleted by retention"));
        }
        let database_id = drill_database.ok_or_else(|| {
            Error::invalid("the backup's schedule has no drills: set them on the schedule first")
        })?;
        let backup = (backup_id, destination_id.as_str());
        enqueue_drill(&mut tx, org_id, backup, &database_id, actor, now).await
    }
    .await;
    end_write(tx, queued).await
}

/// What a drill job's agent checks: the backup's recorded row counts and its
/// schedule's check query.
pub(crate) async fn part(db: &Db, backup_id: &str) -> Result<DrillPart> {
    let row: (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT b.row_counts, s.drill_check_query FROM backups b \
         LEFT JOIN schedules s ON s.id = b.schedule_id WHERE b.id = $1",
    )
    .bind(backup_id)
    .fetch_one(db.pool())
    .await?;
    let row_counts = match row.0 {
        Some(text) => Some(
            serde_json::from_str::<RowCounts>(&text)
                .map_err(|_| Error::internal("stored row counts do not parse"))?,
        ),
        None => None,
    };
    Ok(DrillPart {
        row_counts,
        check_query: row.1,
    })
}

/// One drill's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DrillResult {
    /// The drill's job (`job_…`).
    pub job_id: String,
    /// The backup it restored.
    pub backup_id: String,
    /// The database that backup is of.
    pub database_id: String,
    /// Whether it restored and its checks held (1) or not (0).
    pub passed: i64,
    /// The measured time to restore, when the restore finished.
    pub restore_ms: Option<i64>,
    /// Tables whose row counts were compared.
    pub tables_checked: i64,
    /// Whether the check query returned true (1), false (0), or there was none.
    pub check_query_passed: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it ended.
    pub finished_at: i64,
}

crate::rows::from_row!(DrillResult {
    job_id,
    backup_id,
    database_id,
    passed,
    restore_ms,
    tables_checked,
    check_query_passed,
    error,
    finished_at,
});

/// The organisation's drills, newest first (at most `limit`), of one database if given.
pub async fn results(
    db: &Db,
    org_id: &str,
    database_id: Option<&str>,
    limit: i64,
) -> Result<Vec<DrillResult>> {
    let of_database = if database_id.is_some() {
        " AND database_id = $3"
    } else {
        ""
    };
    let sql = format!(
        "SELECT job_id, backup_id, database_id, passed, restore_ms, tables_checked, \
         check_query_passed, error, finished_at FROM drill_results \
         WHERE org_id = $1{of_database} ORDER BY finished_at DESC, job_id DESC LIMIT $2"
    );
    let mut query = sqlx::query_as(&sql).bind(org_id).bind(limit);
    if let Some(database_id) = database_id {
        query = query.bind(database_id);
    }
    Ok(query.fetch_all(db.pool()).await?)
}
