//! Applying a backup's globals before restoring it: storage → age → zstd → (existing
//! roles left out) → statements run one by one over the agent's own connection.
//!
//! The globals object is small (roles, memberships, settings), so it is read whole into
//! memory (capped at [`MAX_GLOBALS`]) and verified — size, SHA-256, age's
//! authentication, zstd's frame — before any of it runs. It is never given to psql,
//! which would also run meta-commands such as `\!` on this host
//! ([`crate::pg::statements`]); its statements go to the server, each on its own, and
//! one that fails does not stop the rest, as PostgreSQL's docs advise for
//! `pg_dumpall` output (a tablespace whose directory this server lacks should not stop
//! the roles after it). The failures are returned, logged and, if the restore then
//! fails, named in its error. Existing roles are kept as they are
//! ([`crate::pg::roles`]). Roles created here stay even if the restore that follows
//! fails (roles are not part of the target database's transaction).

use super::decode::decode;
use crate::crypto::Decryption;
use crate::error::{Error, ErrorKind, Result};
use crate::pg::roles::{self, Kept};
use crate::pg::server::connect;
use crate::pg::statements::{self, Split};
use crate::pg::DatabaseUrl;
use crate::storage::{open_source, Location, StorageOptions};
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
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
    database: &Arc<DatabaseUrl>,
    storage: &StorageOptions,
    globals: GlobalsSource,
) -> Result<GlobalsApplied> {
    let script = read(storage, globals)
        .await
        .map_err(|e| e.context("reading the globals saved with the backup"))?;
    let existing = roles::existing(database).await?;
    let Kept {
        script,
        kept,
        created,
    } = roles::keep_existing(&script, &existing);
    let script = String::from_utf8_lossy(&script);
    let Split {
        statements,
        refused,
    } = statements::split(&script);
    let mut errors: Vec<String> = refused
        .iter()
        .map(|line| format!("a psql meta-command, refused (never run): {line}"))
        .collect();
    errors.extend(run_statements(database, &statements).await?);
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

/// Runs each statement on one connection to `database`'s server, in autocommit; the
/// failures (statement and error, secrets redacted). Fails only when the server cannot
/// be reached.
async fn run_statements(database: &DatabaseUrl, statements: &[String]) -> Result<Vec<String>> {
    let mut conn = connect(database).await?;
    let mut failures = Vec::new();
    for statement in statements {
        if let Err(e) = sqlx::raw_sql(statement).execute(&mut conn).await {
            let shown: String = statement.chars().take(200).collect();
            failures.push(database.redact(&format!("{shown}: {e}")));
        }
    }
    let _ = sqlx::Connection::close(conn).await;
    Ok(failures)
}
