//! The one error shape of the registry and signer tools and the test kit: a complete
//! line saying what failed and what to do, and the error that caused it. Their callers
//! decide nothing on it (a tool prints it and exits 1, a test fails with it), so it
//! has no kind or reason; code that wants the cause finds it as `source()`, not in the
//! words.

use std::fmt;
use std::path::Path;

/// A failure with a complete message (the message must hold no secret) and, where
/// another error caused it, that error as `source()` (its text is in the message
/// already; the source is for code that inspects the chain).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Failure {
    /// A failure told by `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// An I/O error while `doing`: "`doing`: `err`".
    pub fn io(doing: impl fmt::Display, err: std::io::Error) -> Self {
        Self::new(format!("{doing}: {err}")).with_source(err)
    }

    /// An I/O error on `path` while `doing`: "`doing` `path`: `err`".
    pub fn io_at(doing: &str, path: &Path, err: std::io::Error) -> Self {
        Self::io(format_args!("{doing} {}", path.display()), err)
    }

    /// The same failure, caused by `source` (the message is not changed, so it should
    /// already say what `source` says).
    pub fn with_source(self, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self {
            source: Some(source.into()),
            ..self
        }
    }
}

impl From<crate::registry::RegistryError> for Failure {
    fn from(e: crate::registry::RegistryError) -> Self {
        Self::new(e.to_string()).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn the_message_is_the_whole_text_and_the_cause_is_kept() {
        let missing = || std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = Failure::io_at("reading", Path::new("/tree/root.json"), missing());
        assert_eq!(e.to_string(), "reading /tree/root.json: gone");
        let cause = e.source().and_then(|s| s.downcast_ref::<std::io::Error>());
        assert_eq!(cause.map(|c| c.kind()), Some(std::io::ErrorKind::NotFound));
        let e = Failure::io("starting postgres", missing());
        assert_eq!(e.to_string(), "starting postgres: gone");
        assert!(e.source().is_some());
        let e = Failure::new("no such major");
        assert_eq!(
            (e.to_string().as_str(), e.source().is_none()),
            ("no such major", true)
        );
    }

    #[test]
    fn a_registry_refusal_reads_as_before_and_stays_its_cause() {
        let refusal = crate::registry::RegistryError::Expired("root.json".into());
        let e = Failure::from(refusal);
        assert_eq!(e.to_string(), "expired: root.json");
        assert!(e
            .source()
            .is_some_and(|s| s.is::<crate::registry::RegistryError>()));
    }
}
