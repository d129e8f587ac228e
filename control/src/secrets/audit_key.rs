//! Opening the audit chain key at boot: it is a sealed secret like any other (wrapped by
//! the master key, re-wrapped by rotation), created on first use; once opened it is
//! handed to [`crate::audit::chain_key`], where every audit writer finds it. Verifying
//! the chain therefore needs the master key too.
//!
//! **Rows from before the key.** Chains written before migration 16 were unkeyed
//! (SHA-256). When [`load`] creates the key it seals them in the same transaction: an
//! `audit.chain.keyed` row on the instance chain, itself keyed, lists each chain's
//! newest unkeyed row (sequence and hash). Verification accepts unkeyed rows only up to
//! that point of each chain, and only with that hash at its end; a chain created later
//! must be keyed from its first row.

use crate::audit::chain_key::{self, ChainKey};
use crate::audit::{self, AuditEvent, INSTANCE_CHAIN, SEAL_ACTION};
use crate::db::Db;
use crate::envelope::MasterKeys;
use crate::error::{random_bytes, Error, Result};
use crate::secrets::{self, Owner, SecretRef};
use sqlx::AnyConnection;
use zeroize::Zeroizing;

/// The sealed secret's purpose.
pub const PURPOSE: &str = "audit-chain-key";

/// Opens this database's audit chain key, creating it (and sealing the unkeyed rows
/// written before it) on first use. Every command that writes or verifies audit rows
/// calls it at boot. Opening writes a `secret.unwrap` row like every unwrap.
pub async fn load(db: &Db, keys: &MasterKeys, now: &str) -> Result<()> {
    if let Some(secret_id) = stored_id(db).await? {
        return open(db, keys, &secret_id, now).await;
    }
    match create(db, keys, now).await {
        Ok(()) => Ok(()),
        // Another replica may have created it at the same moment: open theirs.
        Err(e) => match stored_id(db).await? {
            Some(secret_id) => open(db, keys, &secret_id, now).await,
            None => Err(e),
        },
    }
}

async fn stored_id(db: &Db) -> Result<Option<String>> {
    Ok(sqlx::query_scalar("SELECT secret_id FROM audit_chain_key")
        .fetch_optional(db.pool())
        .await?)
}

async fn open(db: &Db, keys: &MasterKeys, secret_id: &str, now: &str) -> Result<()> {
    let secret = SecretRef {
        owner: Owner::Instance,
        id: secret_id,
        purpose: PURPOSE,
    };
    let plain = secrets::unwrap_unaudited(db, keys, secret).await?;
    let bytes: [u8; 32] = plain.as_slice().try_into().map_err(|_| {
        Error::internal(format!(
            "the audit chain key {secret_id} is not 32 bytes: the database was changed"
        ))
    })?;
    chain_key::remember(secret_id, ChainKey::from(Zeroizing::new(bytes)));
    // The key is open now, so its unwrap can be recorded like every other.
    secrets::record_unwrap(db, secret, "audit chain key opened at start", now).await
}

async fn create(db: &Db, keys: &MasterKeys, now: &str) -> Result<()> {
    let keyed_rows: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM audit_log WHERE org_id = '{INSTANCE_CHAIN}' AND action = '{SEAL_ACTION}'"
    ))
    .fetch_one(db.pool())
    .await?;
    if keyed_rows > 0 {
        // Creating a new key now would vouch for whatever the database holds.
        return Err(Error::internal(
            "the audit log was keyed but the audit_chain_key row is gone: the database was \
             tampered with or restored in part; restore it whole from a backup",
        ));
    }
    let bytes = random_bytes::<32>()?;
    let mut tx = db.begin().await?;
    let created: Result<()> = async {
        let secret_id = secrets::insert(
            &mut tx,
            keys,
            Owner::Instance,
            PURPOSE,
            bytes.as_slice(),
            now,
        )
        .await?;
        sqlx::query("INSERT INTO audit_chain_key (singleton, secret_id) VALUES (1, $1)")
            .bind(&secret_id)
            .execute(&mut *tx)
            .await?;
        chain_key::remember(&secret_id, ChainKey::from(Zeroizing::new(*bytes)));
        seal_unkeyed(&mut tx, now).await
    }
    .await;
    crate::db::end_write(tx, created).await
}

/// A chain's newest row, named in the seal.
struct ChainHead {
    org_id: String,
    seq: i64,
    hash: String,
}

crate::rows::from_row!(ChainHead { org_id, seq, hash });

/// Appends the [`SEAL_ACTION`] row naming each chain's newest unkeyed row, if any.
async fn seal_unkeyed(conn: &mut AnyConnection, now: &str) -> Result<()> {
    let heads: Vec<ChainHead> = sqlx::query_as(
        "SELECT a.org_id, a.seq, a.hash FROM audit_log a \
         WHERE a.seq = (SELECT max(b.seq) FROM audit_log b WHERE b.org_id = a.org_id) \
         ORDER BY a.org_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    if heads.is_empty() {
        return Ok(());
    }
    let mut listed = Vec::new();
    for head in heads {
        listed.push(serde_json::json!({
            "chain": head.org_id,
            "seq": head.seq,
            "hash": head.hash,
        }));
    }
    let details = serde_json::json!({ "unkeyed_heads": listed }).to_string();
    audit::append_in(
        conn,
        &AuditEvent {
            org_id: INSTANCE_CHAIN,
            actor: "system",
            action: SEAL_ACTION,
            target: "audit_log",
            details: &details,
        },
        now,
    )
    .await?;
    Ok(())
}
