//! The end of a job: a successful backup recorded, a successful restore noted, a failure
//! queued again (after [`super::retry_delay`]) while attempts remain.

use super::state::JobState;
use super::{not_yours, record_in};
use crate::audit::AuditAction;
use crate::db::{end_write, Db};
use crate::error::{new_id, Error, Result};
use crate::pki::identity::AgentIdentity;
use dbcrate_core::object_key::globals_key;
use dbcrate_core::wire::{Completion, JobKind, StoredObject};

/// The job a report is about, as the report found it: every change is guarded by the
/// attempt and state read.
struct Guard<'a> {
    job_id: &'a str,
    row: Reported,
}

/// The job a report is about, as it stands.
struct Reported {
    org_id: String,
    schedule_id: Option<String>,
    database_id: String,
    destination_id: String,
    started_at: Option<i64>,
    attempt: i64,
    max_attempts: i64,
    kind: String,
    drill: i64,
    state: JobState,
    object_key: Option<String>,
}

crate::rows::from_row!(Reported {
    org_id,
    schedule_id,
    database_id,
    destination_id,
    started_at,
    attempt,
    max_attempts,
    kind,
    drill,
    state,
    object_key,
});

impl Guard<'_> {
    /// Marks the job succeeded if it is still as found; clears what an earlier failure
    /// or a lapsed lease left.
    async fn succeed(&self, conn: &mut sqlx::AnyConnection, now: i64) -> Result<()> {
        let updated = sqlx::query(
            "UPDATE jobs SET state = $1, finished_at = $2, phase = 'done', error = NULL, \
             retry_at = NULL, lease_until = NULL WHERE id = $3 AND attempt = $4 AND state = $5",
        )
        .bind(JobState::Succeeded)
        .bind(now)
        .bind(self.job_id)
        .bind(self.row.attempt)
        .bind(self.row.state)
        .execute(&mut *conn)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(not_yours());
        }
        Ok(())
    }
}

/// Records the end of a job; a successful backup becomes a `backups` row. A failed job
/// is queued again while attempts remain.
///
/// A report is taken while the job runs, and also after its lease lapsed as long as no
/// new attempt has claimed it: the agent retries its report for ten minutes (a control
/// plane down longer than lease and grace), and a backup already under its final name
/// should be recorded, not redone.
pub async fn complete(
    db: &Db,
    agent: &AgentIdentity,
    job_id: &str,
    report: &Completion,
    now: i64,
) -> Result<JobState> {
    let agent_name = format!("agent:{}", agent.agent_id);
    let mut tx = db.begin().await?;
    let done: Result<JobState> = async {
        let row = reported_job(&mut tx, agent, job_id, report).await?;
        // Every change below is guarded by the attempt and state just read: a claim that
        // committed in between (PostgreSQL, read committed) makes the report stale.
        let guard = Guard { job_id, row };
        let kind = super::kind_of(&guard.row.kind, guard.row.drill);
        let (state, action, details) = if kind == JobKind::Drill {
            let state = if report.succeeded {
                guard.succeed(&mut tx, now).await?;
                JobState::Succeeded
            } else {
                record_failure(&mut tx, &guard, report, now).await?.0
            };
            let (action, details) =
                super::drill::record(&mut tx, &guard.row.org_id, job_id, report, now).await?;
            (state, action, details)
        } else if !report.succeeded {
            record_failure(&mut tx, &guard, report, now).await?
        } else if kind == JobKind::Restore {
            guard.succeed(&mut tx, now).await?;
            (
                JobState::Succeeded,
                AuditAction::RestoreSucceeded,
                serde_json::json!({}),
            )
        } else {
            let details = record_backup(&mut tx, &guard, report, now).await?;
            (JobState::Succeeded, AuditAction::JobSucceeded, details)
        };
        record_in(
            &mut tx,
            &agent.org_id,
            &agent_name,
            action,
            job_id,
            details,
            now,
        )
        .await?;
        Ok(state)
    }
    .await;
    end_write(tx, done).await
}

/// The job `report` is about, if it may take a report: this agent's, running, or
/// requeued or failed only by a lapsed lease.
async fn reported_job(
    conn: &mut sqlx::AnyConnection,
    agent: &AgentIdentity,
    job_id: &str,
    report: &Completion,
) -> Result<Reported> {
    // A report that names its attempt must name the job's current one (an older
    // attempt's report is stale); agents before that named none.
    let same_attempt = if report.attempt.is_some() {
        " AND attempt = $7"
    } else {
        ""
    };
    let sql = format!(
        "SELECT org_id, schedule_id, database_id, destination_id, started_at, attempt, \
         max_attempts, kind, drill, state, object_key FROM jobs WHERE id = $1 AND agent_id = $2 AND org_id = $3 \
         AND (state = $4 OR (state IN ($5, $6) AND phase = 'lease expired')){same_attempt}",
    );
    let mut select = sqlx::query_as(&sql)
        .bind(job_id)
        .bind(&agent.agent_id)
        .bind(&agent.org_id)
        .bind(JobState::Running)
        .bind(JobState::Queued)
        .bind(JobState::Failed);
    if let Some(reported) = report.attempt {
        select = select.bind(reported);
    }
    select
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(not_yours)
}

/// A successful backup: the job succeeded and a `backups` row; the audit details.
async fn record_backup(
    conn: &mut sqlx::AnyConnection,
    guard: &Guard<'_>,
    report: &Completion,
    now: i64,
) -> Result<serde_json::Value> {
    let row = &guard.row;
    // The key is the one this attempt was given when claimed: an agent cannot choose
    // what gets recorded (and what retention will later delete).
    let given = row.object_key.as_deref();
    let object_key = report
        .object_key
        .as_deref()
        .ok_or_else(|| Error::invalid("a successful backup reports its object key"))?;
    if given != Some(object_key) {
        return Err(Error::invalid(
            "the reported object key is not the one this job was given",
        ));
    }
    if !is_sha256_hex(&report.sha256) {
        return Err(Error::invalid("sha256 must be 64 hex digits"));
    }
    let globals = report
        .globals
        .as_ref()
        .map(|g| checked_globals(object_key, g))
        .transpose()?;
    let row_counts = report
        .row_counts
        .as_ref()
        .map(checked_row_counts)
        .transpose()?;
    guard.succeed(conn, now).await?;
    let backup_id = new_id("bkp")?;
    sqlx::query(
        "INSERT INTO backups (id, org_id, job_id, schedule_id, database_id, destination_id, \
         object_key, size, sha256, started_at, finished_at, pg_server_version, \
         pg_dump_version, delete_attempts, dump_size, duration_ms, globals_size, \
         globals_sha256, row_counts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $15, $16, $17, \
         $18)",
    )
    .bind(&backup_id)
    .bind(&row.org_id)
    .bind(guard.job_id)
    .bind(&row.schedule_id)
    .bind(&row.database_id)
    .bind(&row.destination_id)
    .bind(object_key)
    .bind(report.size)
    .bind(report.sha256.to_ascii_lowercase())
    .bind(row.started_at.unwrap_or(now))
    .bind(now)
    .bind(
        report
            .pg_server_version
            .chars()
            .take(100)
            .collect::<String>(),
    )
    .bind(report.pg_dump_version.chars().take(100).collect::<String>())
    .bind(report.dump_size.filter(|n| *n >= 0))
    .bind(report.duration_ms.filter(|n| *n >= 0))
    .bind(globals.map(|g| g.size))
    .bind(globals.map(|g| g.sha256.to_ascii_lowercase()))
    .bind(row_counts)
    .execute(&mut *conn)
    .await?;
    let drill = super::drill::after_backup(
        conn,
        &row.org_id,
        row.schedule_id.as_deref(),
        &backup_id,
        &row.destination_id,
        now,
    )
    .await?;
    Ok(serde_json::json!({
        "backup": backup_id, "object_key": object_key, "size": report.size, "sha256": report.sha256,
        "globals": globals.map(|g| serde_json::json!({ "size": g.size, "sha256": g.sha256 })),
        "drill": drill,
    }))
}

/// The reported row counts as stored (JSON), if they are plausible: at most
/// `MAX_TABLES` tables, names of at most 300 bytes, no negative count.
fn checked_row_counts(counts: &dbcrate_core::wire::RowCounts) -> Result<String> {
    const MAX_TABLES: usize = dbcrate_core::wire::MAX_COUNTED_TABLES;
    let plausible =
        counts.len() <= MAX_TABLES && counts.iter().all(|(t, n)| t.len() <= 300 && *n >= 0);
    if !plausible {
        return Err(Error::invalid(format!(
            "row_counts must name at most {MAX_TABLES} tables (names up to 300 bytes) with \
             counts of 0 or more"
        )));
    }
    serde_json::to_string(counts).map_err(|e| Error::internal(e.to_string()))
}

fn is_sha256_hex(text: &str) -> bool {
    text.trim() == text && dbcrate_core::hex::decode_array::<32>(text).is_some()
}

/// The reported globals object, if it is the one that belongs to `object_key` (its key
/// is derived, never chosen by the agent: retention deletes it with the backup).
fn checked_globals<'a>(object_key: &str, globals: &'a StoredObject) -> Result<&'a StoredObject> {
    if globals_key(object_key).as_deref() != Some(globals.object_key.as_str()) {
        return Err(Error::invalid(
            "the reported globals object is not the one that belongs to this backup",
        ));
    }
    if !is_sha256_hex(&globals.sha256) || globals.size <= 0 {
        return Err(Error::invalid(
            "the globals object needs a positive size and a 64-hex-digit sha256",
        ));
    }
    Ok(globals)
}

/// A failed attempt: queued again after a delay while attempts remain, else failed. The
/// state, the audit action and its details.
async fn record_failure(
    conn: &mut sqlx::AnyConnection,
    guard: &Guard<'_>,
    report: &Completion,
    now: i64,
) -> Result<(JobState, AuditAction, serde_json::Value)> {
    let error: String = report
        .error
        .clone()
        .unwrap_or_default()
        .chars()
        .take(2000)
        .collect();
    let attempt = guard.row.attempt;
    let retry = attempt < guard.row.max_attempts;
    let state = if retry {
        JobState::Queued
    } else {
        JobState::Failed
    };
    let retry_at = retry.then(|| now + super::retry_delay(attempt));
    let updated = sqlx::query(
        "UPDATE jobs SET state = $1, finished_at = $2, phase = 'failed', error = $3, \
         lease_until = NULL, retry_at = $4 WHERE id = $5 AND attempt = $6 AND state = $7",
    )
    .bind(state)
    .bind((!retry).then_some(now))
    .bind(&error)
    .bind(retry_at)
    .bind(guard.job_id)
    .bind(attempt)
    .bind(guard.row.state)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(not_yours());
    }
    let details = serde_json::json!({
        "attempt": attempt, "error": error, "retry": retry, "retry_at": retry_at,
    });
    Ok((state, AuditAction::JobFailed, details))
}
