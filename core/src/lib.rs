//! Types and pure logic shared by the dbcrate agent, control plane, registry and signer.
//!
//! It holds no I/O so that every rule it encodes can be tested without servers: secret
//! types that cannot leak through `Debug`, and the object-key layout of a backup. Later
//! issues add the agent wire types, age header parsing, registry metadata, backup
//! schedules ([`schedule`]) and retention planning.
#![deny(missing_docs)]

pub mod hex;
pub mod object_key;
pub mod registry;
pub mod schedule;
pub mod secret;
pub mod time;

/// The version of this dbcrate build, shared by every binary's `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
