//! Reading and writing a registry tree on local disk (the signer's working copy,
//! which is then uploaded to any static host).

use crate::error::{Error, Result};
use crate::keyfile::SecretKey;
use dbcrate_core::registry::layout::{root_file, root_sig_file, ROOT_DIR};
use dbcrate_core::registry::metadata::Root;
use dbcrate_core::registry::minisign::{KeyId, PublicKey, Signature};
use dbcrate_core::registry::trust::{verify_first_root, verify_next_root, TrustedRoot};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Reads a file, `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io_at("reading", path, e)),
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never
/// sees half a file. `private` files get mode 0600 and must not exist yet.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io_at("creating", dir, e))?;
    }
    if private && path.exists() {
        return Err(Error::new(format!(
            "{} already exists; refusing to overwrite a key",
            path.display()
        )));
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(|e| Error::io_at("creating", &tmp, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io_at("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io_at("renaming into", path, e))
}

/// The signatures published for root `version`, by any of `candidates`.
fn root_sigs(registry: &Path, version: u64, candidates: &[KeyId]) -> Result<Vec<Signature>> {
    let mut sigs = Vec::new();
    for id in candidates {
        let path = registry.join(ROOT_DIR).join(root_sig_file(version, *id));
        if let Some(bytes) = read_optional(&path)? {
            let text = String::from_utf8_lossy(&bytes);
            sigs.push(
                Signature::parse(&text)
                    .map_err(|e| Error::new(format!("{}: {e}", path.display())))?,
            );
        }
    }
    Ok(sigs)
}

fn key_ids_of(bytes: &[u8]) -> Vec<KeyId> {
    // Unverified: only used to know which signature files to look for.
    Root::parse(bytes)
        .ok()
        .map(|(_, keys)| keys.root.iter().map(PublicKey::id).collect())
        .unwrap_or_default()
}

/// Walks the tree's roots from version 1 to the newest, checking every link. With
/// `pinned`, root 1 must be signed by those keys; without, root 1 is trusted as the
/// operator's own (the signer's working copy).
pub fn newest_root(registry: &Path, pinned: Option<&[PublicKey]>) -> Result<TrustedRoot> {
    let first_path = registry.join(ROOT_DIR).join(root_file(1));
    let first = read_optional(&first_path)?.ok_or_else(|| {
        Error::new(format!(
            "{} does not exist: run `dbcrate-signer init` first (or point --registry at the \
             registry tree)",
            first_path.display()
        ))
    })?;
    let own_keys: Vec<PublicKey>;
    let pinned = match pinned {
        Some(p) => p,
        None => {
            own_keys = Root::parse(&first)?.1.root;
            &own_keys
        }
    };
    let ids: Vec<KeyId> = pinned.iter().map(PublicKey::id).collect();
    let mut current = verify_first_root(&first, &root_sigs(registry, 1, &ids)?, pinned)?;
    loop {
        let next = current.root.version + 1;
        let path = registry.join(ROOT_DIR).join(root_file(next));
        let Some(bytes) = read_optional(&path)? else {
            return Ok(current);
        };
        let mut candidates: Vec<KeyId> = current.keys.root.iter().map(PublicKey::id).collect();
        candidates.extend(key_ids_of(&bytes));
        candidates.sort();
        candidates.dedup();
        current = verify_next_root(&current, &bytes, &root_sigs(registry, next, &candidates)?)?;
    }
}

/// Writes `root` and one signature per key in `signers` into the tree.
pub fn write_root(registry: &Path, root: &Root, signers: &[&SecretKey], now: i64) -> Result<()> {
    let bytes = root.to_json();
    let name = root_file(root.version);
    let comment = format!("timestamp:{now}\tfile:{name}\thashed");
    // Signatures first: a reader that sees the root file sees its signatures too.
    for key in signers {
        let sig = Signature::sign(key.id(), key.signing_key(), &bytes, &comment);
        let path = registry
            .join(ROOT_DIR)
            .join(root_sig_file(root.version, key.id()));
        write_atomic(&path, sig.to_file().as_bytes(), false)?;
    }
    write_atomic(&registry.join(ROOT_DIR).join(name), &bytes, false)
}
