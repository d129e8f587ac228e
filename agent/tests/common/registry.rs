//! A signed pg_dump registry for tests: artifacts built by `dbcrate-registry` from the
//! test kit's PostgreSQL installations, signed by `dbcrate-signer` (roots 1 → 2 → 3),
//! served over real HTTPS on loopback by `dbcrate-registry serve`'s server.

use super::scratch;
use dbcrate_core::registry::layout::{MANIFEST, MANIFEST_SIG};
use dbcrate_core::registry::metadata::Manifest;
use dbcrate_core::registry::minisign::Signature;
use dbcrate_core::secret::SecretString;
use dbcrate_core::time::unix_now;
use dbcrate_registry::build::{build, Installation};
use dbcrate_signer::keyfile::{SecretKey, MIN_MEMLIMIT};
use dbcrate_signer::tree::newest_root;
use dbcrate_signer::{KeyDir, Role, Signer};
use dbcrate_testkit::{Deps, TempDir};
use std::path::{Path, PathBuf};

/// The passphrase of the test registry's signing keys.
pub const PASSPHRASE: &str = "registry test passphrase";

/// A signed registry tree and its keys.
pub struct Registry {
    pub dir: TempDir,
    pub tree: PathBuf,
    /// The root version 1 public key (RW…), what agents pin.
    pub root_v1: String,
}

impl Registry {
    /// Artifacts for `majors` (this host's architecture, the test kit's clients), root
    /// 1 → 2 (manifest key) → 3 (new root key), manifest version 1 signed.
    pub fn new(majors: &[u32]) -> Self {
        let deps = Deps::from_env();
        let installs: Vec<Installation> = majors
            .iter()
            .map(|&major| {
                let install = deps.pg_client_install(major).unwrap();
                Installation {
                    major,
                    arch: std::env::consts::ARCH.into(),
                    bin_dir: install.bin_dir,
                    lib_dirs: install.lib_dirs,
                    sysroot: None,
                }
            })
            .collect();
        Self::from_installations(&installs)
    }

    /// Artifacts built by `dbcrate-registry build` from `installs`, signed as in
    /// [`Registry::new`].
    pub fn from_installations(installs: &[Installation]) -> Self {
        let dir = scratch("registry");
        let tree = dir.path().join("tree");
        let expires = dbcrate_core::time::UtcDateTime::from_unix(unix_now() + 86_400).rfc3339();
        build(installs, &tree, 1, &expires).unwrap();
        let reg = Self {
            dir,
            tree,
            root_v1: String::new(),
        };
        let keys = reg.keys();
        let signer = reg.signer(&keys);
        let root = signer.init(1, 1).unwrap();
        signer.add_manifest_key(None).unwrap();
        signer.rotate_root(1, 1).unwrap();
        signer.sign_manifest(None, None).unwrap();
        Self {
            root_v1: root.root_keys[0].clone(),
            ..reg
        }
    }

    pub fn keys(&self) -> KeyDir {
        KeyDir::new(
            &self.dir.path().join("keys"),
            SecretString::new(PASSPHRASE.into()),
            MIN_MEMLIMIT,
        )
    }

    pub fn signer<'a>(&'a self, keys: &'a KeyDir) -> Signer<'a> {
        Signer {
            registry: &self.tree,
            keys,
            now: unix_now(),
            root_days: 30,
        }
    }

    pub fn manifest(&self) -> Manifest {
        Manifest::parse(&std::fs::read(self.tree.join(MANIFEST)).unwrap()).unwrap()
    }

    /// Rewrites manifest.json and signs it with `key` (any key, listed or not).
    pub fn sign_manifest_with(&self, manifest: &Manifest, key: &SecretKey) {
        let bytes = manifest.to_json();
        let sig = Signature::sign(key.id(), key.signing_key(), &bytes, "test");
        std::fs::write(self.tree.join(MANIFEST), &bytes).unwrap();
        std::fs::write(self.tree.join(MANIFEST_SIG), sig.to_file()).unwrap();
    }

    /// The manifest key the newest root lists.
    pub fn manifest_key(&self) -> SecretKey {
        let root = newest_root(&self.tree, None).unwrap();
        self.keys()
            .load(Role::Manifest, root.keys.manifest[0].id())
            .unwrap()
            .unwrap()
    }

    pub fn artifact_path(&self, major: u32) -> PathBuf {
        let m = self.manifest();
        self.tree
            .join(&m.artifact(major, std::env::consts::ARCH).unwrap().url)
    }
}

/// `dbcrate-registry serve`'s server for `tree` on 127.0.0.1, with a fresh CA.
pub struct Served {
    /// `https://127.0.0.1:PORT/`.
    pub url: String,
    /// The CA certificate (PEM file) that issued the server's certificate.
    pub ca: PathBuf,
    _stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self._stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A server TLS configuration for 127.0.0.1 from a fresh CA, whose certificate is
/// written to `<scratch_dir>/registry-ca.pem` (the path returned).
pub fn test_tls(scratch_dir: &Path) -> (rustls::ServerConfig, PathBuf) {
    let ca = dbcrate_testkit::TestCa::new("dbcrate test CA");
    let leaf = ca.server("127.0.0.1", "dbcrate test registry");
    let ca_file = scratch_dir.join("registry-ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let tls =
        dbcrate_registry::serve::tls_config(leaf.cert_pem.as_bytes(), leaf.key_pem.as_bytes())
            .unwrap();
    (tls, ca_file)
}

/// Serves `tree` on a thread of its own (its own runtime), so that it works from plain
/// and from async tests alike; stopped when the `Served` is dropped.
pub fn serve(tree: &Path, scratch_dir: &Path) -> Served {
    let (tls, ca) = test_tls(scratch_dir);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let tree = tree.to_path_buf();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            tokio::select! {
                _ = dbcrate_registry::serve::serve(tree, listener, tls) => {}
                _ = stopped => {}
            }
        });
    });
    Served {
        url: format!("https://127.0.0.1:{port}/"),
        ca,
        _stop: Some(stop),
    }
}
