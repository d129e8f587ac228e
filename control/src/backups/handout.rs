//! A running job's credentials, handed out once to the agent it is assigned to.

use super::destinations::DESTINATION_CREDENTIALS_PURPOSE;
use super::jobs::{not_yours, record_in};
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{is_id, Code, Error, Result};
use crate::pki::identity::AgentIdentity;
use crate::secrets::{self, Owner, SecretRef};
use dbcrate_core::secret::{SecretJson, SecretString};
use dbcrate_core::time::rfc3339;
use dbcrate_core::wire::{DatabaseConnection, Destination, DestinationCredentials, JobCredentials};
use sqlx::Row;

/// The secrets a running job needs, handed out once: the database connection with its
/// password, the destination with its credentials, and the organisation's recipient.
/// A second call is refused. Every secret is in a zeroizing type from the moment it is
/// unwrapped until the answer is serialised.
pub async fn credentials(
    db: &Db,
    keys: &MasterKeys,
    reach: &std::sync::Arc<dbcrate_storage::reach::ReachPolicy>,
    agent: &AgentIdentity,
    job_id: &str,
    now: i64,
) -> Result<JobCredentials> {
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
    // Each secret is unwrapped (audited) into wiped memory and parsed straight into its
    // wire type.
    let open = |id: Option<String>, purpose: &'static str| {
        let reason = reason.clone();
        let stamp = stamp.clone();
        let agent_name = agent_name.clone();
        async move {
            match id {
                None => Ok(None),
                Some(id) => secrets::unwrap(
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
                .await
                .map(Some),
            }
        }
    };
    let password = match open(row.try_get(5)?, crate::backups::databases::PASSWORD_PURPOSE).await? {
        None => None,
        Some(bytes) => Some(SecretString::new(
            std::str::from_utf8(&bytes)
                .map_err(|_| Error::internal("a stored credential is not text"))?
                .to_owned(),
        )),
    };
    let credentials: Option<DestinationCredentials> =
        match open(row.try_get(8)?, DESTINATION_CREDENTIALS_PURPOSE).await? {
            None => None,
            Some(bytes) => Some(serde_json::from_slice(&bytes).map_err(|_| {
                Error::internal("stored destination credentials are not JSON of their shape")
            })?),
        };
    let kind: String = row.try_get(6)?;
    let settings: serde_json::Value = serde_json::from_str(&row.try_get::<String, _>(7)?)
        .map_err(|_| Error::internal("stored destination settings are not JSON"))?;
    let restore = if row.try_get::<String, _>(10)? == "restore" {
        let backup_id: String = row
            .try_get::<Option<String>, _>(11)?
            .ok_or_else(|| Error::internal("a restore job without its backup"))?;
        let secret_json = credentials
            .as_ref()
            .map(DestinationCredentials::to_secret_json);
        let (location, options) = crate::backups::destinations::open(
            reach,
            &kind,
            &settings,
            secret_json.as_ref().map(SecretJson::expose_secret),
        )?;
        drop(secret_json);
        let destination = dbcrate_storage::admin::Destination::connect(&location, &options)
            .await
            .map_err(|e| Error::internal(format!("reaching the destination: {e}")))?;
        let part = crate::backups::restores::restore_part(
            db,
            keys,
            crate::backups::restores::RestoreOf {
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
    Ok(JobCredentials {
        restore,
        database: DatabaseConnection {
            host: row.try_get(0)?,
            port: u16::try_from(row.try_get::<i64, _>(1)?)
                .map_err(|_| Error::internal("a stored port is not a port"))?,
            dbname: row.try_get(2)?,
            username: row.try_get(3)?,
            tls_mode: row.try_get(4)?,
            password,
        },
        destination: Destination {
            kind,
            settings,
            credentials,
        },
        recipients: vec![row.try_get::<String, _>(9)?],
    })
}
