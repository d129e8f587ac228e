//! dbcrate's test kit: real servers for tests, started on loopback and stopped on drop.
//!
//! Every test that touches PostgreSQL, S3 or SFTP goes through this crate so that it
//! talks to the real thing: a PostgreSQL server of any major 13–18 with that major's
//! `pg_dump`/`pg_restore`, a Garage object store with a fresh bucket, and an OpenSSH
//! `sshd` serving SFTP. The binaries come from the cache that
//! `scripts/provision-testdeps` fills; when one is missing the error says which and how
//! to provision it, and the test fails — a missing server is never a skipped test.
//!
//! When the tests run as root (CI does), servers that refuse root (initdb, postgres) or
//! that should not hold root (sshd) run as the unprivileged user `nobody`.
#![deny(missing_docs)]

mod age_key;
mod deps;
mod error;
pub mod log_lint;
mod pg_install;
mod ports;
mod postgres;
mod process;
mod random;
mod s3;
mod sftp;
mod tempdir;
mod user;

pub use age_key::age_keypair;
pub use deps::{Deps, PG_MAJORS, PROVISION_COMMAND};
pub use error::KitError;
pub use pg_install::PgClientInstall;
pub use postgres::PgServer;
pub use s3::S3Server;
pub use sftp::SftpServer;
pub use tempdir::TempDir;

/// Results of the kit: every error says what failed and how to fix it.
pub type Result<T> = std::result::Result<T, KitError>;
