//! The dbcrate control plane as a library.
//!
//! It is where customers' secrets live, so the pieces that guard them come first:
//! [`envelope`] encrypts every secret under its own key, wrapped by a master key that
//! comes from the deployment environment and never touches the database; [`db`] opens
//! the embedded SQLite or a PostgreSQL database and keeps its schema in step with the
//! binary; [`audit`] is the one way to write the append-only, hash-chained audit log.
//! Boot checks, users and the API are built on top in later steps.
#![deny(missing_docs)]

pub mod audit;
pub mod config;
pub mod db;
pub mod envelope;
pub mod error;
pub mod orgs;
pub mod secrets;
pub mod sessions;
pub mod setup;
pub mod totp;
pub mod users;
