//! Where the provisioned test binaries live.
//!
//! `scripts/provision-testdeps` fills one cache directory; this module finds it with the
//! same rule the script uses and turns a missing binary into an error that names the
//! binary and the command that provisions it.

use crate::user::effective_uid;
use crate::{KitError, Result};
use std::path::{Path, PathBuf};

/// The command that fills the cache, quoted in every "missing binary" error.
pub const PROVISION_COMMAND: &str = "scripts/provision-testdeps";

/// The PostgreSQL majors dbcrate supports, each provisioned with server and client tools.
pub const PG_MAJORS: [u32; 6] = [13, 14, 15, 16, 17, 18];

/// The provisioned cache of test binaries.
#[derive(Debug, Clone)]
pub struct Deps {
    root: PathBuf,
}

impl Deps {
    /// The cache the provisioning script fills by default: `$DBCRATE_TESTDEPS`, else
    /// `/var/cache/dbcrate-testdeps` for root, else `$XDG_CACHE_HOME/dbcrate-testdeps`
    /// (or `~/.cache/dbcrate-testdeps`).
    pub fn from_env() -> Self {
        let root = if let Some(dir) = std::env::var_os("DBCRATE_TESTDEPS") {
            PathBuf::from(dir)
        } else if effective_uid() == 0 {
            PathBuf::from("/var/cache/dbcrate-testdeps")
        } else if let Some(xdg) = std::env::var_os("XDG_CACHE_HOME") {
            PathBuf::from(xdg).join("dbcrate-testdeps")
        } else {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
            PathBuf::from(home).join(".cache/dbcrate-testdeps")
        };
        Self { root }
    }

    /// A cache at an explicit path.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A tool from `<root>/bin` (age, minisign, zstd, sshd, ssh, sftp, ssh-keygen, garage).
    pub fn tool(&self, name: &str) -> Result<PathBuf> {
        self.existing(self.root.join("bin").join(name))
    }

    /// libfaketime, to preload into one process whose wall clock a test moves.
    pub fn libfaketime(&self) -> Result<PathBuf> {
        self.existing(
            self.root
                .join("opt/faketime/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
        )
    }

    /// The directory holding PostgreSQL `major`'s server and client binaries.
    pub fn pg_bin_dir(&self, major: u32) -> Result<PathBuf> {
        if !PG_MAJORS.contains(&major) {
            return Err(KitError::new(format!(
                "PostgreSQL {major} is not a supported major; dbcrate tests cover {PG_MAJORS:?}"
            )));
        }
        let dir = self.root.join("pg").join(major.to_string()).join("bin");
        // pg_dump is the binary every caller needs; its absence means the major is missing.
        self.existing(dir.join("pg_dump"))?;
        Ok(dir)
    }

    /// One binary of PostgreSQL `major` (initdb, postgres, pg_dump, pg_restore, psql).
    pub fn pg_tool(&self, major: u32, name: &str) -> Result<PathBuf> {
        self.existing(self.pg_bin_dir(major)?.join(name))
    }

    fn existing(&self, path: PathBuf) -> Result<PathBuf> {
        if path.is_file() {
            Ok(path)
        } else {
            Err(KitError::new(format!(
                "missing test binary {}: run `{PROVISION_COMMAND}` (it fills {})",
                path.display(),
                self.root.display()
            )))
        }
    }
}
