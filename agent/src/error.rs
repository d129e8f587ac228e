//! The agent's error: what failed, in words a database owner can act on, whether
//! trying again can help, and, for the failures the agent decides on, why (a
//! [`Reason`]; the agent never reads its own messages to decide).

mod reason;

pub use reason::Reason;

use std::fmt;

/// The broad class of a failure, which decides the exit status and whether a retry
/// can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The command line or a given file is wrong; retrying the same input cannot help.
    InvalidInput,
    /// The database refused or could not be reached.
    Database,
    /// pg_dump or pg_restore failed or is missing or unsuitable.
    PgTool,
    /// The storage (S3, SFTP, directory) failed or refused.
    Storage,
    /// The backup is not what it should be: wrong key, tampered, truncated, hash mismatch.
    Integrity,
    /// Stopped by SIGINT or SIGTERM after cleaning up.
    Interrupted,
    /// The pg_dump registry could not be reached or answered with an error.
    Registry,
    /// The control plane could not be reached or answered with an error.
    Control,
    /// The agent's identity is missing, unsafe on disk, expired or revoked: a person
    /// must act (fix modes, re-enrol); retrying cannot help.
    Identity,
}

impl ErrorKind {
    /// Whether the same operation may succeed later (network, storage, database down).
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            Self::Database | Self::Storage | Self::Registry | Self::Control
        )
    }
}

/// A failure with a complete, secret-free, one-line message; the reason, where the
/// agent decides on it; and the error that caused it, where there is one, as
/// `source()` (its text is in the message already, so the message stays what people
/// read; the source is there for code that inspects the chain).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    reason: Option<Reason>,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A new error of `kind`. The message must hold no secret.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message: String = message.into();
        // One line: multi-line tool output is folded so logs stay greppable.
        let message = message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" | ");
        Self {
            kind,
            reason: None,
            message,
            source: None,
        }
    }

    /// A failure for `reason` (its kind follows from the reason). The message must hold
    /// no secret.
    pub fn because(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason: Some(reason),
            ..Self::new(reason.kind(), message)
        }
    }

    /// Bad input: a flag, URL, key or file given to the agent.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// A storage failure.
    pub fn storage(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Storage, message)
    }

    /// Stopped by a signal.
    pub fn interrupted(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Interrupted, message)
    }

    /// An integrity failure of a backup.
    pub fn integrity(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Integrity, message)
    }

    /// A failure of the agent's identity (a person must act).
    pub fn identity(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Identity, message)
    }

    /// The same failure, caused by `source` (kept for `source()`; the message is not
    /// changed, so it should already say what `source` says).
    pub fn with_source(self, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            source: Some(source.into()),
            ..self
        }
    }

    /// The class of this failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Why it failed, if it is a failure the agent decides on.
    pub fn reason(&self) -> Option<Reason> {
        self.reason
    }

    /// Prefixes the message with what the agent was doing.
    pub fn context(self, doing: impl fmt::Display) -> Self {
        Self {
            message: format!("{doing}: {}", self.message),
            ..self
        }
    }

    /// Appends a remark about the consequences (`…; nothing was stored`).
    pub fn note(self, remark: &str) -> Self {
        Self {
            message: format!("{}; {remark}", self.message),
            ..self
        }
    }
}

impl From<dbcrate_storage::Error> for Error {
    fn from(e: dbcrate_storage::Error) -> Self {
        let kind = match e.kind() {
            dbcrate_storage::ErrorKind::InvalidInput => ErrorKind::InvalidInput,
            dbcrate_storage::ErrorKind::Storage => ErrorKind::Storage,
        };
        Self::new(kind, e.message()).with_source(e)
    }
}

/// Shorthand for the agent's results.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests;
