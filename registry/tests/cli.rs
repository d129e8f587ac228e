//! `dbcrate-registry build` and `serve` as an operator runs them: artifacts that stock
//! tar and zstd unpack and that run from anywhere without the host's libraries, and a
//! static HTTPS server that hands out the tree and nothing else (checked with curl).

use dbcrate_testkit::{assert_failed_saying, output_ok, Deps, TempDir};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// `dbcrate-registry build --input <input> --out <tree>`, to be given more.
fn build(input: &Path, tree: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbcrate-registry"));
    cmd.args(["build", "--input", path(input), "--out", path(tree)]);
    cmd
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `<dir>/in/16-<arch>/bin` → the test kit's real PostgreSQL 16 client binaries.
fn input(dir: &Path) -> std::path::PathBuf {
    let install = Deps::from_env().pg_client_install(16).unwrap();
    let inst = dir
        .join("in")
        .join(format!("16-{}", std::env::consts::ARCH));
    std::fs::create_dir_all(&inst).unwrap();
    std::os::unix::fs::symlink(&install.bin_dir, inst.join("bin")).unwrap();
    if !install.lib_dirs.is_empty() {
        std::fs::create_dir(inst.join("lib")).unwrap();
        for d in &install.lib_dirs {
            for e in std::fs::read_dir(d).unwrap() {
                let e = e.unwrap();
                let _ = std::os::unix::fs::symlink(e.path(), inst.join("lib").join(e.file_name()));
            }
        }
    }
    dir.join("in")
}

#[test]
fn build_makes_self_contained_artifacts_that_stock_tar_and_zstd_read() {
    let dir = TempDir::new("registry-build").unwrap();
    let input = input(dir.path());
    let tree = dir.path().join("tree");
    output_ok("build", &mut build(&input, &tree));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tree.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["version"], 1);
    let url = manifest["artifacts"][0]["url"].as_str().unwrap();
    assert!(manifest["artifacts"][0]["pg_version"]
        .as_str()
        .unwrap()
        .starts_with("16."));

    // Stock tar unpacks it; the wrapper runs from / with no library path of ours.
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let zstd = Deps::from_env().tool("zstd").unwrap();
    let status = Command::new("tar")
        .arg(format!("--use-compress-program={}", zstd.display()))
        .arg("-xf")
        .arg(tree.join(url))
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(status.success());
    // Every tool the agent runs: the dump and its restore, pg_dumpall and psql for the
    // cluster's roles.
    for tool in ["pg_dump", "pg_dumpall", "pg_restore", "psql"] {
        let version = Command::new(unpacked.join("bin").join(tool))
            .arg("--version")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .current_dir("/")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&version.stdout);
        assert!(
            text.starts_with(&format!("{tool} (PostgreSQL) 16.")),
            "{tool}: {text}"
        );
    }

    // A second build raises the manifest version by itself.
    let out = output_ok("second build", &mut build(&input, &tree));
    assert!(String::from_utf8_lossy(&out.stdout).contains("version 2"));

    // A badly named installation is a clear error.
    std::fs::create_dir(input.join("sixteen")).unwrap();
    let out = build(&input, &tree).output().unwrap();
    assert_failed_saying(&out, &["<major>-<arch>", "sixteen"]);
}

#[test]
fn builds_with_source_date_epoch_are_byte_identical() {
    // As Nix builds the registry: the clock is SOURCE_DATE_EPOCH, so the manifest's
    // expiry (and with it the whole tree) is the same on every build; the signer gives it
    // a real expiry (`sign-manifest --expires-days`).
    let dir = TempDir::new("registry-epoch").unwrap();
    let input = input(dir.path());
    let mut trees = Vec::new();
    for n in 0..2 {
        let tree = dir.path().join(format!("tree{n}"));
        output_ok(
            "build",
            build(&input, &tree)
                .args(["--manifest-version", "1"])
                .env("SOURCE_DATE_EPOCH", "315532800"),
        );
        trees.push(tree);
    }
    let read = |tree: &Path| {
        let mut files = Vec::new();
        for sub in ["", "artifacts"] {
            for e in std::fs::read_dir(tree.join(sub)).unwrap() {
                let p = e.unwrap().path();
                if p.is_file() {
                    files.push((
                        p.strip_prefix(tree).unwrap().to_path_buf(),
                        std::fs::read(&p).unwrap(),
                    ));
                }
            }
        }
        files.sort();
        files
    };
    let first = read(&trees[0]);
    assert!(
        first.len() >= 2,
        "{:?}",
        first.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert!(first == read(&trees[1]), "the two trees differ");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(trees[0].join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["expires"], "1980-01-31T00:00:00Z");

    let out = build(&input, &trees[0])
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .output()
        .unwrap();
    assert_failed_saying(&out, &["SOURCE_DATE_EPOCH"]);
}

#[test]
fn another_architecture_needs_a_sysroot_of_that_architecture() {
    let dir = TempDir::new("registry-foreign").unwrap();
    let input = dir.path().join("in");
    let foreign = if std::env::consts::ARCH == "aarch64" {
        "x86_64"
    } else {
        "aarch64"
    };
    let inst = input.join(format!("16-{foreign}"));
    std::fs::create_dir_all(&inst).unwrap();
    let install = Deps::from_env().pg_client_install(16).unwrap();
    std::os::unix::fs::symlink(&install.bin_dir, inst.join("bin")).unwrap();
    let tree = dir.path().join("tree");
    let out = build(&input, &tree).output().unwrap();
    assert_failed_saying(&out, &[foreign, "<major>-<arch>/sysroot"]);

    // A sysroot without a loader is named, not run.
    std::fs::create_dir(inst.join("sysroot")).unwrap();
    let out = build(&input, &tree).output().unwrap();
    assert_failed_saying(&out, &["no dynamic loader"]);
    assert!(
        !tree.join("manifest.json").exists(),
        "a manifest was written"
    );
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn curl(ca: &Path, url: &str) -> (String, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-s", "--path-as-is", "-w", "\n%{http_code}", "--cacert"])
        .arg(ca)
        .arg(url)
        .output()
        .unwrap();
    let mut body = out.stdout;
    let split = body.iter().rposition(|&b| b == b'\n').unwrap_or(0);
    let code = String::from_utf8_lossy(&body[split..]).trim().to_string();
    body.truncate(split);
    (code, body)
}

#[test]
fn serve_hands_out_the_tree_over_https_and_nothing_else() {
    let dir = TempDir::new("registry-serve").unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("root")).unwrap();
    std::fs::write(tree.join("root/1.root.json"), b"{\"root\": 1}\n").unwrap();
    std::fs::write(dir.path().join("secret.txt"), b"outside the tree").unwrap();

    let test_ca = dbcrate_testkit::TestCa::new("dbcrate test CA");
    let leaf = test_ca.server("127.0.0.1", "dbcrate test registry");
    let (ca, cert_file, key_file) = (
        dir.path().join("ca.pem"),
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
    );
    std::fs::write(&ca, test_ca.cert_pem()).unwrap();
    std::fs::write(&cert_file, leaf.cert_pem).unwrap();
    std::fs::write(&key_file, leaf.key_pem).unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_dbcrate-registry"))
            .args(["serve", "--dir", path(&tree), "--listen", &listen])
            .args(["--tls-cert", path(&cert_file), "--tls-key", path(&key_file)])
            .spawn()
            .unwrap(),
    );
    let base = format!("https://{listen}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let (code, body) = loop {
        let got = curl(&ca, &format!("{base}/root/1.root.json"));
        if got.0 == "200" || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(code, "200");
    assert_eq!(body, b"{\"root\": 1}\n");
    for refused in [
        "/../secret.txt",
        "/root/../../secret.txt",
        "/root/",
        "/missing",
    ] {
        let (code, body) = curl(&ca, &format!("{base}{refused}"));
        assert_eq!(code, "404", "{refused}");
        assert!(body.is_empty(), "{refused}");
    }
}
