//! The streaming pipelines: backup (pg_dump → zstd → age → storage) and restore
//! (storage → age → zstd → pg_restore).
//!
//! The CPU work (compression, encryption, hashing) runs on one blocking thread with
//! synchronous adapters; storage I/O runs on the async runtime; they meet in a bounded
//! channel of 1 MiB chunks, which is the back-pressure: when storage is slow the channel
//! fills, the encoder blocks, and pg_dump blocks on its pipe.

pub mod backup;
mod chunks;
mod decode;
mod encode;
mod progress;
pub mod restore;
mod stderr;

pub use backup::{run_backup, BackupReport, BackupRequest};
pub use decode::classify as classify_read_error;
pub use progress::Progress;
pub use restore::{run_restore, RestoreReport, RestoreRequest};

/// Bytes per chunk on the channel between the encoder and storage.
pub const CHUNK_SIZE: usize = 1 << 20;
/// Chunks the channel holds before the encoder waits.
pub const CHANNEL_CHUNKS: usize = 8;

/// The server behind `database` (a supported major) and the client `tool` to run
/// against it: from `pg_bin_dir` if given, else the signed registry if configured, else
/// PATH. Logs which one, so an operator can see what ran.
pub(crate) async fn server_and_tool(
    database: &crate::pg::DatabaseUrl,
    tool: &str,
    pg_bin_dir: Option<std::path::PathBuf>,
    registry: Option<&crate::registry::RegistryConfig>,
) -> crate::error::Result<(crate::pg::ServerInfo, crate::pg::PgTool)> {
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
    Ok((server, found))
}
