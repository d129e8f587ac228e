//! The opt-in parallel restore: the backup is decrypted, decompressed and verified into
//! a private staging file first, then `pg_restore --jobs N` loads it with N
//! connections (tables' data and index builds in parallel).
//!
//! What it trades (docs/agent.md): the uncompressed dump sits on the operator's disk
//! for the length of the restore (see [`super::staging`]), and pg_restore cannot run
//! several jobs in one transaction, so a failure part-way leaves the target database
//! holding what was restored before it. To keep that from mixing with anything else,
//! a parallel restore only goes into a database with no user schemas or relations.
//! What it keeps: nothing reaches pg_restore before the whole backup is verified (age's
//! every chunk, zstd's frame, the SHA-256) — stricter than the stream, which verifies as
//! it goes.

use super::decode::DecodeReport;
use super::restore::{start_pg_restore, Archive, Decoding, Restoring};
use super::staging::StagingDir;
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt::Interrupt;
use crate::pg::DatabaseUrl;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Most pg_restore jobs allowed: each is a connection and a backend on the server.
pub const MAX_JOBS: u32 = 64;

/// Where and how wide a parallel restore runs.
#[derive(Debug, Clone)]
pub struct ParallelRestore {
    /// pg_restore `--jobs`.
    pub jobs: u32,
    /// The directory the operator named for the staged dump.
    pub staging_dir: PathBuf,
}

/// Where a parallel restore's time went.
#[derive(Debug, Clone, Serialize)]
pub struct StagedTimes {
    /// pg_restore jobs.
    pub jobs: u32,
    /// Reading, decrypting, decompressing and writing the dump to the staging file.
    pub seconds_staging: f64,
    /// pg_restore's run (data load and index builds).
    pub seconds_pg_restore: f64,
}

/// The pg_restore to run and the database it restores into.
pub struct Target<'a> {
    pub pg_restore: &'a Path,
    pub database: &'a Arc<DatabaseUrl>,
}

/// Runs one parallel restore into a database [`ensure_empty`] passed; the staging
/// directory is gone when this returns.
pub async fn restore(
    decoding: Decoding,
    parallel: &ParallelRestore,
    into: Target<'_>,
    interrupt: &mut Interrupt,
) -> Result<(DecodeReport, StagedTimes)> {
    let staging = StagingDir::create(&parallel.staging_dir)?;
    let (path, file) = staging.create_dump_file()?;
    tracing::info!(
        staging = %staging.path().display(),
        jobs = parallel.jobs,
        "staging the verified dump for a parallel restore (pg_restore --jobs)"
    );
    let started = Instant::now();
    let abandoned = Arc::new(AtomicBool::new(false));
    let writer = Abandonable {
        inner: std::io::BufWriter::with_capacity(1 << 20, file),
        abandoned: Arc::clone(&abandoned),
    };
    let decoder = decoding.spawn(writer);
    let decoded = tokio::select! {
        joined = decoder => joined
            .map_err(|e| Error::new(ErrorKind::PgTool, format!("decoder thread failed: {e}")))?,
        () = interrupt.raised() => {
            // The decoder thread cannot be joined in time; its next write fails, so it
            // stops reading storage instead of filling a file that is being removed.
            abandoned.store(true, Ordering::SeqCst);
            return Err(Error::interrupted(
                "restore interrupted by a signal while staging the dump; nothing was restored",
            ));
        }
    };
    let report = decoded.map_err(|e| {
        e.context(format!("staging the dump in {}", staging.path().display()))
            .note("nothing was restored")
    })?;
    let seconds_staging = started.elapsed().as_secs_f64();
    let started = Instant::now();
    run_pg_restore(&path, parallel.jobs, &into, interrupt).await?;
    let times = StagedTimes {
        jobs: parallel.jobs,
        seconds_staging,
        seconds_pg_restore: started.elapsed().as_secs_f64(),
    };
    drop(staging);
    tracing::info!(
        jobs = times.jobs,
        seconds_staging = times.seconds_staging,
        seconds_pg_restore = times.seconds_pg_restore,
        "parallel restore done; its staged dump is removed"
    );
    Ok((report, times))
}

/// Refuses a target database that holds any user schema or relation: a parallel
/// restore is not one transaction, so a failure would mix part of the backup with it.
pub async fn ensure_empty(database: &DatabaseUrl) -> Result<()> {
    let objects = crate::pg::target::user_objects(database).await?;
    if objects > 0 {
        return Err(Error::invalid_input(format!(
            "a parallel restore goes only into an empty database, and {} has {objects} \
             user schemas and relations: a parallel restore is not one transaction, so a \
             failure would leave them mixed with part of the backup. Restore into a new \
             database, or leave out --jobs to restore in one transaction",
            database.database()
        )));
    }
    Ok(())
}

/// The staging file's writer, which fails every write once the restore was abandoned.
struct Abandonable<W> {
    inner: W,
    abandoned: Arc<AtomicBool>,
}

impl<W: std::io::Write> std::io::Write for Abandonable<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.abandoned.load(Ordering::SeqCst) {
            // Not `ErrorKind::Interrupted`: `write_all` retries that forever.
            return Err(std::io::Error::other("the restore was interrupted"));
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// What a failure part-way through leaves, and what to do about it.
const PARTIAL: &str = "a parallel restore is not one transaction: the target database \
     holds what was restored before this; drop it and create it again before retrying";

/// `pg_restore --jobs` from the staged file; killed on a signal.
async fn run_pg_restore(
    dump: &Path,
    jobs: u32,
    into: &Target<'_>,
    interrupt: &mut Interrupt,
) -> Result<()> {
    let jobs = format!("--jobs={jobs}");
    let Restoring {
        mut child,
        restore_errors,
    } = start_pg_restore(
        into.pg_restore,
        into.database,
        &[&jobs],
        Archive::File(dump),
    )?;
    let status = tokio::select! {
        status = child.wait() => status
            .map_err(|e| Error::new(ErrorKind::PgTool, format!("waiting for pg_restore: {e}")))?,
        () = interrupt.raised() => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(Error::interrupted("restore interrupted by a signal").note(PARTIAL));
        }
    };
    let restore_errors = restore_errors.await.unwrap_or_default();
    if !status.success() {
        return Err(Error::new(
            ErrorKind::PgTool,
            format!("pg_restore failed ({status}): {restore_errors}"),
        )
        .note(PARTIAL));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn an_abandoned_staging_file_refuses_writes_at_once() {
        let abandoned = Arc::new(AtomicBool::new(false));
        let mut writer = Abandonable {
            inner: Vec::new(),
            abandoned: Arc::clone(&abandoned),
        };
        writer.write_all(b"before").unwrap();
        abandoned.store(true, Ordering::SeqCst);
        // write_all would spin forever on ErrorKind::Interrupted; it must fail instead.
        let e = writer.write_all(b"after").unwrap_err();
        assert_ne!(e.kind(), std::io::ErrorKind::Interrupted);
        assert_eq!(writer.inner, b"before");
    }
}
