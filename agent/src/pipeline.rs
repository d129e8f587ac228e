//! The streaming pipelines: backup (pg_dump → zstd → age → storage) and restore
//! (storage → age → zstd → pg_restore).
//!
//! The CPU work runs on blocking threads with synchronous adapters — in a backup, a
//! reader drains pg_dump's pipe, libzstd's workers compress, and another thread
//! encrypts and hashes; storage I/O runs on the async runtime; they meet in a bounded
//! channel of 1 MiB chunks, which is the back-pressure: when storage is slow the channel
//! fills, the encoder blocks, and pg_dump blocks on its pipe.

mod apply_globals;
pub mod backup;
mod chunks;
pub mod compression;
mod decode;
pub mod drill;
mod encode;
mod globals;
mod progress;
mod read_ahead;
pub mod restore;
mod staged;
mod staging;
mod stderr;

pub use apply_globals::{GlobalsApplied, GlobalsSource};
pub use backup::{run_backup, BackupReport, BackupRequest};
pub use compression::Compression;
pub use decode::classify as classify_read_error;
pub use progress::Progress;
pub use restore::{run_restore, RestoreReport, RestoreRequest};
pub use staged::{ParallelRestore, StagedTimes, MAX_JOBS as MAX_RESTORE_JOBS};

/// Bytes per chunk on the channel between the encoder and storage.
pub const CHUNK_SIZE: usize = 1 << 20;
/// Chunks the channel holds before the encoder waits.
pub const CHANNEL_CHUNKS: usize = 8;

/// The server a job works on and where its client tools are.
pub(crate) struct ServerTools {
    /// The server (a supported major).
    pub server: crate::pg::ServerInfo,
    /// The job's main tool (pg_dump or pg_restore).
    pub tool: crate::pg::PgTool,
    /// Where the tools were taken from (`None`: PATH), for the tools that go with it
    /// (pg_dumpall, psql).
    pub bin_dir: Option<std::path::PathBuf>,
}

impl ServerTools {
    /// The companion `tool` from the same place as the main one.
    pub fn companion(&self, tool: &str) -> crate::error::Result<crate::pg::PgTool> {
        crate::pg::PgTool::locate(tool, self.server.major(), self.bin_dir.as_deref())
    }
}

/// The server behind `database` (a supported major) and the client `tool` to run
/// against it: from `pg_bin_dir` if given, else the signed registry if configured, else
/// PATH. Logs which one, so an operator can see what ran.
pub(crate) async fn server_and_tool(
    database: &crate::pg::DatabaseUrl,
    tool: &str,
    pg_bin_dir: Option<std::path::PathBuf>,
    registry: Option<&crate::registry::RegistryConfig>,
) -> crate::error::Result<ServerTools> {
    let server = crate::pg::ServerInfo::query(database).await?;
    server.ensure_supported()?;
    let bin_dir = crate::registry::bin_dir_for(pg_bin_dir, registry, server.major()).await?;
    let found = crate::pg::PgTool::locate(tool, server.major(), bin_dir.as_deref())?;
    tracing::info!(
        server = %server.version,
        tool = %found.path.display(),
        database_bytes = server.database_size,
        "starting {tool}"
    );
    Ok(ServerTools {
        server,
        tool: found,
        bin_dir,
    })
}
