//! Unpacking a verified artifact (`tar` in zstd) into one directory, and nowhere else;
//! and checking, before each use, that what was unpacked is still exactly that.
//!
//! The archive's hash was checked against the signed manifest before this runs, but the
//! unpacker still trusts nothing in it: only regular files and directories are
//! accepted (no symlinks or hard links that could point outside), every path must be
//! plain relative components (no `/`, `..`, or prefixes), files are created fresh
//! (never through an existing link), modes are reduced to 0755/0644 (directories 0755),
//! and the total size and entry count are capped against decompression bombs.
//!
//! The archive is kept beside what it unpacked to (`.dbcrate-artifact.tar.zst`), so that
//! [`verify_unpacked`] can check the cache against the manifest's SHA-256 again before
//! each use: the archive's hash, then every entry of it against the file on disk, and
//! nothing on disk that the archive does not hold.

use crate::datadir::check_metadata;
use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// The most an artifact may unpack to.
const MAX_UNPACKED: u64 = 2 << 30;
/// The most entries an artifact may hold.
const MAX_ENTRIES: usize = 10_000;
/// A marker written last into an unpacked artifact: its presence means complete.
pub const VERIFIED_MARKER: &str = ".dbcrate-verified";
/// The verified archive, kept to check the unpacked files against before each use.
pub const KEPT_ARCHIVE: &str = ".dbcrate-artifact.tar.zst";

fn refuse(message: String) -> Error {
    Error::integrity(format!(
        "unsafe artifact: {message}; nothing from it was run"
    ))
}

/// `raw` as plain relative components, or an error if it would leave the directory.
fn relative(raw: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => {
                return Err(refuse(format!(
                    "entry {:?} is not a plain relative path",
                    raw.display()
                )))
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(refuse(format!(
            "entry {:?} has an empty path",
            raw.display()
        )));
    }
    if out == Path::new(VERIFIED_MARKER) || out == Path::new(KEPT_ARCHIVE) {
        return Err(refuse(format!(
            "entry {:?} has a name the agent keeps for itself",
            raw.display()
        )));
    }
    Ok(out)
}

/// One entry of an artifact.
enum Entry<'a> {
    Dir,
    File {
        executable: bool,
        content: &'a mut dyn Read,
    },
}

/// Reads the archive entry by entry under every rule above, giving each (as a plain
/// relative path) to `visit`, which returns how many bytes of a file it read.
fn walk(archive: &Path, mut visit: impl FnMut(&Path, Entry<'_>) -> Result<u64>) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(archive)
        .map_err(|e| Error::integrity(format!("opening {}: {e}", archive.display())))?;
    let decoder =
        zstd::Decoder::new(file).map_err(|e| refuse(format!("not zstd-compressed ({e})")))?;
    let mut tar = tar::Archive::new(decoder);
    let entries = tar
        .entries()
        .map_err(|e| refuse(format!("not a tar archive ({e})")))?;
    let mut total: u64 = 0;
    for (count, entry) in entries.enumerate() {
        if count >= MAX_ENTRIES {
            return Err(refuse(format!("more than {MAX_ENTRIES} entries")));
        }
        let mut entry = entry.map_err(|e| refuse(format!("damaged tar archive ({e})")))?;
        let raw = entry
            .path()
            .map_err(|e| refuse(format!("unreadable entry name ({e})")))?
            .into_owned();
        let rel = relative(&raw)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            visit(&rel, Entry::Dir)?;
            continue;
        }
        if !kind.is_file() {
            return Err(refuse(format!(
                "entry {:?} is a {kind:?}; only regular files and directories are allowed",
                raw.display()
            )));
        }
        let executable = entry.header().mode().unwrap_or(0o644) & 0o111 != 0;
        let budget = MAX_UNPACKED - total;
        let mut content = (&mut entry).take(budget + 1);
        let read = visit(
            &rel,
            Entry::File {
                executable,
                content: &mut content,
            },
        )?;
        if read > budget {
            return Err(refuse(format!("unpacks to more than {MAX_UNPACKED} bytes")));
        }
        total += read;
    }
    Ok(())
}

fn make_dirs(path: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .map_err(|e| Error::integrity(format!("creating {}: {e}", path.display())))
}

/// Unpacks the zstd-compressed tar `archive` into the existing, empty directory `dest`.
pub fn unpack(archive: &Path, dest: &Path) -> Result<()> {
    walk(archive, |rel, entry| {
        let target = dest.join(rel);
        let (executable, content) = match entry {
            Entry::Dir => return make_dirs(&target).map(|()| 0),
            Entry::File {
                executable,
                content,
            } => (executable, content),
        };
        if let Some(parent) = target.parent() {
            make_dirs(parent)?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if executable { 0o755 } else { 0o644 })
            .open(&target)
            .map_err(|e| refuse(format!("entry {:?} cannot be created ({e})", rel.display())))?;
        std::io::copy(content, &mut out)
            .map_err(|e| refuse(format!("entry {:?}: {e}", rel.display())))
    })
}

/// SHA-256 of everything `reader` gives, and how many bytes that was.
fn sha256_of(reader: &mut dyn Read) -> std::io::Result<([u8; 32], u64)> {
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok((hash.finalize().into(), total));
        }
        hash.update(&buf[..n]);
        total += n as u64;
    }
}

/// Opens `path` for reading without following a symbolic link, and checks that it is a
/// regular file of the agent's own that nobody else can write.
fn open_checked(path: &Path, what: &str) -> Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| changed(format!("{} cannot be opened ({e})", path.display())))?;
    let meta = file
        .metadata()
        .map_err(|e| changed(format!("{} cannot be inspected ({e})", path.display())))?;
    if !meta.is_file() {
        return Err(changed(format!("{} is not a regular file", path.display())));
    }
    check_metadata(&meta, path, what)?;
    Ok(file)
}

/// Why a cache no longer matches its artifact (the caller names the cache and the way
/// out).
fn changed(detail: String) -> Error {
    Error::integrity(detail)
}

/// Checks that `dir`, where an artifact with SHA-256 `sha256` was unpacked, still holds
/// exactly that: the kept archive has that hash; every file of it is on disk with the
/// same bytes, and every directory; nothing else is there (no extra file, no symbolic
/// link); and all of it is the agent's own and writable by nobody else. The error says
/// what differs.
pub fn verify_unpacked(dir: &Path, sha256: &str) -> Result<()> {
    let archive = dir.join(KEPT_ARCHIVE);
    let mut file = open_checked(&archive, "cached artifact")?;
    let (digest, _) = sha256_of(&mut file)
        .map_err(|e| changed(format!("{} cannot be read ({e})", archive.display())))?;
    let got = dbcrate_core::hex::encode(&digest);
    if got != sha256 {
        return Err(changed(format!(
            "the kept archive has SHA-256 {got}, the signed manifest lists {sha256}"
        )));
    }
    let mut expected: HashSet<PathBuf> = HashSet::new();
    walk(&archive, |rel, entry| {
        for ancestor in rel.ancestors().skip(1) {
            if !ancestor.as_os_str().is_empty() {
                expected.insert(ancestor.to_path_buf());
            }
        }
        expected.insert(rel.to_path_buf());
        let path = dir.join(rel);
        match entry {
            Entry::Dir => match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => Ok(0),
                _ => Err(changed(format!(
                    "{} is not the directory the artifact holds",
                    rel.display()
                ))),
            },
            Entry::File { content, .. } => {
                let mut on_disk = open_checked(&path, "cached tool file")?;
                let (want, read) = sha256_of(content)
                    .map_err(|e| refuse(format!("entry {:?}: {e}", rel.display())))?;
                let (have, _) = sha256_of(&mut on_disk)
                    .map_err(|e| changed(format!("{} cannot be read ({e})", path.display())))?;
                if want != have {
                    return Err(changed(format!(
                        "{} differs from the artifact",
                        rel.display()
                    )));
                }
                Ok(read)
            }
        }
    })?;
    nothing_else(dir, Path::new(""), &expected)
}

/// Walks the unpacked tree: every entry must be one the archive holds; directories are
/// checked like the ones above them.
fn nothing_else(root: &Path, rel: &Path, expected: &HashSet<PathBuf>) -> Result<()> {
    let dir = root.join(rel);
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| changed(format!("{} cannot be listed ({e})", dir.display())))?;
    for entry in entries {
        let entry =
            entry.map_err(|e| changed(format!("{} cannot be listed ({e})", dir.display())))?;
        let name = entry.file_name();
        if rel.as_os_str().is_empty() && (name == VERIFIED_MARKER || name == KEPT_ARCHIVE) {
            continue;
        }
        let child = rel.join(&name);
        let path = root.join(&child);
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| changed(format!("{} cannot be inspected ({e})", path.display())))?;
        if meta.file_type().is_symlink() {
            return Err(changed(format!(
                "{} is a symbolic link, which no artifact holds",
                child.display()
            )));
        }
        if !expected.contains(&child) {
            return Err(changed(format!(
                "{} is there but not in the artifact",
                child.display()
            )));
        }
        if meta.is_dir() {
            check_metadata(&meta, &path, "cached tools directory")?;
            nothing_else(root, &child, expected)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A tar + zstd artifact of `files` (path, executable, bytes) and one directory;
    /// its SHA-256.
    fn artifact(path: &Path, files: &[(&str, bool, &[u8])]) -> String {
        let out = std::fs::File::create(path).unwrap();
        let mut tar = tar::Builder::new(zstd::Encoder::new(out, 3).unwrap());
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o755);
        dir.set_size(0);
        tar.append_data(&mut dir, "share/", std::io::empty())
            .unwrap();
        for (name, executable, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_mode(if *executable { 0o755 } else { 0o644 });
            header.set_size(bytes.len() as u64);
            tar.append_data(&mut header, name, *bytes).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap();
        dbcrate_core::hex::encode(
            &sha256_of(&mut std::fs::File::open(path).unwrap())
                .unwrap()
                .0,
        )
    }

    /// An artifact unpacked into `<scratch>/tools` as the client leaves it.
    fn unpacked(scratch: &Path) -> (PathBuf, String) {
        let dest = scratch.join("tools");
        std::fs::create_dir(&dest).unwrap();
        let archive = dest.join(KEPT_ARCHIVE);
        let sha = artifact(
            &archive,
            &[
                ("bin/pg_dump", true, b"#!/bin/sh\nexec real\n"),
                ("lib/libpq.so.5", false, b"\x7fELF library"),
            ],
        );
        unpack(&archive, &dest).unwrap();
        std::fs::write(dest.join(VERIFIED_MARKER), &sha).unwrap();
        (dest, sha)
    }

    fn still_fine(dest: &Path, sha: &str) {
        verify_unpacked(dest, sha).unwrap();
    }

    fn refused(dest: &Path, sha: &str, needle: &str) {
        let err = verify_unpacked(dest, sha).expect_err(needle).to_string();
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
    }

    #[test]
    fn an_untouched_cache_verifies_and_any_change_is_found() {
        let scratch = dbcrate_testkit::TempDir::new("unpack").unwrap();
        let (dest, sha) = unpacked(scratch.path());
        assert_eq!(
            std::fs::read(dest.join("bin/pg_dump")).unwrap(),
            b"#!/bin/sh\nexec real\n"
        );
        still_fine(&dest, &sha);
        let tool = dest.join("bin/pg_dump");

        // The same length, one byte changed.
        std::fs::write(&tool, b"#!/bin/sh\nexec evil\n").unwrap();
        refused(&dest, &sha, "bin/pg_dump differs from the artifact");
        std::fs::write(&tool, b"#!/bin/sh\nexec real\n").unwrap();
        still_fine(&dest, &sha);

        // Replaced by a link to an identical file elsewhere.
        let elsewhere = scratch.path().join("pg_dump");
        std::fs::copy(&tool, &elsewhere).unwrap();
        std::fs::remove_file(&tool).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &tool).unwrap();
        refused(&dest, &sha, "bin/pg_dump");
        std::fs::remove_file(&tool).unwrap();
        std::fs::copy(&elsewhere, &tool).unwrap();
        still_fine(&dest, &sha);

        // An extra library the wrapper's LD_LIBRARY_PATH would load.
        std::fs::write(dest.join("lib/libevil.so"), b"x").unwrap();
        refused(
            &dest,
            &sha,
            "lib/libevil.so is there but not in the artifact",
        );
        std::fs::remove_file(dest.join("lib/libevil.so")).unwrap();

        // A directory turned into a link.
        std::fs::rename(dest.join("share"), scratch.path().join("share")).unwrap();
        std::os::unix::fs::symlink(scratch.path().join("share"), dest.join("share")).unwrap();
        refused(&dest, &sha, "share");
        std::fs::remove_file(dest.join("share")).unwrap();
        std::fs::rename(scratch.path().join("share"), dest.join("share")).unwrap();
        still_fine(&dest, &sha);

        // A file others may write: refused with the fix, even though the bytes match.
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o775)).unwrap();
        refused(&dest, &sha, "chmod go-w");
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dest.join("lib"), std::fs::Permissions::from_mode(0o777)).unwrap();
        refused(&dest, &sha, "chmod go-w");
        std::fs::set_permissions(dest.join("lib"), std::fs::Permissions::from_mode(0o755)).unwrap();
        still_fine(&dest, &sha);

        // A file gone.
        std::fs::remove_file(dest.join("lib/libpq.so.5")).unwrap();
        refused(&dest, &sha, "lib/libpq.so.5");
    }

    #[test]
    fn the_kept_archive_must_still_have_the_manifest_hash() {
        let scratch = dbcrate_testkit::TempDir::new("unpack").unwrap();
        let (dest, sha) = unpacked(scratch.path());
        // Someone who changes the tools and the archive together: the archive's hash
        // is checked against the signed manifest's, which they cannot change.
        let archive = dest.join(KEPT_ARCHIVE);
        let forged = artifact(
            &archive,
            &[
                ("bin/pg_dump", true, b"#!/bin/sh\nexec evil\n"),
                ("lib/libpq.so.5", false, b"\x7fELF library"),
            ],
        );
        std::fs::write(dest.join("bin/pg_dump"), b"#!/bin/sh\nexec evil\n").unwrap();
        assert_ne!(forged, sha);
        refused(&dest, &sha, "the signed manifest lists");
        std::fs::remove_file(&archive).unwrap();
        refused(&dest, &sha, KEPT_ARCHIVE);
    }

    #[test]
    fn names_the_agent_keeps_are_refused_in_an_archive() {
        let scratch = dbcrate_testkit::TempDir::new("unpack").unwrap();
        let archive = scratch.path().join("a.tar.zst");
        artifact(&archive, &[(VERIFIED_MARKER, false, b"x")]);
        let dest = scratch.path().join("out");
        std::fs::create_dir(&dest).unwrap();
        let err = unpack(&archive, &dest).unwrap_err().to_string();
        assert!(err.contains("keeps for itself"), "{err}");
    }

    #[test]
    fn only_plain_relative_paths_join() {
        assert_eq!(
            relative(Path::new("bin/pg_dump")).unwrap(),
            Path::new("bin/pg_dump")
        );
        assert_eq!(
            relative(Path::new("./bin/./pg_dump")).unwrap(),
            Path::new("bin/pg_dump")
        );
        for bad in [
            "../evil",
            "bin/../../evil",
            "/etc/passwd",
            "",
            ".",
            VERIFIED_MARKER,
            KEPT_ARCHIVE,
        ] {
            let err = relative(Path::new(bad)).unwrap_err();
            assert!(err.to_string().contains("unsafe artifact"), "{bad}: {err}");
        }
        // Only at the top: deeper, those names are plain files of the artifact.
        relative(Path::new("share/.dbcrate-verified")).unwrap();
    }
}
