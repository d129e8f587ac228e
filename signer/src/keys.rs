//! The signer's key directory: `<role>-<KEY ID>.key` (encrypted, mode 0600) and
//! `<role>-<KEY ID>.pub` (minisign public key file) for roles `root` and `manifest`.
//!
//! Keys are found by file name, so only the keys an operation needs are decrypted.
//! Several operators' key directories can be merged for a threshold signature; the
//! procedure is in docs/registry-key-rotation.md.

use crate::error::{Error, Result};
use crate::keyfile::SecretKey;
use crate::tree::{read_optional, write_atomic};
use dbcrate_core::registry::minisign::{KeyId, PublicKey};
use dbcrate_core::secret::SecretString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The two kinds of keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Signs roots.
    Root,
    /// Signs manifests.
    Manifest,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Root => "root",
            Self::Manifest => "manifest",
        }
    }
}

/// A key directory and the passphrase that opens its keys.
#[derive(Debug)]
pub struct KeyDir {
    dir: PathBuf,
    passphrase: SecretString,
    memlimit: u64,
}

impl KeyDir {
    /// Keys in `dir`, opened (and created) with `passphrase`; new keys use scrypt with
    /// `memlimit` bytes.
    pub fn new(dir: &Path, passphrase: SecretString, memlimit: u64) -> Self {
        Self {
            dir: dir.to_path_buf(),
            passphrase,
            memlimit,
        }
    }

    fn path(&self, role: Role, id: KeyId, ext: &str) -> PathBuf {
        self.dir.join(format!("{}-{id}.{ext}", role.name()))
    }

    /// Generates a key of `role` and stores both halves.
    pub fn generate(&self, role: Role) -> Result<SecretKey> {
        if self.passphrase.is_empty() {
            return Err(Error::new(
                "the passphrase is empty; set DBCRATE_SIGNER_PASSPHRASE or \
                 --passphrase-file to a non-empty secret",
            ));
        }
        let key = SecretKey::generate()?;
        let file = key.to_file(&self.passphrase, self.memlimit, role.name())?;
        write_atomic(&self.path(role, key.id(), "key"), file.as_bytes(), true)?;
        write_atomic(
            &self.path(role, key.id(), "pub"),
            key.public().to_file().as_bytes(),
            false,
        )?;
        Ok(key)
    }

    /// The secret key `id` of `role`, if this directory holds it.
    pub fn load(&self, role: Role, id: KeyId) -> Result<Option<SecretKey>> {
        let path = self.path(role, id, "key");
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        // Encrypted or not, a secret key readable by others is a mistake worth stopping.
        let mode = std::fs::metadata(&path)
            .map_err(|e| Error::io_at("reading", &path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Error::new(format!(
                "{} is readable by other users (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            )));
        }
        let text = String::from_utf8_lossy(&bytes);
        SecretKey::from_file(&text, &self.passphrase, &path.display().to_string()).map(Some)
    }

    /// Every secret key among `keys` this directory holds.
    pub fn load_all(&self, role: Role, keys: &[PublicKey]) -> Result<Vec<SecretKey>> {
        let mut out = Vec::new();
        for key in keys {
            if let Some(secret) = self.load(role, key.id())? {
                out.push(secret);
            }
        }
        Ok(out)
    }
}
