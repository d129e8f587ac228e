//! The job queue between the control plane and agents.
//!
//! An agent claims its oldest queued job (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so two
//! replicas never hand out one job twice), holds it under a lease it renews with
//! progress heartbeats, fetches the job's credentials exactly once while the job runs,
//! and reports completion. A job whose lease runs out goes back to the queue until its
//! attempts are used up, then fails. Every step is audited in the organisation's chain;
//! credentials never are, only the fact that they were handed out.

use crate::audit::{self, AuditEvent};
use crate::db::{end_write, Db, Engine};
use crate::envelope::MasterKeys;
use crate::error::{is_id, new_id, Code, Error, Result};
use crate::pki::identity::AgentIdentity;
use crate::secrets::{self, Owner, SecretRef};
use serde::Serialize;
use sqlx::{AnyConnection, Row};

/// How long a claimed job may go without a heartbeat.
pub const LEASE_SECS: i64 = 120;
/// How long after its lease a running job is still waited for before it is taken back:
/// an agent whose report could not get through (the control plane restarting, say)
/// retries it, and a finished backup should not be redone for that.
pub const LEASE_GRACE_SECS: i64 = 300;
/// The purpose recorded with a destination's sealed credentials.
pub const DESTINATION_CREDENTIALS_PURPOSE: &str = "destination-credentials";

fn rfc3339(unix: i64) -> String {
    dbcrate_core::time::UtcDateTime::from_unix(unix).rfc3339()
}

async fn record_in(
    conn: &mut AnyConnection,
    org_id: &str,
    actor: &str,
    action: &str,
    job_id: &str,
    details: serde_json::Value,
    now: i64,
) -> Result<()> {
    audit::append_in(
        conn,
        &AuditEvent {
            org_id,
            actor,
            action,
            target: &format!("job:{job_id}"),
            details: &details.to_string(),
        },
        &rfc3339(now),
    )
    .await?;
    Ok(())
}

/// A job as an agent sees it when it claims it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimedJob {
    /// Its id.
    pub id: String,
    /// `backup` or `restore`.
    pub kind: String,
    /// Which attempt this is, from 1.
    pub attempt: i64,
    /// The database's name (the folder in the destination).
    pub database_name: String,
    /// Where the backup goes, relative to the destination's prefix.
    pub object_key: String,
}

/// Claims the agent's oldest queued job, if any.
pub async fn claim_next(db: &Db, agent: &AgentIdentity, now: i64) -> Result<Option<ClaimedJob>> {
    let lock = match db.engine() {
        Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        Engine::Sqlite => "",
    };
    let mut tx = db.begin().await?;
    let claimed: Result<Option<ClaimedJob>> = async {
        let Some(row) = sqlx::query(&format!(
            "SELECT id, kind, attempt, database_id FROM jobs \
             WHERE agent_id = $1 AND org_id = $2 AND state = 'queued' \
             ORDER BY created_at, id LIMIT 1{lock}"
        ))
        .bind(&agent.agent_id)
        .bind(&agent.org_id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            return Ok(None);
        };
        let id: String = row.try_get(0)?;
        let kind: String = row.try_get(1)?;
        let attempt: i64 = row.try_get::<i64, _>(2)? + 1;
        let database_id: String = row.try_get(3)?;
        let database_name: String = sqlx::query_scalar("SELECT name FROM databases WHERE id = $1")
            .bind(&database_id)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE jobs SET state = 'running', attempt = $1, started_at = $2, lease_until = $3, \
             phase = 'starting', credentials_fetched_at = NULL, error = NULL WHERE id = $4",
        )
        .bind(attempt)
        .bind(now)
        .bind(now + LEASE_SECS)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        let object_key = dbcrate_core::object_key::backup_object_key(
            "",
            &database_name,
            &id,
            dbcrate_core::time::UtcDateTime::from_unix(now),
        )
        .map_err(|e| Error::internal(e.to_string()))?;
        let agent_name = format!("agent:{}", agent.agent_id);
        let details = serde_json::json!({ "attempt": attempt, "object_key": object_key });
        record_in(
            &mut tx,
            &agent.org_id,
            &agent_name,
            "job.start",
            &id,
            details,
            now,
        )
        .await?;
        Ok(Some(ClaimedJob {
            id,
            kind,
            attempt,
            database_name,
            object_key,
        }))
    }
    .await;
    end_write(tx, claimed).await
}

fn not_yours() -> Error {
    Error::not_found("no such running job for this agent")
}

/// The secrets a running job needs, handed out once: the database connection with its
/// password, the destination with its credentials, and the organisation's recipient.
/// A second call is refused.
pub async fn credentials(
    db: &Db,
    keys: &MasterKeys,
    agent: &AgentIdentity,
    job_id: &str,
    now: i64,
) -> Result<serde_json::Value> {
    if !is_id(job_id, "job") {
        return Err(not_yours());
    }
    let agent_name = format!("agent:{}", agent.agent_id);
    // Marked as handed out first, in its own transaction (the unwraps below write their
    // own audit rows, which on SQLite cannot nest inside another writing transaction).
    let mut tx = db.begin().await?;
    let marked: Result<()> = async {
        let marked = sqlx::query(
            "UPDATE jobs SET credentials_fetched_at = $1 WHERE id = $2 AND agent_id = $3 \
             AND org_id = $4 AND state = 'running' AND credentials_fetched_at IS NULL",
        )
        .bind(now)
        .bind(job_id)
        .bind(&agent.agent_id)
        .bind(&agent.org_id)
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() != 1 {
            let fetched: Option<Option<i64>> = sqlx::query_scalar(
                "SELECT credentials_fetched_at FROM jobs WHERE id = $1 AND agent_id = $2 \
                 AND org_id = $3 AND state = 'running'",
            )
            .bind(job_id)
            .bind(&agent.agent_id)
            .bind(&agent.org_id)
            .fetch_optional(&mut *tx)
            .await?;
            return Err(match fetched {
                Some(Some(_)) => Error::new(
                    Code::Conflict,
                    "this job's credentials were handed out already; they are given once",
                ),
                _ => not_yours(),
            });
        }
        record_in(
            &mut tx,
            &agent.org_id,
            &agent_name,
            "job.credentials",
            job_id,
            serde_json::json!({}),
            now,
        )
        .await
    }
    .await;
    end_write(tx, marked).await?;
    let row = sqlx::query(
        "SELECT d.host, d.port, d.dbname, d.username, d.tls_mode, d.password_secret_id, \
         t.kind, t.settings, t.credentials_secret_id, o.recipient, j.kind, j.backup_id \
         FROM jobs j JOIN databases d ON d.id = j.database_id \
         JOIN destinations t ON t.id = j.destination_id JOIN orgs o ON o.id = j.org_id \
         WHERE j.id = $1",
    )
    .bind(job_id)
    .fetch_one(db.pool())
    .await?;
    let stamp = rfc3339(now);
    let reason = format!("credentials of job {job_id}");
    let open = |id: Option<String>, purpose: &'static str| {
        let reason = reason.clone();
        let stamp = stamp.clone();
        let agent_name = agent_name.clone();
        async move {
            match id {
                None => Ok(None),
                Some(id) => {
                    let bytes = secrets::unwrap(
                        db,
                        keys,
                        SecretRef {
                            owner: Owner::Org(&agent.org_id),
                            id: &id,
                            purpose,
                        },
                        &agent_name,
                        &reason,
                        &stamp,
                    )
                    .await?;
                    String::from_utf8(bytes.to_vec())
                        .map(Some)
                        .map_err(|_| Error::internal("a stored credential is not text"))
                }
            }
        }
    };
    let password = open(row.try_get(5)?, crate::databases::PASSWORD_PURPOSE).await?;
    let destination_credentials = open(row.try_get(8)?, DESTINATION_CREDENTIALS_PURPOSE).await?;
    let settings: serde_json::Value = serde_json::from_str(&row.try_get::<String, _>(7)?)
        .map_err(|_| Error::internal("stored destination settings are not JSON"))?;
    let credentials: serde_json::Value = match destination_credentials {
        Some(text) => serde_json::from_str(&text)
            .map_err(|_| Error::internal("stored destination credentials are not JSON"))?,
        None => serde_json::Value::Null,
    };
    let restore = if row.try_get::<String, _>(10)? == "restore" {
        let backup_id: String = row
            .try_get::<Option<String>, _>(11)?
            .ok_or_else(|| Error::internal("a restore job without its backup"))?;
        let (location, options) = crate::destinations::open(
            &row.try_get::<String, _>(6)?,
            &settings,
            Some(&credentials).filter(|c| !c.is_null()),
        )?;
        let destination = dbcrate_storage::admin::Destination::connect(&location, &options)
            .await
            .map_err(|e| Error::internal(format!("reaching the destination: {e}")))?;
        let part = crate::restores::restore_part(
            db,
            keys,
            crate::restores::RestoreOf {
                org_id: &agent.org_id,
                job_id,
                backup_id: &backup_id,
            },
            &destination,
            &agent_name,
            now,
        )
        .await;
        destination.close().await;
        Some(part?)
    } else {
        None
    };
    Ok(serde_json::json!({
        "restore": restore,
        "database": {
            "host": row.try_get::<String, _>(0)?,
            "port": row.try_get::<i64, _>(1)?,
            "dbname": row.try_get::<String, _>(2)?,
            "username": row.try_get::<String, _>(3)?,
            "tls_mode": row.try_get::<String, _>(4)?,
            "password": password,
        },
        "destination": {
            "kind": row.try_get::<String, _>(6)?,
            "settings": settings,
            "credentials": credentials,
        },
        "recipients": [row.try_get::<String, _>(9)?],
    }))
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
         WHERE id = $4 AND agent_id = $5 AND org_id = $6 AND state = 'running'",
    )
    .bind(bytes.max(0))
    .bind(phase.chars().take(40).collect::<String>())
    .bind(now + LEASE_SECS)
    .bind(job_id)
    .bind(&agent.agent_id)
    .bind(&agent.org_id)
    .execute(db.pool())
    .await?;
    if updated.rows_affected() != 1 {
        return Err(not_yours());
    }
    Ok(())
}

/// What an agent reports at the end of a backup job.
#[derive(Debug, Clone)]
pub struct Completion {
    /// Whether the backup is complete under its final name.
    pub succeeded: bool,
    /// The object key (relative to the destination prefix) when it succeeded.
    pub object_key: Option<String>,
    /// Ciphertext size.
    pub size: i64,
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
             FROM jobs WHERE id = $1 AND agent_id = $2 AND org_id = $3 AND state = 'running'",
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
                 pg_dump_version, delete_attempts) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0)",
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
            sqlx::query(
                "UPDATE jobs SET state = $1, finished_at = $2, phase = 'failed', error = $3, \
                 lease_until = NULL WHERE id = $4",
            )
            .bind(state)
            .bind((!retry).then_some(now))
            .bind(&error)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
            let details = serde_json::json!({ "attempt": attempt, "error": error, "retry": retry });
            record_in(&mut tx, &agent.org_id, &agent_name, "job.failed", job_id, details, now).await?;
            Ok(state.to_string())
        }
    }
    .await;
    end_write(tx, done).await
}

/// Jobs whose agent stopped heartbeating (lease and grace both over): back to the
/// queue while attempts remain, else failed. Returns how many were touched.
pub async fn expire_leases(db: &Db, now: i64) -> Result<usize> {
    let expired = sqlx::query(
        "SELECT id, org_id, attempt, max_attempts FROM jobs WHERE state = 'running' AND lease_until < $1",
    )
    .bind(now - LEASE_GRACE_SECS)
    .fetch_all(db.pool())
    .await?;
    let mut touched = 0;
    for row in expired {
        let id: String = row.try_get(0)?;
        let org_id: String = row.try_get(1)?;
        let retry = row.try_get::<i64, _>(2)? < row.try_get::<i64, _>(3)?;
        let mut tx = db.begin().await?;
        let done: Result<u64> = async {
            let updated = sqlx::query(
                "UPDATE jobs SET state = $1, finished_at = $2, phase = 'lease expired', \
                 error = 'the agent stopped reporting progress', lease_until = NULL \
                 WHERE id = $3 AND state = 'running' AND lease_until < $4",
            )
            .bind(if retry { "queued" } else { "failed" })
            .bind((!retry).then_some(now))
            .bind(&id)
            .bind(now - LEASE_GRACE_SECS)
            .execute(&mut *tx)
            .await?;
            if updated.rows_affected() == 1 {
                let details = serde_json::json!({ "retry": retry });
                record_in(
                    &mut tx,
                    &org_id,
                    "system:scheduler",
                    "job.lease_expired",
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
