//! What the agent remembers about the registry, in `<data-dir>/registry/`: the newest
//! verified root (`root.json`, its exact signed bytes) and the manifest floor
//! (`manifest-floor.json`). Both are written through a temporary file and a rename, so
//! a crash leaves either the old or the new state.
//!
//! Once a root is stored, the walk starts from it, not from the pinned key: keys
//! retired by a rotation can then never fork the chain (TUF's rule).

use crate::error::{Error, Result};
use dbcrate_core::registry::metadata::Root;
use dbcrate_core::registry::trust::{ManifestFloor, TrustedRoot};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The registry state directory of a data directory.
#[derive(Debug, Clone)]
pub struct State {
    dir: PathBuf,
}

fn state_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::invalid_input(format!(
        "registry state {}: {e}; fix the data directory's permissions (--data-dir)",
        path.display()
    ))
}

impl State {
    /// The state kept under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("registry"),
        }
    }

    fn read(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.dir.join(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(state_error(&path, e)),
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| state_error(&self.dir, e))?;
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut file = std::fs::File::create(&tmp).map_err(|e| state_error(&tmp, e))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| state_error(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| state_error(&path, e))
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

    /// The manifest floor.
    pub fn floor(&self) -> Result<Option<ManifestFloor>> {
        let Some(bytes) = self.read("manifest-floor.json")? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| state_error(&self.dir.join("manifest-floor.json"), e))
    }

    /// Remembers the manifest floor.
    pub fn save_floor(&self, floor: &ManifestFloor) -> Result<()> {
        let bytes = serde_json::to_vec(floor).expect("plain struct serialises");
        self.write("manifest-floor.json", &bytes)
    }
}
