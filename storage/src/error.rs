//! Storage failures: what went wrong, for a person, and whether it was the caller's
//! input or the storage.

use std::fmt;

/// The class of a storage failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A URL, key or setting given by the caller is wrong; retrying cannot help.
    InvalidInput,
    /// The storage failed or refused (network, permissions, space, a conflicting
    /// object); it may work later.
    Storage,
}

/// A storage failure with a complete, secret-free message.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// Bad input.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidInput,
            message: message.into(),
        }
    }

    /// A storage failure.
    pub fn storage(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Storage,
            message: message.into(),
        }
    }

    /// Appends a remark about the consequences (`…; nothing was stored`).
    pub fn note(self, remark: &str) -> Self {
        Self {
            kind: self.kind,
            message: format!("{}; {remark}", self.message),
        }
    }

    /// The class of this failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// Shorthand for storage results.
pub type Result<T> = std::result::Result<T, Error>;
