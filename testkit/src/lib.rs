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
//!
//! It also holds the helpers that tests of several crates share instead of copying: a
//! test CA ([`TestCa`]), the test master keys and SQLite URL of a control plane under
//! test, the scan of every text in a control plane's database for leaked secrets
//! ([`every_text_in_database`]) and assertions on its audit log ([`assert_audited`]).
//! Those take plain sqlx types: the kit does not depend on the control plane, whose
//! tests depend on the kit.
#![deny(missing_docs)]

mod age_key;
mod audit;
pub mod browser;
mod database_text;
mod deps;
mod dir_names;
mod error;
mod faulty_http;
pub mod log_lint;
mod master_keys;
pub mod page_checks;
mod pg_install;
mod ports;
mod postgres;
mod process;
mod prometheus;
mod random;
mod s3;
mod sftp;
mod smtp;
mod sqlite;
mod tempdir;
mod test_ca;
mod tmpfs;
mod user;
mod webdriver;

pub use age_key::age_keypair;
pub use audit::{assert_audited, audited_actions};
pub use database_text::every_text_in_database;
pub use deps::{Deps, PG_MAJORS, PROVISION_COMMAND};
pub use dir_names::names_in;
pub use error::KitError;
pub use faulty_http::{Faults, FaultyHttp};
pub use master_keys::{TEST_MASTER_KEY, TEST_MASTER_KEY_2};
pub use pg_install::PgClientInstall;
pub use postgres::PgServer;
pub use process::{assert_failed_saying, assert_succeeded, output_ok};
pub use prometheus::{
    promtool_check_metrics, promtool_check_rules, PrometheusServer, ScrapeTarget,
};
pub use s3::S3Server;
pub use sftp::SftpServer;
pub use smtp::{SmtpServer, SmtpTls, SMTP_PASSWORD, SMTP_USER};
pub use sqlite::sqlite_url;
pub use tempdir::TempDir;
pub use test_ca::{ServerCert, TestCa};
pub use tmpfs::Tmpfs;

/// Results of the kit: every error says what failed and how to fix it.
pub type Result<T> = std::result::Result<T, KitError>;
