//! The signed pg_dump registry end to end: artifacts built by `dbcrate-registry` from the
//! test kit's PostgreSQL installations, signed by `dbcrate-signer` (roots 1 → 2 → 3),
//! served over real HTTPS on loopback, fetched and verified by the agent — and every
//! attack the issue lists, each refused with a clear error and nothing run or unpacked.

mod common;

use common::registry::{serve, test_tls, Registry, Served};
use common::*;
use dbcrate_agent::registry::{tool_dir, RegistryConfig};
use dbcrate_core::registry::layout::{root_file, root_sig_file, MANIFEST, MANIFEST_SIG};
use dbcrate_core::registry::metadata::{Manifest, Root};
use dbcrate_core::registry::minisign::{PublicKey, Signature};
use dbcrate_core::time::unix_now;
use dbcrate_signer::keyfile::SecretKey;
use dbcrate_signer::tree::newest_root;
use dbcrate_signer::Role;
use dbcrate_testkit::PgServer;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn registry_flags(cmd: &mut std::process::Command, root_key: &str, served: &Served, data: &Path) {
    cmd.args(["--registry-url", &served.url])
        .args(["--registry-root-key", root_key])
        .arg("--registry-ca")
        .arg(&served.ca)
        .arg("--data-dir")
        .arg(data);
}

fn backup_and_restore_through_the_registry(major: u32) {
    let reg = Registry::new(&[major]);
    let served = serve(&reg.tree, reg.dir.path());
    let server = PgServer::start(major).unwrap();
    server.create_database("app").unwrap();
    server.psql("app", &varied_schema(50)).unwrap();
    let (identity, recipient) = org_key(reg.dir.path());
    let data = reg.dir.path().join("agent-data");
    let dest = file_url(&reg.dir.path().join("backups"));

    let backup_cmd = || {
        let mut cmd = agent();
        cmd.arg("backup")
            .args(["--database-url", &server.url("app")])
            .args(["--recipient", &recipient])
            .args(["--destination", &dest]);
        cmd
    };

    // Pinned to some other key: refused before anything is downloaded or run.
    let mut cmd = backup_cmd();
    let stranger = SecretKey::generate().unwrap().public().to_base64();
    registry_flags(&mut cmd, &stranger, &served, &data);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("check that --registry-root-key is this registry's root key"),
        "{}",
        stderr_of(&out)
    );
    assert!(files_under(&data.join("pg")).is_empty());

    let mut cmd = backup_cmd();
    registry_flags(&mut cmd, &reg.root_v1, &served, &data);
    let out = output_ok("backup", &mut cmd);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = report["pg_dump_version"].as_str().unwrap();
    assert!(version.contains(&format!(" {major}.")), "{version}");
    let sha = &reg.manifest().artifacts[0].sha256;
    assert!(data.join(format!("pg/{major}/{sha}/bin/pg_dump")).is_file());

    // The artifact is cached by hash: with it gone from the registry, restore still works.
    std::fs::remove_file(reg.artifact_path(major)).unwrap();
    server.create_database("restored").unwrap();
    let mut cmd = agent();
    cmd.arg("restore")
        .args(["--source", report["object"].as_str().unwrap()])
        .args(["--database-url", &server.url("restored")])
        .arg("--identity")
        .arg(&identity);
    registry_flags(&mut cmd, &reg.root_v1, &served, &data);
    let out = output_ok("restore", &mut cmd);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let version = report["pg_restore_version"].as_str().unwrap();
    assert!(version.contains(&format!(" {major}.")), "{version}");
    assert_same_database(&server, "app", &server, "restored");
}

#[test]
fn backup_and_restore_with_registry_binaries_pg13() {
    backup_and_restore_through_the_registry(13);
}

#[test]
fn backup_and_restore_with_registry_binaries_pg16() {
    backup_and_restore_through_the_registry(16);
}

/// Fetches PostgreSQL 16's tools from `reg` into `data` as the agent does.
fn fetch(reg: &Registry, served: &Served, data: &Path) -> Result<PathBuf, String> {
    let config = RegistryConfig {
        url: served.url.clone(),
        root_keys: vec![PublicKey::parse(&reg.root_v1).unwrap()],
        ca_file: Some(served.ca.clone()),
        data_dir: data.to_path_buf(),
    };
    let _ = served;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(tool_dir(&config, 16, unix_now()))
        .map_err(|e| e.to_string())
}

/// Sets up a registry, lets `attack` change its tree, and returns the agent's error;
/// asserts that nothing was unpacked.
fn attacked(attack: impl FnOnce(&Registry)) -> String {
    let reg = Registry::new(&[16]);
    let served = serve(&reg.tree, reg.dir.path());
    attack(&reg);
    let data = reg.dir.path().join("agent-data");
    let err = fetch(&reg, &served, &data).expect_err("the attack must be refused");
    let unpacked = files_under(&data.join("pg"));
    assert!(unpacked.is_empty(), "unpacked despite {err}: {unpacked:?}");
    err
}

fn assert_contains(err: &str, needle: &str) {
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
}

#[test]
fn the_untouched_registry_is_accepted() {
    let reg = Registry::new(&[16]);
    let served = serve(&reg.tree, reg.dir.path());
    let data = reg.dir.path().join("agent-data");
    let bin = fetch(&reg, &served, &data).unwrap();
    assert!(bin.join("pg_dump").is_file());
    // Root 3 was reached and remembered, in the state of the pinned key (one anchor).
    let anchors: Vec<_> = std::fs::read_dir(data.join("registry"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(anchors.len(), 1, "{anchors:?}");
    let stored = std::fs::read(anchors[0].join("root.json")).unwrap();
    assert_eq!(Root::parse(&stored).unwrap().0.version, 3);
}

#[test]
fn tampered_manifest_byte_is_refused() {
    let err = attacked(|reg| {
        let path = reg.tree.join(MANIFEST);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replacen("\"pg_major\": 16", "\"pg_major\": 17", 1),
        )
        .unwrap();
    });
    assert_contains(&err, "manifest.json: the signature by key");
    assert_contains(&err, "does not match the file");
}

#[test]
fn tampered_artifact_is_refused() {
    let err = attacked(|reg| {
        let path = reg.artifact_path(16);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
    });
    assert_contains(&err, "the artifact was tampered with or damaged");
}

#[test]
fn oversized_artifact_is_refused() {
    let err = attacked(|reg| {
        let path = reg.artifact_path(16);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[0u8; 1 << 16]);
        std::fs::write(&path, bytes).unwrap();
    });
    assert_contains(&err, "is larger than the");
}

#[test]
fn manifest_signed_by_a_removed_key_is_refused() {
    let err = attacked(|reg| {
        let old = reg.manifest_key();
        let keys = reg.keys();
        let signer = reg.signer(&keys);
        signer.add_manifest_key(None).unwrap();
        signer.remove_manifest_key(&old.id().to_string()).unwrap();
        reg.sign_manifest_with(&reg.manifest(), &old);
    });
    assert_contains(&err, "which root version 5 does not list as a manifest key");
}

#[test]
fn root_signed_only_by_the_new_key_is_refused() {
    let err = attacked(|reg| {
        let current = newest_root(&reg.tree, None).unwrap().root;
        let new = SecretKey::generate().unwrap();
        let root = Root {
            version: 4,
            root_keys: vec![new.public().to_base64()],
            ..current
        };
        dbcrate_signer::tree::write_root(&reg.tree, &root, &[&new], unix_now()).unwrap();
    });
    assert_contains(
        &err,
        "root version 4 has 0 valid signature(s) by the keys of root version 3",
    );
}

#[test]
fn root_skipping_a_version_is_refused() {
    let err = attacked(|reg| {
        let current = newest_root(&reg.tree, None).unwrap();
        let old = reg
            .keys()
            .load(Role::Root, current.keys.root[0].id())
            .unwrap()
            .unwrap();
        let root = Root {
            version: 5,
            ..current.root
        };
        let bytes = root.to_json();
        let dir = reg.tree.join("root");
        std::fs::write(dir.join(root_file(4)), &bytes).unwrap();
        let sig = Signature::sign(old.id(), old.signing_key(), &bytes, "test");
        std::fs::write(dir.join(root_sig_file(4, old.id())), sig.to_file()).unwrap();
    });
    assert_contains(&err, "the root published as version 4 says version 5");
}

#[test]
fn expired_manifest_is_refused() {
    let err = attacked(|reg| {
        let manifest = Manifest {
            expires: "2020-01-01T00:00:00Z".into(),
            ..reg.manifest()
        };
        reg.sign_manifest_with(&manifest, &reg.manifest_key());
    });
    assert_contains(
        &err,
        "manifest.json version 1 expired at 2020-01-01T00:00:00Z",
    );
}

/// The manifest (version 1) and its signature as served now, kept for a replay.
struct Served1 {
    manifest: Vec<u8>,
    sig: Vec<u8>,
}

impl Served1 {
    fn save(reg: &Registry) -> Self {
        Self {
            manifest: std::fs::read(reg.tree.join(MANIFEST)).unwrap(),
            sig: std::fs::read(reg.tree.join(MANIFEST_SIG)).unwrap(),
        }
    }

    /// Serves the saved version 1 again, in place of whatever is served now.
    fn serve_again(self, reg: &Registry) {
        std::fs::write(reg.tree.join(MANIFEST), self.manifest).unwrap();
        std::fs::write(reg.tree.join(MANIFEST_SIG), self.sig).unwrap();
    }
}

/// Serves manifest version 2 signed with `key`, and has the agent fetch (and so accept)
/// it: afterwards, version 1 is a replay.
fn accept_version_2(reg: &Registry, served: &Served, data: &Path, key: &SecretKey) {
    let v2 = Manifest {
        version: 2,
        ..reg.manifest()
    };
    reg.sign_manifest_with(&v2, key);
    fetch(reg, served, data).unwrap();
}

#[test]
fn replayed_older_manifest_is_refused() {
    let reg = Registry::new(&[16]);
    let served = serve(&reg.tree, reg.dir.path());
    let data = reg.dir.path().join("agent-data");
    let v1 = Served1::save(&reg);
    accept_version_2(&reg, &served, &data, &reg.manifest_key());
    v1.serve_again(&reg);
    let err = fetch(&reg, &served, &data).unwrap_err();
    assert_contains(
        &err,
        "manifest.json is version 1 but version 2 was already accepted",
    );
}

#[test]
fn replay_by_the_old_manifest_key_during_a_rotation_is_refused() {
    let reg = Registry::new(&[16]);
    let served = serve(&reg.tree, reg.dir.path());
    let data = reg.dir.path().join("agent-data");
    let old = reg.manifest_key();
    let v1 = Served1::save(&reg);
    accept_version_2(&reg, &served, &data, &old);
    // Routine rotation, step 1: root 4 lists the old and the new manifest key. The old
    // key's version 1, still validly signed and unexpired, must not come back.
    let keys = reg.keys();
    reg.signer(&keys).add_manifest_key(None).unwrap();
    v1.serve_again(&reg);
    let err = fetch(&reg, &served, &data).unwrap_err();
    assert_contains(
        &err,
        "manifest.json is version 1 but version 2 was already accepted",
    );
    assert_contains(&err, "which root version 4 still lists");
}

#[test]
fn path_traversal_in_an_archive_entry_is_refused() {
    // `attacked` also checks that nothing landed under <data-dir>/pg, where ../evil
    // from the staging directory would have gone.
    let err = attacked(|reg| {
        // A tar whose only entry is ../evil, written by hand (the tar crate's own
        // builder refuses such names).
        let mut header = tar::Header::new_gnu();
        let name = b"../evil";
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(5);
        header.set_mode(0o755);
        header.set_cksum();
        let mut tar = tar::Builder::new(Vec::new());
        tar.append(&header, &b"evil\n"[..]).unwrap();
        let bytes = zstd::encode_all(&tar.into_inner().unwrap()[..], 3).unwrap();
        let path = reg.artifact_path(16);
        std::fs::write(&path, &bytes).unwrap();
        let mut manifest = reg.manifest();
        manifest.artifacts[0].length = bytes.len() as u64;
        manifest.artifacts[0].sha256 = dbcrate_core::hex::encode(&Sha256::digest(&bytes));
        reg.sign_manifest_with(&manifest, &reg.manifest_key());
    });
    assert_contains(
        &err,
        "unsafe artifact: entry \"../evil\" is not a plain relative path",
    );
}

#[test]
fn plain_http_artifact_url_is_refused() {
    let err = attacked(|reg| {
        let mut manifest = reg.manifest();
        let url = format!("http://127.0.0.1:1/{}", manifest.artifacts[0].url);
        manifest.artifacts[0].url = url;
        reg.sign_manifest_with(&manifest, &reg.manifest_key());
    });
    assert_contains(&err, "only https:// or registry-relative URLs are accepted");
}

/// An HTTPS server on 127.0.0.1 that answers every GET with `200`, a 1000-byte length and
/// then one byte every 100 ms: never idle long enough for the idle timeout.
fn dripping_server(scratch_dir: &Path) -> (String, PathBuf) {
    use std::io::{Read, Write};
    let (tls, ca) = test_tls(scratch_dir);
    let tls = std::sync::Arc::new(tls);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let tls = tls.clone();
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(tls).unwrap();
                let mut stream = rustls::StreamOwned::new(conn, tcp);
                let (mut head, mut buf) = (Vec::new(), [0u8; 4096]);
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
                if stream.write_all(answer).is_err() {
                    return;
                }
                for _ in 0..1000 {
                    // The client hung up (its deadline passed): stop.
                    if stream
                        .write_all(b"x")
                        .and_then(|()| stream.flush())
                        .is_err()
                    {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            });
        }
    });
    (format!("https://127.0.0.1:{port}/"), ca)
}

#[test]
fn a_server_dripping_bytes_is_cut_off_at_the_overall_deadline() {
    use dbcrate_agent::registry::http::Http;
    use std::time::{Duration, Instant};
    let dir = scratch("drip");
    let (url, ca) = dripping_server(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = Http::new(&url, Some(&ca))
        .unwrap()
        .with_deadlines(Duration::from_secs(1), Duration::from_secs(2));
    let started = Instant::now();
    let err = runtime
        .block_on(http.fetch(MANIFEST, 1 << 20))
        .unwrap_err()
        .to_string();
    assert_contains(&err, "manifest.json: not complete after 1s");
    assert_contains(&err, "the most a metadata file may take");
    assert!(started.elapsed() < Duration::from_secs(10));
    let file = dir.path().join("download");
    let err = runtime
        .block_on(async {
            let mut file = tokio::fs::File::create(&file).await.unwrap();
            http.download("artifacts/a.tar.zst", 1000, &mut file, &mut |_| ())
                .await
        })
        .unwrap_err()
        .to_string();
    assert_contains(&err, "a.tar.zst: not complete after 2s");
    assert_contains(&err, "the most an artifact download may take");
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn a_data_directory_others_can_write_to_is_refused() {
    let reg = Registry::new(&[16]);
    let served = serve(&reg.tree, reg.dir.path());
    let data = reg.dir.path().join("agent-data");
    std::fs::create_dir(&data).unwrap();
    // Another local user could plant a pg_dump that runs with the database password.
    for loose in [0o777, 0o775, 0o1777] {
        set_mode(&data, loose);
        let err = fetch(&reg, &served, &data).expect_err("a loose data directory");
        assert_contains(&err, &format!("the data directory {}", data.display()));
        assert_contains(&err, &format!("chmod go-w {}", data.display()));
        assert!(files_under(&data).is_empty(), "{:?}", files_under(&data));
    }
    set_mode(&data, 0o755);
    fetch(&reg, &served, &data).unwrap();
    // What the agent made itself is private, whatever the umask.
    let sha = &reg.manifest().artifacts[0].sha256;
    let anchors: Vec<_> = std::fs::read_dir(data.join("registry"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let tools = data.join(format!("pg/16/{sha}"));
    for dir in [data.join("pg"), data.join("pg/16"), tools.clone()] {
        assert_eq!(mode_of(&dir), 0o700, "{}", dir.display());
    }
    // Every directory under it that the agent uses is held to the same rule.
    for dir in [
        data.join("registry"),
        anchors[0].clone(),
        data.join("pg"),
        data.join("pg/16"),
        tools.clone(),
        tools.join("bin"),
    ] {
        let before = mode_of(&dir);
        for loose in [before | 0o020, before | 0o002] {
            set_mode(&dir, loose);
            let err = fetch(&reg, &served, &data).expect_err("a loose directory");
            assert_contains(&err, &format!("chmod go-w {}", dir.display()));
        }
        set_mode(&dir, before);
    }
    fetch(&reg, &served, &data).unwrap();
}

#[test]
fn a_cached_tool_changed_after_download_is_refused_before_it_runs() {
    let reg = Registry::new(&[16]);
    let served = serve(&reg.tree, reg.dir.path());
    let server = PgServer::start(16).unwrap();
    server.create_database("app").unwrap();
    server.psql("app", &varied_schema(5)).unwrap();
    let (_, recipient) = org_key(reg.dir.path());
    let data = reg.dir.path().join("agent-data");
    let dest = file_url(&reg.dir.path().join("backups"));
    // A name each, as two backups within a second would have the same key.
    let backup = |name: &str| {
        let mut cmd = agent();
        cmd.arg("backup")
            .args(["--database-url", &server.url("app")])
            .args(["--recipient", &recipient])
            .args(["--destination", &dest])
            .args(["--name", name]);
        registry_flags(&mut cmd, &reg.root_v1, &served, &data);
        cmd.output().unwrap()
    };
    let out = backup("first");
    assert_succeeded("backup", &out);
    let sha = &reg.manifest().artifacts[0].sha256;
    let tools = data.join(format!("pg/16/{sha}"));
    let pg_dump = tools.join("bin/pg_dump");

    // A pg_dump that leaves a trace, then does its job: only a check of the cache
    // itself can tell it from the real one.
    let ran = reg.dir.path().join("planted-pg-dump-ran");
    let original = std::fs::read_to_string(&pg_dump).unwrap();
    let (shebang, rest) = original.split_once('\n').unwrap();
    let planted = format!("{shebang}\ntouch '{}'\n{rest}", ran.display());
    std::fs::write(&pg_dump, planted).unwrap();
    let out = backup("planted");
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let stderr = stderr_of(&out);
    assert_contains(&stderr, "refusing the cached PostgreSQL 16 tools");
    assert_contains(&stderr, "bin/pg_dump differs from the artifact");
    assert_contains(&stderr, "nothing from them was run");
    assert_contains(&stderr, &format!("delete {}", tools.display()));
    assert!(!ran.exists(), "the planted pg_dump ran");
    // Not repaired behind anyone's back: refused again until a person deletes it.
    let err = fetch(&reg, &served, &data).unwrap_err();
    assert_contains(&err, "bin/pg_dump differs from the artifact");
    assert!(std::fs::read_to_string(&pg_dump).unwrap().contains("touch"));

    // The way out the error names: the next backup fetches, checks and runs it.
    std::fs::remove_dir_all(&tools).unwrap();
    let out = backup("again");
    assert_succeeded("backup", &out);
    assert!(!ran.exists(), "the planted pg_dump ran");
    assert_eq!(std::fs::read_to_string(&pg_dump).unwrap(), original);

    // Tools cached by an agent that did not keep the archive are fetched again.
    let kept = tools.join(".dbcrate-artifact.tar.zst");
    std::fs::remove_file(&kept).unwrap();
    fetch(&reg, &served, &data).unwrap();
    let kept_bytes = std::fs::read(&kept).unwrap();
    assert_eq!(
        dbcrate_core::hex::encode(&Sha256::digest(&kept_bytes)),
        *sha
    );
}
