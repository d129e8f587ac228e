//! Getting a verified pg_dump/pg_restore for one major: walk the roots, check the
//! manifest, download with a cap, check the hash, unpack, cache by hash.

use super::http::Http;
use super::state::State;
use super::unpack::unpack;
use crate::error::{Error, ErrorKind, Result};
use dbcrate_core::registry::layout::{root_file, root_sig_file, MANIFEST, MANIFEST_SIG, ROOT_DIR};
use dbcrate_core::registry::metadata::Root;
use dbcrate_core::registry::minisign::{KeyId, PublicKey, Signature};
use dbcrate_core::registry::trust::{
    check_root_fresh, floor_after, verify_first_root, verify_manifest, verify_next_root,
    TrustedRoot,
};
use dbcrate_core::registry::RegistryError;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Caps for metadata files: generous for JSON, far below anything harmful.
const ROOT_CAP: u64 = 1 << 20;
const MANIFEST_CAP: u64 = 4 << 20;
const SIG_CAP: u64 = 4 << 10;
/// A marker written last into an unpacked artifact: its presence means complete.
const VERIFIED_MARKER: &str = ".dbcrate-verified";

/// Where the registry is and what the agent trusts.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Base URL (`https://…/`).
    pub url: String,
    /// The pinned root version 1 key(s).
    pub root_keys: Vec<PublicKey>,
    /// A CA certificate file to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    /// The agent's data directory (state and unpacked tools).
    pub data_dir: PathBuf,
}

fn trust(e: RegistryError) -> Error {
    Error::integrity(format!("registry: {e}"))
}

async fn root_sigs(http: &Http, version: u64, keys: &[KeyId]) -> Result<Vec<Signature>> {
    let mut sigs = Vec::new();
    for id in keys {
        let path = format!("{ROOT_DIR}/{}", root_sig_file(version, *id));
        if let Some(bytes) = http.fetch(&path, SIG_CAP).await? {
            sigs.push(Signature::parse(&String::from_utf8_lossy(&bytes)).map_err(trust)?);
        }
    }
    Ok(sigs)
}

fn ids(keys: &[PublicKey]) -> Vec<KeyId> {
    keys.iter().map(PublicKey::id).collect()
}

/// Walks from the stored root (or the pinned root 1) to the newest, storing each step.
async fn newest_root(http: &Http, config: &RegistryConfig, state: &State) -> Result<TrustedRoot> {
    let mut current = match state.root()? {
        Some(root) => root,
        None => {
            let path = format!("{ROOT_DIR}/{}", root_file(1));
            let bytes = http.fetch(&path, ROOT_CAP).await?.ok_or_else(|| {
                Error::new(
                    ErrorKind::Registry,
                    format!(
                        "{} has no root version 1; is --registry-url right?",
                        http.url(&path)
                    ),
                )
            })?;
            let sigs = root_sigs(http, 1, &ids(&config.root_keys)).await?;
            let root = verify_first_root(&bytes, &sigs, &config.root_keys).map_err(trust)?;
            state.save_root(&bytes)?;
            root
        }
    };
    loop {
        let next = current.root.version + 1;
        let path = format!("{ROOT_DIR}/{}", root_file(next));
        let Some(bytes) = http.fetch(&path, ROOT_CAP).await? else {
            return Ok(current);
        };
        // Which signatures to ask for: the current keys and the keys the new root names
        // (unverified until the threshold check below).
        let mut candidates = ids(&current.keys.root);
        if let Ok((_, keys)) = Root::parse(&bytes) {
            candidates.extend(ids(&keys.root));
        }
        candidates.sort();
        candidates.dedup();
        let sigs = root_sigs(http, next, &candidates).await?;
        current = verify_next_root(&current, &bytes, &sigs).map_err(trust)?;
        state.save_root(&bytes)?;
        tracing::info!(version = next, "registry root rotated");
    }
}

/// The directory with a verified `pg_dump` and `pg_restore` of `pg_major` for this
/// machine's architecture, fetched and unpacked if not cached. `now` is Unix seconds.
pub async fn tool_dir(config: &RegistryConfig, pg_major: u32, now: i64) -> Result<PathBuf> {
    let http = Http::new(&config.url, config.ca_file.as_deref())?;
    let state = State::new(&config.data_dir, &config.root_keys);
    let root = newest_root(&http, config, &state).await?;
    check_root_fresh(&root, now).map_err(trust)?;
    let manifest_bytes = http.fetch(MANIFEST, MANIFEST_CAP).await?.ok_or_else(|| {
        Error::new(
            ErrorKind::Registry,
            format!("{} not found", http.url(MANIFEST)),
        )
    })?;
    let sig_bytes = http.fetch(MANIFEST_SIG, SIG_CAP).await?.ok_or_else(|| {
        Error::new(
            ErrorKind::Registry,
            format!("{} not found", http.url(MANIFEST_SIG)),
        )
    })?;
    let sig = Signature::parse(&String::from_utf8_lossy(&sig_bytes)).map_err(trust)?;
    let floor = state.floor()?;
    let manifest =
        verify_manifest(&root, &manifest_bytes, &sig, now, floor.as_ref()).map_err(trust)?;
    state.save_floor(&floor_after(&root, &manifest, sig.key_id(), floor.as_ref()))?;
    let arch = std::env::consts::ARCH;
    let artifact = manifest.artifact(pg_major, arch).ok_or_else(|| {
        Error::new(
            ErrorKind::PgTool,
            format!(
                "the registry (manifest version {}) has no pg_dump for PostgreSQL {pg_major} \
                 on {arch}; pass --pg-bin-dir DIR with PostgreSQL {pg_major} client tools",
                manifest.version
            ),
        )
    })?;
    let pg_root = config.data_dir.join("pg");
    let final_dir = pg_root.join(pg_major.to_string()).join(&artifact.sha256);
    if final_dir.join(VERIFIED_MARKER).is_file() {
        return Ok(final_dir.join("bin"));
    }
    fetch_and_unpack(&http, artifact, &pg_root, &final_dir).await?;
    tracing::info!(
        pg_major,
        pg_version = %artifact.pg_version,
        bytes = artifact.length,
        "registry artifact verified and unpacked"
    );
    Ok(final_dir.join("bin"))
}

async fn fetch_and_unpack(
    http: &Http,
    artifact: &dbcrate_core::registry::metadata::Artifact,
    pg_root: &Path,
    final_dir: &Path,
) -> Result<()> {
    let io = |what: &str, path: &Path, e: std::io::Error| {
        Error::invalid_input(format!("{what} {}: {e}; check --data-dir", path.display()))
    };
    tokio::fs::create_dir_all(pg_root)
        .await
        .map_err(|e| io("creating", pg_root, e))?;
    // Per-process names: two agents fetching the same artifact do not share scratch files.
    let pid = std::process::id();
    let download = pg_root.join(format!(".download-{}-{pid}", artifact.sha256));
    let staging = pg_root.join(format!(".unpack-{}-{pid}", artifact.sha256));
    let _ = tokio::fs::remove_file(&download).await;
    let _ = tokio::fs::remove_dir_all(&staging).await;
    let result = async {
        let mut file = tokio::fs::File::create(&download)
            .await
            .map_err(|e| io("creating", &download, e))?;
        let mut hasher = Sha256::new();
        http.download(&artifact.url, artifact.length, &mut file, &mut |chunk| {
            hasher.update(chunk)
        })
        .await?;
        let got = dbcrate_core::hex::encode(&hasher.finalize());
        if got != artifact.sha256 {
            return Err(Error::integrity(format!(
                "registry: {} has SHA-256 {got}, the signed manifest lists {}; the artifact \
                 was tampered with or damaged, nothing from it was run",
                http.url(&artifact.url),
                artifact.sha256
            )));
        }
        tokio::fs::create_dir_all(&staging)
            .await
            .map_err(|e| io("creating", &staging, e))?;
        let (archive, dest) = (download.clone(), staging.clone());
        tokio::task::spawn_blocking(move || unpack(&archive, &dest))
            .await
            .map_err(|e| Error::integrity(format!("unpacking failed: {e}")))??;
        std::fs::write(staging.join(VERIFIED_MARKER), &artifact.sha256)
            .map_err(|e| io("writing", &staging, e))?;
        let parent = final_dir.parent().expect("has a parent");
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| io("creating", parent, e))?;
        match tokio::fs::rename(&staging, final_dir).await {
            Ok(()) => Ok(()),
            // Another agent process finished the same artifact first: use theirs.
            Err(_) if final_dir.join(VERIFIED_MARKER).is_file() => Ok(()),
            Err(e) => Err(io("renaming into", final_dir, e)
                .note("if that directory is left from an interrupted run, delete it")),
        }
    }
    .await;
    let _ = tokio::fs::remove_file(&download).await;
    let _ = tokio::fs::remove_dir_all(&staging).await;
    result
}
