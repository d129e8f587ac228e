//! Where a scheduled job may read and write a directory destination on this host: only
//! under the roots the agent's operator gave `dbcrate-agent run` (`--directory-root`,
//! repeatable, or `DBCRATE_AGENT_DIRECTORY_ROOTS`, comma-separated).
//!
//! The control plane has its own roots for the directories it reaches; these are the
//! agent's, on the database host, so that neither a control-plane admin nor a
//! compromised control plane can point a job at `/etc` or a database's data directory.
//! The rule is the control plane's ([`ReachPolicy::check_directory`]): an absolute path
//! without `.` or `..`, under a root, with no symbolic link below the root. It is checked
//! when a job's request is built, before anything is read or written. S3 and SFTP
//! destinations are not limited here, and neither are the one-shot `backup` and
//! `restore` commands, whose destination the operator types.

use crate::error::{Error, Result};
use dbcrate_storage::reach::ReachPolicy;
use dbcrate_storage::Location;
use std::path::{Path, PathBuf};

/// What every refusal says about the rule and how to change it.
const HOW: &str = "this agent reads and writes directory destinations only under the roots \
its operator gives with `dbcrate-agent run --directory-root DIR` (repeatable) or \
DBCRATE_AGENT_DIRECTORY_ROOTS (comma-separated)";

/// The directory roots a running agent's jobs are held to (none: every directory
/// destination is refused).
#[derive(Debug, Clone, Default)]
pub struct DirectoryRoots(ReachPolicy);

impl DirectoryRoots {
    /// Resolves the roots given to `run` (each absolute and existing; a root that is a
    /// symbolic link is resolved once, here). Empty entries (a trailing comma) are
    /// skipped. A root that cannot be used is an error: the agent does not start
    /// without a root it was given.
    pub fn resolve(roots: &[PathBuf]) -> Result<Self> {
        let roots: Vec<PathBuf> = roots
            .iter()
            .filter(|r| !r.as_os_str().is_empty())
            .cloned()
            .collect();
        ReachPolicy::new(vec![], &roots).map(Self).map_err(|e| {
            Error::invalid_input(format!(
                "--directory-root (or DBCRATE_AGENT_DIRECTORY_ROOTS): {}; the agent does not \
                 start without every root it is given",
                e.message()
            ))
        })
    }

    /// The resolved roots.
    pub fn roots(&self) -> &[PathBuf] {
        self.0.directory_roots()
    }

    fn check_directory(&self, path: &Path) -> Result<()> {
        if self.roots().is_empty() {
            return Err(Error::invalid_input(format!(
                "the directory {} is refused: no directory roots are configured; {HOW}",
                path.display()
            )));
        }
        self.0
            .check_directory(path)
            .map(|_| ())
            .map_err(|e| Error::invalid_input(format!("{}; {HOW}", e.message())))
    }

    /// Refuses a job's `destination` and the `object` it writes or reads there unless
    /// both are under a root: the destination's directory, the object's directories
    /// (none of them a symbolic link) and the object itself not a symbolic link. S3 and
    /// SFTP destinations pass.
    pub fn check(&self, destination: &Location, object: &Location) -> Result<()> {
        let Location::File { path: directory } = destination else {
            return Ok(());
        };
        self.check_directory(directory)?;
        let Location::File { path: file } = object else {
            return Ok(());
        };
        let parent = file
            .parent()
            .filter(|_| file.file_name().is_some())
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "the object {} is refused: it names no file",
                    file.display()
                ))
            })?;
        self.check_directory(parent)?;
        match std::fs::symlink_metadata(file) {
            Ok(meta) if meta.file_type().is_symlink() => Err(Error::invalid_input(format!(
                "the object {} is refused: it is a symbolic link (it could lead out of the \
                 root); {HOW}",
                file.display()
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dbcrate_testkit::TempDir;

    fn file(path: &Path) -> Location {
        Location::File {
            path: path.to_path_buf(),
        }
    }

    #[test]
    fn a_missing_root_is_refused_and_says_which_flag() {
        let dir = TempDir::new("agent-roots").unwrap();
        let missing = dir.path().join("missing");
        let err = DirectoryRoots::resolve(std::slice::from_ref(&missing)).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), crate::error::ErrorKind::InvalidInput);
        for needle in [
            &missing.display().to_string(),
            "create it first",
            "--directory-root",
        ] {
            assert!(text.contains(needle), "no {needle:?} in: {text}");
        }
        let err = DirectoryRoots::resolve(&[PathBuf::from("relative")]).unwrap_err();
        assert!(err.to_string().contains("not an absolute path"), "{err}");
        // A trailing comma in the environment gives an empty entry: skipped.
        let roots = DirectoryRoots::resolve(&[dir.path().to_path_buf(), PathBuf::new()]).unwrap();
        assert_eq!(roots.roots().len(), 1);
    }

    #[test]
    fn directories_are_held_to_the_roots() {
        let dir = TempDir::new("agent-roots").unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("backups")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let roots = DirectoryRoots::resolve(std::slice::from_ref(&root)).unwrap();
        let inside = root.join("backups");
        let object = file(&inside.join("shop/2026/01/02/x.pgdump.zst.age"));
        roots.check(&file(&inside), &object).unwrap();

        let refused = |destination: &Path, object: &Path, needle: &str| {
            let err = roots.check(&file(destination), &file(object)).unwrap_err();
            let text = err.to_string();
            assert_eq!(err.kind(), crate::error::ErrorKind::InvalidInput);
            for needle in [needle, "--directory-root", "DBCRATE_AGENT_DIRECTORY_ROOTS"] {
                assert!(text.contains(needle), "no {needle:?} in: {text}");
            }
        };
        refused(
            Path::new("/etc"),
            Path::new("/etc/x"),
            "/etc is refused: it is not under a configured directory root",
        );
        refused(&outside, &outside.join("x"), "not under a configured");
        // An object key that climbs out of the destination.
        refused(&inside, &inside.join("../../outside/x"), ". or ..");
        // A symbolic link below the root, as a directory of the object or as the object.
        std::os::unix::fs::symlink(&outside, inside.join("shop")).unwrap();
        refused(&inside, &inside.join("shop/x"), "symbolic link");
        std::os::unix::fs::symlink(outside.join("x"), inside.join("y")).unwrap();
        refused(&inside, &inside.join("y"), "symbolic link");

        // No roots at all: every directory is refused; other kinds pass.
        let none = DirectoryRoots::default();
        let err = none.check(&file(&inside), &object).unwrap_err();
        assert!(
            err.to_string()
                .contains("no directory roots are configured"),
            "{err}"
        );
        let s3 = Location::S3 {
            bucket: "b".into(),
            key: "k".into(),
        };
        none.check(&s3, &s3).unwrap();
    }
}
