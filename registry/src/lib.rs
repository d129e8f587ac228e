//! The dbcrate pg_dump registry as a library: build artifacts, serve a signed tree.
//!
//! The registry ships, per PostgreSQL major and CPU architecture, a self-contained
//! pg_dump, pg_dumpall, pg_restore and psql (see [`build`]). Its trust comes entirely from the signed
//! metadata ([`dbcrate_core::registry`]), so serving is plain static file hosting
//! ([`serve`]).
#![deny(missing_docs)]

pub mod build;
pub mod error;
pub mod libs;
pub mod serve;

pub use error::{Error, Result};
