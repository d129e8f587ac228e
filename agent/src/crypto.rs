//! age recipients and the two ways to decrypt: an identity file, or a bare file key.
//!
//! A managed restore never hands the agent the organisation's private key: the control
//! plane unwraps only the backup's 16-byte file key from its header and passes that.
//! [`FileKeyIdentity`] makes the age decryptor accept such a key; the decryptor still
//! checks the header MAC with it, so a wrong key fails before any plaintext.

use crate::error::{Error, Result};
pub use dbcrate_core::file_key::FileKeyIdentity;
use dbcrate_core::secret::SecretBytes;
use std::path::Path;
use std::str::FromStr;

/// Parses `age1…` recipients. Errors name the recipient by position, never by value:
/// a secret key pasted by mistake must not end up in a log.
pub fn parse_recipients(values: &[String]) -> Result<Vec<age::x25519::Recipient>> {
    if values.is_empty() {
        return Err(Error::invalid_input(
            "no --recipient given: pass the organisation's age public key (age1…)",
        ));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let v = v.trim();
            if v.starts_with("AGE-SECRET-KEY-") {
                return Err(Error::invalid_input(format!(
                    "--recipient #{}: this is an age SECRET key; pass its public key (age1…, \
                     `age-keygen -y KEYFILE` prints it) and keep the secret key offline",
                    i + 1
                )));
            }
            age::x25519::Recipient::from_str(v).map_err(|e| {
                Error::invalid_input(format!(
                    "--recipient #{}: not an age X25519 public key ({e}); expected age1…",
                    i + 1
                ))
            })
        })
        .collect()
}

/// Something that can open an age file.
pub enum Decryption {
    /// Identities from an age identity file (`AGE-SECRET-KEY-1…` lines).
    Identities(Vec<age::x25519::Identity>),
    /// A bare 16-byte file key.
    FileKey(FileKeyIdentity),
}

impl Decryption {
    /// Reads an age identity file.
    pub fn from_identity_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_input(format!("cannot read identity file {}: {e}", path.display()))
        })?;
        let text = zeroize::Zeroizing::new(text);
        // X25519 identities only: that is what dbcrate encrypts to. Parsing them here
        // (rather than with age::IdentityFile) keeps the type Send for the decoder thread.
        let mut identities = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = age::x25519::Identity::from_str(line).map_err(|_| {
                Error::invalid_input(format!(
                    "{} line {}: not an age X25519 identity (expected AGE-SECRET-KEY-1…)",
                    path.display(),
                    n + 1
                ))
            })?;
            identities.push(identity);
        }
        if identities.is_empty() {
            return Err(Error::invalid_input(format!(
                "{} holds no age identity",
                path.display()
            )));
        }
        Ok(Self::Identities(identities))
    }

    /// Reads a file key: 16 raw bytes, or 32 hex digits (a trailing newline is allowed).
    pub fn from_file_key_file(path: &Path) -> Result<Self> {
        let raw = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| {
            Error::invalid_input(format!("cannot read file key {}: {e}", path.display()))
        })?);
        let key: [u8; 16] = match <[u8; 16]>::try_from(raw.as_slice()) {
            Ok(key) => key,
            Err(_) => std::str::from_utf8(&raw)
                .ok()
                .and_then(dbcrate_core::hex::decode_array)
                .ok_or_else(|| {
                    Error::invalid_input(format!(
                        "{} is not a file key: expected 16 raw bytes or 32 hex digits",
                        path.display()
                    ))
                })?,
        };
        Ok(Self::FileKey(FileKeyIdentity::new(SecretBytes::new(key))))
    }

    /// The identities to hand to `age::Decryptor::decrypt`.
    pub fn identities(&self) -> Vec<&dyn age::Identity> {
        match self {
            Self::Identities(ids) => ids.iter().map(|i| i as &dyn age::Identity).collect(),
            Self::FileKey(k) => vec![k as &dyn age::Identity],
        }
    }

    /// What to tell the user when the decryptor refuses the key.
    pub fn refusal(&self, err: &age::DecryptError) -> Error {
        match (self, err) {
            (Self::Identities(_), age::DecryptError::NoMatchingKeys) => Error::integrity(
                "this backup is not encrypted to any identity in the given --identity file",
            ),
            (Self::FileKey(_), age::DecryptError::InvalidMac) => Error::integrity(
                "the --file-key-file does not open this backup (header MAC mismatch)",
            ),
            (_, age::DecryptError::InvalidMac) => {
                Error::integrity("the backup's age header is corrupt or tampered (MAC mismatch)")
            }
            (_, age::DecryptError::Io(e)) => {
                crate::pipeline::classify_read_error(e, "reading the backup")
            }
            (_, e) => Error::integrity(format!("cannot decrypt the backup: {e}")),
        }
    }
}

/// The file key of an age file, unwrapped with `identity` from the file's first bytes
/// (its header and the 16-byte payload nonce; a few KiB are always enough, the header
/// MAC is checked). See `dbcrate_core::file_key`.
pub fn unwrap_file_key(start: &[u8], identity: &age::x25519::Identity) -> Result<SecretBytes<16>> {
    dbcrate_core::file_key::unwrap_file_key(start, identity)
        .map_err(|e| Error::integrity(e.to_string()))
}
