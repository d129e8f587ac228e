//! Applying a backup's globals before restoring it: storage → age → zstd → (existing
//! roles left out) → psql.
//!
//! The globals object is small (roles, memberships, settings), so it is read whole into
//! memory (capped at [`MAX_GLOBALS`]) and verified — size, SHA-256, age's
//! authentication, zstd's frame — before psql sees a byte. psql runs the script without
//! stopping at errors, as PostgreSQL's docs advise for `pg_dumpall` output (a tablespace
//! whose directory this server lacks should not stop the roles after it); the errors
//! are returned, logged and, if the restore then fails, named in its error. Existing
//! roles are kept as they are ([`crate::pg::roles`]). Roles created here stay even if
//! the restore that follows fails (roles are not part of the target database's
//! transaction).

use super::decode::decode;
use super::restore::{spawn_fed, Restoring};
use super::ServerTools;
use crate::crypto::Decryption;
use crate::error::{Error, ErrorKind, Result};
use crate::pg::roles::{self, Kept};
use crate::pg::DatabaseUrl;
use crate::storage::{open_source, Location, StorageOptions};
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use zeroize::Zeroizing;

/// The largest globals script accepted (tens of thousands of roles fit in a few MiB).
pub const MAX_GLOBALS: usize = 64 << 20;

/// The globals object saved with a backup, and how to open it.
pub struct GlobalsSource {
    /// The object.
    pub source: Location,
    /// Its key (the backup's file key opens the backup only; this is the globals' own).
    pub decryption: Decryption,
    /// Refuse it unless its ciphertext has this SHA-256.
    pub expect_sha256: Option<[u8; 32]>,
}

/// What applying the globals did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GlobalsApplied {
    /// Roles the script created (that did not exist).
    pub created: BTreeSet<String>,
    /// Roles that existed and were kept as they were.
    pub kept: BTreeSet<String>,
    /// Statements psql reported as failed (its error lines).
    pub errors: Vec<String>,
}

/// Reads, verifies and applies the globals to `database`'s server.
pub async fn apply(
    tools: &ServerTools,
    database: &Arc<DatabaseUrl>,
    storage: &StorageOptions,
    globals: GlobalsSource,
) -> Result<GlobalsApplied> {
    // Without psql (a registry built before its artifacts carried it) the restore goes
    // on: pg_restore says clearly if a role it needs is missing.
    let psql = match tools.companion("psql") {
        Ok(psql) => psql,
        Err(e) => {
            let skipped = format!("the saved roles and globals were not applied: {e}");
            tracing::warn!("{skipped}");
            return Ok(GlobalsApplied {
                errors: vec![skipped],
                ..GlobalsApplied::default()
            });
        }
    };
    let script = read(storage, globals)
        .await
        .map_err(|e| e.context("reading the globals saved with the backup"))?;
    let existing = roles::existing(database).await?;
    let Kept {
        script,
        kept,
        created,
    } = roles::keep_existing(&script, &existing);
    let errors = run_psql(&psql.path, database, script).await?;
    for error in &errors {
        tracing::warn!("applying the globals: {error}");
    }
    tracing::info!(
        created = created.len(),
        kept = kept.len(),
        failed = errors.len(),
        "applied the roles and globals saved with the backup"
    );
    Ok(GlobalsApplied {
        created,
        kept,
        errors,
    })
}

/// The verified, decompressed script.
async fn read(storage: &StorageOptions, globals: GlobalsSource) -> Result<Zeroizing<Vec<u8>>> {
    let reader = open_source(&globals.source, storage).await?;
    let decoded = tokio::task::spawn_blocking(move || {
        let mut script = Capped(Zeroizing::new(Vec::new()));
        let input = tokio_util::io::SyncIoBridge::new(reader);
        decode(
            input,
            &globals.decryption,
            globals.expect_sha256,
            &mut script,
        )
        .map(|_| script.0)
    })
    .await
    .map_err(|e| Error::new(ErrorKind::PgTool, format!("decoder thread failed: {e}")))?;
    decoded
}

/// A buffer that refuses to grow past [`MAX_GLOBALS`].
struct Capped(Zeroizing<Vec<u8>>);

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_GLOBALS {
            return Err(std::io::Error::other(format!(
                "the globals script is larger than {} MiB",
                MAX_GLOBALS >> 20
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `script` through psql on `database`'s server; the lines psql reported errors
/// on. Fails only when psql itself fails (cannot connect, killed).
async fn run_psql(
    psql: &std::path::Path,
    database: &Arc<DatabaseUrl>,
    script: Vec<u8>,
) -> Result<Vec<String>> {
    let mut command = tokio::process::Command::new(psql);
    command.args([
        "-X",
        "-q",
        "--no-password",
        "-v",
        "ON_ERROR_STOP=0",
        "-f",
        "-",
    ]);
    let Restoring {
        mut child,
        mut stdin,
        restore_errors: said,
    } = spawn_fed("psql", command, database)?;
    // psql reads as it runs; a failed write means it exited, and its status says why.
    let written = stdin.write_all(&script).await;
    drop(stdin);
    let status = child
        .wait()
        .await
        .map_err(|e| Error::new(ErrorKind::PgTool, format!("waiting for psql: {e}")))?;
    let said = said.await.unwrap_or_default();
    if !status.success() || written.is_err() {
        return Err(Error::new(
            ErrorKind::PgTool,
            format!("psql could not apply the globals saved with the backup ({status}): {said}"),
        ));
    }
    Ok(said
        .lines()
        .filter(|l| l.contains("ERROR:"))
        .map(str::to_string)
        .collect())
}
