//! Envelope-encrypted secrets in the database. Every unwrap writes an audit row first,
//! and the plaintext is returned only if that row was written.

use crate::audit::{self, AuditEvent};
use crate::db::Db;
use crate::envelope::{MasterKeys, SealedSecret, SecretContext};
use crate::error::{new_id, Error, Result};
use sqlx::{AnyConnection, Row};
use zeroize::Zeroizing;

/// Seals `plaintext` for `org_id`/`purpose` and inserts it, inside the caller's
/// transaction on `conn`. Returns the new secret's id.
pub async fn insert(
    conn: &mut AnyConnection,
    keys: &MasterKeys,
    org_id: &str,
    purpose: &str,
    plaintext: &[u8],
    now: &str,
) -> Result<String> {
    let id = new_id("sec")?;
    let context = SecretContext {
        org_id,
        secret_id: &id,
        purpose,
    };
    let sealed = SealedSecret::seal(keys, context, plaintext)?;
    sqlx::query(
        "INSERT INTO secrets (id, org_id, purpose, master_key_id, wrapped_dek, ciphertext, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(org_id)
    .bind(purpose)
    .bind(&sealed.master_key_id)
    .bind(sealed.wrapped_dek)
    .bind(sealed.ciphertext)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// A stored secret's row.
struct Stored {
    org_id: String,
    purpose: String,
    sealed: SealedSecret,
}

async fn load(db: &Db, secret_id: &str) -> Result<Option<Stored>> {
    let row = sqlx::query(
        "SELECT org_id, purpose, master_key_id, wrapped_dek, ciphertext FROM secrets WHERE id = $1",
    )
    .bind(secret_id)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| {
        Ok(Stored {
            org_id: r.try_get(0)?,
            purpose: r.try_get(1)?,
            sealed: SealedSecret {
                master_key_id: r.try_get(2)?,
                wrapped_dek: r.try_get(3)?,
                ciphertext: r.try_get(4)?,
            },
        })
    })
    .transpose()
}

/// Decrypts secret `secret_id` of `org_id` for `actor`, after writing the audit row
/// (`secret.unwrap`, with `reason`). A secret of another organisation is "not found".
pub async fn unwrap(
    db: &Db,
    keys: &MasterKeys,
    org_id: &str,
    secret_id: &str,
    actor: &str,
    reason: &str,
    now: &str,
) -> Result<Zeroizing<Vec<u8>>> {
    let stored = load(db, secret_id)
        .await?
        .filter(|s| s.org_id == org_id)
        .ok_or_else(|| Error(format!("secret {secret_id} not found")))?;
    let details = serde_json::json!({ "purpose": stored.purpose, "reason": reason }).to_string();
    audit::append(
        db,
        &AuditEvent {
            org_id,
            actor,
            action: "secret.unwrap",
            target: &format!("secret:{secret_id}"),
            details: &details,
        },
        now,
    )
    .await?;
    let context = SecretContext {
        org_id,
        secret_id,
        purpose: &stored.purpose,
    };
    Ok(stored.sealed.open(keys, context)?)
}

/// The boot check: every DEK must be wrapped under a configured master key.
pub async fn check_master_keys(db: &Db, keys: &MasterKeys) -> Result<()> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT master_key_id FROM secrets")
        .fetch_all(db.pool())
        .await?;
    let missing: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|id| keys.get(id).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Error(format!(
        "secrets are wrapped under master key(s) {} that are not configured: add them to \
         DBCRATE_MASTER_KEY after the active key, then run `dbcrate-control rotate-master-key`",
        missing.join(", ")
    )))
}

/// Re-wraps the DEKs of up to `limit` secrets not yet under the active master key; the
/// secrets' ciphertexts do not change. Each secret is updated on its own, guarded by
/// its old key id, so a rotation stopped at any point leaves every secret readable with
/// the old and new keys configured, and running it again finishes it. Writes one audit
/// row per organisation touched. Returns how many secrets were re-wrapped.
pub async fn rotate_master_key(
    db: &Db,
    keys: &MasterKeys,
    actor: &str,
    now: &str,
    limit: usize,
) -> Result<usize> {
    let active = keys.active().id().to_string();
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM secrets WHERE master_key_id <> $1 ORDER BY id")
            .bind(&active)
            .fetch_all(db.pool())
            .await?;
    let mut per_org: Vec<(String, usize)> = Vec::new();
    let mut done = 0;
    for id in ids.iter().take(limit) {
        let Some(stored) = load(db, id).await? else {
            continue;
        };
        let context = SecretContext {
            org_id: &stored.org_id,
            secret_id: id,
            purpose: &stored.purpose,
        };
        let rewrapped = stored.sealed.rewrap(keys, context)?;
        let updated = sqlx::query(
            "UPDATE secrets SET master_key_id = $1, wrapped_dek = $2 WHERE id = $3 AND master_key_id = $4",
        )
        .bind(&rewrapped.master_key_id)
        .bind(rewrapped.wrapped_dek)
        .bind(id)
        .bind(&stored.sealed.master_key_id)
        .execute(db.pool())
        .await?;
        if updated.rows_affected() == 1 {
            done += 1;
            match per_org.iter_mut().find(|(o, _)| *o == stored.org_id) {
                Some((_, n)) => *n += 1,
                None => per_org.push((stored.org_id.clone(), 1)),
            }
        }
    }
    for (org_id, count) in per_org {
        let details = serde_json::json!({ "active_key": active, "rewrapped": count }).to_string();
        audit::append(
            db,
            &AuditEvent {
                org_id: &org_id,
                actor,
                action: "master_key.rotate",
                target: &format!("master_key:{active}"),
                details: &details,
            },
            now,
        )
        .await?;
    }
    Ok(done)
}
