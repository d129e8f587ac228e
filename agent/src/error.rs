//! The agent's error: what failed, in words a database owner can act on, and whether
//! trying again can help.

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

/// A failure with a complete, secret-free, one-line message.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
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
        Self { kind, message }
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

    /// The class of this failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Prefixes the message with what the agent was doing.
    pub fn context(self, doing: impl fmt::Display) -> Self {
        Self {
            kind: self.kind,
            message: format!("{doing}: {}", self.message),
        }
    }
}

impl Error {
    /// Appends a remark about the consequences (`…; nothing was stored`).
    pub fn note(self, remark: &str) -> Self {
        Self {
            kind: self.kind,
            message: format!("{}; {remark}", self.message),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<dbcrate_storage::Error> for Error {
    fn from(e: dbcrate_storage::Error) -> Self {
        let kind = match e.kind() {
            dbcrate_storage::ErrorKind::InvalidInput => ErrorKind::InvalidInput,
            dbcrate_storage::ErrorKind::Storage => ErrorKind::Storage,
        };
        Self::new(kind, e.message())
    }
}

/// Shorthand for the agent's results.
pub type Result<T> = std::result::Result<T, Error>;
