//! One backup, from the database to a complete object in storage.

use super::chunks::to_async;
use super::encode::{compress, encrypt};
use super::read_ahead::{enlarge_pipe, ReadAhead};
use super::{stderr, CHANNEL_CHUNKS, CHUNK_SIZE};
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt::{terminate, Interrupt};
use crate::pg::row_counts::SnapshotCount;
use crate::pg::DatabaseUrl;
use crate::storage::{Location, Sink, StorageOptions};
use bytes::Bytes;
use dbcrate_core::object_key::backup_object_key;
use dbcrate_core::time::UtcDateTime;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc::Receiver;
use tokio::task::JoinHandle;

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
    /// The whole object key (relative to the destination), when someone else chose it:
    /// a control-plane job is given its key, and only that key is recorded.
    pub key: Option<String>,
    /// Directory holding the pg_dump to use; else PATH is searched.
    pub pg_bin_dir: Option<PathBuf>,
    /// The signed registry to fetch the tool from when `pg_bin_dir` is not given.
    pub registry: Option<crate::registry::RegistryConfig>,
    /// zstd level and worker threads.
    pub compression: super::Compression,
    /// Raised by SIGINT/SIGTERM: abort cleanly.
    pub interrupt: Interrupt,
    /// Counts the bytes stored so far (for heartbeats).
    pub progress: super::Progress,
    /// Also count every table's rows in the dump's snapshot (for restore drills).
    pub count_rows: bool,
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
    /// The object's key relative to the destination prefix.
    pub key: String,
    /// Wall time.
    pub seconds: f64,
    /// The cluster's roles and other globals, saved next to the backup.
    pub globals: Option<super::globals::GlobalsReport>,
    /// Why they were not saved, when they were not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub globals_not_saved: Option<String>,
    /// Rows per table in the dump's snapshot, when asked and counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_counts: Option<dbcrate_core::wire::RowCounts>,
}

/// Runs one backup. On any failure nothing remains under the final name. The cluster's
/// globals are saved next to it (stored alongside the dump, published after it) when
/// they can be; a backup stands without them (the report says why).
pub async fn run_backup(request: BackupRequest) -> Result<BackupReport> {
    let started = Instant::now();
    let BackupRequest {
        database,
        recipients,
        destination,
        mut storage,
        name,
        job,
        key: given_key,
        pg_bin_dir,
        registry,
        compression,
        mut interrupt,
        progress,
        count_rows,
    } = request;
    let database = Arc::new(database);
    let tools = super::server_and_tool(&database, "pg_dump", pg_bin_dir, registry.as_ref()).await?;
    let name = name.unwrap_or_else(|| database.database().to_string());
    let key = object_key(given_key, &name, &job)?;
    storage.expected_size = tools.server.database_size;
    let sink = Sink::open(&destination, &key, &storage).await?;
    // The globals are a few kilobytes to a few megabytes: one part.
    storage.expected_size = 0;
    let output = Encoding {
        database: &database,
        compression,
        recipients: &recipients,
    };
    let counting = match count_rows {
        true => start_counting(&database).await,
        false => None,
    };
    let snapshot = counting
        .as_ref()
        .map(|c| format!("--snapshot={}", c.snapshot()));
    let mut args = vec!["--format=custom", "--compress=0", "--no-password"];
    args.extend(snapshot.as_deref());
    let dump = ToolRun {
        label: "pg_dump",
        path: &tools.tool.path,
        args: &args,
    };
    let globals_target = super::globals::Target {
        destination: &destination,
        storage: &storage,
        backup_key: &key,
    };
    let globals_interrupt = interrupt.clone();
    let (stored, globals) = tokio::join!(
        output.store(dump, sink, &mut interrupt, &progress),
        super::globals::store(
            &tools,
            &output,
            globals_target,
            globals_interrupt,
            &progress
        ),
    );
    let stored = match stored {
        Ok(stored) => stored,
        Err(e) => {
            super::globals::discard(globals).await;
            return Err(e.context("backup failed, nothing was stored"));
        }
    };
    let row_counts = match counting {
        Some(counting) => counting.finish().await.unwrap_or_else(|e| {
            tracing::warn!("the backup is stored without its row counts: {e}");
            None
        }),
        None => None,
    };
    let object = match stored.sink.commit(stored.ciphertext_bytes).await {
        Ok(object) => object,
        Err(e) => {
            super::globals::discard(globals).await;
            return Err(e.into());
        }
    };
    let globals = super::globals::publish(globals).await;
    Ok(BackupReport {
        object,
        plaintext_bytes: stored.plaintext_bytes,
        ciphertext_bytes: stored.ciphertext_bytes,
        sha256: dbcrate_core::hex::encode(&stored.sha256),
        pg_server_version: tools.server.version,
        pg_dump_version: tools.tool.version,
        key,
        seconds: started.elapsed().as_secs_f64(),
        globals: globals.as_ref().ok().cloned(),
        globals_not_saved: globals.err().map(|e| e.to_string()),
        row_counts,
    })
}

/// Starts counting rows in a snapshot for pg_dump to use; `None` (and a warning) when
/// that cannot be done: the backup goes on without counts.
async fn start_counting(database: &DatabaseUrl) -> Option<SnapshotCount> {
    SnapshotCount::start(database)
        .await
        .inspect_err(|e| tracing::warn!("rows will not be counted for drills: {e}"))
        .ok()
}

/// The object key: the one the control plane chose (each segment checked), or one made
/// from the name, the job and the time.
fn object_key(given: Option<String>, name: &str, job: &str) -> Result<String> {
    match given {
        Some(key) => {
            for segment in key.split('/') {
                dbcrate_core::object_key::check_segment("object key", segment)
                    .map_err(|e| Error::invalid_input(format!("{e}: {key:?}")))?;
            }
            Ok(key)
        }
        None => backup_object_key("", name, job, UtcDateTime::now())
            .map_err(|e| Error::invalid_input(format!("{e} (use --name to choose another)"))),
    }
}

/// A client tool to run against the database, whose stdout is what gets stored.
pub(super) struct ToolRun<'a> {
    /// Its name in messages (`pg_dump`, `pg_dumpall`).
    pub label: &'static str,
    /// The binary.
    pub path: &'a Path,
    /// Its arguments besides the connection (which [`DatabaseUrl::configure`] adds).
    pub args: &'a [&'a str],
}

/// How a tool's output is encoded on its way to storage: compressed as `compression`
/// says, encrypted to `recipients`; the tool's stderr is kept with `database`'s secrets
/// redacted.
pub(super) struct Encoding<'a> {
    pub database: &'a Arc<DatabaseUrl>,
    pub compression: super::Compression,
    pub recipients: &'a [age::x25519::Recipient],
}

/// A tool's output, complete in storage but not yet under its final name.
pub(super) struct Stored {
    /// The sink to commit.
    pub sink: Sink,
    /// Bytes the tool produced.
    pub plaintext_bytes: u64,
    /// Bytes stored.
    pub ciphertext_bytes: u64,
    /// SHA-256 of the stored bytes.
    pub sha256: [u8; 32],
}

impl Encoding<'_> {
    /// Runs `tool` and streams its output through zstd and age into `sink`. On any
    /// failure (the tool's, storage's, a signal) the sink is aborted, so nothing
    /// appears under the final name, and the tool is stopped.
    pub async fn store(
        &self,
        tool: ToolRun<'_>,
        sink: Sink,
        interrupt: &mut Interrupt,
        progress: &super::Progress,
    ) -> Result<Stored> {
        if interrupt.is_raised() {
            sink.abort().await;
            return Err(Error::interrupted(format!(
                "interrupted before {} started",
                tool.label
            )));
        }
        let run = match start_tool(&tool, self.database) {
            Ok(run) => run,
            Err(e) => {
                sink.abort().await;
                return Err(e);
            }
        };
        let started = Stages::start(
            run,
            Arc::clone(self.database),
            self.compression,
            self.recipients.to_vec(),
        );
        let (stages, chunks) = match started {
            Ok(started) => started,
            Err(e) => {
                sink.abort().await;
                return Err(e);
            }
        };
        let (sink, stored) = store(sink, chunks, interrupt, progress).await;
        if let Err(e) = stored {
            // Storage failed or a signal came: there is no point in letting the tool go
            // on, nor in waiting for the stages, which may be blocked on a silent tool.
            if !stages.reaped.load(Ordering::SeqCst) {
                terminate(stages.pid);
            }
            sink.abort().await;
            return Err(e);
        }
        // Storage saw the end of the stream: the stages say whether it is complete.
        match stages.finish().await {
            Ok((plaintext_bytes, ciphertext_bytes, sha256)) => Ok(Stored {
                sink,
                plaintext_bytes,
                ciphertext_bytes,
                sha256,
            }),
            Err(e) => {
                sink.abort().await;
                Err(e)
            }
        }
    }
}

/// A started tool and its two pipes.
struct Running {
    label: &'static str,
    child: Child,
    stdout: ChildStdout,
    stderr: ChildStderr,
}

/// Starts the tool as a plain blocking child: its stdout is read by a plain thread
/// ([`ReadAhead`]), which is measurably faster than bridging an async pipe.
fn start_tool(tool: &ToolRun<'_>, database: &DatabaseUrl) -> Result<Running> {
    let mut command = Command::new(tool.path);
    command
        .args(tool.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    database.configure(&mut command);
    let mut child = command.spawn().map_err(|e| {
        Error::new(
            ErrorKind::PgTool,
            format!("cannot start {}: {e}", tool.path.display()),
        )
    })?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(Error::new(
            ErrorKind::PgTool,
            format!("{}'s pipes were not set up", tool.label),
        ));
    };
    Ok(Running {
        label: tool.label,
        child,
        stdout,
        stderr,
    })
}

/// The running stages: the tool → compressor → (pieces) → encryptor → (chunks) →
/// storage. Any stage that fails drops its end of a channel, which stops the stages
/// before it; the tool then gets EPIPE and exits.
struct Stages {
    /// Which tool runs (for messages).
    label: &'static str,
    /// The tool's pid, to stop it when storage fails.
    pid: u32,
    /// Set once the waiter reaped pg_dump: after that its pid may belong to another
    /// process and must not be signalled.
    reaped: Arc<AtomicBool>,
    waiter: JoinHandle<std::io::Result<ExitStatus>>,
    compressor: JoinHandle<std::io::Result<u64>>,
    encryptor: JoinHandle<std::io::Result<(u64, [u8; 32])>>,
    dump_errors: JoinHandle<String>,
}

impl Stages {
    /// Starts the stages on `dump`, whose stderr is kept with `database`'s secrets
    /// redacted; the encrypted chunks come out of the receiver, for storage.
    fn start(
        run: Running,
        database: Arc<DatabaseUrl>,
        compression: super::Compression,
        recipients: Vec<age::x25519::Recipient>,
    ) -> Result<(Self, Receiver<Bytes>)> {
        let Running {
            label,
            mut child,
            stdout,
            stderr,
        } = run;
        enlarge_pipe(&stdout);
        let pid = child.id();
        let stdout = match ReadAhead::start(&format!("{label} reader"), stdout) {
            Ok(stdout) => stdout,
            Err(e) => {
                terminate(pid);
                let _ = child.wait();
                return Err(Error::new(
                    ErrorKind::PgTool,
                    format!("cannot start the thread that reads {label}: {e}"),
                ));
            }
        };
        let dump_errors = stderr::collect(label, stderr, move |l| database.redact(l));
        let (pieces_tx, pieces_rx) = std::sync::mpsc::sync_channel(CHANNEL_CHUNKS / 2);
        let (tx, chunks) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
        let (status_tx, status_rx) = std::sync::mpsc::channel::<bool>();
        let compressor = tokio::task::spawn_blocking(move || {
            compress(stdout, compression, pieces_tx, move || {
                status_rx.recv().unwrap_or(false)
            })
        });
        let encryptor = tokio::task::spawn_blocking(move || {
            encrypt(pieces_rx, &recipients, to_async(tx, CHUNK_SIZE))
        });
        let reaped = Arc::new(AtomicBool::new(false));
        let reaped_by_waiter = Arc::clone(&reaped);
        let waiter = tokio::task::spawn_blocking(move || {
            let status = child.wait();
            reaped_by_waiter.store(true, Ordering::SeqCst);
            let _ = status_tx.send(status.as_ref().is_ok_and(|s| s.success()));
            status
        });
        let stages = Self {
            label,
            pid,
            reaped,
            waiter,
            compressor,
            encryptor,
            dump_errors,
        };
        Ok((stages, chunks))
    }

    /// Waits for every stage; the plaintext and ciphertext sizes and the ciphertext's
    /// SHA-256 when all of them succeeded.
    async fn finish(self) -> Result<(u64, u64, [u8; 32])> {
        let (status, compressed, encrypted) =
            tokio::join!(self.waiter, self.compressor, self.encryptor);
        let dump_errors = self.dump_errors.await.unwrap_or_default();
        let thread = |e: tokio::task::JoinError| {
            Error::new(ErrorKind::PgTool, format!("a pipeline thread failed: {e}"))
        };
        let label = self.label;
        match status.map_err(thread)? {
            Ok(s) if s.success() => {}
            Ok(s) => {
                return Err(Error::new(
                    ErrorKind::PgTool,
                    format!("{label} failed ({s}): {dump_errors}"),
                ))
            }
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::PgTool,
                    format!("waiting for {label}: {e}"),
                ))
            }
        }
        let plaintext = compressed
            .map_err(thread)?
            .map_err(|e| Error::new(ErrorKind::PgTool, format!("compressing: {e}")))?;
        let (ciphertext, sha256) = encrypted
            .map_err(thread)?
            .map_err(|e| Error::new(ErrorKind::PgTool, format!("encrypting: {e}")))?;
        Ok((plaintext, ciphertext, sha256))
    }
}

/// Writes the chunks to storage until they end, storage fails or a signal comes; then
/// drops the receiver, which makes the encryptor fail, and so on up to pg_dump.
async fn store(
    mut sink: Sink,
    mut chunks: Receiver<Bytes>,
    interrupt: &mut Interrupt,
    progress: &super::Progress,
) -> (Sink, Result<()>) {
    let mut result = Ok(());
    loop {
        tokio::select! {
            chunk = chunks.recv() => match chunk {
                Some(chunk) => {
                    let len = chunk.len() as u64;
                    if let Err(e) = sink.write(chunk).await {
                        result = Err(Error::from(e));
                        break;
                    }
                    progress.add(len);
                }
                None => break,
            },
            () = interrupt.raised() => {
                result = Err(Error::interrupted("interrupted by a signal"));
                break;
            }
        }
    }
    drop(chunks);
    (sink, result)
}
