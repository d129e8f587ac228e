//! The dbcrate control plane as a library.
//!
//! It is where customers' secrets live, so the pieces that guard them come first:
//! [`envelope`] encrypts every secret under its own key, wrapped by a master key that
//! comes from the deployment environment and never touches the database. The database,
//! boot checks, audit log, users and API are built on top in later steps.
#![deny(missing_docs)]

pub mod envelope;
