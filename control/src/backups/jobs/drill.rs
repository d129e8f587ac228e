//! Drill jobs in the queue (`backups::drills` has the settings and the outcomes): which
//! backups count rows, queueing a drill after every Nth backup, and recording a drill's
//! report with its job's end.

use super::{enqueue, Because, NewJob};
use crate::audit::AuditAction;
use crate::error::Result;
use dbcrate_core::wire::{Completion, JobKind};
use sqlx::AnyConnection;

/// Who queues drills after backups, in the audit log.
const ACTOR: &str = "system:drills";

/// Whether the backup job `job_id` should count rows (its schedule has drills).
pub(crate) async fn counts_rows(conn: &mut AnyConnection, job_id: &str) -> Result<bool> {
    let every: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT s.drill_every FROM jobs j JOIN schedules s ON s.id = j.schedule_id \
         WHERE j.id = $1 AND j.kind = 'backup'",
    )
    .bind(job_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(matches!(every, Some(Some(_))))
}

/// The backup just recorded: queues its drill when the schedule's backups (all it ever
/// made, this one included) number a multiple of N; the drill job's id.
pub(crate) async fn after_backup(
    conn: &mut AnyConnection,
    org_id: &str,
    schedule_id: Option<&str>,
    backup_id: &str,
    destination_id: &str,
    now: i64,
) -> Result<Option<String>> {
    let Some(schedule_id) = schedule_id else {
        return Ok(None);
    };
    let drills: Option<(Option<i64>, Option<String>)> = sqlx::query_as(
        "SELECT drill_every, drill_database_id FROM schedules WHERE id = $1 AND org_id = $2",
    )
    .bind(schedule_id)
    .bind(org_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((Some(every), Some(database_id))) = drills else {
        return Ok(None);
    };
    let made: i64 = sqlx::query_scalar("SELECT count(*) FROM backups WHERE schedule_id = $1")
        .bind(schedule_id)
        .fetch_one(&mut *conn)
        .await?;
    if every <= 0 || made % every != 0 {
        return Ok(None);
    }
    let backup = (backup_id, destination_id);
    let job = enqueue_drill(conn, org_id, backup, &database_id, ACTOR, now).await?;
    Ok(Some(job))
}

/// Queues a drill of the backup `(id, destination)` on `database_id`'s server.
pub(crate) async fn enqueue_drill(
    conn: &mut AnyConnection,
    org_id: &str,
    (backup_id, destination_id): (&str, &str),
    database_id: &str,
    actor: &str,
    now: i64,
) -> Result<String> {
    let agent_id: String = sqlx::query_scalar("SELECT agent_id FROM databases WHERE id = $1")
        .bind(database_id)
        .fetch_one(&mut *conn)
        .await?;
    let job = NewJob {
        org_id,
        kind: JobKind::Drill,
        schedule_id: None,
        database_id,
        destination_id,
        agent_id: &agent_id,
        backup_id: Some(backup_id),
        max_attempts: 1,
    };
    let details = serde_json::json!({ "backup": backup_id, "drill_database": database_id });
    let because = Because {
        actor,
        action: AuditAction::DrillCreate,
        details: &details,
    };
    enqueue(conn, &job, &because, now).await
}

/// A drill job's report, recorded with its outcome (in the completion's transaction);
/// the audit action and details.
pub(crate) async fn record(
    conn: &mut AnyConnection,
    org_id: &str,
    job_id: &str,
    report: &Completion,
    now: i64,
) -> Result<(AuditAction, serde_json::Value)> {
    let (backup_id, database_id): (String, String) = sqlx::query_as(
        "SELECT b.id, b.database_id FROM jobs j JOIN backups b ON b.id = j.backup_id \
         WHERE j.id = $1",
    )
    .bind(job_id)
    .fetch_one(&mut *conn)
    .await?;
    let drill = report.drill.clone().unwrap_or_default();
    let error: Option<String> = report
        .error
        .as_ref()
        .map(|e| e.chars().take(2000).collect());
    sqlx::query(
        "INSERT INTO drill_results (job_id, org_id, backup_id, database_id, passed, restore_ms, \
         tables_checked, check_query_passed, error, finished_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(job_id)
    .bind(org_id)
    .bind(&backup_id)
    .bind(&database_id)
    .bind(i64::from(report.succeeded))
    .bind(drill.restore_ms.filter(|ms| *ms >= 0))
    .bind(drill.tables_checked.max(0))
    .bind(drill.check_query_passed.map(i64::from))
    .bind(&error)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    let action = if report.succeeded {
        AuditAction::DrillPassed
    } else {
        AuditAction::DrillFailed
    };
    let details = serde_json::json!({
        "backup": backup_id, "database": database_id, "restore_ms": drill.restore_ms,
        "tables_checked": drill.tables_checked, "check_query_passed": drill.check_query_passed,
        "error": error,
    });
    Ok((action, details))
}
