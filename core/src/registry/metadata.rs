//! The registry's two signed documents, `root.json` and `manifest.json`.
//!
//! Both are parsed with `deny_unknown_fields`: a field this build does not know could
//! carry a rule it would silently ignore, so it is an error instead. `type` names the
//! document, so a signed root can never be passed off as a manifest or the reverse.

use super::minisign::{KeyId, PublicKey};
use super::RegistryError;
use crate::time::parse_rfc3339;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The `type` of every root.json.
pub const ROOT_TYPE: &str = "dbcrate-registry-root";
/// The `type` of every manifest.json.
pub const MANIFEST_TYPE: &str = "dbcrate-registry-manifest";
/// The most root keys a root may list (far above any real ceremony; bounds the work of
/// checking a root a mirror sends).
pub const MAX_ROOT_KEYS: usize = 32;
/// The most manifest keys a root may list.
pub const MAX_MANIFEST_KEYS: usize = 32;

/// `root.json`: which keys may sign the next root and the manifests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Root {
    /// Always [`ROOT_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// 1 for the first root; each rotation adds exactly one.
    pub version: u64,
    /// RFC 3339 UTC (`YYYY-MM-DDTHH:MM:SSZ`) after which the root is refused.
    pub expires: String,
    /// Root public keys (minisign base64 lines), at most [`MAX_ROOT_KEYS`].
    pub root_keys: Vec<String>,
    /// How many distinct root keys must sign a root (this one and the next). Each key
    /// (id and public key) may be listed once.
    pub root_threshold: u32,
    /// Keys allowed to sign manifest.json (minisign base64 lines), at most
    /// [`MAX_MANIFEST_KEYS`].
    pub manifest_keys: Vec<String>,
}

/// `manifest.json`: one downloadable artifact per PostgreSQL major and architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// Grows with every published manifest; clients refuse a lower one (replay).
    pub version: u64,
    /// RFC 3339 UTC after which the manifest is refused (a frozen mirror goes stale).
    pub expires: String,
    /// The artifacts.
    pub artifacts: Vec<Artifact>,
}

/// One artifact: pg_dump and pg_restore of one major for one architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// The PostgreSQL major (13, 14, …).
    pub pg_major: u32,
    /// The CPU architecture, as Rust names it (`x86_64`, `aarch64`).
    pub arch: String,
    /// The full version (`16.2`).
    pub pg_version: String,
    /// Where to fetch it: relative to the registry URL, or an absolute https URL.
    pub url: String,
    /// Exact size in bytes; the client reads no more.
    pub length: u64,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
}

/// Root keys and manifest keys of a root, parsed.
#[derive(Debug, Clone)]
pub struct RootKeys {
    /// Root keys: distinct ids and distinct public keys.
    pub root: Vec<PublicKey>,
    /// Manifest keys: distinct ids and distinct public keys.
    pub manifest: Vec<PublicKey>,
}

fn parse_keys(list: &[String], what: &str, max: usize) -> Result<Vec<PublicKey>, RegistryError> {
    if list.len() > max {
        return Err(RegistryError::BadMetadata(format!(
            "{what} lists {} keys; at most {max} are allowed (remove keys that are no \
             longer used)",
            list.len()
        )));
    }
    let mut keys: Vec<PublicKey> = Vec::with_capacity(list.len());
    for text in list {
        let key = PublicKey::parse(text)
            .map_err(|e| RegistryError::BadMetadata(format!("{what}: {e}")))?;
        // Thresholds count key holders: a key listed twice, or one public key under two
        // ids, would let one holder count twice, so such a root is refused outright.
        if keys.iter().any(|k| k.id() == key.id()) {
            return Err(RegistryError::BadMetadata(format!(
                "{what} lists key {} twice; list each key once",
                key.id()
            )));
        }
        if let Some(same) = keys
            .iter()
            .find(|k| k.ed25519_bytes() == key.ed25519_bytes())
        {
            return Err(RegistryError::BadMetadata(format!(
                "{what} lists the same public key as {} and {}; each key must be a \
                 distinct key pair (list it once)",
                same.id(),
                key.id()
            )));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Expiry of a document as Unix seconds, or a clear error.
pub fn expiry(expires: &str, what: &str) -> Result<i64, RegistryError> {
    parse_rfc3339(expires).ok_or_else(|| {
        RegistryError::BadMetadata(format!(
            "{what}: expires {expires:?} is not of the form YYYY-MM-DDTHH:MM:SSZ"
        ))
    })
}

impl Root {
    /// Parses and checks a root.json: type, keys, threshold and expiry syntax.
    pub fn parse(bytes: &[u8]) -> Result<(Self, RootKeys), RegistryError> {
        let root: Self = serde_json::from_slice(bytes)
            .map_err(|e| RegistryError::BadMetadata(format!("root.json: {e}")))?;
        if root.kind != ROOT_TYPE {
            return Err(RegistryError::BadMetadata(format!(
                "root.json: type is {:?}, not {ROOT_TYPE:?}",
                root.kind
            )));
        }
        if root.version == 0 {
            return Err(RegistryError::BadMetadata(
                "root.json: version must be 1 or more".into(),
            ));
        }
        expiry(&root.expires, "root.json")?;
        let keys = root.keys()?;
        if root.root_threshold == 0 || root.root_threshold as usize > keys.root.len() {
            return Err(RegistryError::BadMetadata(format!(
                "root.json version {}: root_threshold {} needs between 1 and {} (the number \
                 of distinct root keys)",
                root.version,
                root.root_threshold,
                keys.root.len()
            )));
        }
        Ok((root, keys))
    }

    /// The parsed keys.
    pub fn keys(&self) -> Result<RootKeys, RegistryError> {
        Ok(RootKeys {
            root: parse_keys(&self.root_keys, "root.json: root_keys", MAX_ROOT_KEYS)?,
            manifest: parse_keys(
                &self.manifest_keys,
                "root.json: manifest_keys",
                MAX_MANIFEST_KEYS,
            )?,
        })
    }

    /// Pretty JSON with a final newline, the form the signer writes.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("plain struct serialises");
        out.push(b'\n');
        out
    }
}

impl RootKeys {
    /// The sorted ids of the manifest keys (what the manifest floor is tied to).
    pub fn manifest_key_ids(&self) -> Vec<KeyId> {
        let mut ids: Vec<KeyId> = self.manifest.iter().map(PublicKey::id).collect();
        ids.sort();
        ids
    }
}

impl Manifest {
    /// Parses and checks a manifest.json: type, expiry syntax and artifact fields.
    pub fn parse(bytes: &[u8]) -> Result<Self, RegistryError> {
        let manifest: Self = serde_json::from_slice(bytes)
            .map_err(|e| RegistryError::BadMetadata(format!("manifest.json: {e}")))?;
        if manifest.kind != MANIFEST_TYPE {
            return Err(RegistryError::BadMetadata(format!(
                "manifest.json: type is {:?}, not {MANIFEST_TYPE:?}",
                manifest.kind
            )));
        }
        expiry(&manifest.expires, "manifest.json")?;
        let mut seen = BTreeSet::new();
        for a in &manifest.artifacts {
            // Exactly the form the client's hash is printed in: compared as text later,
            // another form would only fail then, as a misleading "tampered artifact".
            let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
            if a.sha256.len() != 64 || !a.sha256.bytes().all(lower_hex) {
                return Err(RegistryError::BadMetadata(format!(
                    "manifest.json: PostgreSQL {} {}: sha256 must be 64 lower-case hex \
                     digits, got {:?}; write the SHA-256 as `sha256sum` prints it",
                    a.pg_major, a.arch, a.sha256
                )));
            }
            if !seen.insert((a.pg_major, a.arch.clone())) {
                return Err(RegistryError::BadMetadata(format!(
                    "manifest.json: two artifacts for PostgreSQL {} {}",
                    a.pg_major, a.arch
                )));
            }
        }
        Ok(manifest)
    }

    /// The artifact for `pg_major` on `arch`, if listed.
    pub fn artifact(&self, pg_major: u32, arch: &str) -> Option<&Artifact> {
        self.artifacts
            .iter()
            .find(|a| a.pg_major == pg_major && a.arch == arch)
    }

    /// Pretty JSON with a final newline, the form `dbcrate-registry build` writes.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("plain struct serialises");
        out.push(b'\n');
        out
    }
}
