//! One restore, from an object in storage into a database, in a single transaction.

use super::apply_globals::{self, GlobalsApplied, GlobalsSource};
use super::decode::{decode, DecodeReport};
use super::stderr;
use crate::crypto::Decryption;
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt::Interrupt;
use crate::pg::DatabaseUrl;
use crate::storage::{open_source, Location, StorageOptions};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// What to restore, and into which database.
pub struct RestoreRequest {
    /// The backup object.
    pub source: Location,
    /// How to reach storage.
    pub storage: StorageOptions,
    /// The key that opens the backup.
    pub decryption: Decryption,
    /// The target database (it must exist; restore it into an empty one).
    pub database: DatabaseUrl,
    /// Directory holding the pg_restore to use; else PATH is searched.
    pub pg_bin_dir: Option<PathBuf>,
    /// The signed registry to fetch the tool from when `pg_bin_dir` is not given.
    pub registry: Option<crate::registry::RegistryConfig>,
    /// Refuse the backup unless its ciphertext has this SHA-256.
    pub expect_sha256: Option<[u8; 32]>,
    /// Raised by SIGINT/SIGTERM: stop pg_restore before it commits.
    pub interrupt: Interrupt,
    /// Counts the bytes read from storage so far (for heartbeats).
    pub progress: super::Progress,
    /// The roles and other globals saved with the backup, applied first.
    pub globals: Option<GlobalsSource>,
    /// Restore with several pg_restore jobs from a staged copy (opt-in); `None`: one
    /// stream in one transaction.
    pub parallel: Option<super::staged::ParallelRestore>,
}

/// The result, printed as JSON by `dbcrate-agent restore`.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    /// The object restored.
    pub object: String,
    /// Bytes read from storage.
    pub ciphertext_bytes: u64,
    /// Bytes given to pg_restore.
    pub plaintext_bytes: u64,
    /// SHA-256 of the bytes read (lower-case hex).
    pub sha256: String,
    /// The target server's `server_version`.
    pub pg_server_version: String,
    /// `pg_restore --version`.
    pub pg_restore_version: String,
    /// Wall time.
    pub seconds: f64,
    /// What applying the backup's globals did, when it had them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub globals: Option<GlobalsApplied>,
    /// Where a parallel restore's time went, when it was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub staged: Option<super::staged::StagedTimes>,
}

/// Runs one restore. On any failure pg_restore is stopped before its transaction
/// commits, so the target database is unchanged — except in a parallel restore, which
/// is not one transaction (see [`super::staged`]).
pub async fn run_restore(request: RestoreRequest, object_url: &str) -> Result<RestoreReport> {
    let started = Instant::now();
    let RestoreRequest {
        source,
        storage,
        decryption,
        database,
        pg_bin_dir,
        registry,
        expect_sha256,
        mut interrupt,
        progress,
        globals,
        parallel,
    } = request;
    let database = Arc::new(database);
    let tools =
        super::server_and_tool(&database, "pg_restore", pg_bin_dir, registry.as_ref()).await?;
    if parallel.is_some() {
        super::staged::ensure_empty(&database).await?;
    }
    let globals = match globals {
        Some(globals) => Some(apply_globals::apply(&database, &storage, globals).await?),
        None => None,
    };
    let (server, pg_restore) = (tools.server, tools.tool);
    let decoding = Decoding {
        reader: open_source(&source, &storage).await?,
        decryption,
        expect_sha256,
        progress,
    };
    let restored = match parallel {
        None => stream_into(decoding, &pg_restore.path, &database, &mut interrupt)
            .await
            .map(|report| (report, None)),
        Some(parallel) => {
            let into = super::staged::Target {
                pg_restore: &pg_restore.path,
                database: &database,
            };
            super::staged::restore(decoding, &parallel, into, &mut interrupt)
                .await
                .map(|(report, times)| (report, Some(times)))
        }
    };
    let (report, staged) =
        restored.map_err(|e| match globals.as_ref().and_then(|g| g.errors.first()) {
            Some(first) if e.kind() == ErrorKind::PgTool => e.note(&format!(
                "applying the backup's roles and globals first reported errors; the first: {first}"
            )),
            _ => e,
        })?;
    Ok(RestoreReport {
        object: object_url.to_string(),
        ciphertext_bytes: report.ciphertext_bytes,
        plaintext_bytes: report.plaintext_bytes,
        sha256: dbcrate_core::hex::encode(&report.sha256),
        pg_server_version: server.version,
        pg_restore_version: pg_restore.version,
        seconds: started.elapsed().as_secs_f64(),
        globals,
        staged,
    })
}

/// What the decoder reads, and how it checks it.
pub(super) struct Decoding {
    pub reader: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    pub decryption: Decryption,
    pub expect_sha256: Option<[u8; 32]>,
    pub progress: super::Progress,
}

impl Decoding {
    /// Decodes into `output` on a blocking thread (see [`decode`]).
    pub fn spawn(
        self,
        output: impl std::io::Write + Send + 'static,
    ) -> JoinHandle<Result<DecodeReport>> {
        tokio::task::spawn_blocking(move || {
            let input = super::progress::Counted {
                inner: tokio_util::io::SyncIoBridge::new(self.reader),
                progress: self.progress,
            };
            decode(input, &self.decryption, self.expect_sha256, output)
        })
    }
}

/// The single-stream restore: the decoder writes into pg_restore's stdin, which
/// restores in one transaction that commits only once the whole archive is verified.
async fn stream_into(
    decoding: Decoding,
    pg_restore: &Path,
    database: &Arc<DatabaseUrl>,
    interrupt: &mut Interrupt,
) -> Result<DecodeReport> {
    let Restoring {
        mut child,
        restore_errors,
    } = start_pg_restore(
        pg_restore,
        database,
        &["--single-transaction"],
        Archive::Stdin,
    )?;
    let Some(stdin) = child.stdin.take() else {
        return Err(Error::new(
            ErrorKind::PgTool,
            "pg_restore's stdin was not set up",
        ));
    };
    // The bridge is dropped when the decoder returns, which closes pg_restore's stdin.
    let mut decoder = decoding.spawn(tokio_util::io::SyncIoBridge::new(stdin));
    let decoded = tokio::select! {
        joined = &mut decoder => joined
            .map_err(|e| Error::new(ErrorKind::PgTool, format!("decoder thread failed: {e}")))?,
        () = interrupt.raised() => {
            // pg_restore has not seen the end of its archive: killing it rolls back.
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(Error::interrupted(
                "restore interrupted by a signal; the target database is unchanged",
            ));
        }
    };
    let report = match decoded {
        Ok(report) => report,
        Err(e) => return Err(stop_after_failed_decode(e, child, restore_errors).await),
    };
    let status = child
        .wait()
        .await
        .map_err(|e| Error::new(ErrorKind::PgTool, format!("waiting for pg_restore: {e}")))?;
    let restore_errors = restore_errors.await.unwrap_or_default();
    if !status.success() {
        return Err(Error::new(
            ErrorKind::PgTool,
            format!(
                "pg_restore failed ({status}); its single transaction rolled back, the \
                 target database is unchanged: {restore_errors}"
            ),
        ));
    }
    Ok(report)
}

/// A started pg_restore: the child (its stdin piped when it reads the archive from
/// there) and its stderr as it is being collected (with the database's secrets
/// redacted).
pub(super) struct Restoring {
    pub child: Child,
    pub restore_errors: JoinHandle<String>,
}

/// What pg_restore reads its archive from.
pub(super) enum Archive<'a> {
    /// Its stdin, which the caller takes from the child and writes.
    Stdin,
    /// A file, which it may seek in (needed for `--jobs`).
    File(&'a Path),
}

/// Starts pg_restore with `args` (the connection is added) and `--exit-on-error
/// --no-password`, reading `archive`; killed when dropped, so no failure path leaves it
/// running.
pub(super) fn start_pg_restore(
    pg_restore: &Path,
    database: &Arc<DatabaseUrl>,
    args: &[&str],
    archive: Archive<'_>,
) -> Result<Restoring> {
    let mut command = Command::new(pg_restore);
    command
        .args(["--exit-on-error", "--no-password"])
        .args(args)
        .stdin(match archive {
            Archive::Stdin => Stdio::piped(),
            Archive::File(_) => Stdio::null(),
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    database.configure(command.as_std_mut());
    if let Archive::File(file) = archive {
        command.arg(file);
    }
    let mut child = command.spawn().map_err(|e| {
        Error::new(
            ErrorKind::PgTool,
            format!("cannot start {}: {e}", pg_restore.display()),
        )
    })?;
    let Some(stderr_pipe) = child.stderr.take() else {
        return Err(Error::new(
            ErrorKind::PgTool,
            "pg_restore's stderr was not set up",
        ));
    };
    let redactor = Arc::clone(database);
    let restore_errors = stderr::collect(
        "pg_restore",
        tokio_util::io::SyncIoBridge::new(stderr_pipe),
        move |l| redactor.redact(l),
    );
    Ok(Restoring {
        child,
        restore_errors,
    })
}

/// After the decoder failed with `e`: when pg_restore stopped reading, its own exit
/// status and stderr say why. Otherwise it has not seen the end of its archive, so it
/// has not committed: it is killed and its transaction rolls back.
async fn stop_after_failed_decode(
    e: Error,
    mut child: Child,
    restore_errors: JoinHandle<String>,
) -> Error {
    let exited = if e.kind() == ErrorKind::PgTool {
        tokio::time::timeout(std::time::Duration::from_secs(10), child.wait())
            .await
            .ok()
            .and_then(|status| status.ok())
    } else {
        None
    };
    if exited.is_none() {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    let restore_errors = restore_errors.await.unwrap_or_default();
    let e = match exited {
        Some(status) => Error::new(
            ErrorKind::PgTool,
            format!("pg_restore failed ({status}): {restore_errors}"),
        ),
        None => e,
    };
    e.context("restore failed, the target database is unchanged")
}
