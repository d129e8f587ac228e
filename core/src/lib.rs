//! Types and pure logic shared by the dbcrate agent, control plane, registry and signer.
//!
//! Later issues fill this crate: secret types, agent wire types, age header parsing and
//! the file-key identity, registry metadata and its verification, retention planning.
//! It holds no I/O so that every rule it encodes can be tested without servers.
#![deny(missing_docs)]

/// The version of this dbcrate build, shared by every binary's `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
