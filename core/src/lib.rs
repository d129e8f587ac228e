//! Types and pure logic shared by the dbcrate agent, control plane, registry and signer.
//!
//! It holds no I/O so that every rule it encodes can be tested without servers: secret
//! types that cannot leak through `Debug`, the object-key layout of a backup, registry
//! metadata and its trust rules ([`registry`]), backup schedules ([`schedule`]: cron in a
//! time zone), the retention planner ([`retention`]) — `now` in, a plan out; the
//! control plane does the I/O — the typed wire between agent and control plane
//! ([`wire`]), the error of the registry and signer tools and the test kit
//! ([`failure`]), and, with the `age` feature, the age file-key identity used by managed
//! restores. docs/architecture.md maps the whole system.
#![deny(missing_docs)]

pub mod failure;
#[cfg(feature = "age")]
pub mod file_key;
pub mod hex;
pub mod object_key;
pub mod registry;
pub mod retention;
pub mod schedule;
pub mod secret;
pub mod time;
pub mod wire;

/// The version of this dbcrate build, shared by every binary's `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
