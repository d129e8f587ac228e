//! Getting a verified pg_dump/pg_restore for one major: walk the roots, check the
//! manifest, download with a cap, check the hash, unpack, cache by hash — and, before
//! each use, check the cache against the manifest's hash again.
//!
//! The cache is `<data-dir>/pg/<major>/<sha256>/`: the unpacked tools, the archive they
//! came from and a marker written last. Every directory from the data directory down is
//! checked (the agent's own, writable by nobody else; see [`crate::datadir`]). A cache
//! that no longer matches its archive, or an archive that no longer has the manifest's
//! hash, refuses the job and is left as found, for a person to look at: someone with
//! the agent's rights (or root) changed it. A cache from an agent that did not keep the
//! archive is fetched again.

use super::http::Http;
use super::state::State;
use super::unpack::{unpack, verify_unpacked, KEPT_ARCHIVE, VERIFIED_MARKER};
use crate::datadir::Dir;
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
/// machine's architecture, fetched and unpacked if not cached, and checked against the
/// manifest's hash before it is returned (each time). `now` is Unix seconds.
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
    let pg_root = Dir::open_data_dir(&config.data_dir, true)?.make_child("pg", "tool cache")?;
    let major_dir = pg_root.make_child(&pg_major.to_string(), "tool cache")?;
    let final_dir = major_dir.path().join(&artifact.sha256);
    let what = "cached tools directory";
    let mut complete = false;
    if let Some(cached) = major_dir.child(&artifact.sha256, what, false)? {
        complete = cached.open_file(VERIFIED_MARKER, "cache marker")?.is_some();
        if complete && cached.open_file(KEPT_ARCHIVE, "cached artifact")?.is_none() {
            // Unpacked by an agent that did not keep the archive: there is nothing to
            // check it against, so it is fetched again.
            tracing::info!(
                dir = %final_dir.display(),
                "cached tools without their archive: fetching them again, to check them \
                 before each use"
            );
            drop(cached);
            tokio::fs::remove_dir_all(&final_dir).await.map_err(|e| {
                Error::invalid_input(format!("removing {}: {e}", final_dir.display()))
            })?;
            complete = false;
        }
    }
    if !complete {
        fetch_and_unpack(&http, artifact, &pg_root, &final_dir).await?;
        tracing::info!(
            pg_major,
            pg_version = %artifact.pg_version,
            bytes = artifact.length,
            "registry artifact verified and unpacked"
        );
    }
    // Checked on every use, not only after the download: the tools run with the
    // database password in their environment.
    let cached = major_dir
        .child(&artifact.sha256, what, false)?
        .ok_or_else(|| Error::invalid_input(format!("{} vanished", final_dir.display())))?;
    let (dir, sha256) = (cached.path().to_path_buf(), artifact.sha256.clone());
    tokio::task::spawn_blocking(move || verify_unpacked(&dir, &sha256))
        .await
        .map_err(|e| Error::integrity(format!("checking the cached tools failed: {e}")))?
        .map_err(|e| {
            let refusing = format!(
                "refusing the cached PostgreSQL {pg_major} tools in {}",
                final_dir.display()
            );
            if e.kind() != ErrorKind::Integrity {
                // Modes or owners: the error names the fix.
                return e.context(refusing).note("nothing from them was run");
            }
            e.context(format!(
                "{refusing}: they no longer match the registry artifact the signed manifest \
                 lists (SHA-256 {})",
                artifact.sha256
            ))
            .note(&format!(
                "nothing from them was run. They were changed after download, by the \
                 agent's own user or root (nobody else can write there), or damaged on disk; \
                 find out how, then delete {} and the next job fetches and checks them again",
                final_dir.display()
            ))
        })?;
    Ok(final_dir.join("bin"))
}

async fn fetch_and_unpack(
    http: &Http,
    artifact: &dbcrate_core::registry::metadata::Artifact,
    pg_root: &Dir,
    final_dir: &Path,
) -> Result<()> {
    let io = |what: &str, path: &Path, e: std::io::Error| {
        Error::invalid_input(format!("{what} {}: {e}; check --data-dir", path.display()))
    };
    // Per-process names: two agents fetching the same artifact do not share scratch files.
    let pid = std::process::id();
    let download = pg_root
        .path()
        .join(format!(".download-{}-{pid}", artifact.sha256));
    let staging = pg_root
        .path()
        .join(format!(".unpack-{}-{pid}", artifact.sha256));
    let _ = tokio::fs::remove_file(&download).await;
    let _ = tokio::fs::remove_dir_all(&staging).await;
    let result = async {
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&download)
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
        file.sync_all()
            .await
            .map_err(|e| io("syncing", &download, e))?;
        drop(file);
        tokio::fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .await
            .map_err(|e| io("creating", &staging, e))?;
        let (archive, dest) = (download.clone(), staging.clone());
        tokio::task::spawn_blocking(move || unpack(&archive, &dest))
            .await
            .map_err(|e| Error::integrity(format!("unpacking failed: {e}")))??;
        // The archive stays with its files, to check them against before each use.
        let kept = staging.join(KEPT_ARCHIVE);
        tokio::fs::rename(&download, &kept)
            .await
            .map_err(|e| io("renaming into", &kept, e))?;
        std::fs::write(staging.join(VERIFIED_MARKER), &artifact.sha256)
            .map_err(|e| io("writing", &staging, e))?;
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
