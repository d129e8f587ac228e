//! The agent's client of the signed pg_dump registry.
//!
//! Instead of relying on whatever pg_dump the host has, the agent fetches the one that
//! matches the server's major from a registry it trusts through a pinned root key
//! (`--registry-url`, `--registry-root-key`). The trust rules are in
//! [`dbcrate_core::registry`]; this module does the I/O around them: HTTPS with capped
//! reads ([`http`]), what is remembered between runs ([`state`]), safe unpacking
//! ([`unpack`]) and the sequence ([`client`]). A binary is only ever run from a
//! directory that was unpacked from an archive whose SHA-256 matched the signed
//! manifest, and that still matches that archive, and the archive that hash, when it is
//! about to be used; every directory on the way is the agent's own and writable by
//! nobody else ([`crate::datadir`]).

pub mod client;
pub mod http;
pub mod state;
pub mod unpack;

pub use client::{tool_dir, RegistryConfig};

use crate::error::Result;
use std::path::PathBuf;

/// The directory to take `pg_dump`/`pg_restore` from for a server of `pg_major`: the
/// explicit `--pg-bin-dir`, else the registry's verified tools, else `None` (PATH).
pub async fn bin_dir_for(
    pg_bin_dir: Option<PathBuf>,
    registry: Option<&RegistryConfig>,
    pg_major: u32,
) -> Result<Option<PathBuf>> {
    match (pg_bin_dir, registry) {
        (Some(dir), _) => Ok(Some(dir)),
        (None, Some(config)) => {
            let now = dbcrate_core::time::unix_now();
            tool_dir(config, pg_major, now).await.map(Some)
        }
        (None, None) => Ok(None),
    }
}
