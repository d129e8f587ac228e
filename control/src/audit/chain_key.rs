//! The audit chain's key as this process holds it: rows are chained by HMAC-SHA256
//! under a random 32-byte key that is itself a sealed secret (opened at boot by
//! [`crate::secrets::audit_key::load`], wrapped by the master key, re-wrapped by
//! rotation like any other). Whoever can write the database but lacks the master key can
//! therefore neither edit a row nor append a forged one that verifies.
//!
//! Audit rows are written from some fifty places inside their callers' transactions,
//! which hold a database connection and nothing else. Rather than thread the key
//! through each, the process keeps the keys it has opened by secret id, and a row's
//! writer finds this database's key through the write-once `audit_chain_key` row
//! ([`current`]). A database whose key this process has not opened cannot be written
//! to: the error says so.

use sqlx::AnyConnection;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// The key rows are chained under. `Debug` shows nothing of it; zeroized on drop.
pub struct ChainKey {
    bytes: Zeroizing<[u8; 32]>,
}

impl From<Zeroizing<[u8; 32]>> for ChainKey {
    fn from(bytes: Zeroizing<[u8; 32]>) -> Self {
        Self { bytes }
    }
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

/// Keeps an opened key for [`current`] (called by `secrets::audit_key` at boot).
pub(crate) fn remember(secret_id: &str, key: ChainKey) {
    let mut map = opened().lock().unwrap_or_else(|p| p.into_inner());
    map.insert(secret_id.to_string(), Arc::new(key));
}

fn missing(why: String) -> sqlx::Error {
    sqlx::Error::Configuration(why.into())
}

/// This database's chain key, as opened by [`crate::secrets::audit_key::load`], seen from inside a transaction
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
