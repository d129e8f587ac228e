//! What the agent remembers about a registry, in `<data-dir>/registry/<anchor>/`: the
//! newest verified root (`root.json`, its exact signed bytes) and the manifest floor
//! (`manifest-floor.json`). Both are written through a temporary file and a rename, so
//! a crash leaves either the old or the new state.
//!
//! `<anchor>` names the pinned root keys (a hash of their key bytes): the state belongs to
//! a chain of trust, not to a URL. Pinning other keys (another registry, or a control
//! plane that changed `DBCRATE_REGISTRY_ROOT_KEYS`) starts a state of its own from root
//! 1 instead of being refused by the old one; a mirror of the same registry shares it.
//!
//! Once a root is stored, the walk starts from it, not from the pinned key: keys
//! retired by a rotation can then never fork the chain (TUF's rule).
//!
//! The floor is kept per manifest key. Agents before that kept one version for the
//! whole set of manifest keys (`{"version": N, "manifest_keys": [...]}`); such a file is
//! read as floor N for each of those keys, so that no floor is ever lowered by the
//! upgrade.
//!
//! The data directory, `registry/` and `registry/<anchor>/` are opened and checked
//! (the agent's own, writable by nobody else: see [`crate::datadir`]) each time the
//! state is read or written, and so are its files; missing directories are made 0700.

use crate::datadir::Dir;
use crate::error::{Error, Result};
use dbcrate_core::registry::metadata::Root;
use dbcrate_core::registry::minisign::PublicKey;
use dbcrate_core::registry::trust::{ManifestFloor, TrustedRoot};
use serde::Deserialize;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The registry state directory of a data directory.
#[derive(Debug, Clone)]
pub struct State {
    data_dir: PathBuf,
    anchor: String,
    dir: PathBuf,
}

fn state_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::invalid_input(format!(
        "registry state {}: {e}; fix the data directory's permissions (--data-dir)",
        path.display()
    ))
}

impl State {
    /// The state of the registry whose root version 1 is pinned by `root_keys`, kept
    /// under `data_dir`.
    pub fn new(data_dir: &Path, root_keys: &[PublicKey]) -> Self {
        use sha2::Digest;
        let mut keys: Vec<[u8; 32]> = root_keys.iter().map(PublicKey::ed25519_bytes).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut hash = sha2::Sha256::new();
        for key in &keys {
            hash.update(key);
        }
        let anchor = dbcrate_core::hex::encode(&hash.finalize()[..8]);
        Self {
            data_dir: data_dir.to_path_buf(),
            dir: data_dir.join("registry").join(&anchor),
            anchor,
        }
    }

    /// The state directory, opened and checked from the data directory down (made if
    /// missing).
    fn open_dir(&self) -> Result<Dir> {
        Dir::open_data_dir(&self.data_dir, true)?
            .make_child("registry", "registry state directory")?
            .make_child(&self.anchor, "registry state directory")
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.dir.join(name);
        let Some(mut file) = self.open_dir()?.open_file(name, "registry state file")? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| state_error(&path, e))?;
        Ok(Some(bytes))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let dir = self.open_dir()?;
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| state_error(&tmp, e))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| state_error(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| state_error(&path, e))?;
        dir.sync()
    }

    /// The newest root trusted so far.
    pub fn root(&self) -> Result<Option<TrustedRoot>> {
        let Some(bytes) = self.read("root.json")? else {
            return Ok(None);
        };
        let (root, keys) =
            Root::parse(&bytes).map_err(|e| state_error(&self.dir.join("root.json"), e))?;
        Ok(Some(TrustedRoot { root, keys }))
    }

    /// Remembers a verified root (its signed bytes).
    pub fn save_root(&self, bytes: &[u8]) -> Result<()> {
        self.write("root.json", bytes)
    }

    /// The manifest floor (a floor in the old, single-version format is converted).
    pub fn floor(&self) -> Result<Option<ManifestFloor>> {
        let Some(bytes) = self.read("manifest-floor.json")? else {
            return Ok(None);
        };
        let path = self.dir.join("manifest-floor.json");
        match serde_json::from_slice::<ManifestFloor>(&bytes) {
            Ok(floor) => Ok(Some(floor)),
            Err(e) => match serde_json::from_slice::<LegacyFloor>(&bytes) {
                Ok(legacy) => {
                    tracing::info!(
                        path = %path.display(),
                        version = legacy.version,
                        "registry: converting a manifest floor of the old format (one \
                         version for all manifest keys) to a floor per manifest key"
                    );
                    Ok(Some(legacy.into_per_key()))
                }
                Err(_) => Err(Error::integrity(format!(
                    "registry state {}: {e}; the manifest floor is damaged. Deleting the \
                     file lets the agent accept any validly signed manifest again (including \
                     an older one a mirror replays), so first check that the registry serves \
                     its newest manifest",
                    path.display()
                ))),
            },
        }
    }

    /// Remembers the manifest floor.
    pub fn save_floor(&self, floor: &ManifestFloor) -> Result<()> {
        let bytes = serde_json::to_vec(floor).expect("plain struct serialises");
        self.write("manifest-floor.json", &bytes)
    }
}

/// The floor as agents wrote it before it was kept per manifest key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyFloor {
    version: u64,
    manifest_keys: Vec<String>,
}

impl LegacyFloor {
    /// The old floor applied to every key listed when it was written: never lower.
    fn into_per_key(self) -> ManifestFloor {
        ManifestFloor {
            versions_by_manifest_key: self
                .manifest_keys
                .into_iter()
                .map(|id| (id, self.version))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_format_floor_applies_to_each_key_it_listed() {
        let dir = dbcrate_testkit::TempDir::new("floor").unwrap();
        let state = State::new(dir.path(), &[]);
        state.open_dir().unwrap();
        std::fs::write(
            state.dir.join("manifest-floor.json"),
            br#"{"version":7,"manifest_keys":["0B0B0B0B0B0B0B0B","0C0C0C0C0C0C0C0C"]}"#,
        )
        .unwrap();
        let floor = state.floor().unwrap().unwrap();
        let expected = [
            ("0B0B0B0B0B0B0B0B".to_string(), 7),
            ("0C0C0C0C0C0C0C0C".to_string(), 7),
        ]
        .into_iter()
        .collect();
        assert_eq!(floor.versions_by_manifest_key, expected);
        // Saved again, it is in the new format and reads back the same.
        state.save_floor(&floor).unwrap();
        assert_eq!(state.floor().unwrap().unwrap(), floor);
    }

    #[test]
    fn damaged_floor_is_a_clear_error() {
        let dir = dbcrate_testkit::TempDir::new("floor").unwrap();
        let state = State::new(dir.path(), &[]);
        state.open_dir().unwrap();
        std::fs::write(state.dir.join("manifest-floor.json"), b"{\"v").unwrap();
        let err = state.floor().unwrap_err().to_string();
        assert!(err.contains("the manifest floor is damaged"), "{err}");
    }

    #[test]
    fn state_others_could_change_is_refused() {
        let dir = dbcrate_testkit::TempDir::new("floor").unwrap();
        let data = dir.path().join("data");
        let state = State::new(&data, &[]);
        assert!(state.root().unwrap().is_none());
        let floor = ManifestFloor {
            versions_by_manifest_key: [("0B0B0B0B0B0B0B0B".to_string(), 3)].into_iter().collect(),
        };
        state.save_floor(&floor).unwrap();
        let mode = |path: &Path| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(path).unwrap().permissions().mode() & 0o777
        };
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("registry")), 0o700);
        assert_eq!(mode(&state.dir), 0o700);
        assert_eq!(mode(&state.dir.join("manifest-floor.json")), 0o600);
        let set = |path: &Path, mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        // Someone else able to change the floor could roll the registry back.
        // (A file is only read if checked; writing replaces it with a private one.)
        for (path, loose, back, is_dir) in [
            (data.clone(), 0o777, 0o700, true),
            (data.join("registry"), 0o770, 0o700, true),
            (state.dir.clone(), 0o757, 0o700, true),
            (state.dir.join("manifest-floor.json"), 0o666, 0o600, false),
        ] {
            set(&path, loose);
            let mut errors = vec![state.floor().unwrap_err().to_string()];
            if is_dir {
                errors.push(state.save_floor(&floor).unwrap_err().to_string());
            }
            for err in errors {
                assert!(
                    err.contains(&format!("chmod go-w {}", path.display())),
                    "{}: {err}",
                    path.display()
                );
            }
            set(&path, back);
        }
        assert_eq!(state.floor().unwrap().unwrap(), floor);
    }

    fn key(seed: u8) -> PublicKey {
        let secret = ed25519_dalek::SigningKey::from_bytes(&[seed; 32]);
        PublicKey::from_signing_key(dbcrate_core::registry::minisign::KeyId([seed; 8]), &secret)
    }

    #[test]
    fn each_set_of_pinned_keys_has_a_state_of_its_own() {
        let data = Path::new("/var/lib/dbcrate");
        let (a, b) = (key(1), key(2));
        let ab = State::new(data, &[a.clone(), b.clone()]);
        assert_eq!(ab.dir, State::new(data, &[b.clone(), a.clone()]).dir);
        assert_eq!(ab.dir, State::new(data, &[a.clone(), b, a.clone()]).dir);
        assert_ne!(ab.dir, State::new(data, std::slice::from_ref(&a)).dir);
        assert_ne!(State::new(data, &[a]).dir, State::new(data, &[key(3)]).dir);
        assert!(ab.dir.starts_with("/var/lib/dbcrate/registry/"));
    }
}
