//! Managed restores: an operator restores a recorded backup into a target database
//! (reached by the same or another agent).
//!
//! The agent never gets the organisation's private key. When it fetches the job's
//! credentials, the control plane reads only the start of the backup object (a capped
//! ranged read of the age header), unwraps the organisation key (audited, with the
//! restore as the reason), takes this one backup's 16-byte file key out of the header
//! and hands that over with the credentials. The file key is never written to a row or
//! a log.
//!
//! An organisation whose key is customer-sealed ([`crate::secrets::customer_seal`]) has no key
//! the control plane can open alone: its restores are queued with the passphrase
//! ([`create_with_passphrase`]), which opens the key there and then to take the file key
//! out of the backup's header. Only that file key (envelope-encrypted, table
//! `restore_file_keys`) is kept until the agent fetches the job's credentials, when it
//! is handed over and deleted. Unattended (scheduled) restores are not possible in that
//! mode.

use crate::audit::AuditAction;
use crate::backups::destinations::{self, StoredDestination, Unwrapping};
use crate::backups::jobs::{enqueue, Because, NewJob};
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{is_id, Error, Result};
use crate::orgs::{self, KeyMode};
use crate::secrets::customer_seal::Passphrase;
use crate::secrets::{self, Owner};
use dbcrate_core::secret::SecretBytes;
use dbcrate_core::time::rfc3339;
use dbcrate_core::wire::{GlobalsPart, RestorePart};
use dbcrate_storage::admin::Destination;
use sqlx::{FromRow, Row};

/// How much of a backup is read to find its age header (headers are a few hundred
/// bytes; a file with more before its payload is refused).
pub const HEADER_READ: u64 = 64 * 1024;
/// The most recipient stanzas a header may have.
pub const MAX_STANZAS: usize = 32;
/// The purpose of a queued restore's file key (customer-sealed organisations only).
pub const FILE_KEY_PURPOSE: &str = "restore-file-key";

/// Queues a restore of `backup_id` into `target_database_id`; returns the job id. A
/// customer-sealed organisation's restore needs its passphrase
/// ([`create_with_passphrase`]); here it is refused with `customer_passphrase_required`.
pub async fn create(
    db: &Db,
    org_id: &str,
    backup_id: &str,
    target_database_id: &str,
    actor: &str,
    now: i64,
) -> Result<String> {
    check_ids(backup_id, target_database_id)?;
    if orgs::key_mode(db, org_id).await? == KeyMode::CustomerSealed {
        return Err(crate::secrets::customer_seal::passphrase_required(
            "a managed restore",
        ));
    }
    create_job(db, org_id, backup_id, target_database_id, None, actor, now).await
}

/// What queueing a customer-sealed organisation's restore needs besides the database:
/// the backup's header is read at once from its destination.
pub use crate::backups::destinations::Access;

/// [`create`], with the customer passphrase a customer-sealed organisation's restore
/// needs (ignored in managed mode): the organisation key is opened with it (throttled
/// and audited like every use), the backup's header is read and its file key kept,
/// envelope-encrypted, for the job's agent only.
#[allow(clippy::too_many_arguments)]
pub async fn create_with_passphrase(
    db: &Db,
    with: Access<'_>,
    org_id: &str,
    backup_id: &str,
    target_database_id: &str,
    passphrase: Option<&Passphrase>,
    actor: &str,
    now: i64,
) -> Result<String> {
    check_ids(backup_id, target_database_id)?;
    if orgs::key_mode(db, org_id).await? == KeyMode::Managed {
        return create_job(db, org_id, backup_id, target_database_id, None, actor, now).await;
    }
    let Some(passphrase) = passphrase else {
        return Err(crate::secrets::customer_seal::passphrase_required(
            "a managed restore",
        ));
    };
    let row = sqlx::query(
        "SELECT b.object_key, b.size, b.deleted_at, b.globals_size, t.kind, t.settings, \
         t.credentials_secret_id FROM backups b JOIN destinations t ON t.id = b.destination_id \
         WHERE b.id = $1 AND b.org_id = $2",
    )
    .bind(backup_id)
    .bind(org_id)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| Error::invalid("no such backup in this organisation"))?;
    let (backup, stored) = (
        BackupObject::from_row(&row)?,
        StoredDestination::from_row(&row)?,
    );
    if backup.deleted_at.is_some() {
        return Err(Error::invalid("that backup was deleted by retention"));
    }
    let stamp = rfc3339(now);
    let reason = format!("managed restore of backup {backup_id}");
    let org_key = orgs::unlock_private_key(
        db,
        with.keys,
        org_id,
        Some(passphrase),
        actor,
        &reason,
        &stamp,
    )
    .await?;
    let identity = parse_identity(&org_key)?;
    let by = Unwrapping {
        org_id,
        actor,
        reason: &reason,
        at: &stamp,
    };
    let destination = destinations::connect(db, with, &stored, &by)
        .await?
        .map_err(|e| Error::invalid(format!("reaching the backup's destination: {e}")))?;
    let file_keys = backup.file_keys(&destination, &identity).await;
    destination.close().await;
    let hex = file_keys?.to_hex();
    create_job(
        db,
        org_id,
        backup_id,
        target_database_id,
        Some((with.keys, hex.as_bytes())),
        actor,
        now,
    )
    .await
}

/// A backup's object: its key, size and whether retention deleted it; the size of the
/// globals object saved with it, if any.
struct BackupObject {
    object_key: String,
    size: i64,
    deleted_at: Option<i64>,
    globals_size: Option<i64>,
}

crate::rows::from_row!(BackupObject {
    object_key,
    size,
    deleted_at,
    globals_size
});

impl BackupObject {
    /// The key of its globals object, if it has one.
    fn globals_key(&self) -> Option<String> {
        self.globals_size?;
        dbcrate_core::object_key::globals_key(&self.object_key)
    }

    /// The file keys of the backup and of its globals, read from their age headers
    /// with the organisation's identity.
    async fn file_keys(
        &self,
        destination: &Destination,
        identity: &age::x25519::Identity,
    ) -> Result<FileKeys> {
        let backup = header_file_key(destination, &self.object_key, self.size, identity).await?;
        let globals = match (self.globals_key(), self.globals_size) {
            (Some(key), Some(size)) => {
                Some(header_file_key(destination, &key, size, identity).await?)
            }
            _ => None,
        };
        Ok(FileKeys { backup, globals })
    }
}

/// The file keys a restore hands the agent: the backup's and its globals'.
struct FileKeys {
    backup: SecretBytes<16>,
    globals: Option<SecretBytes<16>>,
}

impl FileKeys {
    /// Both as one hex string (the backup's first), as a customer-sealed
    /// organisation's queued restore keeps them.
    fn to_hex(&self) -> zeroize::Zeroizing<String> {
        let mut hex = self.backup.to_hex();
        if let Some(globals) = &self.globals {
            hex.push_str(&globals.to_hex());
        }
        hex
    }

    /// The inverse of [`FileKeys::to_hex`].
    fn from_hex(hex: &str) -> Result<Self> {
        let bad = || Error::internal("a stored file key is not 16 or 32 hex bytes");
        let (backup, globals) = match hex.len() {
            32 => (hex, None),
            64 => (&hex[..32], Some(&hex[32..])),
            _ => return Err(bad()),
        };
        Ok(Self {
            backup: SecretBytes::from_hex(backup).ok_or_else(bad)?,
            globals: match globals {
                Some(g) => Some(SecretBytes::from_hex(g).ok_or_else(bad)?),
                None => None,
            },
        })
    }
}

/// The file key in the age header of the object at `key`.
async fn header_file_key(
    destination: &Destination,
    key: &str,
    size: i64,
    identity: &age::x25519::Identity,
) -> Result<SecretBytes<16>> {
    let start = read_header(destination, key, size).await?;
    dbcrate_core::file_key::unwrap_file_key(&start, identity)
        .map_err(|e| Error::invalid(format!("the age header of {key}: {e}")))
}

/// The backup a restore job is queued for: where it is stored, and whether retention
/// deleted it.
struct RestoredBackup {
    destination_id: String,
    deleted_at: Option<i64>,
}

crate::rows::from_row!(RestoredBackup {
    destination_id,
    deleted_at
});

fn check_ids(backup_id: &str, target_database_id: &str) -> Result<()> {
    if !is_id(backup_id, "bkp") || !is_id(target_database_id, "dbs") {
        return Err(Error::invalid(
            "backup_id and target_database_id must be ids of this organisation's objects",
        ));
    }
    Ok(())
}

fn parse_identity(org_key: &[u8]) -> Result<age::x25519::Identity> {
    std::str::from_utf8(org_key)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| Error::internal("the stored organisation key does not parse"))
}

/// Queues the job (and, for a customer-sealed organisation, stores its file key) in one
/// transaction.
async fn create_job(
    db: &Db,
    org_id: &str,
    backup_id: &str,
    target_database_id: &str,
    file_key: Option<(&MasterKeys, &[u8])>,
    actor: &str,
    now: i64,
) -> Result<String> {
    let mut tx = db.begin().await?;
    let made: Result<String> = async {
        let backup: RestoredBackup = sqlx::query_as(
            "SELECT destination_id, deleted_at FROM backups WHERE id = $1 AND org_id = $2",
        )
        .bind(backup_id)
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::invalid("no such backup in this organisation"))?;
        if backup.deleted_at.is_some() {
            return Err(Error::invalid("that backup was deleted by retention"));
        }
        let agent: String =
            sqlx::query_scalar("SELECT agent_id FROM databases WHERE id = $1 AND org_id = $2")
                .bind(target_database_id)
                .bind(org_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| Error::invalid("no such target database in this organisation"))?;
        let job = NewJob {
            org_id,
            kind: dbcrate_core::wire::JobKind::Restore,
            schedule_id: None,
            database_id: target_database_id,
            destination_id: &backup.destination_id,
            agent_id: &agent,
            backup_id: Some(backup_id),
            max_attempts: 1,
        };
        let details = serde_json::json!({
            "backup": backup_id,
            "target_database": target_database_id,
            "customer_sealed": file_key.is_some(),
        });
        let because = Because {
            actor,
            action: AuditAction::RestoreCreate,
            details: &details,
        };
        let job_id = enqueue(&mut tx, &job, &because, now).await?;
        if let Some((keys, file_key)) = file_key {
            let secret_id = secrets::insert(
                &mut tx,
                keys,
                Owner::Org(org_id),
                FILE_KEY_PURPOSE,
                file_key,
                &rfc3339(now),
            )
            .await?;
            sqlx::query("INSERT INTO restore_file_keys (job_id, secret_id) VALUES ($1, $2)")
                .bind(&job_id)
                .bind(&secret_id)
                .execute(&mut *tx)
                .await?;
        }
        Ok(job_id)
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
/// key, read from the object's header with the organisation key (or the one kept for a
/// customer-sealed organisation's restore).
pub async fn restore_part(
    db: &Db,
    keys: &MasterKeys,
    of: RestoreOf<'_>,
    destination: &Destination,
    actor: &str,
    now: i64,
) -> Result<RestorePart> {
    let RestoreOf {
        org_id,
        job_id,
        backup_id,
    } = of;
    let row = sqlx::query(
        "SELECT object_key, size, sha256, deleted_at, globals_size, globals_sha256 FROM backups \
         WHERE id = $1 AND org_id = $2",
    )
    .bind(backup_id)
    .bind(org_id)
    .fetch_one(db.pool())
    .await?;
    let backup = BackupObject::from_row(&row)?;
    if backup.deleted_at.is_some() {
        return Err(Error::invalid(
            "that backup was deleted by retention before the restore started",
        ));
    }
    let sha256: String = row.try_get("sha256")?;
    let globals_sha256: Option<String> = row.try_get("globals_sha256")?;
    let stamp = rfc3339(now);
    let reason = format!("managed restore (job {job_id}, backup {backup_id})");
    let by = Unwrapping {
        org_id,
        actor,
        reason: &reason,
        at: &stamp,
    };
    let file_keys = match take_file_key(db, keys, job_id, &by).await? {
        Some(hex) => FileKeys::from_hex(&hex)?,
        None => {
            let org_key =
                orgs::unlock_private_key(db, keys, org_id, None, actor, &reason, &stamp).await?;
            backup
                .file_keys(destination, &parse_identity(&org_key)?)
                .await?
        }
    };
    let globals = match (backup.globals_key(), backup.globals_size, file_keys.globals) {
        (Some(object_key), Some(size), Some(file_key)) => Some(GlobalsPart {
            object_key,
            size,
            sha256: globals_sha256.unwrap_or_default(),
            file_key,
        }),
        _ => None,
    };
    Ok(RestorePart {
        object_key: backup.object_key,
        size: backup.size,
        sha256,
        file_key: file_keys.backup,
        globals,
    })
}

/// The start of a backup object up to the end of its age header (capped at
/// [`HEADER_READ`], at most [`MAX_STANZAS`] stanzas).
async fn read_header(destination: &Destination, key: &str, size: i64) -> Result<Vec<u8>> {
    let start = destination
        .get_range(key, 0, HEADER_READ.min(size.max(0) as u64))
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
    Ok(start.to_vec())
}

/// The file key kept for a customer-sealed organisation's restore job, if there is one:
/// unwrapped (audited) and deleted, so it is handed over once.
async fn take_file_key(
    db: &Db,
    keys: &MasterKeys,
    job_id: &str,
    by: &Unwrapping<'_>,
) -> Result<Option<zeroize::Zeroizing<String>>> {
    let secret_id: Option<String> =
        sqlx::query_scalar("SELECT secret_id FROM restore_file_keys WHERE job_id = $1")
            .bind(job_id)
            .fetch_optional(db.pool())
            .await?;
    let Some(secret_id) = secret_id else {
        return Ok(None);
    };
    let bytes = by
        .unwrap_secret(db, keys, &secret_id, FILE_KEY_PURPOSE)
        .await?;
    let hex = zeroize::Zeroizing::new(
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::internal("a stored file key is not text"))?,
    );
    let mut tx = db.begin().await?;
    let deleted: Result<()> = async {
        sqlx::query("DELETE FROM restore_file_keys WHERE job_id = $1")
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        crate::secrets::delete_in(&mut tx, by.org_id, &secret_id).await
    }
    .await;
    end_write(tx, deleted).await?;
    Ok(Some(hex))
}
