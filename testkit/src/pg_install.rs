//! The real files behind a provisioned PostgreSQL client: what `dbcrate-registry build`
//! packages in tests.
//!
//! The cache's `pg/<major>/bin/*` are wrappers that `scripts/provision-testdeps`
//! writes (`entry PATH REAL [LIBDIR...]`): an optional `LD_LIBRARY_PATH='a:b'…` line
//! and `exec 'REAL' "$@"`. This reads them back, so tests can package the very
//! binaries the other tests run.

use crate::deps::Deps;
use crate::{KitError, Result};
use std::path::PathBuf;

/// The real client binaries of one major and the library directories they need.
#[derive(Debug, Clone)]
pub struct PgClientInstall {
    /// The directory holding the real `pg_dump` and `pg_restore`.
    pub bin_dir: PathBuf,
    /// Directories to search for their libraries first.
    pub lib_dirs: Vec<PathBuf>,
}

fn quoted(line: &str, prefix: &str) -> Option<String> {
    let rest = line.strip_prefix(prefix)?.strip_prefix('\'')?;
    Some(rest[..rest.find('\'')?].to_string())
}

impl Deps {
    /// Reads the provisioned wrappers of `major`'s pg_dump and pg_restore.
    pub fn pg_client_install(&self, major: u32) -> Result<PgClientInstall> {
        let mut found: Option<PgClientInstall> = None;
        for tool in ["pg_dump", "pg_restore"] {
            let wrapper = self.pg_tool(major, tool)?;
            let text = std::fs::read_to_string(&wrapper)
                .map_err(|e| KitError::io(format!("reading {}", wrapper.display()), e))?;
            let real = text
                .lines()
                .find_map(|l| quoted(l, "exec "))
                .ok_or_else(|| {
                    KitError::new(format!(
                        "{} is not a provision-testdeps wrapper; run `{}` again",
                        wrapper.display(),
                        crate::PROVISION_COMMAND
                    ))
                })?;
            let lib_dirs = text
                .lines()
                .find_map(|l| quoted(l, "LD_LIBRARY_PATH="))
                .map(|dirs| dirs.split(':').map(PathBuf::from).collect())
                .unwrap_or_default();
            let bin_dir = PathBuf::from(&real)
                .parent()
                .map(PathBuf::from)
                .unwrap_or_default();
            let install = PgClientInstall { bin_dir, lib_dirs };
            match &found {
                Some(first) if first.bin_dir != install.bin_dir => {
                    return Err(KitError::new(format!(
                        "PostgreSQL {major}: pg_dump and pg_restore live in different \
                         directories ({} and {})",
                        first.bin_dir.display(),
                        install.bin_dir.display()
                    )))
                }
                _ => found = Some(install),
            }
        }
        Ok(found.expect("two tools read"))
    }
}
