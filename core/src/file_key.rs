//! An age file's 16-byte file key: unwrapped from the file's header with an X25519
//! identity (what the control plane does for a managed restore, so that only this one
//! backup's key leaves it, never the organisation's private key), and used as an age
//! identity in its own right (what the agent decrypts with).
//!
//! Behind the `age` feature: the agent and the control plane use it; the registry and
//! signer do not need age.

use crate::secret::SecretBytes;
use age_core::format::{FileKey, Stanza};
use std::fmt;

/// Why no file key came out of a header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileKeyError {
    /// The bytes are not an age v1 header.
    #[error("not a valid age header: {0}")]
    NotAge(String),
    /// None of the header's stanzas is for the given identity.
    #[error("this backup is not encrypted to the given identity")]
    NotForThisIdentity,
    /// The header does not open (MAC, malformed stanza, …).
    #[error("cannot open the age header: {0}")]
    Header(String),
}

/// The file key of an age file, unwrapped with `identity` from the file's first bytes
/// (its header and the 16-byte payload nonce; a few KiB are always enough; the header
/// MAC is checked).
pub fn unwrap_file_key(
    start: &[u8],
    identity: &age::x25519::Identity,
) -> Result<SecretBytes<16>, FileKeyError> {
    let capture = CapturingIdentity {
        inner: identity,
        key: std::cell::RefCell::new(None),
    };
    let decryptor =
        age::Decryptor::new_buffered(start).map_err(|e| FileKeyError::NotAge(e.to_string()))?;
    decryptor
        .decrypt(std::iter::once(&capture as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::NoMatchingKeys => FileKeyError::NotForThisIdentity,
            e => FileKeyError::Header(e.to_string()),
        })?;
    capture
        .key
        .into_inner()
        .ok_or_else(|| FileKeyError::Header("the identity produced no file key".into()))
}

/// Wraps an identity and keeps a copy of the file key it unwraps.
struct CapturingIdentity<'a> {
    inner: &'a age::x25519::Identity,
    key: std::cell::RefCell<Option<SecretBytes<16>>>,
}

impl age::Identity for CapturingIdentity<'_> {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        use age::secrecy::ExposeSecret;
        let unwrapped = self.inner.unwrap_stanza(stanza);
        if let Some(Ok(key)) = &unwrapped {
            *self.key.borrow_mut() = Some(SecretBytes::new(*key.expose_secret()));
        }
        unwrapped
    }
}

/// An age identity that yields a known file key for any stanza; the decryptor still
/// checks the header MAC with it, so a wrong key fails before any plaintext.
pub struct FileKeyIdentity(SecretBytes<16>);

impl fmt::Debug for FileKeyIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FileKeyIdentity(<redacted>)")
    }
}

impl FileKeyIdentity {
    /// The identity for `key`.
    pub fn new(key: SecretBytes<16>) -> Self {
        Self(key)
    }

    fn file_key(&self) -> FileKey {
        // FileKey is not Clone: build a fresh one in place each time.
        FileKey::init_with_mut(|k| k.copy_from_slice(self.0.expose_secret()))
    }
}

impl age::Identity for FileKeyIdentity {
    fn unwrap_stanza(&self, _: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        Some(Ok(self.file_key()))
    }

    fn unwrap_stanzas(&self, _: &[Stanza]) -> Option<Result<FileKey, age::DecryptError>> {
        Some(Ok(self.file_key()))
    }
}
