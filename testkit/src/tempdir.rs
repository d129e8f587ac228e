//! Temporary directories that vanish on drop (unless kept for debugging).

use crate::random::random_hex;
use crate::{KitError, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A fresh directory under the system temp dir, removed with everything in it on drop.
/// Set `DBCRATE_KEEP_TEST_DIRS=1` to keep it (its path is printed) for a post-mortem.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `<tmp>/dbcrate-<label>-<random>` with mode 0755 so that a server running
    /// as another user can reach files inside it that are handed to that user.
    pub fn new(label: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("dbcrate-{label}-{}", random_hex(6)?));
        std::fs::create_dir(&path)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)))
            .map_err(|e| KitError::io(format!("creating {}", path.display()), e))?;
        Ok(Self { path })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("DBCRATE_KEEP_TEST_DIRS").is_some() {
            eprintln!("kept test directory {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
