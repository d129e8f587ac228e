//! The dbcrate registry signer as a library: root and manifest keys, rotation, signing.
//!
//! The signer works on two directories: the registry tree (published as is, see
//! [`dbcrate_core::registry::layout`]) and a key directory that never leaves the
//! operator's machine. Secret keys are stored encrypted in minisign's own format and
//! opened with a passphrase taken from the environment or a file, never from argv. The
//! trust rules themselves live in [`dbcrate_core::registry`], shared with the agent.
#![deny(missing_docs)]

pub mod commands;
pub mod error;
pub mod keyfile;
pub mod keys;
pub mod tree;

pub use commands::{verify_tree, Signer};
pub use error::{Error, Result};
pub use keys::{KeyDir, Role};
