//! The signer's operations, one function each, used by the CLI and by tests.
//!
//! Every operation that changes root writes root N+1 and checks it with the same rule
//! the agent applies ([`verify_next_root`]) before it is written, so the signer can
//! never publish a root the agents would refuse.

use crate::error::{Error, Result};
use crate::keyfile::SecretKey;
use crate::keys::{KeyDir, Role};
use crate::tree::{newest_root, read_optional, write_atomic, write_root};
use dbcrate_core::registry::layout::{root_file, MANIFEST, MANIFEST_SIG, ROOT_DIR};
use dbcrate_core::registry::metadata::{
    expiry, Manifest, Root, MAX_MANIFEST_KEYS, MAX_ROOT_KEYS, ROOT_TYPE,
};
use dbcrate_core::registry::minisign::{PublicKey, Signature};
use dbcrate_core::registry::trust::{
    check_root_fresh, verify_manifest, verify_next_root, TrustedRoot,
};
use dbcrate_core::time::UtcDateTime;
use sha2::{Digest, Sha256};
use std::path::Path;

/// What every operation needs: the registry tree, the keys, the clock.
#[derive(Debug)]
pub struct Signer<'a> {
    /// The registry tree (the directory that is published).
    pub registry: &'a Path,
    /// The key directory.
    pub keys: &'a KeyDir,
    /// Now, as Unix seconds.
    pub now: i64,
    /// How long a new root stays valid, in days.
    pub root_days: u32,
}

fn expires(now: i64, days: u32) -> String {
    UtcDateTime::from_unix(now + i64::from(days) * 86_400).rfc3339()
}

impl Signer<'_> {
    /// Creates `root_keys` root keys and root version 1 signed by all of them.
    pub fn init(&self, root_keys: u32, threshold: u32) -> Result<Root> {
        let first = self.registry.join(ROOT_DIR).join(root_file(1));
        if first.exists() {
            return Err(Error::new(format!(
                "{} already exists: this registry is initialised (use rotate-root to \
                 change its keys)",
                first.display()
            )));
        }
        if root_keys == 0 || threshold == 0 || threshold > root_keys {
            return Err(Error::new("--threshold must be between 1 and --root-keys"));
        }
        check_root_key_count(root_keys)?;
        let keys = (0..root_keys)
            .map(|_| self.keys.generate(Role::Root))
            .collect::<Result<Vec<_>>>()?;
        let root = Root {
            kind: ROOT_TYPE.into(),
            version: 1,
            expires: expires(self.now, self.root_days),
            root_keys: keys.iter().map(|k| k.public().to_base64()).collect(),
            root_threshold: threshold,
            manifest_keys: Vec::new(),
        };
        write_root(
            self.registry,
            &root,
            &keys.iter().collect::<Vec<_>>(),
            self.now,
        )?;
        Ok(root)
    }

    /// Publishes root N+1 = `change(root N)`, signed by every root key of N and N+1 the
    /// key directory holds (plus `new_keys`), after checking the agents' rule holds.
    fn next_root(&self, change: impl FnOnce(&mut Root)) -> Result<Root> {
        let current = newest_root(self.registry, None)?;
        let mut next = current.root.clone();
        next.version += 1;
        next.expires = expires(self.now, self.root_days);
        change(&mut next);
        let (_, next_keys) = Root::parse(&next.to_json())?;
        let mut signers = self.keys.load_all(Role::Root, &current.keys.root)?;
        let added: Vec<PublicKey> = next_keys
            .root
            .into_iter()
            .filter(|k| !current.keys.root.contains(k))
            .collect();
        signers.extend(self.keys.load_all(Role::Root, &added)?);
        let refs: Vec<&SecretKey> = signers.iter().collect();
        let bytes = next.to_json();
        let sigs: Vec<Signature> = refs
            .iter()
            .map(|k| Signature::sign(k.id(), k.signing_key(), &bytes, "check"))
            .collect();
        verify_next_root(&current, &bytes, &sigs).map_err(|e| {
            Error::new(format!(
                "{e}; the key directory holds too few root keys to sign root version {} \
                 (merge the other holders' key files in, see docs/registry-key-rotation.md)",
                next.version
            ))
        })?;
        write_root(self.registry, &next, &refs, self.now)?;
        Ok(next)
    }

    /// Adds a manifest key (a new one, or `public` from elsewhere) in a new root version.
    pub fn add_manifest_key(&self, public: Option<PublicKey>) -> Result<(Root, PublicKey)> {
        let current = newest_root(self.registry, None)?;
        if current.keys.manifest.len() >= MAX_MANIFEST_KEYS {
            return Err(Error::new(format!(
                "root version {} already lists {MAX_MANIFEST_KEYS} manifest keys, the most \
                 agents accept; remove one first (remove-manifest-key)",
                current.root.version
            )));
        }
        let key = match public {
            Some(k) => k,
            None => self.keys.generate(Role::Manifest)?.public(),
        };
        let line = key.to_base64();
        if current.keys.manifest.iter().any(|k| k.id() == key.id()) {
            return Err(Error::new(format!(
                "manifest key {} is already listed in root version {}",
                key.id(),
                current.root.version
            )));
        }
        let root = self.next_root(|r| r.manifest_keys.push(line))?;
        Ok((root, key))
    }

    /// Removes manifest key `id` (hex, as printed) in a new root version.
    pub fn remove_manifest_key(&self, id: &str) -> Result<Root> {
        let current = newest_root(self.registry, None)?;
        let keep: Vec<String> = current
            .keys
            .manifest
            .iter()
            .filter(|k| !k.id().to_string().eq_ignore_ascii_case(id))
            .map(PublicKey::to_base64)
            .collect();
        if keep.len() == current.keys.manifest.len() {
            return Err(Error::new(format!(
                "root version {} lists no manifest key {id}",
                current.root.version
            )));
        }
        self.next_root(|r| r.manifest_keys = keep)
    }

    /// Replaces the root keys with `count` new ones (threshold `threshold`), signed by
    /// the old and the new keys.
    pub fn rotate_root(&self, count: u32, threshold: u32) -> Result<Root> {
        if count == 0 || threshold == 0 || threshold > count {
            return Err(Error::new("--threshold must be between 1 and --root-keys"));
        }
        check_root_key_count(count)?;
        // Check first that the old keys are here, before creating new key files.
        let current = newest_root(self.registry, None)?;
        let held = self.keys.load_all(Role::Root, &current.keys.root)?;
        if held.len() < current.root.root_threshold as usize {
            return Err(Error::new(format!(
                "root version {} needs {} of its root keys to sign the rotation; the key \
                 directory holds {}",
                current.root.version,
                current.root.root_threshold,
                held.len()
            )));
        }
        let new_keys = (0..count)
            .map(|_| self.keys.generate(Role::Root))
            .collect::<Result<Vec<_>>>()?;
        let lines: Vec<String> = new_keys.iter().map(|k| k.public().to_base64()).collect();
        self.next_root(|r| {
            r.root_keys = lines;
            r.root_threshold = threshold;
        })
    }

    /// Signs the tree's manifest.json with a manifest key of the newest root that the key
    /// directory holds (`key_id` chooses when it holds several). With `expires_days`, the
    /// manifest's expiry is first set to that many days from now: signing is when an
    /// operator vouches for the tree's freshness, and a tree built reproducibly (its clock
    /// at SOURCE_DATE_EPOCH) carries an expiry in the past.
    pub fn sign_manifest(
        &self,
        key_id: Option<&str>,
        expires_days: Option<u32>,
    ) -> Result<Manifest> {
        let root = newest_root(self.registry, None)?;
        check_root_fresh(&root, self.now)?;
        let path = self.registry.join(MANIFEST);
        let bytes = read_optional(&path)?.ok_or_else(|| {
            Error::new(format!(
                "{} does not exist: run `dbcrate-registry build` first",
                path.display()
            ))
        })?;
        let mut manifest = Manifest::parse(&bytes)?;
        // Written only once it is signed, so a refused key leaves the tree as it was.
        let rewritten = expires_days.map(|days| {
            manifest.expires = expires(self.now, days);
            manifest.to_json()
        });
        let bytes = rewritten.clone().unwrap_or(bytes);
        if expiry(&manifest.expires, "manifest.json")? <= self.now {
            return Err(Error::new(format!(
                "manifest.json version {} expires {}, which has passed; sign it with \
                 --expires-days N to give it a new expiry N days from now",
                manifest.version, manifest.expires
            )));
        }
        let candidates: Vec<PublicKey> = root
            .keys
            .manifest
            .iter()
            .filter(|k| key_id.is_none_or(|id| k.id().to_string().eq_ignore_ascii_case(id)))
            .cloned()
            .collect();
        let mut held = self.keys.load_all(Role::Manifest, &candidates)?;
        let key = match held.len() {
            1 => held.remove(0),
            0 => {
                return Err(Error::new(format!(
                    "the key directory holds no manifest key listed in root version {}; \
                     run add-manifest-key",
                    root.root.version
                )))
            }
            _ => {
                return Err(Error::new(
                    "the key directory holds several manifest keys; choose one with --key-id",
                ))
            }
        };
        let comment = format!("timestamp:{}\tfile:{MANIFEST}\thashed", self.now);
        let sig = Signature::sign(key.id(), key.signing_key(), &bytes, &comment);
        verify_manifest(&root, &bytes, &sig, self.now, None)?;
        if let Some(rewritten) = &rewritten {
            write_atomic(&path, rewritten, false)?;
        }
        write_atomic(
            &self.registry.join(MANIFEST_SIG),
            sig.to_file().as_bytes(),
            false,
        )?;
        Ok(manifest)
    }
}

/// Refuses `--root-keys` above what agents accept, before any key file is created.
fn check_root_key_count(count: u32) -> Result<()> {
    if count as usize > MAX_ROOT_KEYS {
        return Err(Error::new(format!(
            "--root-keys {count}: a root may list at most {MAX_ROOT_KEYS} root keys"
        )));
    }
    Ok(())
}

/// What `verify` found.
#[derive(Debug)]
pub struct VerifyReport {
    /// The newest root's version.
    pub root_version: u64,
    /// The manifest's version.
    pub manifest_version: u64,
    /// Artifacts present in the tree and checked (length and SHA-256).
    pub artifacts_checked: usize,
}

/// The agent's checks on a local registry tree, from the pinned root key(s): root chain,
/// expiry, manifest signature, and every artifact the tree holds (length, SHA-256).
pub fn verify_tree(registry: &Path, pinned: &[PublicKey], now: i64) -> Result<VerifyReport> {
    let root: TrustedRoot = newest_root(registry, Some(pinned))?;
    check_root_fresh(&root, now)?;
    let bytes = read_optional(&registry.join(MANIFEST))?
        .ok_or_else(|| Error::new("the tree has no manifest.json"))?;
    let sig_bytes = read_optional(&registry.join(MANIFEST_SIG))?.ok_or_else(|| {
        Error::new("the tree has no manifest.json.minisig: run `dbcrate-signer sign-manifest`")
    })?;
    let sig = Signature::parse(&String::from_utf8_lossy(&sig_bytes))?;
    let manifest = verify_manifest(&root, &bytes, &sig, now, None)?;
    let mut checked = 0;
    for a in &manifest.artifacts {
        if a.url.contains("://") {
            continue; // hosted elsewhere; the agent checks it on download
        }
        let path = registry.join(&a.url);
        let data = std::fs::read(&path).map_err(|e| Error::io_at("reading artifact", &path, e))?;
        if data.len() as u64 != a.length {
            return Err(Error::new(format!(
                "{}: {} bytes, the manifest says {}",
                path.display(),
                data.len(),
                a.length
            )));
        }
        let hash = dbcrate_core::hex::encode(&Sha256::digest(&data));
        if hash != a.sha256 {
            return Err(Error::new(format!(
                "{}: SHA-256 {hash} differs from the manifest's {}",
                path.display(),
                a.sha256
            )));
        }
        checked += 1;
    }
    Ok(VerifyReport {
        root_version: root.root.version,
        manifest_version: manifest.version,
        artifacts_checked: checked,
    })
}
