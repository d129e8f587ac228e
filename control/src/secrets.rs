//! Envelope-encrypted secrets in the database. Every unwrap writes an audit row first,
//! and the plaintext is returned only if that row was written.
//!
//! Secrets belong to an organisation (org keys, CA keys, credentials: table `secrets`),
//! to one person (their TOTP seed: table `user_secrets`) or to the deployment (the
//! root CA key: table `instance_secrets`); the tables have the same sealed columns, and
//! master-key checks and rotation cover all three.

pub mod audit_key;
pub mod customer_seal;
mod json;

pub use json::SecretJson;

use crate::audit::{self, AuditAction, AuditEvent, INSTANCE_CHAIN};
use crate::db::Db;
use crate::envelope::{MasterKeys, SealedSecret, SecretContext};
use crate::error::{new_id, Error, Result};
use sqlx::AnyConnection;
use zeroize::Zeroizing;

/// Whose secret it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    /// An organisation's (its private key, its credentials).
    Org(&'a str),
    /// One person's (their second-factor seed).
    User(&'a str),
    /// The deployment's (the root CA key).
    Instance,
}

/// The kinds of owner, for walks over every secret.
const OWNER_KINDS: [Owner<'static>; 3] = [Owner::Org(""), Owner::User(""), Owner::Instance];

impl<'a> Owner<'a> {
    fn table(self) -> &'static str {
        match self {
            Self::Org(_) => "secrets",
            Self::User(_) => "user_secrets",
            Self::Instance => "instance_secrets",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Self::Org(_) => "org_id",
            Self::User(_) => "user_id",
            Self::Instance => "owner_id",
        }
    }

    fn with_id(self, id: &str) -> Owner<'_> {
        match self {
            Self::Org(_) => Owner::Org(id),
            Self::User(_) => Owner::User(id),
            Self::Instance => Owner::Instance,
        }
    }

    fn id(self) -> &'a str {
        match self {
            Self::Org(id) | Self::User(id) => id,
            Self::Instance => INSTANCE_CHAIN,
        }
    }

    /// The owner as bound into the AEAD's associated data: an org's id as is, a
    /// person's as `user:<id>`, so the two can never be confused.
    fn aad_owner(self) -> String {
        match self {
            Self::Org(id) => id.to_string(),
            Self::User(id) => format!("user:{id}"),
            Self::Instance => INSTANCE_CHAIN.to_string(),
        }
    }

    /// The audit chain of what happens to the owner's secrets (an unwrap, a new CA's key).
    pub(crate) fn chain(self) -> &'a str {
        match self {
            Self::Org(id) => id,
            Self::User(_) | Self::Instance => INSTANCE_CHAIN,
        }
    }
}

/// Seals `plaintext` for `owner`/`purpose` and inserts it, inside the caller's
/// transaction on `conn`. Returns the new secret's id.
pub async fn insert(
    conn: &mut AnyConnection,
    keys: &MasterKeys,
    owner: Owner<'_>,
    purpose: &str,
    plaintext: &[u8],
    now: &str,
) -> Result<String> {
    let id = new_id("sec")?;
    let aad_owner = owner.aad_owner();
    let context = SecretContext {
        org_id: &aad_owner,
        secret_id: &id,
        purpose,
    };
    let sealed = SealedSecret::seal(keys, context, plaintext)?;
    sqlx::query(&format!(
        "INSERT INTO {} (id, {}, purpose, master_key_id, wrapped_dek, ciphertext, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        owner.table(),
        owner.column()
    ))
    .bind(&id)
    .bind(owner.id())
    .bind(purpose)
    .bind(&sealed.master_key_id)
    .bind(sealed.wrapped_dek)
    .bind(sealed.ciphertext)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// Deletes an organisation's secret inside the caller's transaction on `conn` (a
/// replaced database password, a used restore file key, a re-sealed organisation key).
pub async fn delete_in(conn: &mut AnyConnection, org_id: &str, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM secrets WHERE id = $1 AND org_id = $2")
        .bind(id)
        .bind(org_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A stored secret's row.
struct Stored {
    owner_id: String,
    purpose: String,
    sealed: SealedSecret,
}

/// A secret's row as selected by [`load`] (the owner column named `owner_id` in every
/// table).
struct StoredRow {
    owner_id: String,
    purpose: String,
    master_key_id: String,
    wrapped_dek: Vec<u8>,
    ciphertext: Vec<u8>,
}

crate::rows::from_row!(StoredRow {
    owner_id,
    purpose,
    master_key_id,
    wrapped_dek,
    ciphertext,
});

async fn load(db: &Db, kind: Owner<'_>, secret_id: &str) -> Result<Option<Stored>> {
    let row: Option<StoredRow> = sqlx::query_as(&format!(
        "SELECT {} AS owner_id, purpose, master_key_id, wrapped_dek, ciphertext FROM {} \
         WHERE id = $1",
        kind.column(),
        kind.table()
    ))
    .bind(secret_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|r| Stored {
        owner_id: r.owner_id,
        purpose: r.purpose,
        sealed: SealedSecret {
            master_key_id: r.master_key_id,
            wrapped_dek: r.wrapped_dek,
            ciphertext: r.ciphertext,
        },
    }))
}

/// Which secret, and what it must be for.
#[derive(Debug, Clone, Copy)]
pub struct SecretRef<'a> {
    /// Whose it is.
    pub owner: Owner<'a>,
    /// Its id.
    pub id: &'a str,
    /// What the caller needs it for; a secret stored for another purpose is not
    /// opened (a row pointing at the wrong secret must not hand out, say, a CA key as
    /// an org's recovery key).
    pub purpose: &'a str,
}

/// Decrypts the secret `secret` names for `actor`, after writing the audit row
/// (`secret.unwrap`, with `reason`). A secret of another owner or purpose is "not
/// found".
pub async fn unwrap(
    db: &Db,
    keys: &MasterKeys,
    secret: SecretRef<'_>,
    actor: &str,
    reason: &str,
    now: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let stored = load_checked(db, secret).await?;
    record_unwrap_by(db, secret, actor, reason, now).await?;
    open_stored(keys, secret, &stored)
}

/// Decrypts a secret without writing an audit row: only for the audit chain key, which
/// rows cannot be written without; its opener records the unwrap right after
/// ([`record_unwrap`]).
pub(crate) async fn unwrap_unaudited(
    db: &Db,
    keys: &MasterKeys,
    secret: SecretRef<'_>,
) -> Result<Zeroizing<Vec<u8>>> {
    let stored = load_checked(db, secret).await?;
    open_stored(keys, secret, &stored)
}

/// Writes the `secret.unwrap` row of a system unwrap (see [`unwrap_unaudited`]).
pub(crate) async fn record_unwrap(
    db: &Db,
    secret: SecretRef<'_>,
    reason: &str,
    now: &str,
) -> Result<()> {
    record_unwrap_by(db, secret, "system", reason, now).await
}

async fn load_checked(db: &Db, secret: SecretRef<'_>) -> Result<Stored> {
    load(db, secret.owner, secret.id)
        .await?
        .filter(|s| s.owner_id == secret.owner.id() && s.purpose == secret.purpose)
        .ok_or_else(|| Error::not_found(format!("secret {} not found", secret.id)))
}

async fn record_unwrap_by(
    db: &Db,
    secret: SecretRef<'_>,
    actor: &str,
    reason: &str,
    now: &str,
) -> Result<()> {
    let details = serde_json::json!({ "purpose": secret.purpose, "reason": reason }).to_string();
    audit::append(
        db,
        &AuditEvent {
            org_id: secret.owner.chain(),
            actor,
            action: AuditAction::SecretUnwrap,
            target: &format!("secret:{}", secret.id),
            details: &details,
        },
        now,
    )
    .await?;
    Ok(())
}

fn open_stored(
    keys: &MasterKeys,
    secret: SecretRef<'_>,
    stored: &Stored,
) -> Result<Zeroizing<Vec<u8>>> {
    let aad_owner = secret.owner.aad_owner();
    let context = SecretContext {
        org_id: &aad_owner,
        secret_id: secret.id,
        purpose: &stored.purpose,
    };
    Ok(stored.sealed.open(keys, context)?)
}

/// The boot check: every DEK must be wrapped under a configured master key.
pub async fn check_master_keys(db: &Db, keys: &MasterKeys) -> Result<()> {
    let mut ids: Vec<String> = Vec::new();
    for kind in OWNER_KINDS {
        let sql = format!("SELECT DISTINCT master_key_id FROM {}", kind.table());
        ids.extend(sqlx::query_scalar(&sql).fetch_all(db.pool()).await?);
    }
    ids.sort();
    ids.dedup();
    let missing: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| keys.get(id).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error::internal(format!(
        "secrets are wrapped under master key(s) {} that are not configured: add them to \
         DBCRATE_MASTER_KEY after the active key, then run `dbcrate-control rotate-master-key`",
        missing.join(", ")
    )))
}

/// Re-wraps the DEKs of up to `limit` secrets not yet under the active master key; the
/// secrets' ciphertexts do not change. Each secret is updated on its own, guarded by
/// its old key id, so a rotation stopped at any point leaves every secret readable with
/// the old and new keys configured, and running it again finishes it. Each re-wrap
/// writes its audit row (in the owner's chain) in the same transaction. Returns how
/// many secrets were re-wrapped.
pub async fn rotate_master_key(
    db: &Db,
    keys: &MasterKeys,
    actor: &str,
    now: &str,
    limit: usize,
) -> Result<usize> {
    let active = keys.active().id().to_string();
    let mut done = 0;
    for kind in OWNER_KINDS {
        let ids: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT id FROM {} WHERE master_key_id <> $1 ORDER BY id",
            kind.table()
        ))
        .bind(&active)
        .fetch_all(db.pool())
        .await?;
        for id in ids.iter().take(limit - done) {
            let Some(stored) = load(db, kind, id).await? else {
                continue;
            };
            let owner = kind.with_id(&stored.owner_id);
            let aad_owner = owner.aad_owner();
            let context = SecretContext {
                org_id: &aad_owner,
                secret_id: id,
                purpose: &stored.purpose,
            };
            let rewrapped = stored.sealed.rewrap(keys, context)?;
            // The re-wrap and its audit row commit together: a rotation stopped at any
            // point has audited exactly what it changed.
            let mut tx = db.begin().await?;
            let changed: Result<bool> = async {
                let updated = sqlx::query(&format!(
                    "UPDATE {} SET master_key_id = $1, wrapped_dek = $2 \
                     WHERE id = $3 AND master_key_id = $4",
                    kind.table()
                ))
                .bind(&rewrapped.master_key_id)
                .bind(rewrapped.wrapped_dek)
                .bind(id)
                .bind(&stored.sealed.master_key_id)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() != 1 {
                    return Ok(false);
                }
                let details = serde_json::json!({
                    "from_key": stored.sealed.master_key_id,
                    "active_key": active,
                    "purpose": stored.purpose,
                })
                .to_string();
                audit::append_in(
                    &mut tx,
                    &AuditEvent {
                        org_id: owner.chain(),
                        actor,
                        action: AuditAction::MasterKeyRotate,
                        target: &format!("secret:{id}"),
                        details: &details,
                    },
                    now,
                )
                .await?;
                Ok(true)
            }
            .await;
            if crate::db::end_write(tx, changed).await? {
                done += 1;
            }
        }
    }
    Ok(done)
}
