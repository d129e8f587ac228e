//! Bearer tokens (session, API, enrolment and invitation tokens): random, prefixed by
//! their kind, and stored only as a SHA-256 hash so a database reader cannot use one.

use crate::error::{random_bytes, Result};
use base64::Engine;
use dbcrate_core::secret::SecretString;
use sha2::{Digest, Sha256};

/// The SHA-256 (hex) under which a bearer token is stored.
pub fn token_hash(token: &str) -> String {
    dbcrate_core::hex::encode(&Sha256::digest(token.as_bytes()))
}

/// A random token (256 bits, URL-safe base64) with a recognisable prefix.
pub fn new_token(prefix: &str) -> Result<SecretString> {
    let raw = random_bytes::<32>()?;
    Ok(SecretString::new(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_slice())
    )))
}
