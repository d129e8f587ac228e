//! The audit chain's key: rows are chained by HMAC-SHA256 under a random 32-byte key
//! that is itself a sealed secret (wrapped by the master key, re-wrapped by rotation like
//! any other). Whoever can write the database but lacks the master key can therefore
//! neither edit a row nor append a forged one that verifies; verifying needs the master
//! key too.
//!
//! Audit rows are written from some fifty places inside their callers' transactions,
//! which hold a database connection and nothing else. Rather than thread the key
//! through each, the process keeps the keys it has opened by secret id ([`load`] at
//! boot), and a row's writer finds this database's key through the write-once
//! `audit_chain_key` row. A database whose key this process has not opened cannot be
//! written to: the error says so.
//!
//! **Rows from before the key.** Chains written before migration 16 were unkeyed
//! (SHA-256). When [`load`] creates the key it seals them in the same transaction: an
//! `audit.chain.keyed` row on the instance chain, itself keyed, lists each chain's
//! newest unkeyed row (sequence and hash). Verification accepts unkeyed rows only up to
//! that point of each chain, and only with that hash at its end; a chain created later
//! must be keyed from its first row.

use crate::audit::{self, AuditEvent, INSTANCE_CHAIN};
use crate::db::Db;
use crate::envelope::MasterKeys;
use crate::error::{random_bytes, Error, Result};
use crate::secrets::{self, Owner, SecretRef};
use sqlx::{AnyConnection, Row};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// The sealed secret's purpose.
pub const PURPOSE: &str = "audit-chain-key";

/// The action of the instance-chain row that seals the unkeyed rows written before the
/// key existed.
pub const SEAL_ACTION: &str = "audit.chain.keyed";

/// The key rows are chained under. `Debug` shows nothing of it; zeroized on drop.
pub struct ChainKey {
    bytes: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(<redacted>)")
    }
}

impl ChainKey {
    /// HMAC-SHA256 of `message` under the key, as lowercase hex.
    pub fn mac_hex(&self, message: &[u8]) -> String {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.bytes.as_slice());
        dbcrate_core::hex::encode(ring::hmac::sign(&key, message).as_ref())
    }
}

/// The keys this process has opened, by the id of their sealed secret.
fn opened() -> &'static Mutex<HashMap<String, Arc<ChainKey>>> {
    static OPENED: std::sync::OnceLock<Mutex<HashMap<String, Arc<ChainKey>>>> =
        std::sync::OnceLock::new();
    OPENED.get_or_init(Default::default)
}

fn remember(secret_id: &str, key: ChainKey) {
    let mut map = opened().lock().unwrap_or_else(|p| p.into_inner());
    map.insert(secret_id.to_string(), Arc::new(key));
}

fn missing(why: String) -> sqlx::Error {
    sqlx::Error::Configuration(why.into())
}

/// This database's chain key, as opened by [`load`], seen from inside a transaction
/// (which may be the one creating it).
pub async fn current(conn: &mut AnyConnection) -> std::result::Result<Arc<ChainKey>, sqlx::Error> {
    let secret_id: Option<String> = sqlx::query_scalar("SELECT secret_id FROM audit_chain_key")
        .fetch_optional(&mut *conn)
        .await?;
    let Some(secret_id) = secret_id else {
        return Err(missing(
            "the audit chain key has not been created: start the control plane (serve, \
             check or init) with its master key first"
                .into(),
        ));
    };
    let map = opened().lock().unwrap_or_else(|p| p.into_inner());
    map.get(&secret_id).cloned().ok_or_else(|| {
        missing(format!(
            "the audit chain key {secret_id} is not open in this process (it opens at boot \
             with the master key)"
        ))
    })
}

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
    remember(
        secret_id,
        ChainKey {
            bytes: Zeroizing::new(bytes),
        },
    );
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
        remember(
            &secret_id,
            ChainKey {
                bytes: Zeroizing::new(*bytes),
            },
        );
        seal_unkeyed(&mut tx, now).await
    }
    .await;
    crate::db::end_write(tx, created).await
}

/// Appends the [`SEAL_ACTION`] row naming each chain's newest unkeyed row, if any.
async fn seal_unkeyed(conn: &mut AnyConnection, now: &str) -> Result<()> {
    let heads = sqlx::query(
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
    for row in &heads {
        listed.push(serde_json::json!({
            "chain": row.try_get::<String, _>(0)?,
            "seq": row.try_get::<i64, _>(1)?,
            "hash": row.try_get::<String, _>(2)?,
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

/// Where each chain's unkeyed rows end (sequence and hash of the last one), from the
/// instance chain's first [`SEAL_ACTION`] row — if that row is itself keyed correctly.
/// A forged or edited seal gives no unkeyed rows at all, so every chain then fails.
pub fn unkeyed_heads(
    instance_rows: &[audit::AuditRow],
    key: &ChainKey,
) -> HashMap<String, (i64, String)> {
    let mut heads = HashMap::new();
    let Some(seal) = instance_rows.iter().find(|r| r.action == SEAL_ACTION) else {
        return heads;
    };
    if audit::keyed_row_hash(key, &seal.prev_hash, seal) != seal.hash {
        return heads;
    }
    let details: serde_json::Value = serde_json::from_str(&seal.details).unwrap_or_default();
    for head in details["unkeyed_heads"].as_array().into_iter().flatten() {
        if let (Some(chain), Some(seq), Some(hash)) = (
            head["chain"].as_str(),
            head["seq"].as_i64(),
            head["hash"].as_str(),
        ) {
            heads.insert(chain.to_string(), (seq, hash.to_string()));
        }
    }
    heads
}
