//! Storage failures: what went wrong, for a person, and whether it was the caller's
//! input or the storage.

/// The class of a storage failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A URL, key or setting given by the caller is wrong; retrying cannot help.
    InvalidInput,
    /// The storage failed or refused (network, permissions, space, a conflicting
    /// object); it may work later.
    Storage,
}

/// What kind of storage failure it was, in terms a tenant may be told: the control plane
/// shows tenants only a fixed message per class, never the remote server's answer (which
/// could be any internal service's body or headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The destination's address or directory is outside what the operator allows.
    NotAllowed,
    /// No connection: name not resolved, refused, timed out, reset.
    Connect,
    /// The TLS handshake failed, or an SSH host key did not match the pinned one.
    Tls,
    /// The credentials were refused (unknown key id, bad signature, key not accepted).
    Auth,
    /// The bucket (or destination directory) does not exist.
    Missing,
    /// Authenticated, but this operation was refused.
    PermissionDenied,
    /// Anything else.
    Other,
}

impl FailureClass {
    /// The fixed text a tenant is shown.
    pub fn tenant_message(self) -> &'static str {
        match self {
            Self::NotAllowed => "the destination is not allowed by the operator's policy",
            Self::Connect => "could not connect",
            Self::Tls => "TLS failed (or the SSH host key did not match)",
            Self::Auth => "authentication refused",
            Self::Missing => "the bucket or directory does not exist",
            Self::PermissionDenied => "permission denied",
            Self::Other => "the storage gave an unexpected answer",
        }
    }
}

/// A storage failure with a complete, secret-free message, and the error that caused
/// it, where there is one, as `source()` (its text is in the message already; the
/// source is for code that inspects the chain, as the S3 client's does).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    class: FailureClass,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// Bad input.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidInput,
            class: FailureClass::Other,
            message: message.into(),
            source: None,
        }
    }

    /// A storage failure.
    pub fn storage(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Storage,
            class: FailureClass::Other,
            message: message.into(),
            source: None,
        }
    }

    /// A destination refused by the reach policy (`crate::reach`).
    pub fn not_allowed(message: impl Into<String>) -> Self {
        Self::invalid_input(message).classed(FailureClass::NotAllowed)
    }

    /// A destination that cannot be reached (name, connection).
    pub fn unreachable(message: impl Into<String>) -> Self {
        Self::storage(message).classed(FailureClass::Connect)
    }

    /// The same failure, of class `class`.
    pub fn classed(self, class: FailureClass) -> Self {
        Self { class, ..self }
    }

    /// The same failure, caused by `source` (kept for `source()`; the message is not
    /// changed, so it should already say what `source` says).
    pub fn with_source(self, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            source: Some(source.into()),
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

    /// What kind of failure, for tenant-facing messages.
    pub fn class(&self) -> FailureClass {
        self.class
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

/// Shorthand for storage results.
pub type Result<T> = std::result::Result<T, Error>;

/// The first error of type `T` in `error`'s chain of causes, I/O errors' payloads
/// included (an `io::Error`'s `source()` skips its payload and goes to the payload's
/// own source): how code finds what a client library wrapped, by its type rather than
/// its words.
pub fn cause_in_chain<'a, T: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a T> {
    let mut current = Some(error);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<T>() {
            return Some(found);
        }
        current = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(payload) => Some(payload as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}
