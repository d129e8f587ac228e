//! The signer's commands end to end, with every signature it writes checked by the stock
//! `minisign -V -H` binary (and a tampered file refused by it, so the check can fail).

use dbcrate_core::registry::metadata::{Manifest, MANIFEST_TYPE};
use dbcrate_testkit::{assert_failed_saying, assert_succeeded, Deps, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PASSPHRASE: &str = "test passphrase for signer keys";

struct Env {
    dir: TempDir,
}

impl Env {
    fn new() -> Self {
        Self {
            dir: TempDir::new("signer").unwrap(),
        }
    }
    fn registry(&self) -> PathBuf {
        self.dir.path().join("registry")
    }
    fn keys(&self) -> PathBuf {
        self.dir.path().join("keys")
    }
    /// `dbcrate-signer <command> --registry … --keys …`, without a passphrase.
    fn command(&self, command: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbcrate-signer"));
        cmd.arg(command)
            .arg("--registry")
            .arg(self.registry())
            .arg("--keys")
            .arg(self.keys());
        cmd
    }
    fn signer(&self, args: &[&str]) -> Output {
        self.command(args[0])
            .args(["--kdf-memory-mib", "16"])
            .args(&args[1..])
            .env("DBCRATE_SIGNER_PASSPHRASE", PASSPHRASE)
            .output()
            .unwrap()
    }
    fn ok(&self, args: &[&str]) -> String {
        let out = self.signer(args);
        assert_succeeded(&format!("{args:?}"), &out);
        String::from_utf8(out.stdout).unwrap()
    }
    /// The operator's `verify` of the registry, pinned to `root_key`.
    fn verify(&self, root_key: &Path) -> Output {
        Command::new(env!("CARGO_BIN_EXE_dbcrate-signer"))
            .arg("verify")
            .arg("--registry")
            .arg(self.registry())
            .arg("--root-key")
            .arg(root_key)
            .output()
            .unwrap()
    }
    fn pub_files(&self, role: &str) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.keys())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                name.starts_with(role) && name.ends_with(".pub")
            })
            .collect();
        v.sort();
        v
    }
}

fn key_id(pub_file: &Path) -> String {
    let name = pub_file.file_stem().unwrap().to_string_lossy().to_string();
    name.rsplit('-').next().unwrap().to_string()
}

fn minisign(pub_file: &Path, file: &Path, sig: &Path) -> Output {
    Command::new(Deps::from_env().tool("minisign").unwrap())
        .args(["-V", "-H", "-p"])
        .arg(pub_file)
        .arg("-m")
        .arg(file)
        .arg("-x")
        .arg(sig)
        .output()
        .unwrap()
}

fn write_manifest(registry: &Path, version: u64) {
    write_manifest_expiring(registry, version, "2099-01-01T00:00:00Z");
}

/// An empty manifest `version` that expires at `expires` (RFC 3339), to be signed.
fn write_manifest_expiring(registry: &Path, version: u64, expires: &str) {
    let m = Manifest {
        kind: MANIFEST_TYPE.into(),
        version,
        expires: expires.into(),
        artifacts: vec![],
    };
    std::fs::write(registry.join("manifest.json"), m.to_json()).unwrap();
}

#[test]
fn every_signed_file_passes_stock_minisign_and_verify() {
    let env = Env::new();
    env.ok(&["init"]);
    let first_root_key = env.pub_files("root")[0].clone();
    env.ok(&["add-manifest-key"]);
    env.ok(&["rotate-root", "--root-keys", "2", "--threshold", "2"]);
    write_manifest(&env.registry(), 1);
    let out = env.ok(&["sign-manifest"]);
    assert!(out.contains("version 1 signed"), "{out}");

    // Every root signature, by every root key that ever existed, checks with minisign.
    let roots = env.registry().join("root");
    let mut checked = 0;
    for version in 1..=3 {
        let file = roots.join(format!("{version}.root.json"));
        for public in env.pub_files("root") {
            let sig = roots.join(format!("{version}.root.json.{}.minisig", key_id(&public)));
            if sig.exists() {
                assert_succeeded("minisign -V", &minisign(&public, &file, &sig));
                checked += 1;
            }
        }
    }
    // v1: key 1; v2: key 1; v3: key 1 + both new keys.
    assert_eq!(checked, 5);
    let manifest_pub = &env.pub_files("manifest")[0];
    let manifest = env.registry().join("manifest.json");
    let sig = env.registry().join("manifest.json.minisig");
    assert!(minisign(manifest_pub, &manifest, &sig).status.success());

    // The operator's verify, pinned to root v1's key.
    let out = env.verify(&first_root_key);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("root version 3, manifest version 1"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // One changed byte: stock minisign and our verify both refuse.
    let mut bytes = std::fs::read(&manifest).unwrap();
    let at = bytes.iter().position(|&b| b == b'1').unwrap();
    bytes[at] = b'2';
    std::fs::write(&manifest, &bytes).unwrap();
    assert!(!minisign(manifest_pub, &manifest, &sig).status.success());
    assert_failed_saying(&env.verify(&first_root_key), &["does not match"]);
}

#[test]
fn removed_manifest_key_and_bad_passphrase_are_refused() {
    let env = Env::new();
    env.ok(&["init"]);
    env.ok(&["add-manifest-key"]);
    let id = key_id(&env.pub_files("manifest")[0]);
    env.ok(&["remove-manifest-key", "--key-id", &id]);
    write_manifest(&env.registry(), 1);
    let out = env.signer(&["sign-manifest"]);
    assert_failed_saying(&out, &["no manifest key listed in root version 3"]);

    let out = env
        .command("add-manifest-key")
        .env("DBCRATE_SIGNER_PASSPHRASE", "not it")
        .output()
        .unwrap();
    let err = assert_failed_saying(&out, &["wrong passphrase"]);
    assert!(!err.contains("not it"));

    // A key file others can read is refused, whatever the passphrase.
    use std::os::unix::fs::PermissionsExt;
    let root_key = env.pub_files("root")[0].with_extension("key");
    std::fs::set_permissions(&root_key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.signer(&["add-manifest-key"]);
    assert_failed_saying(&out, &["chmod 600"]);

    let out = env
        .command("init")
        .env_remove("DBCRATE_SIGNER_PASSPHRASE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DBCRATE_SIGNER_PASSPHRASE"), "{err}");
}

#[test]
fn stock_minisign_signs_with_our_encrypted_keys() {
    // The emergency path docs/registry-key-rotation.md promises: the key files are
    // minisign's own format, so `minisign -S` opens them with the same passphrase.
    let env = Env::new();
    env.ok(&["init"]);
    let public = env.pub_files("root")[0].clone();
    let secret = public.with_extension("key");
    let file = env.dir.path().join("data");
    std::fs::write(&file, b"signed by stock minisign\n").unwrap();
    let sig = env.dir.path().join("data.minisig");
    let mut child = Command::new(Deps::from_env().tool("minisign").unwrap())
        .args(["-S", "-H", "-s"])
        .arg(&secret)
        .arg("-m")
        .arg(&file)
        .arg("-x")
        .arg(&sig)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    writeln!(child.stdin.take().unwrap(), "{PASSPHRASE}").unwrap();
    assert_succeeded("minisign -S", &child.wait_with_output().unwrap());
    assert_succeeded("minisign -V", &minisign(&public, &file, &sig));
}

#[test]
fn more_root_keys_than_agents_accept_are_refused_before_any_key_is_made() {
    let env = Env::new();
    let out = env.signer(&["init", "--root-keys", "33"]);
    assert_failed_saying(
        &out,
        &["--root-keys 33: a root may list at most 32 root keys"],
    );
    assert!(!env.keys().exists() || std::fs::read_dir(env.keys()).unwrap().next().is_none());
}

#[test]
fn an_expired_manifest_is_signed_only_with_a_new_expiry() {
    // A tree built reproducibly (SOURCE_DATE_EPOCH) carries an expiry in the past: the
    // signer refuses it as it is, and sets a fresh one when told how long it should hold.
    let env = Env::new();
    env.ok(&["init"]);
    env.ok(&["add-manifest-key"]);
    write_manifest_expiring(&env.registry(), 3, "1980-01-31T00:00:00Z");
    let out = env.signer(&["sign-manifest"]);
    assert_failed_saying(&out, &["1980-01-31", "--expires-days"]);
    assert!(!env.registry().join("manifest.json.minisig").exists());

    let out = env.ok(&["sign-manifest", "--expires-days", "30"]);
    assert!(out.contains("version 3 signed"), "{out}");
    let signed =
        Manifest::parse(&std::fs::read(env.registry().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(signed.version, 3);
    let in_days = (dbcrate_core::registry::metadata::expiry(&signed.expires, "m").unwrap()
        - dbcrate_core::time::unix_now())
        / 86_400;
    assert!((29..=30).contains(&in_days), "{}", signed.expires);
    let root_key = env.pub_files("root")[0].clone();
    assert_succeeded("verify", &env.verify(&root_key));
}
