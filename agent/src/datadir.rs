//! The agent's data directory (`--data-dir`, default `/var/lib/dbcrate`) and the
//! directories under it that the agent uses: `identity/`, `registry/<anchor>/` (the
//! registry's trust state) and `pg/<major>/<sha256>/` (the tool cache).
//!
//! Whoever can write to one of them can make the agent run a program of their choosing
//! with the database password in its environment (a `pg_dump` planted in the tool
//! cache), or change what it trusts. So each must be owned by the agent's user and
//! writable by nobody else; otherwise the agent refuses it and says which `chmod` or
//! `chown` fixes it. The data directory is opened once and checked on its open
//! descriptor; each directory under it is opened relative to its parent's descriptor
//! without following a symbolic link (`openat` with `O_DIRECTORY | O_NOFOLLOW`) and
//! checked on its own descriptor, so what is checked is what is used. The data
//! directory itself may be a symbolic link (to another disk, say): what it points to is
//! checked. Its parent directories are not; they should belong to root, as `/var/lib`
//! does.
//!
//! Directories the agent creates here are made with mode 0700, whatever the umask.

use crate::error::{Error, Result};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A checked directory, open.
#[derive(Debug)]
pub struct Dir {
    file: std::fs::File,
    path: PathBuf,
}

impl Dir {
    /// Opens the data directory `path` and checks it (a directory, the agent's own,
    /// writable by nobody else). With `create`, a missing one is made first (0700, with
    /// any missing parents).
    pub fn open_data_dir(path: &Path, create: bool) -> Result<Self> {
        let what = "data directory";
        if create {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(|e| {
                    Error::invalid_input(format!(
                        "cannot create the {what} {}: {e}; check --data-dir",
                        path.display()
                    ))
                })?;
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| {
                Error::invalid_input(format!(
                    "cannot open the {what} {}: {e}; check --data-dir",
                    path.display()
                ))
            })?;
        check_file(&file, path, what)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The directory's path (as given, then joined).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open directory.
    pub fn file(&self) -> &std::fs::File {
        &self.file
    }

    /// Opens the directory `name` in this one (never through a symbolic link) and
    /// checks it; `what` names it in errors. A missing one is `None`, or with `create`
    /// made first (0700).
    pub fn child(&self, name: &str, what: &str, create: bool) -> Result<Option<Self>> {
        let path = self.path.join(name);
        if create {
            match mkdir_at(&self.file, name, 0o700) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => {
                    return Err(Error::invalid_input(format!(
                        "cannot create the {what} {}: {e}",
                        path.display()
                    )))
                }
            }
        }
        match open_at(&self.file, name, libc::O_DIRECTORY) {
            Ok(file) => {
                check_file(&file, &path, what)?;
                Ok(Some(Self { file, path }))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(refused(&e, &path, what, "directory")),
        }
    }

    /// Opens the file `name` in this directory for reading (never through a symbolic
    /// link) and checks it: a regular file, the agent's own, writable by nobody else.
    /// A missing one is `None`.
    pub fn open_file(&self, name: &str, what: &str) -> Result<Option<std::fs::File>> {
        let path = self.path.join(name);
        let file = match open_at(&self.file, name, 0) {
            Ok(file) => file,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) => return Err(refused(&e, &path, what, "file")),
        };
        let meta = file.metadata().map_err(|e| {
            Error::invalid_input(format!("cannot inspect the {what} {}: {e}", path.display()))
        })?;
        if !meta.is_file() {
            return Err(Error::invalid_input(format!(
                "the {what} {} is not a regular file",
                path.display()
            )));
        }
        check_metadata(&meta, &path, what)?;
        Ok(Some(file))
    }

    /// [`Self::child`] with `create`: the directory, made first if missing.
    pub fn make_child(&self, name: &str, what: &str) -> Result<Self> {
        self.child(name, what, true)?.ok_or_else(|| {
            Error::invalid_input(format!(
                "the {what} {} vanished as it was made",
                self.path.join(name).display()
            ))
        })
    }

    /// Flushes the directory's entries (after a rename into it).
    pub fn sync(&self) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| Error::invalid_input(format!("cannot sync {}: {e}", self.path.display())))
    }
}

fn check_file(file: &std::fs::File, path: &Path, what: &str) -> Result<()> {
    let meta = file.metadata().map_err(|e| {
        Error::invalid_input(format!("cannot inspect the {what} {}: {e}", path.display()))
    })?;
    if !meta.is_dir() {
        return Err(Error::invalid_input(format!(
            "the {what} {} is not a directory",
            path.display()
        )));
    }
    check_metadata(&meta, path, what)
}

fn refused(e: &std::io::Error, path: &Path, what: &str, kind: &str) -> Error {
    // O_NOFOLLOW refuses a link with ELOOP (ENOTDIR where a directory was asked for).
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if e.raw_os_error() == Some(libc::ELOOP) || is_link {
        Error::invalid_input(format!(
            "the {what} {} is a symbolic link; the agent uses only a real {kind} there: \
             remove the link",
            path.display()
        ))
    } else {
        Error::invalid_input(format!("cannot open the {what} {}: {e}", path.display()))
    }
}

/// The rules for anything under the data directory, on metadata of what was opened:
/// owned by the agent's user, writable by neither group nor others.
pub fn check_metadata(meta: &std::fs::Metadata, path: &Path, what: &str) -> Result<()> {
    let me = effective_uid();
    if meta.uid() != me {
        return Err(Error::invalid_input(format!(
            "the {what} {} is owned by uid {}, not by the agent's user (uid {me}): run \
             `chown {me} {}` as root, or run the agent as its owner",
            path.display(),
            meta.uid(),
            path.display()
        )));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(Error::invalid_input(format!(
            "the {what} {} has mode {:o}: group or others can write to it, and so could plant \
             a program the agent runs or change what it trusts; run `chmod go-w {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

/// `openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | flags)`.
#[allow(unsafe_code)]
pub(crate) fn open_at(
    dir: &std::fs::File,
    name: &str,
    flags: libc::c_int,
) -> std::io::Result<std::fs::File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let name = std::ffi::CString::new(name)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: the directory's descriptor is open for the whole call and `name` is a
    // NUL-terminated string that outlives it; openat has no other preconditions.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | flags,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat, is valid, and nothing else owns it.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// `mkdirat(dir, name, mode)` (the umask can only narrow `mode`).
#[allow(unsafe_code)]
fn mkdir_at(dir: &std::fs::File, name: &str, mode: u32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let name = std::ffi::CString::new(name)
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: as for openat above; mkdirat only reads `name`.
    let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The agent's effective user id.
#[allow(unsafe_code)]
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_data_directory_others_can_write_to_is_refused_with_the_fix() {
        let scratch = dbcrate_testkit::TempDir::new("data-dir").unwrap();
        let data = scratch.path().join("data");
        Dir::open_data_dir(&data, true).unwrap();
        let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        for loose in [0o777, 0o775, 0o770, 0o757, 0o1777] {
            set_mode(&data, loose);
            let err = Dir::open_data_dir(&data, false).unwrap_err().to_string();
            assert!(err.contains("data directory"), "{loose:o}: {err}");
            assert!(err.contains(&data.display().to_string()), "{err}");
            assert!(
                err.contains(&format!("chmod go-w {}", data.display())),
                "{loose:o}: {err}"
            );
        }
        // Readable by others is fine: nothing secret is kept at this level.
        for fine in [0o755, 0o750, 0o700] {
            set_mode(&data, fine);
            Dir::open_data_dir(&data, false).unwrap();
        }
    }

    #[test]
    fn directories_under_it_are_checked_and_never_followed_through_a_link() {
        let scratch = dbcrate_testkit::TempDir::new("data-dir").unwrap();
        let data = Dir::open_data_dir(&scratch.path().join("data"), true).unwrap();
        assert!(data.child("pg", "tool cache", false).unwrap().is_none());
        let pg = data.child("pg", "tool cache", true).unwrap().unwrap();
        assert_eq!(pg.path(), scratch.path().join("data/pg"));
        set_mode(pg.path(), 0o777);
        let err = data
            .child("pg", "tool cache", true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the tool cache"), "{err}");
        assert!(err.contains("chmod go-w"), "{err}");
        set_mode(pg.path(), 0o700);
        // A link to a directory that would pass is still refused.
        std::fs::rename(pg.path(), scratch.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(scratch.path().join("elsewhere"), pg.path()).unwrap();
        let err = data
            .child("pg", "tool cache", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
        // A file where a directory belongs.
        std::fs::remove_file(pg.path()).unwrap();
        std::fs::write(pg.path(), b"").unwrap();
        assert!(data.child("pg", "tool cache", true).is_err());
    }

    #[test]
    fn files_under_it_are_checked_on_the_open_file() {
        let scratch = dbcrate_testkit::TempDir::new("data-dir").unwrap();
        let data = Dir::open_data_dir(scratch.path(), false).unwrap();
        assert!(data.open_file("state", "state file").unwrap().is_none());
        let path = scratch.path().join("state");
        std::fs::write(&path, b"x").unwrap();
        set_mode(&path, 0o644);
        assert!(data.open_file("state", "state file").unwrap().is_some());
        set_mode(&path, 0o664);
        let err = data
            .open_file("state", "state file")
            .unwrap_err()
            .to_string();
        assert!(err.contains("chmod go-w"), "{err}");
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(scratch.path().join("other"), &path).unwrap();
        let err = data
            .open_file("state", "state file")
            .unwrap_err()
            .to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn another_owner_is_refused_with_the_fix() {
        if effective_uid() != 0 {
            return; // Only root can hand a directory to another user.
        }
        let scratch = dbcrate_testkit::TempDir::new("data-dir").unwrap();
        let data = scratch.path().join("data");
        Dir::open_data_dir(&data, true).unwrap();
        std::os::unix::fs::chown(&data, Some(65534), None).unwrap();
        let err = Dir::open_data_dir(&data, false).unwrap_err().to_string();
        assert!(err.contains("owned by uid 65534"), "{err}");
        assert!(
            err.contains(&format!("chown 0 {}", data.display())),
            "{err}"
        );
    }
}
