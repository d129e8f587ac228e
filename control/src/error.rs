//! The control plane's error: a message fit for an operator, never holding a secret.

use std::fmt;

/// A failure of a control-plane operation.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self(format!("database: {e}"))
    }
}

impl From<crate::envelope::EnvelopeError> for Error {
    fn from(e: crate::envelope::EnvelopeError) -> Self {
        Self(e.to_string())
    }
}

/// Shorthand for control-plane results.
pub type Result<T> = std::result::Result<T, Error>;

/// A random id with a type prefix: `org_…`, `sec_…` (128 random bits, hex).
pub fn new_id(prefix: &str) -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)
        .map_err(|_| Error("the system random number generator failed".into()))?;
    Ok(format!("{prefix}_{}", dbcrate_core::hex::encode(&bytes)))
}
