//! The control plane's database: embedded SQLite by default, PostgreSQL for several
//! replicas, behind one `sqlx::AnyPool`, with a schema version the binary checks at boot.
//!
//! Migrations are SQL files, per engine where the dialects differ
//! (`control/migrations/{sqlite,postgres}/`) and shared where they do not
//! (`control/migrations/common/`), embedded
//! in the binary and applied in order inside one transaction each, together with the
//! version bump, so a migration is either wholly applied or not at all.

use sqlx::any::AnyPoolOptions;
use sqlx::{Any, AnyConnection, AnyPool, Transaction};
use std::cmp::Ordering;

/// One schema step, for each engine.
struct Migration {
    version: i64,
    sqlite: &'static str,
    postgres: &'static str,
}

/// Every migration this binary knows, in order.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: include_str!("../migrations/sqlite/0001_audit.sql"),
        postgres: include_str!("../migrations/postgres/0001_audit.sql"),
    },
    Migration {
        version: 2,
        sqlite: include_str!("../migrations/sqlite/0002_orgs_secrets.sql"),
        postgres: include_str!("../migrations/postgres/0002_orgs_secrets.sql"),
    },
    Migration {
        version: 3,
        sqlite: include_str!("../migrations/common/0003_users.sql"),
        postgres: include_str!("../migrations/common/0003_users.sql"),
    },
    Migration {
        version: 4,
        sqlite: include_str!("../migrations/common/0004_sessions.sql"),
        postgres: include_str!("../migrations/common/0004_sessions.sql"),
    },
    Migration {
        version: 5,
        sqlite: include_str!("../migrations/sqlite/0005_accounts.sql"),
        postgres: include_str!("../migrations/postgres/0005_accounts.sql"),
    },
    Migration {
        version: 6,
        sqlite: include_str!("../migrations/sqlite/0006_agents.sql"),
        postgres: include_str!("../migrations/postgres/0006_agents.sql"),
    },
    Migration {
        version: 7,
        sqlite: include_str!("../migrations/sqlite/0007_attempts.sql"),
        postgres: include_str!("../migrations/postgres/0007_attempts.sql"),
    },
    Migration {
        version: 8,
        sqlite: include_str!("../migrations/common/0008_backup_objects.sql"),
        postgres: include_str!("../migrations/common/0008_backup_objects.sql"),
    },
    Migration {
        version: 9,
        sqlite: include_str!("../migrations/common/0009_jobs.sql"),
        postgres: include_str!("../migrations/common/0009_jobs.sql"),
    },
    Migration {
        version: 10,
        sqlite: include_str!("../migrations/common/0010_backups.sql"),
        postgres: include_str!("../migrations/common/0010_backups.sql"),
    },
    Migration {
        version: 11,
        sqlite: include_str!("../migrations/common/0011_restores.sql"),
        postgres: include_str!("../migrations/common/0011_restores.sql"),
    },
    Migration {
        version: 12,
        sqlite: include_str!("../migrations/common/0012_job_retry.sql"),
        postgres: include_str!("../migrations/common/0012_job_retry.sql"),
    },
    Migration {
        version: 13,
        sqlite: include_str!("../migrations/common/0013_backup_sizes.sql"),
        postgres: include_str!("../migrations/common/0013_backup_sizes.sql"),
    },
    Migration {
        version: 14,
        sqlite: include_str!("../migrations/common/0014_claimed_object_key.sql"),
        postgres: include_str!("../migrations/common/0014_claimed_object_key.sql"),
    },
    Migration {
        version: 15,
        sqlite: include_str!("../migrations/common/0015_delete_backoff.sql"),
        postgres: include_str!("../migrations/common/0015_delete_backoff.sql"),
    },
    Migration {
        version: 16,
        sqlite: include_str!("../migrations/sqlite/0016_audit_keyed.sql"),
        postgres: include_str!("../migrations/postgres/0016_audit_keyed.sql"),
    },
    Migration {
        version: 17,
        sqlite: include_str!("../migrations/common/0017_invitations.sql"),
        postgres: include_str!("../migrations/common/0017_invitations.sql"),
    },
    Migration {
        version: 18,
        sqlite: include_str!("../migrations/common/0018_customer_sealed_keys.sql"),
        postgres: include_str!("../migrations/common/0018_customer_sealed_keys.sql"),
    },
    Migration {
        version: 19,
        sqlite: include_str!("../migrations/common/0019_agent_presence.sql"),
        postgres: include_str!("../migrations/common/0019_agent_presence.sql"),
    },
    Migration {
        version: 20,
        sqlite: include_str!("../migrations/common/0020_list_indexes.sql"),
        postgres: include_str!("../migrations/common/0020_list_indexes.sql"),
    },
    Migration {
        version: 21,
        sqlite: include_str!("../migrations/common/0021_schedule_timing.sql"),
        postgres: include_str!("../migrations/common/0021_schedule_timing.sql"),
    },
    Migration {
        version: 22,
        sqlite: include_str!("../migrations/common/0022_alerts.sql"),
        postgres: include_str!("../migrations/common/0022_alerts.sql"),
    },
    Migration {
        version: 23,
        sqlite: include_str!("../migrations/common/0023_audit_checks.sql"),
        postgres: include_str!("../migrations/common/0023_audit_checks.sql"),
    },
    Migration {
        version: 24,
        sqlite: include_str!("../migrations/common/0024_destination_probes.sql"),
        postgres: include_str!("../migrations/common/0024_destination_probes.sql"),
    },
    Migration {
        version: 25,
        sqlite: include_str!("../migrations/common/0025_backup_globals.sql"),
        postgres: include_str!("../migrations/common/0025_backup_globals.sql"),
    },
    Migration {
        version: 26,
        sqlite: include_str!("../migrations/common/0026_restore_drills.sql"),
        postgres: include_str!("../migrations/common/0026_restore_drills.sql"),
    },
    Migration {
        version: 27,
        sqlite: include_str!("../migrations/common/0027_schedule_grace.sql"),
        postgres: include_str!("../migrations/common/0027_schedule_grace.sql"),
    },
    Migration {
        version: 28,
        sqlite: include_str!("../migrations/common/0028_agent_certificate_lookup.sql"),
        postgres: include_str!("../migrations/common/0028_agent_certificate_lookup.sql"),
    },
    Migration {
        version: 29,
        sqlite: include_str!("../migrations/common/0029_abandoned_objects.sql"),
        postgres: include_str!("../migrations/common/0029_abandoned_objects.sql"),
    },
    Migration {
        version: 30,
        sqlite: include_str!("../migrations/common/0030_hot_path_indexes.sql"),
        postgres: include_str!("../migrations/common/0030_hot_path_indexes.sql"),
    },
];

/// The schema version this binary expects.
pub fn binary_schema_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Which engine a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// `sqlite://…`
    Sqlite,
    /// `postgres://…` or `postgresql://…`
    Postgres,
}

impl Engine {
    /// The engine's name, for messages.
    pub fn label(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }
}

/// An open database.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    engine: Engine,
}

/// Why the database cannot be used, with the fix. Messages never hold the password.
/// The database's own error, where there is one, is its `source()`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct DbError {
    message: String,
    #[source]
    source: Option<sqlx::Error>,
}

impl DbError {
    /// A refusal of ours (a URL or schema version that will not do).
    fn refused(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// `context`, failed because of the database's `source`.
    fn failed(context: impl std::fmt::Display, source: sqlx::Error) -> Self {
        Self {
            message: format!("{context}: {source}"),
            source: Some(source),
        }
    }
}

impl Db {
    /// Connects to `url` (`sqlite://PATH?mode=rwc` or `postgres://…`). SQLite runs in
    /// WAL mode.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Engine::Postgres
        } else {
            return Err(DbError::refused(
                "DATABASE_URL must start with sqlite:, postgres:// or postgresql://",
            ));
        };
        let unreachable = |e: sqlx::Error| {
            DbError::failed(
                format_args!("cannot open the database ({})", engine.label()),
                e,
            )
        };
        // One plain connection first: the pool retries failed connects until its
        // acquire timeout, but a boot check should fail at once and say why.
        let probe = <AnyConnection as sqlx::Connection>::connect(url)
            .await
            .map_err(unreachable)?;
        let _ = sqlx::Connection::close(probe).await;
        let pool = AnyPoolOptions::new()
            .max_connections(8)
            .connect(url)
            .await
            .map_err(unreachable)?;
        if engine == Engine::Sqlite {
            // WAL is a property of the database file: set once, it stays. (sqlx's SQLite
            // driver already waits 5 s on a busy database.)
            sqlx::raw_sql("PRAGMA journal_mode=WAL")
                .execute(&pool)
                .await
                .map_err(|e| DbError::failed("switching SQLite to WAL mode", e))?;
        }
        Ok(Self { pool, engine })
    }

    /// The pool, for queries.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The engine behind the pool.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The statement that starts a writing transaction. SQLite takes the write lock up
    /// front (`BEGIN IMMEDIATE`), so concurrent writers queue on the busy timeout instead
    /// of failing when a read transaction tries to become a write one.
    fn begin_write(&self) -> &'static str {
        match self.engine {
            Engine::Sqlite => "BEGIN IMMEDIATE",
            Engine::Postgres => "BEGIN",
        }
    }

    /// A writing transaction; end it with [`end_write`]. If it is dropped instead (a
    /// request cancelled because its client went away), it rolls back before its
    /// connection goes back to the pool, so no half-change and no lock outlives it.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        self.pool.begin_with(self.begin_write()).await
    }

    /// The schema version recorded in the database (0 when it is empty).
    pub async fn schema_version(&self) -> Result<i64, DbError> {
        let fail = |e: sqlx::Error| DbError::failed("reading the schema version", e);
        sqlx::raw_sql("CREATE TABLE IF NOT EXISTS dbcrate_schema (version BIGINT NOT NULL)")
            .execute(&self.pool)
            .await
            .map_err(fail)?;
        let version: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM dbcrate_schema")
            .fetch_one(&self.pool)
            .await
            .map_err(fail)?;
        Ok(version.unwrap_or(0))
    }

    /// The boot check: the schema must be exactly the binary's.
    pub async fn check_schema(&self) -> Result<(), DbError> {
        let have = self.schema_version().await?;
        let want = binary_schema_version();
        match have.cmp(&want) {
            Ordering::Equal => Ok(()),
            Ordering::Less => Err(DbError::refused(format!(
                "the database schema is version {have}, older than this binary's {want}: \
                 run `dbcrate-control migrate`"
            ))),
            Ordering::Greater => Err(DbError::refused(format!(
                "the database schema is version {have}, newer than this binary's {want}: it \
                 was migrated by a newer dbcrate-control; run that version"
            ))),
        }
    }

    /// Applies every pending migration; returns how many ran. Refuses a schema newer
    /// than the binary.
    pub async fn migrate(&self) -> Result<usize, DbError> {
        let have = self.schema_version().await?;
        if have > binary_schema_version() {
            return self.check_schema().await.map(|()| 0);
        }
        let mut applied = 0;
        for m in MIGRATIONS.iter().filter(|m| m.version > have) {
            let fail = |e: sqlx::Error| {
                DbError::failed(
                    format_args!("migration {} failed (nothing of it applied)", m.version),
                    e,
                )
            };
            let mut tx = self.pool.begin().await.map_err(fail)?;
            let sql = match self.engine {
                Engine::Sqlite => m.sqlite,
                Engine::Postgres => m.postgres,
            };
            sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(fail)?;
            sqlx::query("INSERT INTO dbcrate_schema (version) VALUES ($1)")
                .bind(m.version)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            tx.commit().await.map_err(fail)?;
            applied += 1;
        }
        Ok(applied)
    }
}

/// Commits `tx` if `result` is Ok, else rolls it back; a failed commit turns the result
/// into that error.
pub async fn end_write<T, E: From<sqlx::Error>>(
    tx: Transaction<'static, Any>,
    result: Result<T, E>,
) -> Result<T, E> {
    match result {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(e) => {
            // The rollback's own failure changes nothing: the caller's error is the news.
            let _ = tx.rollback().await;
            Err(e)
        }
    }
}
