//! The registry tool's error: one line saying what failed and what to do.

use std::fmt;

/// A failure with a complete message.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    /// A new error.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// An I/O error on `path` while `doing`.
    pub fn io(doing: &str, path: &std::path::Path, e: std::io::Error) -> Self {
        Self(format!("{doing} {}: {e}", path.display()))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Shorthand.
pub type Result<T> = std::result::Result<T, Error>;
