//! Where backups go and come from: an S3-compatible bucket, an SFTP host, or a local
//! directory, each addressed by a URL.
//!
//! Writing goes through a [`Sink`] that makes the object visible under its final name
//! only in [`Sink::commit`]; until then (and after [`Sink::abort`], or if the agent is
//! killed) nothing exists under that name. Reading goes through [`open_source`], which
//! yields a plain byte stream. Neither can delete anything: the agent uses this crate
//! and must have no delete path.
//!
//! With the `admin` feature (the control plane only), [`admin`] adds listing, small
//! writes, ranged reads, deletes and the destination probe.

#![deny(missing_docs)]

#[cfg(feature = "admin")]
pub mod admin;
pub mod error;
pub mod file;
pub mod location;
pub mod reach;
pub mod s3;
pub mod sftp;
pub mod spec;
mod temp_name;

pub use error::{Error, ErrorKind, FailureClass};

use crate::error::Result;
use bytes::Bytes;
pub use location::{Location, StorageOptions};
use tokio::io::AsyncRead;

/// A backup being written. Chunks arrive in order; nothing is visible until `commit`.
pub enum Sink {
    /// A temp file in the target directory.
    File(file::FileSink),
    /// An S3 multipart upload.
    S3(s3::S3Sink),
    /// A temp file on the SFTP host (boxed: the SSH session is large).
    Sftp(Box<sftp::SftpSink>),
}

impl Sink {
    /// Starts writing the object `key` under `location`'s prefix.
    pub async fn open(location: &Location, key: &str, options: &StorageOptions) -> Result<Self> {
        Ok(match location {
            Location::File { path } => Self::File(file::FileSink::create(path, key).await?),
            Location::S3 {
                bucket,
                key: prefix,
            } => {
                let key = join_key(prefix, key);
                Self::S3(s3::S3Sink::create(options, bucket, &key).await?)
            }
            Location::Sftp(target) => {
                let path = join_key(&target.path, key);
                Self::Sftp(Box::new(
                    sftp::SftpSink::create(options, target, &path).await?,
                ))
            }
        })
    }

    /// Appends `chunk`. May wait (back-pressure) while storage catches up.
    pub async fn write(&mut self, chunk: Bytes) -> Result<()> {
        match self {
            Self::File(s) => s.write(chunk).await,
            Self::S3(s) => s.write(chunk).await,
            Self::Sftp(s) => s.write(chunk).await,
        }
    }

    /// Makes the object durable and visible under its final name, and returns its URL.
    /// `expected_len` is checked against what storage reports where it can.
    pub async fn commit(self, expected_len: u64) -> Result<String> {
        match self {
            Self::File(s) => s.commit(expected_len).await,
            Self::S3(s) => s.commit(expected_len).await,
            Self::Sftp(s) => (*s).commit(expected_len).await,
        }
    }

    /// Discards everything written; nothing remains under the final name.
    pub async fn abort(self) {
        match self {
            Self::File(s) => s.abort().await,
            Self::S3(s) => s.abort().await,
            Self::Sftp(s) => (*s).abort().await,
        }
    }
}

/// Opens the object at `location` for reading.
pub async fn open_source(
    location: &Location,
    options: &StorageOptions,
) -> Result<Box<dyn AsyncRead + Send + Unpin>> {
    match location {
        Location::File { path } => file::open(path).await,
        Location::S3 { bucket, key } => s3::open(options, bucket, key).await,
        Location::Sftp(target) => sftp::open(options, target).await,
    }
}

/// `prefix/key`, without doubled or leading slashes.
fn join_key(prefix: &str, key: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}/{key}")
    }
}
