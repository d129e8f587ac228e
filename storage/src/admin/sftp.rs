//! The control plane's operations on a directory of an SFTP host, over one connection.

use super::{join, random_hex, DeleteOutcome, ObjectInfo, MAX_LIST_DEPTH};
use crate::error::{Error, FailureClass, Result};
use crate::location::SftpTarget;
use crate::sftp::Connection;
use crate::StorageOptions;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{OpenFlags, StatusCode};
use std::io::SeekFrom;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// A connected SFTP destination directory.
pub(super) struct SftpDestination {
    connection: Connection,
    root: String,
}

fn is_missing(e: &SftpError) -> bool {
    matches!(e, SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

/// The tenant-facing class of an SFTP status.
fn class_of(e: &SftpError) -> FailureClass {
    match e {
        SftpError::Status(s) if s.status_code == StatusCode::NoSuchFile => FailureClass::Missing,
        SftpError::Status(s) if s.status_code == StatusCode::PermissionDenied => {
            FailureClass::PermissionDenied
        }
        _ => FailureClass::Other,
    }
}

impl SftpDestination {
    pub(super) async fn connect(options: &StorageOptions, target: &SftpTarget) -> Result<Self> {
        let connection = Connection::open(options, target).await?;
        let root = if target.path.len() > 1 {
            target.path.trim_end_matches('/').to_string()
        } else {
            target.path.clone()
        };
        Ok(Self { connection, root })
    }

    pub(super) async fn close(self) {
        self.connection.close().await;
    }

    fn path(&self, key: &str) -> String {
        join(&self.root, key)
    }

    /// Fails unless the destination directory exists (see the local-directory twin).
    async fn check_root(&self) -> Result<()> {
        match self.connection.sftp.metadata(&self.root).await {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(Error::storage(format!(
                "{} on the SFTP host is not a directory; the destination must be a directory",
                self.root
            ))),
            Err(e) if is_missing(&e) => Err(Error::storage(format!(
                "the destination directory {} does not exist on the SFTP host; create it \
                 (dbcrate does not create a destination's top directory) or fix the path",
                self.root
            ))
            .classed(FailureClass::Missing)),
            Err(e) => Err(Error::storage(format!(
                "cannot reach the destination directory {} on the SFTP host: {e}",
                self.root
            ))
            .classed(class_of(&e))),
        }
    }

    pub(super) async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ObjectInfo>> {
        self.check_root().await?;
        let sftp = &self.connection.sftp;
        let mut out = Vec::new();
        let mut stack = vec![(prefix.to_string(), 0usize)];
        while let Some((relative, depth)) = stack.pop() {
            let dir = if relative.is_empty() {
                self.root.clone()
            } else {
                self.path(&relative)
            };
            let entries = match sftp.read_dir(dir.as_str()).await {
                Ok(e) => e,
                Err(e) if is_missing(&e) && depth == 0 => return Ok(out),
                Err(e) => {
                    return Err(Error::storage(format!(
                        "cannot list {dir} on the SFTP host: {e}"
                    )))
                }
            };
            let mut entries: Vec<_> = entries.collect();
            entries.sort_by_key(|e| e.file_name());
            let mut subdirs = Vec::new();
            for entry in entries {
                let key = join(&relative, &entry.file_name());
                let meta = entry.metadata();
                if meta.is_dir() {
                    if depth + 1 < MAX_LIST_DEPTH {
                        subdirs.push((key, depth + 1));
                    }
                } else if meta.is_regular() {
                    out.push(ObjectInfo {
                        key,
                        size: meta.size.unwrap_or(0),
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
        let sftp = &self.connection.sftp;
        let target = self.path(key);
        // Create the key's directories below the destination (never the destination).
        let mut dir = self.root.clone();
        let segments: Vec<&str> = key.split('/').collect();
        let (name, parents) = segments
            .split_last()
            .ok_or_else(|| Error::invalid_input("empty key"))?;
        for part in parents {
            dir = join(&dir, part);
            if !sftp.try_exists(dir.as_str()).await.unwrap_or(false) {
                sftp.create_dir(dir.as_str()).await.map_err(|e| {
                    Error::storage(format!(
                        "cannot create directory {dir} on the SFTP host: {e}"
                    ))
                })?;
            }
        }
        if !overwrite && sftp.try_exists(target.as_str()).await.unwrap_or(false) {
            return Err(exists(&target));
        }
        let temp = join(&dir, &format!(".{name}.tmp-{}", random_hex(8)?));
        let result = self
            .write_then_publish(&temp, &target, bytes, overwrite)
            .await;
        if result.is_err() {
            let _ = sftp.remove_file(temp.as_str()).await;
        }
        result
    }

    async fn write_then_publish(
        &self,
        temp: &str,
        target: &str,
        bytes: &[u8],
        overwrite: bool,
    ) -> Result<()> {
        let sftp = &self.connection.sftp;
        let fail = |doing: &str, e: &dyn std::fmt::Display| {
            Error::storage(format!("{doing} on the SFTP host: {e}"))
        };
        // Opening and renaming answer SFTP statuses, which say whether it was a refusal.
        let refused = |doing: &str, e: &SftpError| fail(doing, e).classed(class_of(e));
        let mut file = sftp
            .open_with_flags(
                temp,
                OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE,
            )
            .await
            .map_err(|e| refused(&format!("cannot create {temp}"), &e))?;
        file.write_all(bytes)
            .await
            .map_err(|e| fail(&format!("writing {temp}"), &e))?;
        file.flush()
            .await
            .map_err(|e| fail(&format!("flushing {temp}"), &e))?;
        // fsync@openssh.com; a no-op on servers without it.
        file.sync_all()
            .await
            .map_err(|e| fail(&format!("fsync of {temp}"), &e))?;
        file.shutdown()
            .await
            .map_err(|e| fail(&format!("closing {temp}"), &e))?;
        if overwrite && sftp.try_exists(target).await.unwrap_or(false) {
            // SFTP's rename refuses an existing name (OpenSSH has no plain overwrite
            // without the posix-rename extension): replace in two steps.
            sftp.remove_file(target)
                .await
                .map_err(|e| refused(&format!("removing the old {target}"), &e))?;
        }
        match sftp.rename(temp, target).await {
            Ok(()) => Ok(()),
            Err(_) if !overwrite && sftp.try_exists(target).await.unwrap_or(false) => {
                Err(exists(target))
            }
            Err(e) => Err(refused(&format!("renaming to {target}"), &e)),
        }
    }

    pub(super) async fn get_range(&self, key: &str, start: u64, len: u64) -> Result<Vec<u8>> {
        let path = self.path(key);
        let mut file = self
            .connection
            .sftp
            .open(path.as_str())
            .await
            .map_err(|e| {
                if is_missing(&e) {
                    Error::storage(format!("{path} does not exist on the SFTP host"))
                } else {
                    Error::storage(format!("cannot open {path} on the SFTP host: {e}"))
                }
            })?;
        file.seek(SeekFrom::Start(start))
            .await
            .map_err(|e| Error::storage(format!("seeking in {path} on the SFTP host: {e}")))?;
        let mut out = Vec::new();
        let read = (&mut file).take(len).read_to_end(&mut out).await;
        let _ = file.shutdown().await;
        read.map_err(|e| Error::storage(format!("reading {path} on the SFTP host: {e}")))?;
        Ok(out)
    }

    pub(super) async fn delete(&self, key: &str) -> Result<DeleteOutcome> {
        let path = self.path(key);
        match self.connection.sftp.remove_file(path.as_str()).await {
            Ok(()) => Ok(DeleteOutcome::Deleted),
            Err(e) if is_missing(&e) => {
                // "Absent" only if the destination itself is there.
                self.check_root().await?;
                Ok(DeleteOutcome::Absent)
            }
            Err(e) => Err(Error::storage(format!(
                "cannot delete {path} on the SFTP host: {e}"
            ))),
        }
    }

    pub(super) async fn exists(&self, key: &str) -> Result<bool> {
        let path = self.path(key);
        match self.connection.sftp.symlink_metadata(path.as_str()).await {
            Ok(_) => Ok(true),
            Err(e) if is_missing(&e) => {
                self.check_root().await?;
                Ok(false)
            }
            Err(e) => Err(Error::storage(format!(
                "cannot look up {path} on the SFTP host: {e}"
            ))),
        }
    }
}

fn exists(path: &str) -> Error {
    Error::storage(format!(
        "{path} already exists on the SFTP host; not overwriting it (ask for overwrite to \
         replace it)"
    ))
}
