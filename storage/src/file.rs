//! A local directory (or a mount both the agent and the control plane reach).
//!
//! Written to a hidden temp file beside the final name, fsynced, linked to the final
//! name (which fails rather than overwrite an existing backup), then the temp name is
//! removed and the directory fsynced so the new name survives a crash.

use crate::error::{Error, Result};
use bytes::Bytes;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncRead, AsyncWriteExt};

/// A backup being written into a directory.
pub struct FileSink {
    file: tokio::fs::File,
    temp: PathBuf,
    target: PathBuf,
}

impl FileSink {
    /// Creates the temp file for `dir/key` (creating `key`'s directories).
    pub async fn create(dir: &Path, key: &str) -> Result<Self> {
        let target = dir.join(key);
        let parent = target.parent().unwrap_or(dir).to_path_buf();
        tokio::fs::create_dir_all(&parent).await.map_err(|e| {
            Error::storage(format!("cannot create {}: {e}", parent.display())).with_source(e)
        })?;
        if tokio::fs::try_exists(&target).await.unwrap_or(false) {
            return Err(Error::storage(format!(
                "{} already exists; dbcrate never overwrites a backup",
                target.display()
            )));
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = parent.join(crate::temp_name::partial(&name)?);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .await
            .map_err(|e| {
                Error::storage(format!("cannot create {}: {e}", temp.display())).with_source(e)
            })?;
        Ok(Self { file, temp, target })
    }

    /// Appends a chunk.
    pub async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.file.write_all(&chunk).await.map_err(|e| {
            Error::storage(format!("writing {}: {e}", self.temp.display())).with_source(e)
        })
    }

    /// fsync, link to the final name, remove the temp name, fsync the directory. The
    /// temp file is removed on every failure: a write refused for want of space often
    /// shows only here, when the buffered bytes are flushed.
    pub async fn commit(mut self, expected_len: u64) -> Result<String> {
        let published = self.publish(expected_len).await;
        let _ = tokio::fs::remove_file(&self.temp).await;
        published?;
        self.sync_directory().await?;
        Ok(format!("file://{}", self.target.display()))
    }

    /// Everything up to the final name existing: fsync, size check, link.
    async fn publish(&mut self, expected_len: u64) -> Result<()> {
        self.file
            .flush()
            .await
            .map_err(|e| fail("flushing the backup file", e).note("nothing was stored"))?;
        self.file
            .sync_all()
            .await
            .map_err(|e| fail("fsync of the backup file", e))?;
        let len = self
            .file
            .metadata()
            .await
            .map_err(|e| fail("reading the backup file's size", e))?
            .len();
        if len != expected_len {
            return Err(Error::storage(format!(
                "the backup file has {len} bytes, expected {expected_len}; nothing was stored"
            )));
        }
        // link() refuses an existing name, unlike rename(): never clobber a backup.
        tokio::fs::hard_link(&self.temp, &self.target)
            .await
            .map_err(|e| {
                fail(&format!("cannot publish {}", self.target.display()), e)
                    .note("nothing was stored")
            })
    }

    /// fsync of the directory, so that the new name survives a crash.
    async fn sync_directory(&self) -> Result<()> {
        if let Some(dir) = self.target.parent() {
            let dir = tokio::fs::File::open(dir)
                .await
                .map_err(|e| fail("opening the backup directory", e))?;
            dir.sync_all()
                .await
                .map_err(|e| fail("fsync of the backup directory", e))?;
        }
        Ok(())
    }

    /// Removes the temp file.
    pub async fn abort(self) {
        drop(self.file);
        let _ = tokio::fs::remove_file(&self.temp).await;
    }
}

/// A failed file operation, naming what was being done.
fn fail(doing: &str, e: std::io::Error) -> Error {
    Error::storage(format!("{doing}: {e}")).with_source(e)
}

/// Opens a backup file for reading.
pub async fn open(path: &Path) -> Result<Box<dyn AsyncRead + Send + Unpin>> {
    let file = tokio::fs::File::open(path).await.map_err(|e| {
        Error::storage(format!("cannot open {}: {e}", path.display())).with_source(e)
    })?;
    Ok(Box::new(file))
}
