//! Putting a job in the queue: the scheduler's fires, "run now" and managed restores all
//! come through here, inside the caller's transaction, with their audit row.

use super::state::JobState;
use crate::audit::{self, AuditAction};
use crate::error::{new_id, Result};
use dbcrate_core::wire::JobKind;
use sqlx::AnyConnection;

/// A job to queue.
#[derive(Debug, Clone, Copy)]
pub struct NewJob<'a> {
    /// The organisation.
    pub org_id: &'a str,
    /// What the job does.
    pub kind: dbcrate_core::wire::JobKind,
    /// The schedule a backup job comes from, if any.
    pub schedule_id: Option<&'a str>,
    /// The database backed up, or restored into.
    pub database_id: &'a str,
    /// Where the backup goes, or comes from.
    pub destination_id: &'a str,
    /// The agent that runs it (the database's).
    pub agent_id: &'a str,
    /// The backup a restore job restores.
    pub backup_id: Option<&'a str>,
    /// Attempts in all.
    pub max_attempts: i64,
}

/// Why a job was queued, for its audit row.
#[derive(Debug, Clone, Copy)]
pub struct Because<'a> {
    /// Who asked (`system:scheduler`, `user:…`).
    pub actor: &'a str,
    /// The audit action (`job.create`, `restore.create`).
    pub action: AuditAction,
    /// The audit details.
    pub details: &'a serde_json::Value,
}

/// Inserts `job` as queued and audits it, in the caller's transaction; returns its id.
pub async fn enqueue(
    conn: &mut AnyConnection,
    job: &NewJob<'_>,
    because: &Because<'_>,
    now: i64,
) -> Result<String> {
    let id = new_id("job")?;
    sqlx::query(
        "INSERT INTO jobs (id, org_id, kind, schedule_id, database_id, destination_id, agent_id, \
         backup_id, state, attempt, max_attempts, created_at, progress_bytes, phase, drill) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, 0, 'queued', $12)",
    )
    .bind(&id)
    .bind(job.org_id)
    .bind(stored_kind(job.kind))
    .bind(job.schedule_id)
    .bind(job.database_id)
    .bind(job.destination_id)
    .bind(job.agent_id)
    .bind(job.backup_id)
    .bind(JobState::Queued)
    .bind(job.max_attempts)
    .bind(now)
    .bind(i64::from(job.kind == JobKind::Drill))
    .execute(&mut *conn)
    .await?;
    let target = format!("job:{id}");
    let (actor, action, details) = (because.actor, because.action, because.details.clone());
    audit::record_in(conn, job.org_id, actor, action, &target, details, now).await?;
    Ok(id)
}

/// The kind as the `kind` column holds it: a drill is a restore (with `drill = 1`).
fn stored_kind(kind: JobKind) -> &'static str {
    match kind {
        JobKind::Drill => JobKind::Restore.as_str(),
        other => other.as_str(),
    }
}

/// The kind of a stored job: its `kind` column and its `drill` flag.
pub fn kind_of(kind: &str, drill: i64) -> JobKind {
    match JobKind::from_name(kind) {
        JobKind::Restore if drill != 0 => JobKind::Drill,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use dbcrate_core::wire::JobKind;

    /// The kinds the control plane stores are the wire's, spelt as the schema allows.
    #[test]
    fn the_schema_allows_exactly_the_wire_job_kinds() {
        let schema = include_str!("../../../migrations/common/0009_jobs.sql");
        let kinds = [JobKind::Backup, JobKind::Restore];
        let listed: Vec<String> = kinds.iter().map(|k| format!("'{}'", k.as_str())).collect();
        let check = format!("CHECK (kind IN ({}))", listed.join(", "));
        assert!(schema.contains(&check), "{check} not in the schema");
        for kind in kinds {
            assert_eq!(JobKind::from_name(kind.as_str()), kind);
        }
    }
}
