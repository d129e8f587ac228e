//! The kit's one error type: a message meant for the developer reading a failed test.

use std::fmt;

/// Why a test server could not be provided. The message names the cause and the fix.
#[derive(Debug)]
pub struct KitError {
    message: String,
}

impl KitError {
    /// An error with a complete, human-readable message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// Wraps an I/O error with what the kit was doing when it happened.
    pub fn io(doing: impl fmt::Display, err: std::io::Error) -> Self {
        Self::new(format!("{doing}: {err}"))
    }
}

impl fmt::Display for KitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for KitError {}
