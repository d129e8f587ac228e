//! The private directory a parallel restore stages its decrypted dump in.
//!
//! `pg_restore --jobs` needs to seek in its archive, so a parallel restore cannot read
//! a pipe: the decrypted (uncompressed) dump must sit in a file while pg_restore runs.
//! That file is the whole database in plaintext, so it goes only where the operator
//! said it may (`--staging-dir`), into a fresh directory of its own that only the
//! agent's user can enter (0700; the file itself 0600), and the directory is removed on
//! every way out of the restore: success, failure, a signal (the guard is dropped as
//! the restore returns). A SIGKILL or a power cut cannot be cleaned up after; the next
//! staged restore into the same directory removes what such a run left (its name
//! carries the pid of the agent that made it, which no longer runs).

use crate::error::{Error, Result};
use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Names of the directories this module makes: `<PREFIX><pid>-<nanos>`.
const PREFIX: &str = "dbcrate-restore-";

/// A staging directory, removed with everything in it when dropped.
#[derive(Debug)]
pub struct StagingDir {
    private_dir: PathBuf,
}

impl StagingDir {
    /// Makes a new private directory under `parent` (absolute, existing, a directory),
    /// after removing what earlier agents killed mid-restore left there.
    pub fn create(parent: &Path) -> Result<Self> {
        let named = |problem: String| {
            Error::invalid_input(format!(
                "--staging-dir {}: {problem}; name an existing directory on a disk with \
                 room for the uncompressed dump",
                parent.display()
            ))
        };
        if !parent.is_absolute() {
            return Err(named("not an absolute path".into()));
        }
        match std::fs::metadata(parent) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(named("not a directory".into())),
            Err(e) => return Err(named(e.to_string())),
        }
        remove_leftovers(parent);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = parent.join(format!("{PREFIX}{}-{nanos}", std::process::id()));
        DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| named(format!("cannot create {}: {e}", path.display())))?;
        let staging = Self { private_dir: path };
        // The umask can only take bits away; set the mode outright all the same.
        std::fs::set_permissions(&staging.private_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| named(format!("cannot make it private: {e}")))?;
        Ok(staging)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.private_dir
    }

    /// Creates the file the dump is staged in (new, 0600).
    pub fn create_dump_file(&self) -> Result<(PathBuf, File)> {
        let path = self.private_dir.join("dump");
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::invalid_input(format!("cannot create {}: {e}", path.display())))?;
        Ok((path, file))
    }
}

impl Drop for StagingDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.private_dir) {
            tracing::error!(
                "could not remove the staged dump at {}: {e}; remove it by hand, it holds \
                 the database in plaintext",
                self.private_dir.display()
            );
        }
    }
}

/// Removes the staging directories under `parent` whose agent no longer runs (killed
/// mid-restore) and that belong to this user.
fn remove_leftovers(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    // Our own uid: the owner of /proc/self.
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    for leftover in entries.flatten() {
        let name = leftover.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let ours = leftover.metadata().ok().map(|m| m.uid()) == me;
        if !ours || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        tracing::warn!(
            "removing {}, a staged dump left by an agent that was killed mid-restore",
            leftover.path().display()
        );
        if let Err(e) = std::fs::remove_dir_all(leftover.path()) {
            tracing::error!("could not remove {}: {e}", leftover.path().display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_directory_is_private_and_gone_after_drop() {
        let parent = dbcrate_testkit::TempDir::new("staging").unwrap();
        let staging = StagingDir::create(parent.path()).unwrap();
        let meta = std::fs::metadata(staging.path()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
        let (path, mut file) = staging.create_dump_file().unwrap();
        file.write_all(b"plaintext").unwrap();
        let file_mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(file_mode, 0o600);
        let dir = staging.path().to_path_buf();
        drop(staging);
        assert!(!dir.exists());
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    }

    #[test]
    fn leftovers_of_dead_agents_are_removed_and_live_ones_kept() {
        let parent = dbcrate_testkit::TempDir::new("staging-leftovers").unwrap();
        // No process has pid 4194304 or more (the kernel's pid_max ceiling).
        let dead = parent.path().join(format!("{PREFIX}4194305-1"));
        let live = parent
            .path()
            .join(format!("{PREFIX}{}-1", std::process::id()));
        let other = parent.path().join("dbcrate-restore-notes");
        for d in [&dead, &live, &other] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("dump"), b"x").unwrap();
        }
        let staging = StagingDir::create(parent.path()).unwrap();
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
        drop(staging);
    }

    #[test]
    fn a_bad_staging_dir_is_refused_with_the_fix() {
        let parent = dbcrate_testkit::TempDir::new("staging-bad").unwrap();
        let file = parent.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        for (dir, problem) in [
            (PathBuf::from("relative"), "not an absolute path"),
            (file, "not a directory"),
            (parent.path().join("missing"), "No such file"),
        ] {
            let e = StagingDir::create(&dir).unwrap_err().to_string();
            assert!(
                e.contains(problem) && e.contains("name an existing directory"),
                "{e}"
            );
        }
    }
}
