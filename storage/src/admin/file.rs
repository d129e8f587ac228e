//! The control plane's operations on a local directory (or a mount it shares with the
//! agents).

use super::{random_hex, DeleteOutcome, ObjectInfo, MAX_LIST_DEPTH};
use crate::error::{Error, Result};
use std::io::{ErrorKind, SeekFrom};
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// The destination directory.
pub(super) struct FileDestination {
    root: PathBuf,
}

impl FileDestination {
    pub(super) fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// Fails unless the destination directory exists: a mistyped path must not be
    /// created, listed as empty, or make every object look absent.
    async fn check_root(&self) -> Result<()> {
        match tokio::fs::metadata(&self.root).await {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(Error::storage(format!(
                "{} is not a directory; the destination must be a directory",
                self.root.display()
            ))),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::storage(format!(
                "the destination directory {} does not exist; create it (dbcrate does not \
                 create a destination's top directory) or fix the path",
                self.root.display()
            ))),
            Err(e) => Err(Error::storage(format!(
                "cannot reach the destination directory {}: {e}",
                self.root.display()
            ))),
        }
    }

    pub(super) async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ObjectInfo>> {
        self.check_root().await?;
        let mut out = Vec::new();
        // Depth-first, each directory sorted, so the order is stable.
        let mut stack = vec![(prefix.to_string(), 0usize)];
        while let Some((relative, depth)) = stack.pop() {
            let dir = if relative.is_empty() {
                self.root.clone()
            } else {
                self.root.join(&relative)
            };
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound && depth == 0 => return Ok(out),
                Err(e) => {
                    return Err(Error::storage(format!(
                        "cannot list {}: {e}",
                        dir.display()
                    )))
                }
            };
            let mut names = Vec::new();
            loop {
                match entries.next_entry().await {
                    Ok(Some(entry)) => names.push(entry),
                    Ok(None) => break,
                    Err(e) => {
                        return Err(Error::storage(format!(
                            "cannot list {}: {e}",
                            dir.display()
                        )))
                    }
                }
            }
            names.sort_by_key(|e| e.file_name());
            let mut subdirs = Vec::new();
            for entry in names {
                // Names that are not UTF-8 cannot be keys; skip them.
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let key = super::join(&relative, &name);
                let Ok(meta) = entry.metadata().await else {
                    continue;
                };
                if meta.is_dir() {
                    if depth + 1 < MAX_LIST_DEPTH {
                        subdirs.push((key, depth + 1));
                    }
                } else if meta.is_file() {
                    out.push(ObjectInfo {
                        key,
                        size: meta.len(),
                    });
                    if out.len() >= limit {
                        return Ok(out);
                    }
                }
            }
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(out)
    }

    pub(super) async fn put_small(&self, key: &str, bytes: &[u8], overwrite: bool) -> Result<()> {
        self.check_root().await?;
        let target = self.root.join(key);
        let parent = target.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(|e| Error::storage(format!("cannot create {}: {e}", parent.display())))?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = parent.join(format!(".{name}.tmp-{}", random_hex(8)?));
        let result = write_then_publish(&temp, &target, bytes, overwrite).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        result?;
        let dir = tokio::fs::File::open(&parent)
            .await
            .map_err(|e| Error::storage(format!("opening {}: {e}", parent.display())))?;
        dir.sync_all()
            .await
            .map_err(|e| Error::storage(format!("fsync of {}: {e}", parent.display())))
    }

    pub(super) async fn get_range(&self, key: &str, start: u64, len: u64) -> Result<Vec<u8>> {
        let path = self.root.join(key);
        let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::storage(format!("{} does not exist", path.display()))
            } else {
                Error::storage(format!("cannot open {}: {e}", path.display()))
            }
        })?;
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| Error::storage(format!("seeking in {}: {e}", path.display())))?;
        let mut out = Vec::new();
        file.take(len)
            .read_to_end(&mut out)
            .await
            .map_err(|e| Error::storage(format!("reading {}: {e}", path.display())))?;
        Ok(out)
    }

    pub(super) async fn delete(&self, key: &str) -> Result<DeleteOutcome> {
        let path = self.root.join(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(DeleteOutcome::Deleted),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // "Absent" only if the destination itself is there.
                self.check_root().await?;
                Ok(DeleteOutcome::Absent)
            }
            Err(e) => Err(Error::storage(format!(
                "cannot delete {}: {e}",
                path.display()
            ))),
        }
    }

    pub(super) async fn exists(&self, key: &str) -> Result<bool> {
        let path = self.root.join(key);
        match tokio::fs::symlink_metadata(&path).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.check_root().await?;
                Ok(false)
            }
            Err(e) => Err(Error::storage(format!(
                "cannot look up {}: {e}",
                path.display()
            ))),
        }
    }
}

/// Writes `bytes` to a new `temp`, fsyncs it, and publishes it as `target`: a hard
/// link (which refuses an existing name) without `overwrite`, a rename with it.
async fn write_then_publish(
    temp: &Path,
    target: &Path,
    bytes: &[u8],
    overwrite: bool,
) -> Result<()> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .await
        .map_err(|e| Error::storage(format!("cannot create {}: {e}", temp.display())))?;
    file.write_all(bytes)
        .await
        .map_err(|e| Error::storage(format!("writing {}: {e}", temp.display())))?;
    file.sync_all()
        .await
        .map_err(|e| Error::storage(format!("fsync of {}: {e}", temp.display())))?;
    drop(file);
    if overwrite {
        return tokio::fs::rename(temp, target)
            .await
            .map_err(|e| Error::storage(format!("cannot rename to {}: {e}", target.display())));
    }
    match tokio::fs::hard_link(temp, target).await {
        Ok(()) => {
            let _ = tokio::fs::remove_file(temp).await;
            Ok(())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(Error::storage(format!(
            "{} already exists; not overwriting it (ask for overwrite to replace it)",
            target.display()
        ))),
        Err(e) => Err(Error::storage(format!(
            "cannot publish {}: {e}",
            target.display()
        ))),
    }
}
