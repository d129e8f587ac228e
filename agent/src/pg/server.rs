//! What the agent asks the database before it dumps: its version (to pick the matching
//! pg_dump) and its size (to size S3 parts up front).

use super::conninfo::DatabaseUrl;
use crate::error::{Error, ErrorKind, Result};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Row};
use std::str::FromStr;
use std::time::Duration;

/// How long connecting and the two queries may take together.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The server facts a backup or restore needs.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// `server_version_num`, e.g. 160002.
    pub version_num: u32,
    /// `server_version`, e.g. "16.2 (Debian 16.2-1)".
    pub version: String,
    /// Size of the target database in bytes.
    pub database_size: u64,
}

/// The PostgreSQL majors dbcrate backs up and restores (each is tested end to end).
pub const SUPPORTED_MAJORS: std::ops::RangeInclusive<u32> = 13..=18;

impl ServerInfo {
    /// Refuses a server whose major dbcrate does not support.
    pub fn ensure_supported(&self) -> Result<()> {
        if SUPPORTED_MAJORS.contains(&self.major()) {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Database,
            format!(
                "the server runs PostgreSQL {} ({}); dbcrate supports PostgreSQL {}–{}",
                self.major(),
                self.version,
                SUPPORTED_MAJORS.start(),
                SUPPORTED_MAJORS.end()
            ),
        ))
    }

    /// The major version (13, 14, …).
    pub fn major(&self) -> u32 {
        self.version_num / 10_000
    }

    /// Connects to `url` and reads the version and the database's size.
    pub async fn query(url: &DatabaseUrl) -> Result<Self> {
        let fail = |what: &str, e: sqlx::Error| failure(url, what, e);
        let options = connect_options(url)?;
        let work = async {
            let mut conn = options
                .connect()
                .await
                .map_err(|e| fail("connecting to", e))?;
            let row = sqlx::query(
                "SELECT current_setting('server_version_num'), current_setting('server_version'), \
                 pg_database_size(current_database())",
            )
            .fetch_one(&mut conn)
            .await
            .map_err(|e| fail("querying the server at", e))?;
            let _ = conn.close().await;
            let num: String = row.get(0);
            let version: String = row.get(1);
            let size: i64 = row.get(2);
            let version_num = num.trim().parse().map_err(|_| {
                Error::new(
                    ErrorKind::Database,
                    format!("unexpected server_version_num {num:?}"),
                )
            })?;
            Ok(Self {
                version_num,
                version,
                database_size: u64::try_from(size).unwrap_or(0),
            })
        };
        within_timeout(url, work).await
    }
}

/// How the agent connects to `url` for its own queries (the password from memory).
pub(crate) fn connect_options(url: &DatabaseUrl) -> Result<PgConnectOptions> {
    let mut options = PgConnectOptions::from_str(url.without_password())
        .map_err(|e| Error::invalid_input(url.redact(&format!("--database-url: {e}"))))?
        .application_name("dbcrate-agent")
        .disable_statement_logging();
    if let Some(p) = url.password() {
        options = options.password(p.expose_secret());
    }
    Ok(options)
}

/// A connection to `url` for the agent's own queries, made within [`QUERY_TIMEOUT`].
pub(crate) async fn connect(url: &DatabaseUrl) -> Result<sqlx::PgConnection> {
    let options = connect_options(url)?;
    within_timeout(url, async {
        options
            .connect()
            .await
            .map_err(|e| failure(url, "connecting to", e))
    })
    .await
}

/// A failed step of a query to `url`, with its secrets redacted.
pub(crate) fn failure(url: &DatabaseUrl, what: &str, e: sqlx::Error) -> Error {
    Error::new(
        ErrorKind::Database,
        url.redact(&format!("{what} {} failed: {e}", url.host())),
    )
}

/// `work` (connecting and querying `url`), bounded by [`QUERY_TIMEOUT`].
pub(crate) async fn within_timeout<T>(
    url: &DatabaseUrl,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(QUERY_TIMEOUT, work)
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Database,
                format!(
                    "the database at {} did not answer within {QUERY_TIMEOUT:?}",
                    url.host()
                ),
            )
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(version_num: u32) -> ServerInfo {
        ServerInfo {
            version_num,
            version: "x".into(),
            database_size: 0,
        }
    }

    #[test]
    fn only_13_to_18_are_supported() {
        assert!(server(130016).ensure_supported().is_ok());
        assert!(server(180006).ensure_supported().is_ok());
        let err = server(120020).ensure_supported().unwrap_err().to_string();
        assert!(
            err.contains("PostgreSQL 12") && err.contains("13–18"),
            "{err}"
        );
        assert!(server(190000).ensure_supported().is_err());
    }
}
