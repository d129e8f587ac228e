//! A running job's credentials, handed out once to the agent it is assigned to.

use super::destinations::{self, StoredDestination, Unwrapping};
use super::jobs::{not_yours, record_in, JobState};
use crate::audit::AuditAction;
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{is_id, Code, Error, Result};
use crate::pki::identity::AgentIdentity;
use dbcrate_core::secret::SecretString;
use dbcrate_core::time::rfc3339;
use dbcrate_core::wire::{
    DatabaseConnection, Destination, DestinationCredentials, JobCredentials, JobKind, RestorePart,
};
use dbcrate_storage::reach::ReachPolicy;
use std::sync::Arc;

/// What a job's credentials are made of, besides its destination: the database to
/// connect to, the organisation's recipient, and for a restore the backup.
struct JobTarget {
    host: String,
    port: i64,
    dbname: String,
    username: String,
    tls_mode: String,
    password_secret_id: Option<String>,
    recipient: String,
    job_kind: String,
    drill: i64,
    backup_id: Option<String>,
}

crate::rows::from_row!(JobTarget {
    host,
    port,
    dbname,
    username,
    tls_mode,
    password_secret_id,
    recipient,
    job_kind,
    drill,
    backup_id,
});

/// The secrets a running job needs, handed out once: the database connection with its
/// password, the destination with its credentials, and the organisation's recipient.
/// A second call is refused. Every secret is in a zeroizing type from the moment it is
/// unwrapped until the answer is serialised.
pub async fn credentials(
    db: &Db,
    keys: &MasterKeys,
    reach: &Arc<ReachPolicy>,
    agent: &AgentIdentity,
    job_id: &str,
    now: i64,
) -> Result<JobCredentials> {
    if !is_id(job_id, "job") {
        return Err(not_yours());
    }
    let agent_name = format!("agent:{}", agent.agent_id);
    mark_handed_out(db, agent, &agent_name, job_id, now).await?;
    let (target, stored) = load(db, job_id).await?;
    let reason = format!("credentials of job {job_id}");
    // Each secret is unwrapped (audited) into wiped memory and parsed straight into its
    // wire type.
    let by = Unwrapping {
        org_id: &agent.org_id,
        actor: &agent_name,
        reason: &reason,
        at: &rfc3339(now),
    };
    let password = unwrap_password(db, keys, target.password_secret_id.as_deref(), &by).await?;
    let credentials =
        destinations::unwrap_credentials(db, keys, stored.credentials_secret_id.as_deref(), &by)
            .await?;
    let settings = stored.settings_json()?;
    let kind = super::jobs::kind_of(&target.job_kind, target.drill);
    let restore = if matches!(kind, JobKind::Restore | JobKind::Drill) {
        let backup_id = target
            .backup_id
            .as_deref()
            .ok_or_else(|| Error::internal("a restore or drill job without its backup"))?;
        let of = crate::backups::restores::RestoreOf {
            org_id: &agent.org_id,
            job_id,
            backup_id,
        };
        let to = (stored.kind.as_str(), &settings, credentials.as_ref());
        Some(restore_part(db, keys, reach, of, to, &agent_name, now).await?)
    } else {
        None
    };
    let drill = match (kind, target.backup_id.as_deref()) {
        (JobKind::Drill, Some(backup_id)) => Some(super::drills::part(db, backup_id).await?),
        _ => None,
    };
    Ok(JobCredentials {
        restore,
        drill,
        database: DatabaseConnection {
            host: target.host,
            port: u16::try_from(target.port)
                .map_err(|_| Error::internal("a stored port is not a port"))?,
            dbname: target.dbname,
            username: target.username,
            tls_mode: target.tls_mode,
            password,
        },
        destination: Destination {
            kind: stored.kind,
            settings,
            credentials,
        },
        recipients: vec![target.recipient],
    })
}

/// Marks the job's credentials as handed out (audited), in a transaction of its own
/// (the unwraps that follow write their own audit rows, which on SQLite cannot nest
/// inside another writing transaction). Refused when they were handed out already, or
/// the job is not this agent's running job.
async fn mark_handed_out(
    db: &Db,
    agent: &AgentIdentity,
    agent_name: &str,
    job_id: &str,
    now: i64,
) -> Result<()> {
    let mut tx = db.begin().await?;
    let marked: Result<()> = async {
        let marked = sqlx::query(
            "UPDATE jobs SET credentials_fetched_at = $1 WHERE id = $2 AND agent_id = $3 \
             AND org_id = $4 AND state = $5 AND credentials_fetched_at IS NULL",
        )
        .bind(now)
        .bind(job_id)
        .bind(&agent.agent_id)
        .bind(&agent.org_id)
        .bind(JobState::Running)
        .execute(&mut *tx)
        .await?;
        if marked.rows_affected() != 1 {
            let fetched: Option<Option<i64>> = sqlx::query_scalar(
                "SELECT credentials_fetched_at FROM jobs WHERE id = $1 AND agent_id = $2 \
                 AND org_id = $3 AND state = $4",
            )
            .bind(job_id)
            .bind(&agent.agent_id)
            .bind(&agent.org_id)
            .bind(JobState::Running)
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
            agent_name,
            AuditAction::JobCredentials,
            job_id,
            serde_json::json!({}),
            now,
        )
        .await
    }
    .await;
    end_write(tx, marked).await
}

/// The job's database and destination (the job's kind is `job_kind`: the
/// destination's is `kind`).
async fn load(db: &Db, job_id: &str) -> Result<(JobTarget, StoredDestination)> {
    let sql = "SELECT d.host, d.port, d.dbname, d.username, d.tls_mode, d.password_secret_id, \
               t.kind, t.settings, t.credentials_secret_id, o.recipient, j.kind AS job_kind, \
               j.drill, j.backup_id FROM jobs j JOIN databases d ON d.id = j.database_id \
               JOIN destinations t ON t.id = j.destination_id JOIN orgs o ON o.id = j.org_id \
               WHERE j.id = $1";
    StoredDestination::fetch_with(db, sql, job_id).await
}

/// The database's password (none when `secret_id` is), unwrapped (audited).
async fn unwrap_password(
    db: &Db,
    keys: &MasterKeys,
    secret_id: Option<&str>,
    by: &Unwrapping<'_>,
) -> Result<Option<SecretString>> {
    let Some(secret_id) = secret_id else {
        return Ok(None);
    };
    let purpose = crate::backups::databases::PASSWORD_PURPOSE;
    let bytes = by.unwrap_secret(db, keys, secret_id, purpose).await?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::internal("a stored credential is not text"))?;
    Ok(Some(SecretString::new(text.to_owned())))
}

/// A restore job's part: the destination reached with the credentials already
/// unwrapped (`to`: kind, settings, credentials), the backup's header read there.
async fn restore_part(
    db: &Db,
    keys: &MasterKeys,
    reach: &Arc<ReachPolicy>,
    of: crate::backups::restores::RestoreOf<'_>,
    to: (&str, &serde_json::Value, Option<&DestinationCredentials>),
    agent_name: &str,
    now: i64,
) -> Result<RestorePart> {
    let (kind, settings, credentials) = to;
    let destination = destinations::connect_with(reach, kind, settings, credentials)
        .await?
        .map_err(|e| Error::internal(format!("reaching the destination: {e}")))?;
    let part =
        crate::backups::restores::restore_part(db, keys, of, &destination, agent_name, now).await;
    destination.close().await;
    part
}
