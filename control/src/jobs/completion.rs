//! The end of a job: a successful backup recorded, a successful restore noted, a failure
//! queued again (after [`super::retry_delay`]) while attempts remain.

use super::{not_yours, record_in};
use crate::db::{end_write, Db};
use crate::error::{new_id, Error, Result};
use crate::pki::identity::AgentIdentity;
use sqlx::Row;

/// What an agent reports at the end of a backup job.
#[derive(Debug, Clone)]
pub struct Completion {
    /// Whether the backup is complete under its final name.
    pub succeeded: bool,
    /// The object key (relative to the destination prefix) when it succeeded.
    pub object_key: Option<String>,
    /// Ciphertext size.
    pub size: i64,
    /// The dump's size before compression and encryption, when reported.
    pub dump_size: Option<i64>,
    /// How long the backup took on the agent, when reported.
    pub duration_ms: Option<i64>,
    /// Ciphertext SHA-256 (hex).
    pub sha256: String,
    /// The server's version.
    pub pg_server_version: String,
    /// pg_dump's version.
    pub pg_dump_version: String,
    /// What went wrong, when it failed (no secret in it).
    pub error: Option<String>,
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
) -> Result<String> {
    let agent_name = format!("agent:{}", agent.agent_id);
    let mut tx = db.begin().await?;
    let done: Result<String> = async {
        let row = sqlx::query(
            "SELECT org_id, schedule_id, database_id, destination_id, started_at, attempt, max_attempts, kind \
             FROM jobs WHERE id = $1 AND agent_id = $2 AND org_id = $3 \
             AND (state = 'running' OR (state IN ('queued', 'failed') AND phase = 'lease expired'))",
        )
        .bind(job_id)
        .bind(&agent.agent_id)
        .bind(&agent.org_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(not_yours)?;
        let attempt: i64 = row.try_get(5)?;
        let max_attempts: i64 = row.try_get(6)?;
        let kind: String = row.try_get(7)?;
        if report.succeeded && kind == "restore" {
            sqlx::query("UPDATE jobs SET state = 'succeeded', finished_at = $1, phase = 'done' WHERE id = $2")
                .bind(now)
                .bind(job_id)
                .execute(&mut *tx)
                .await?;
            let details = serde_json::json!({});
            record_in(&mut tx, &agent.org_id, &agent_name, "restore.succeeded", job_id, details, now).await?;
            return Ok("succeeded".to_string());
        }
        if report.succeeded {
            let object_key = report
                .object_key
                .as_deref()
                .filter(|k| !k.is_empty() && k.len() <= 1024)
                .ok_or_else(|| Error::invalid("a successful backup reports its object key"))?;
            if report.sha256.len() != 64 || !report.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::invalid("sha256 must be 64 hex digits"));
            }
            sqlx::query("UPDATE jobs SET state = 'succeeded', finished_at = $1, phase = 'done' WHERE id = $2")
                .bind(now)
                .bind(job_id)
                .execute(&mut *tx)
                .await?;
            let backup_id = new_id("bkp")?;
            sqlx::query(
                "INSERT INTO backups (id, org_id, job_id, schedule_id, database_id, destination_id, \
                 object_key, size, sha256, started_at, finished_at, pg_server_version, \
                 pg_dump_version, delete_attempts, dump_size, duration_ms) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $15)",
            )
            .bind(&backup_id)
            .bind(row.try_get::<String, _>(0)?)
            .bind(job_id)
            .bind(row.try_get::<Option<String>, _>(1)?)
            .bind(row.try_get::<String, _>(2)?)
            .bind(row.try_get::<String, _>(3)?)
            .bind(object_key)
            .bind(report.size)
            .bind(report.sha256.to_ascii_lowercase())
            .bind(row.try_get::<Option<i64>, _>(4)?.unwrap_or(now))
            .bind(now)
            .bind(report.pg_server_version.chars().take(100).collect::<String>())
            .bind(report.pg_dump_version.chars().take(100).collect::<String>())
            .bind(report.dump_size.filter(|n| *n >= 0))
            .bind(report.duration_ms.filter(|n| *n >= 0))
            .execute(&mut *tx)
            .await?;
            let details = serde_json::json!({
                "backup": backup_id, "object_key": object_key, "size": report.size, "sha256": report.sha256,
            });
            record_in(&mut tx, &agent.org_id, &agent_name, "job.succeeded", job_id, details, now).await?;
            Ok("succeeded".to_string())
        } else {
            let error: String = report.error.clone().unwrap_or_default().chars().take(2000).collect();
            let retry = attempt < max_attempts;
            let state = if retry { "queued" } else { "failed" };
            let retry_at = retry.then(|| now + super::retry_delay(attempt));
            sqlx::query(
                "UPDATE jobs SET state = $1, finished_at = $2, phase = 'failed', error = $3, \
                 lease_until = NULL, retry_at = $4 WHERE id = $5",
            )
            .bind(state)
            .bind((!retry).then_some(now))
            .bind(&error)
            .bind(retry_at)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
            let details = serde_json::json!({
                "attempt": attempt, "error": error, "retry": retry, "retry_at": retry_at,
            });
            record_in(&mut tx, &agent.org_id, &agent_name, "job.failed", job_id, details, now).await?;
            Ok(state.to_string())
        }
    }
    .await;
    end_write(tx, done).await
}
