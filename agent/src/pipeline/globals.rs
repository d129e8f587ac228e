//! The cluster's roles and other globals, saved next to each backup.
//!
//! `pg_dump` saves one database; who owns its objects and who was granted what are
//! roles, which live in the cluster, so a restore into a fresh server fails on
//! ownership and grants. While the dump runs, the agent runs `pg_dumpall
//! --globals-only --no-role-passwords` (the same major, connected as the job's role)
//! through the same zstd → age pipeline into a second object next to the backup, named
//! by [`dbcrate_core::object_key::globals_key`]: plain SQL that stock `psql` applies.
//! Alongside, because its start, connection and catalog reads (tens of milliseconds)
//! would otherwise add to every backup; it is published only after the backup is, and
//! dropped if the backup fails, so globals never stand without their backup.
//!
//! `--no-role-passwords` reads `pg_roles` instead of `pg_authid`, so any role may run
//! it, and no password hash is copied into a backup. Should it still fail (a pooler
//! that refuses the catalog queries, an old registry without pg_dumpall), the backup
//! stands without globals and the report says why: a backup is never failed for them.

use super::backup::{Encoding, Stored, ToolRun};
use super::ServerTools;
use crate::error::{Error, Result};
use crate::interrupt::Interrupt;
use crate::storage::{Location, Sink, StorageOptions};
use dbcrate_core::object_key::globals_key;
use serde::Serialize;

/// The globals object as stored.
#[derive(Debug, Clone, Serialize)]
pub struct GlobalsReport {
    /// URL of the complete object.
    pub object: String,
    /// Its key relative to the destination prefix.
    pub key: String,
    /// Bytes stored.
    pub ciphertext_bytes: u64,
    /// SHA-256 of the stored bytes (lower-case hex).
    pub sha256: String,
}

/// Where the globals go: next to the backup at `backup_key`.
pub struct Target<'a> {
    pub destination: &'a Location,
    pub storage: &'a StorageOptions,
    pub backup_key: &'a str,
}

/// pg_dumpall's arguments: globals only (roles, memberships, role settings,
/// tablespaces), no password hashes; the connection's own database as the one it
/// starts from (it would try `postgres`, which the job's role may not reach).
const ARGS: [&str; 3] = ["--globals-only", "--no-role-passwords", "--no-password"];

/// The globals, stored but not yet under their final name: [`publish`] them once the
/// backup is, or [`discard`] them when it failed.
pub struct Pending {
    stored: Stored,
    key: String,
}

/// Runs pg_dumpall into storage (meant to run alongside the dump: `target.storage`
/// should size for a small object).
pub async fn store(
    tools: &ServerTools,
    encoding: &Encoding<'_>,
    target: Target<'_>,
    mut interrupt: Interrupt,
    progress: &super::Progress,
) -> Result<Pending> {
    let key = globals_key(target.backup_key).ok_or_else(|| {
        Error::invalid_input(format!(
            "{} does not end in {}",
            target.backup_key,
            dbcrate_core::object_key::BACKUP_SUFFIX
        ))
    })?;
    let pg_dumpall = tools.companion("pg_dumpall")?;
    let sink = Sink::open(target.destination, &key, target.storage).await?;
    let first_database = format!("--database={}", encoding.database.database());
    let mut args = ARGS.to_vec();
    args.push(&first_database);
    let run = ToolRun {
        label: "pg_dumpall",
        path: &pg_dumpall.path,
        args: &args,
    };
    let stored = encoding.store(run, sink, &mut interrupt, progress).await?;
    Ok(Pending { stored, key })
}

/// Puts the stored globals under their final name, after the backup's; the error says
/// why they were not saved (logged as a warning here, since the backup succeeded).
pub async fn publish(pending: Result<Pending>) -> Result<GlobalsReport> {
    let published = match pending {
        Ok(Pending { stored, key }) => stored
            .sink
            .commit(stored.ciphertext_bytes)
            .await
            .map_err(Error::from)
            .map(|object| GlobalsReport {
                object,
                key,
                ciphertext_bytes: stored.ciphertext_bytes,
                sha256: dbcrate_core::hex::encode(&stored.sha256),
            }),
        Err(e) => Err(e),
    };
    if let Err(e) = &published {
        tracing::warn!("the backup is stored without the cluster's roles and globals: {e}");
    }
    published
}

/// Drops the stored globals of a backup that failed: nothing appears under their name.
pub async fn discard(pending: Result<Pending>) {
    if let Ok(pending) = pending {
        pending.stored.sink.abort().await;
    }
}
