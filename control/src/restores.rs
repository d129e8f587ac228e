//! Managed restores: an operator restores a recorded backup into a target database
//! (reached by the same or another agent).
//!
//! The agent never gets the organisation's private key. When it fetches the job's
//! credentials, the control plane reads only the start of the backup object (a capped
//! ranged read of the age header), unwraps the organisation key (audited, with the
//! restore as the reason), takes this one backup's 16-byte file key out of the header
//! and hands that over with the credentials. The file key is never written to a row or
//! a log.

use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{is_id, Error, Result};
use crate::jobs::{enqueue, Because, NewJob};
use crate::secrets::{self, Owner, SecretRef};
use dbcrate_core::time::rfc3339;
use dbcrate_storage::admin::Destination;
use sqlx::Row;

/// How much of a backup is read to find its age header (headers are a few hundred
/// bytes; a file with more before its payload is refused).
pub const HEADER_READ: u64 = 64 * 1024;
/// The most recipient stanzas a header may have.
pub const MAX_STANZAS: usize = 32;

/// Queues a restore of `backup_id` into `target_database_id`; returns the job id.
pub async fn create(
    db: &Db,
    org_id: &str,
    backup_id: &str,
    target_database_id: &str,
    actor: &str,
    now: i64,
) -> Result<String> {
    if !is_id(backup_id, "bkp") || !is_id(target_database_id, "dbs") {
        return Err(Error::invalid(
            "backup_id and target_database_id must be ids of this organisation's objects",
        ));
    }
    let mut tx = db.begin().await?;
    let made: Result<String> = async {
        let backup = sqlx::query(
            "SELECT destination_id, deleted_at FROM backups WHERE id = $1 AND org_id = $2",
        )
        .bind(backup_id)
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::invalid("no such backup in this organisation"))?;
        if backup.try_get::<Option<i64>, _>(1)?.is_some() {
            return Err(Error::invalid("that backup was deleted by retention"));
        }
        let agent: String =
            sqlx::query_scalar("SELECT agent_id FROM databases WHERE id = $1 AND org_id = $2")
                .bind(target_database_id)
                .bind(org_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::invalid("no such target database in this organisation"))?;
        let destination_id: String = backup.try_get(0)?;
        let job = NewJob {
            org_id,
            kind: "restore",
            schedule_id: None,
            database_id: target_database_id,
            destination_id: &destination_id,
            agent_id: &agent,
            backup_id: Some(backup_id),
            max_attempts: 1,
        };
        let details =
            serde_json::json!({ "backup": backup_id, "target_database": target_database_id });
        let because = Because {
            actor,
            action: "restore.create",
            details: &details,
        };
        enqueue(&mut tx, &job, &because, now).await
    }
    .await;
    end_write(tx, made).await
}

/// Which restore job and backup, in which organisation.
#[derive(Debug, Clone, Copy)]
pub struct RestoreOf<'a> {
    /// The organisation.
    pub org_id: &'a str,
    /// The restore job.
    pub job_id: &'a str,
    /// The backup it restores.
    pub backup_id: &'a str,
}

/// For a restore job's credentials: the backup's object key, size, SHA-256 and the file
/// key (hex), read from the object's header with the organisation key.
pub async fn restore_part(
    db: &Db,
    keys: &MasterKeys,
    of: RestoreOf<'_>,
    destination: &Destination,
    actor: &str,
    now: i64,
) -> Result<serde_json::Value> {
    let RestoreOf {
        org_id,
        job_id,
        backup_id,
    } = of;
    let row = sqlx::query(
        "SELECT object_key, size, sha256, deleted_at FROM backups WHERE id = $1 AND org_id = $2",
    )
    .bind(backup_id)
    .bind(org_id)
    .fetch_one(db.pool())
    .await?;
    if row.try_get::<Option<i64>, _>(3)?.is_some() {
        return Err(Error::invalid(
            "that backup was deleted by retention before the restore started",
        ));
    }
    let key: String = row.try_get(0)?;
    let size: i64 = row.try_get(1)?;
    let sha256: String = row.try_get(2)?;
    let start = destination
        .get_range(&key, 0, HEADER_READ.min(size.max(0) as u64))
        .await
        .map_err(|e| Error::internal(format!("reading the backup's header: {e}")))?;
    let header_end = start
        .windows(4)
        .position(|w| w == b"\n---")
        .ok_or_else(|| {
            Error::invalid(format!(
                "the backup's age header is longer than {HEADER_READ} bytes or damaged"
            ))
        })?;
    let stanzas = start[..header_end]
        .split(|b| *b == b'\n')
        .filter(|l| l.starts_with(b"-> "))
        .count();
    if stanzas > MAX_STANZAS {
        return Err(Error::invalid(format!(
            "the backup's header has {stanzas} stanzas (more than {MAX_STANZAS})"
        )));
    }
    let secret_id: String =
        sqlx::query_scalar("SELECT private_key_secret_id FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_one(db.pool())
            .await?;
    let org_key = secrets::unwrap(
        db,
        keys,
        SecretRef {
            owner: Owner::Org(org_id),
            id: &secret_id,
            purpose: crate::orgs::ORG_KEY_PURPOSE,
        },
        actor,
        &format!("managed restore (job {job_id}, backup {backup_id})"),
        &rfc3339(now),
    )
    .await?;
    let identity: age::x25519::Identity = std::str::from_utf8(&org_key)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| Error::internal("the stored organisation key does not parse"))?;
    let file_key = dbcrate_core::file_key::unwrap_file_key(&start, &identity)
        .map_err(|e| Error::invalid(format!("the backup's header: {e}")))?;
    Ok(serde_json::json!({
        "object_key": key,
        "size": size,
        "sha256": sha256,
        "file_key": dbcrate_core::hex::encode(file_key.expose_secret()),
    }))
}
