//! Where backups go and come from: the `dbcrate-storage` crate, whose interface has
//! writing (atomic, to a final name only on commit) and reading, and no way to delete a
//! backup — the agent never deletes; retention is the control plane's.

pub use dbcrate_storage::{file, location, open_source, s3, sftp, Location, Sink, StorageOptions};
