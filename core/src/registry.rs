//! The signed pg_dump registry: document formats and the rules that decide trust.
//!
//! Everything here is pure (no I/O, `now` passed in) so that every attack the registry
//! must withstand is a unit test: the agent's client and `dbcrate-signer verify` fetch
//! or read files and hand them to these functions.

pub mod layout;
pub mod metadata;
pub mod minisign;
pub mod trust;

#[cfg(test)]
mod tests;

/// Why registry metadata was refused. Every message names the document and the rule.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A key could not be parsed.
    #[error("bad key: {0}")]
    BadKey(String),
    /// A signature is malformed or does not verify.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// A document is malformed or breaks a format rule.
    #[error("bad registry metadata: {0}")]
    BadMetadata(String),
    /// A root's version does not follow its predecessor's.
    #[error("root chain broken: {0}")]
    RootVersion(String),
    /// Not enough distinct keys signed a root.
    #[error("not enough root signatures: {0}")]
    Threshold(String),
    /// Signed by a key the current root does not list.
    #[error("unknown signing key: {0}")]
    UnknownKey(String),
    /// Past its expiry.
    #[error("expired: {0}")]
    Expired(String),
    /// Older than a version already accepted.
    #[error("rollback refused: {0}")]
    Rollback(String),
}
