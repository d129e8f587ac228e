//! The job queue between the control plane and agents.
//!
//! An agent claims its oldest queued job (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two
//! replicas never hand out one job twice), holds it under a lease it renews with
//! progress heartbeats, fetches the job's credentials exactly once while the job runs,
//! and reports completion. A job whose lease runs out goes back to the queue until its
//! attempts are used up, then fails. Every step is audited in the organisation's chain;
//! credentials never are, only the fact that they were handed out.

pub mod abandoned;
mod completion;
pub(crate) mod drill;
mod enqueue;
mod state;
pub mod wakeups;

pub use completion::complete;
pub use dbcrate_core::wire::{Completion, Job as ClaimedJob};
pub use enqueue::{enqueue, kind_of, Because, NewJob};
pub use state::JobState;

use crate::audit::{self, AuditAction};
use crate::db::{end_write, Db, Engine};
use crate::error::{Error, Result};
use crate::pki::identity::AgentIdentity;
use sqlx::AnyConnection;

/// How long a claimed job may go without a heartbeat.
pub const LEASE_SECS: i64 = 120;
/// How long after its lease a running job is still waited for before it is taken back:
/// an agent whose report could not get through (the control plane restarting, say)
/// retries it, and a finished backup should not be redone for that.
pub const LEASE_GRACE_SECS: i64 = 300;

/// How long a job that failed its `attempt` (from 1) waits before the next: one minute,
/// then four, then sixteen, at most an hour. Storage or a database that is briefly away
/// (a restart, maintenance) should not use up every attempt within seconds.
pub fn retry_delay(attempt: i64) -> i64 {
    let exponent = u32::try_from(attempt.clamp(1, 4) - 1).unwrap_or(0);
    (60 * 4_i64.pow(exponent)).min(3600)
}
pub(crate) async fn record_in(
    conn: &mut AnyConnection,
    org_id: &str,
    actor: &str,
    action: AuditAction,
    job_id: &str,
    details: serde_json::Value,
    now: i64,
) -> Result<()> {
    let target = format!("job:{job_id}");
    audit::record_in(conn, org_id, actor, action, &target, details, now).await
}

/// A queued job as an agent's claim finds it (`attempt`: the attempts made so far).
struct Queued {
    id: String,
    kind: String,
    drill: i64,
    attempt: i64,
    database_id: String,
}

crate::rows::from_row!(Queued {
    id,
    kind,
    drill,
    attempt,
    database_id
});

/// A running job whose lease and grace ran out.
struct Lapsed {
    id: String,
    org_id: String,
    attempt: i64,
    max_attempts: i64,
    kind: String,
    destination_id: String,
    object_key: Option<String>,
}

crate::rows::from_row!(Lapsed {
    id,
    org_id,
    attempt,
    max_attempts,
    kind,
    destination_id,
    object_key
});

/// What a row-taking select ends with so that two replicas never take one row: PostgreSQL
/// skips rows another transaction holds; SQLite's writing transactions take turns anyway.
pub(crate) fn skip_locked(db: &Db) -> &'static str {
    match db.engine() {
        Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        Engine::Sqlite => "",
    }
}

/// An agent's claimable jobs ($1 agent, $2 organisation, $3 the queued state, $4 now):
/// queued, and any retry time come.
const CLAIMABLE: &str = "agent_id = $1 AND org_id = $2 AND state = $3 \
     AND (retry_at IS NULL OR retry_at <= $4)";

/// Whether the agent has a claimable job: a plain read, so that looking (the common
/// case: nothing there) never takes SQLite's write lock or a PostgreSQL row lock.
async fn has_claimable(db: &Db, agent: &AgentIdentity, now: i64) -> Result<bool> {
    let found: Option<String> =
        sqlx::query_scalar(&format!("SELECT id FROM jobs WHERE {CLAIMABLE} LIMIT 1"))
            .bind(&agent.agent_id)
            .bind(&agent.org_id)
            .bind(JobState::Queued)
            .bind(now)
            .fetch_optional(db.pool())
            .await?;
    Ok(found.is_some())
}

/// Claims the agent's oldest queued job, if any.
pub async fn claim_next(db: &Db, agent: &AgentIdentity, now: i64) -> Result<Option<ClaimedJob>> {
    if !has_claimable(db, agent, now).await? {
        return Ok(None);
    }
    let lock = skip_locked(db);
    let mut tx = db.begin().await?;
    let claimed: Result<Option<ClaimedJob>> = async {
        let Some(queued) = sqlx::query_as::<_, Queued>(&format!(
            "SELECT id, kind, drill, attempt, database_id FROM jobs WHERE {CLAIMABLE} \
             ORDER BY created_at, id LIMIT 1{lock}"
        ))
        .bind(&agent.agent_id)
        .bind(&agent.org_id)
        .bind(JobState::Queued)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let Queued {
            id,
            kind,
            drill,
            attempt,
            database_id,
        } = queued;
        let attempt = attempt + 1;
        let database_name: String = sqlx::query_scalar("SELECT name FROM databases WHERE id = $1")
            .bind(&database_id)
            .fetch_one(&mut *tx)
            .await?;
        let object_key = dbcrate_core::object_key::backup_object_key(
            "",
            &database_name,
            &id,
            dbcrate_core::time::UtcDateTime::from_unix(now),
        )
        .map_err(|e| Error::internal(e.to_string()))?;
        sqlx::query(
            "UPDATE jobs SET state = $1, attempt = $2, started_at = $3, lease_until = $4, \
             phase = 'starting', credentials_fetched_at = NULL, error = NULL, retry_at = NULL, \
             object_key = $5 WHERE id = $6",
        )
        .bind(JobState::Running)
        .bind(attempt)
        .bind(now)
        .bind(now + LEASE_SECS)
        .bind(&object_key)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        let count_rows = drill::counts_rows(&mut tx, &id).await?;
        let agent_name = format!("agent:{}", agent.agent_id);
        let details = serde_json::json!({ "attempt": attempt, "object_key": object_key });
        record_in(
            &mut tx,
            &agent.org_id,
            &agent_name,
            AuditAction::JobStart,
            &id,
            details,
            now,
        )
        .await?;
        Ok(Some(ClaimedJob {
            id,
            kind: kind_of(&kind, drill),
            attempt,
            database_name,
            object_key,
            count_rows,
        }))
    }
    .await;
    end_write(tx, claimed).await
}

pub(crate) fn not_yours() -> Error {
    Error::not_found("no such running job for this agent")
}

/// A heartbeat: bytes so far and the phase; renews the lease.
pub async fn heartbeat(
    db: &Db,
    agent: &AgentIdentity,
    job_id: &str,
    bytes: i64,
    phase: &str,
    now: i64,
) -> Result<()> {
    let updated = sqlx::query(
        "UPDATE jobs SET progress_bytes = $1, phase = $2, lease_until = $3 \
         WHERE id = $4 AND agent_id = $5 AND org_id = $6 AND state = $7",
    )
    .bind(bytes.max(0))
    .bind(phase.chars().take(40).collect::<String>())
    .bind(now + LEASE_SECS)
    .bind(job_id)
    .bind(&agent.agent_id)
    .bind(&agent.org_id)
    .bind(JobState::Running)
    .execute(db.pool())
    .await?;
    if updated.rows_affected() != 1 {
        return Err(not_yours());
    }
    Ok(())
}

/// Jobs whose agent stopped heartbeating (lease and grace both over): back to the
/// queue while attempts remain, else failed. Returns how many were touched.
pub async fn expire_leases(db: &Db, now: i64) -> Result<usize> {
    let expired: Vec<Lapsed> = sqlx::query_as(
        "SELECT id, org_id, attempt, max_attempts, kind, destination_id, object_key \
         FROM jobs WHERE state = $1 AND lease_until < $2",
    )
    .bind(JobState::Running)
    .bind(now - LEASE_GRACE_SECS)
    .fetch_all(db.pool())
    .await?;
    let mut touched = 0;
    for Lapsed {
        id,
        org_id,
        attempt,
        max_attempts,
        kind,
        destination_id,
        object_key,
    } in expired
    {
        let retry = attempt < max_attempts;
        let mut tx = db.begin().await?;
        let done: Result<u64> = async {
            let updated = sqlx::query(
                "UPDATE jobs SET state = $1, finished_at = $2, phase = 'lease expired', \
                 error = 'the agent stopped reporting progress', lease_until = NULL \
                 WHERE id = $3 AND state = $4 AND lease_until < $5",
            )
            .bind(if retry {
                JobState::Queued
            } else {
                JobState::Failed
            })
            .bind((!retry).then_some(now))
            .bind(&id)
            .bind(JobState::Running)
            .bind(now - LEASE_GRACE_SECS)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 1 {
                // A backup attempt may have stored its object and died before reporting.
                if let (Some(object_key), "backup") = (&object_key, kind.as_str()) {
                    let lapsed = abandoned::LapsedAttempt {
                        job_id: &id,
                        attempt,
                        org_id: &org_id,
                        destination_id: &destination_id,
                        object_key,
                    };
                    abandoned::remember(&mut tx, &lapsed, now).await?;
                }
                let details = serde_json::json!({ "retry": retry });
                record_in(
                    &mut tx,
                    &org_id,
                    "system:scheduler",
                    AuditAction::JobLeaseExpired,
                    &id,
                    details,
                    now,
                )
                .await?;
            }
            Ok(updated.rows_affected())
        }
        .await;
        touched += end_write(tx, done).await? as usize;
    }
    Ok(touched)
}

#[cfg(test)]
mod tests {
    use super::retry_delay;

    #[test]
    fn retries_wait_longer_each_time_up_to_an_hour() {
        let waits: Vec<i64> = (1..=6).map(retry_delay).collect();
        assert_eq!(waits, [60, 240, 960, 3600, 3600, 3600]);
        assert_eq!(retry_delay(0), 60);
    }
}
