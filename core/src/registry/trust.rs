//! The trust rules of the registry, as pure functions of the documents, their
//! signatures, what was trusted before, and `now`.
//!
//! TUF-lite: the agent pins the key(s) of root version 1, then walks `N → N+1`. Root
//! N+1 must say version N+1 and be signed by a threshold of root N's keys **and** a
//! threshold of its own keys, each key counted once (by public key; a root listing a
//! key twice, under any id, is refused): old keys vouch for the new ones,
//! and the new keys prove they are held. Only the newest root has to be unexpired (old
//! roots may have lapsed long ago). A manifest must be signed by a manifest key of the
//! newest root, be unexpired, and not be older than any manifest already accepted with
//! the signature of a key that root still lists. The floor is kept per manifest key
//! (the highest version each key signed): adding a key keeps the old key's floor, so a
//! mirror cannot replay the old key's older manifests during a rotation, while removing
//! a key drops its floor, so that a version inflated with a leaked key stops locking
//! clients out once that key is removed from root.

use super::metadata::{expiry, Manifest, Root, RootKeys};
use super::minisign::{KeyId, PublicKey, Signature};
use super::RegistryError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A root whose signatures have been checked back to the pinned keys.
#[derive(Debug, Clone)]
pub struct TrustedRoot {
    /// The document.
    pub root: Root,
    /// Its parsed keys.
    pub keys: RootKeys,
}

/// What the agent persists about manifests: for each manifest key, the highest manifest
/// version accepted with its signature.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFloor {
    /// Manifest key id (minisign hex, as printed) → the highest manifest version accepted
    /// signed by that key.
    pub versions_by_manifest_key: BTreeMap<String, u64>,
}

impl ManifestFloor {
    /// The floor that binds under `keys`: the highest version recorded for a manifest key
    /// they still list, with that key's id. Keys no longer listed do not count.
    pub fn binding(&self, keys: &RootKeys) -> Option<(u64, &str)> {
        let listed = key_ids(keys);
        self.versions_by_manifest_key
            .iter()
            .filter(|(id, _)| listed.contains(id))
            .map(|(id, version)| (*version, id.as_str()))
            .max()
    }
}

/// The number of distinct `keys` with a valid signature over `data` among `sigs`,
/// counted by public key (one key pair counts once, whatever ids it is listed under).
fn valid_signers(keys: &[PublicKey], sigs: &[Signature], data: &[u8], what: &str) -> usize {
    let mut signers: BTreeSet<[u8; 32]> = BTreeSet::new();
    for sig in sigs {
        if let Some(key) = keys.iter().find(|k| k.id() == sig.key_id()) {
            if sig.verify(key, data, what).is_ok() {
                signers.insert(key.ed25519_bytes());
            }
        }
    }
    signers.len()
}

fn ids(keys: &[PublicKey]) -> String {
    keys.iter()
        .map(|k| k.id().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Verifies root version 1 against the pinned key(s): it must list at least one of them
/// and carry valid signatures from its threshold of pinned keys.
pub fn verify_first_root(
    bytes: &[u8],
    sigs: &[Signature],
    pinned: &[PublicKey],
) -> Result<TrustedRoot, RegistryError> {
    let (root, keys) = Root::parse(bytes)?;
    if root.version != 1 {
        return Err(RegistryError::RootVersion(format!(
            "the first root says version {}, expected 1",
            root.version
        )));
    }
    let trusted: Vec<PublicKey> = keys
        .root
        .iter()
        .filter(|k| pinned.iter().any(|p| p == *k))
        .cloned()
        .collect();
    let signed = valid_signers(&trusted, sigs, bytes, "root version 1");
    if signed < root.root_threshold as usize {
        return Err(RegistryError::Threshold(format!(
            "root version 1 has {signed} valid signature(s) by pinned root keys ({}), needs \
             {}; check that --registry-root-key is this registry's root key",
            ids(pinned),
            root.root_threshold
        )));
    }
    Ok(TrustedRoot { root, keys })
}

/// Verifies root `current.version + 1`, signed by a threshold of `current`'s root keys
/// and a threshold of its own.
pub fn verify_next_root(
    current: &TrustedRoot,
    bytes: &[u8],
    sigs: &[Signature],
) -> Result<TrustedRoot, RegistryError> {
    let expected = current.root.version + 1;
    let (root, keys) = Root::parse(bytes)?;
    if root.version != expected {
        return Err(RegistryError::RootVersion(format!(
            "the root published as version {expected} says version {}; roots must follow \
             each other one version at a time",
            root.version
        )));
    }
    let what = format!("root version {expected}");
    let by_old = valid_signers(&current.keys.root, sigs, bytes, &what);
    if by_old < current.root.root_threshold as usize {
        return Err(RegistryError::Threshold(format!(
            "{what} has {by_old} valid signature(s) by the keys of root version {} ({}), \
             needs {}",
            current.root.version,
            ids(&current.keys.root),
            current.root.root_threshold
        )));
    }
    let by_new = valid_signers(&keys.root, sigs, bytes, &what);
    if by_new < root.root_threshold as usize {
        return Err(RegistryError::Threshold(format!(
            "{what} has {by_new} valid signature(s) by its own root keys ({}), needs {}",
            ids(&keys.root),
            root.root_threshold
        )));
    }
    Ok(TrustedRoot { root, keys })
}

/// Refuses the newest root once it has expired.
pub fn check_root_fresh(root: &TrustedRoot, now: i64) -> Result<(), RegistryError> {
    let what = format!("root version {}", root.root.version);
    if expiry(&root.root.expires, &what)? <= now {
        return Err(RegistryError::Expired(format!(
            "{what} expired at {}; the registry operator must publish a new root",
            root.root.expires
        )));
    }
    Ok(())
}

/// Verifies manifest.json under `root`: signed by one of its manifest keys, unexpired
/// at `now`, and not older than the highest version `floor` records for a manifest key
/// `root` still lists (the same version is accepted again: a client re-checking an
/// unchanged registry).
pub fn verify_manifest(
    root: &TrustedRoot,
    bytes: &[u8],
    sig: &Signature,
    now: i64,
    floor: Option<&ManifestFloor>,
) -> Result<Manifest, RegistryError> {
    let key = root
        .keys
        .manifest
        .iter()
        .find(|k| k.id() == sig.key_id())
        .ok_or_else(|| {
            RegistryError::UnknownKey(format!(
                "manifest.json is signed by key {}, which root version {} does not list as a \
                 manifest key (listed: {})",
                sig.key_id(),
                root.root.version,
                ids(&root.keys.manifest)
            ))
        })?;
    sig.verify(key, bytes, "manifest.json")?;
    let manifest = Manifest::parse(bytes)?;
    if expiry(&manifest.expires, "manifest.json")? <= now {
        return Err(RegistryError::Expired(format!(
            "manifest.json version {} expired at {}; the registry operator must sign a new \
             manifest",
            manifest.version, manifest.expires
        )));
    }
    if let Some((highest, by)) = floor.and_then(|f| f.binding(&root.keys)) {
        if manifest.version < highest {
            return Err(RegistryError::Rollback(format!(
                "manifest.json is version {} but version {highest} was already accepted \
                 (signed by manifest key {by}, which root version {} still lists); an old \
                 manifest is being replayed — the registry operator must publish a manifest \
                 of version {highest} or higher",
                manifest.version, root.root.version
            )));
        }
    }
    Ok(manifest)
}

fn key_ids(keys: &RootKeys) -> Vec<String> {
    keys.manifest_key_ids()
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// The floor to persist after accepting `manifest`, signed by `signed_by`, under `root`:
/// the previous floors of the keys `root` still lists (the others are dropped), with
/// `signed_by`'s raised to `manifest.version`. No floor is ever lowered.
pub fn floor_after(
    root: &TrustedRoot,
    manifest: &Manifest,
    signed_by: KeyId,
    previous: Option<&ManifestFloor>,
) -> ManifestFloor {
    let listed = key_ids(&root.keys);
    let mut versions_by_manifest_key: BTreeMap<String, u64> = previous
        .map(|p| {
            p.versions_by_manifest_key
                .iter()
                .filter(|(id, _)| listed.contains(id))
                .map(|(id, version)| (id.clone(), *version))
                .collect()
        })
        .unwrap_or_default();
    let signer = signed_by.to_string();
    if listed.contains(&signer) {
        let version = versions_by_manifest_key.entry(signer).or_insert(0);
        *version = (*version).max(manifest.version);
    }
    ManifestFloor {
        versions_by_manifest_key,
    }
}
