//! One backup, from the database to a complete object in storage.

use super::chunks::ChunkSender;
use super::encode::{encode, EncodeReport};
use super::{hex, stderr, CHANNEL_CHUNKS, CHUNK_SIZE};
use crate::error::{Error, ErrorKind, Result};
use crate::pg::{DatabaseUrl, PgTool, ServerInfo};
use crate::storage::{Location, Sink, StorageOptions};
use dbcrate_core::object_key::backup_object_key;
use dbcrate_core::time::UtcDateTime;
use serde::Serialize;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;
use tokio::process::Command;

/// What to back up, and where.
#[derive(Debug)]
pub struct BackupRequest {
    /// The database to dump.
    pub database: DatabaseUrl,
    /// age recipients; the org's public key at least.
    pub recipients: Vec<age::x25519::Recipient>,
    /// Destination prefix.
    pub destination: Location,
    /// How to reach storage.
    pub storage: StorageOptions,
    /// The name in the object key (defaults to the database name).
    pub name: Option<String>,
    /// The job label in the object key.
    pub job: String,
    /// Directory holding the pg_dump to use; else PATH is searched.
    pub pg_bin_dir: Option<PathBuf>,
    /// zstd level.
    pub zstd_level: i32,
}

/// The result, printed as JSON by `dbcrate-agent backup`.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// URL of the complete object.
    pub object: String,
    /// Bytes pg_dump produced.
    pub plaintext_bytes: u64,
    /// Bytes stored.
    pub ciphertext_bytes: u64,
    /// SHA-256 of the stored bytes (lower-case hex).
    pub sha256: String,
    /// The server's `server_version`.
    pub pg_server_version: String,
    /// `pg_dump --version`.
    pub pg_dump_version: String,
    /// Wall time.
    pub seconds: f64,
}

/// Runs one backup. On any failure nothing remains under the final name.
pub async fn run_backup(request: BackupRequest) -> Result<BackupReport> {
    let started = Instant::now();
    let BackupRequest {
        database,
        recipients,
        destination,
        mut storage,
        name,
        job,
        pg_bin_dir,
        zstd_level,
    } = request;
    let database = Arc::new(database);
    let server = ServerInfo::query(&database).await?;
    server.ensure_supported()?;
    let pg_dump = PgTool::locate("pg_dump", server.major(), pg_bin_dir.as_deref())?;
    tracing::info!(
        server = %server.version,
        pg_dump = %pg_dump.path.display(),
        database_bytes = server.database_size,
        "starting backup"
    );
    let name = name.unwrap_or_else(|| database.database().to_string());
    let key = backup_object_key("", &name, &job, UtcDateTime::now())
        .map_err(|e| Error::invalid_input(format!("{e} (use --name to choose another)")))?;
    storage.expected_size = server.database_size;
    let sink = Sink::open(&destination, &key, &storage).await?;

    let mut command = Command::new(&pg_dump.path);
    command
        .args(["--format=custom", "--compress=0", "--no-password"])
        .arg(format!("--dbname={}", database.without_password()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match database.password() {
        Some(p) => command.env("PGPASSWORD", p.expose_secret()),
        None => command.env_remove("PGPASSWORD"),
    };
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            sink.abort().await;
            return Err(Error::new(
                ErrorKind::PgTool,
                format!("cannot start {}: {e}", pg_dump.path.display()),
            ));
        }
    };
    let (Some(stdout), Some(stderr_pipe)) = (child.stdout.take(), child.stderr.take()) else {
        sink.abort().await;
        return Err(Error::new(
            ErrorKind::PgTool,
            "pg_dump's pipes were not set up",
        ));
    };
    let redactor = Arc::clone(&database);
    let stderr_text = stderr::collect("pg_dump", stderr_pipe, move |l| redactor.redact(l));

    let (tx, mut rx) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
    let (status_tx, status_rx) = tokio::sync::oneshot::channel::<bool>();
    let encoder = tokio::task::spawn_blocking(move || {
        let input = tokio_util::io::SyncIoBridge::new(stdout);
        encode(
            input,
            &recipients,
            zstd_level,
            ChunkSender::new(tx, CHUNK_SIZE),
            move || status_rx.blocking_recv().unwrap_or(false),
        )
    });
    let storage_side = async move {
        let mut sink = sink;
        let mut result = Ok(());
        while let Some(chunk) = rx.recv().await {
            if let Err(e) = sink.write(chunk).await {
                result = Err(e);
                break;
            }
        }
        // Dropping the receiver makes the encoder fail, which closes pg_dump's pipe.
        drop(rx);
        (sink, result)
    };
    let dump_side = async {
        let status = child.wait().await;
        let ok = status.as_ref().is_ok_and(|s| s.success());
        let _ = status_tx.send(ok);
        status
    };
    let ((sink, stored), status, encoded) = tokio::join!(storage_side, dump_side, encoder);
    let dump_errors = stderr_text.await.unwrap_or_default();

    let outcome: Result<EncodeReport> = (|| {
        stored?;
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                return Err(Error::new(
                    ErrorKind::PgTool,
                    format!("pg_dump failed ({s}): {dump_errors}"),
                ))
            }
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::PgTool,
                    format!("waiting for pg_dump: {e}"),
                ))
            }
        }
        encoded
            .map_err(|e| Error::new(ErrorKind::PgTool, format!("encoder thread failed: {e}")))?
            .map_err(|e| {
                Error::new(
                    ErrorKind::PgTool,
                    format!("compressing and encrypting: {e}"),
                )
            })
    })();
    let report = match outcome {
        Ok(report) => report,
        Err(e) => {
            sink.abort().await;
            return Err(e.context("backup failed, nothing was stored"));
        }
    };
    let object = sink.commit(report.ciphertext_bytes).await?;
    Ok(BackupReport {
        object,
        plaintext_bytes: report.plaintext_bytes,
        ciphertext_bytes: report.ciphertext_bytes,
        sha256: hex(&report.sha256),
        pg_server_version: server.version,
        pg_dump_version: pg_dump.version,
        seconds: started.elapsed().as_secs_f64(),
    })
}
