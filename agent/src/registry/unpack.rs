//! Unpacking a verified artifact (`tar` in zstd) into one directory, and nowhere else.
//!
//! The archive's hash was checked against the signed manifest before this runs, but the
//! unpacker still trusts nothing in it: only regular files and directories are
//! accepted (no symlinks or hard links that could point outside), every path must be
//! plain relative components (no `/`, `..`, or prefixes), files are created fresh
//! (never through an existing link), modes are reduced to 0755/0644, and the total size
//! and entry count are capped against decompression bombs.

use crate::error::{Error, Result};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// The most an artifact may unpack to.
const MAX_UNPACKED: u64 = 2 << 30;
/// The most entries an artifact may hold.
const MAX_ENTRIES: usize = 10_000;

fn refuse(message: String) -> Error {
    Error::integrity(format!(
        "unsafe artifact: {message}; nothing from it was run"
    ))
}

/// `raw` as a path under `dest`, or an error if it would leave it.
fn safe_join(dest: &Path, raw: &Path) -> Result<PathBuf> {
    let mut out = dest.to_path_buf();
    let mut depth = 0;
    for component in raw.components() {
        match component {
            Component::Normal(part) => {
                out.push(part);
                depth += 1;
            }
            Component::CurDir => {}
            _ => {
                return Err(refuse(format!(
                    "entry {:?} is not a plain relative path",
                    raw.display()
                )))
            }
        }
    }
    if depth == 0 {
        return Err(refuse(format!(
            "entry {:?} has an empty path",
            raw.display()
        )));
    }
    Ok(out)
}

/// Unpacks the zstd-compressed tar `archive` into the existing, empty directory `dest`.
pub fn unpack(archive: &Path, dest: &Path) -> Result<()> {
    let file = std::fs::File::open(archive)
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
        let target = safe_join(dest, &raw)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&target)
                .map_err(|e| Error::integrity(format!("creating {}: {e}", target.display())))?;
            continue;
        }
        if !kind.is_file() {
            return Err(refuse(format!(
                "entry {:?} is a {kind:?}; only regular files and directories are allowed",
                raw.display()
            )));
        }
        let mode = entry.header().mode().unwrap_or(0o644);
        let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::integrity(format!("creating {}: {e}", parent.display())))?;
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&target)
            .map_err(|e| refuse(format!("entry {:?} cannot be created ({e})", raw.display())))?;
        let budget = MAX_UNPACKED - total;
        let copied = std::io::copy(&mut (&mut entry).take(budget + 1), &mut out)
            .map_err(|e| refuse(format!("entry {:?}: {e}", raw.display())))?;
        if copied > budget {
            return Err(refuse(format!("unpacks to more than {MAX_UNPACKED} bytes")));
        }
        total += copied;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_join() {
        let dest = Path::new("/data/pg/16/x");
        assert_eq!(
            safe_join(dest, Path::new("bin/pg_dump")).unwrap(),
            Path::new("/data/pg/16/x/bin/pg_dump")
        );
        for bad in ["../evil", "bin/../../evil", "/etc/passwd", "", "."] {
            let err = safe_join(dest, Path::new(bad)).unwrap_err();
            assert!(err.to_string().contains("unsafe artifact"), "{bad}: {err}");
        }
    }
}
