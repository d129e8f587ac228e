//! The dbcrate agent as a library: streaming encrypted backup and restore.
//!
//! A backup is `pg_dump --format=custom --compress=0` → zstd → age v1 (to every given
//! recipient) → storage, all streaming with bounded buffers, nothing staged on disk. It
//! becomes visible under its final name only once pg_dump and the encoders finished
//! successfully (S3 multipart complete, SFTP or file rename), so a stock
//! `age -d | zstd -d | pg_restore` can always read what is there.
//!
//! The `dbcrate-agent backup|restore` commands drive this library directly; control-plane
//! jobs will drive the same functions.
#![deny(missing_docs)]

pub mod cli;
pub mod control;
pub mod crypto;
pub mod datadir;
pub mod error;
pub mod interrupt;
pub mod pg;
pub mod pipeline;
pub mod registry;
pub mod storage;

pub use error::{Error, ErrorKind, Reason};
