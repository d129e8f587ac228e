//! `dbcrate-control serve` as a process: boot checks refuse bad TLS material and
//! configuration before binding; on embedded defaults it generates a self-signed
//! certificate, prints its fingerprint, serves HTTPS, and stops on SIGTERM.

use dbcrate_testkit::TempDir;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const K1: &str = "mk1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn command(dir: &TempDir, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbcrate-control"));
    cmd.arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(args);
    for var in [
        "DATABASE_URL",
        "DBCRATE_MASTER_KEY_FILE",
        "DBCRATE_TLS_CERT_FILE",
        "DBCRATE_TLS_KEY_FILE",
        "DBCRATE_TLS_HOSTNAMES",
        "DBCRATE_LISTEN",
        "DBCRATE_AGENT_LISTEN",
        "DBCRATE_REGISTRY_URL",
        "DBCRATE_REGISTRY_ROOT_KEYS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("DBCRATE_MASTER_KEY", K1)
        .env("DBCRATE_LISTEN", "127.0.0.1:0")
        .env("DBCRATE_AGENT_LISTEN", "127.0.0.1:0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn run(dir: &TempDir, env: &[(&str, &str)], args: &[&str]) -> Output {
    command(dir, env, args).output().unwrap()
}

#[track_caller]
fn fails_with(out: &Output, expect: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded; expected {expect:?}");
    assert!(err.contains(expect), "expected {expect:?} in: {err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening"),
        "it bound a port before failing"
    );
}

#[test]
fn serve_refuses_bad_configuration_before_binding() {
    let dir = TempDir::new("control-serve-bad").unwrap();
    let out = run(&dir, &[], &["serve"]);
    fails_with(&out, "run `dbcrate-control migrate`");
    assert!(run(&dir, &[], &["migrate"]).status.success());

    let mut no_key = command(&dir, &[], &["serve"]);
    no_key.env_remove("DBCRATE_MASTER_KEY");
    fails_with(&no_key.output().unwrap(), "DBCRATE_MASTER_KEY");

    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let cert_s = cert.to_str().unwrap();
    let key_s = key.to_str().unwrap();
    fails_with(
        &run(&dir, &[("DBCRATE_TLS_CERT_FILE", cert_s)], &["serve"]),
        "set both DBCRATE_TLS_CERT_FILE and DBCRATE_TLS_KEY_FILE",
    );
    fails_with(
        &run(
            &dir,
            &[
                ("DBCRATE_TLS_CERT_FILE", cert_s),
                ("DBCRATE_TLS_KEY_FILE", key_s),
            ],
            &["serve"],
        ),
        "cannot read the TLS key",
    );
    // A real pair, but the key is readable by others.
    let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(&cert, pair.cert.pem()).unwrap();
    std::fs::write(&key, pair.signing_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let tls = [
        ("DBCRATE_TLS_CERT_FILE", cert_s),
        ("DBCRATE_TLS_KEY_FILE", key_s),
    ];
    fails_with(&run(&dir, &tls, &["serve"]), "chmod 600");
    fails_with(&run(&dir, &tls, &["check"]), "chmod 600");
    // Garbage where the key should be.
    std::fs::write(&key, "not a key").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    fails_with(&run(&dir, &tls, &["serve"]), "cannot read the TLS key");
    // A key that does not fit the certificate.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(&key, other.signing_key.serialize_pem()).unwrap();
    fails_with(&run(&dir, &tls, &["serve"]), "does not fit the certificate");
    fails_with(
        &run(&dir, &[("DBCRATE_LISTEN", "everywhere")], &["serve"]),
        "DBCRATE_LISTEN",
    );
    fails_with(
        &run(
            &dir,
            &[("DBCRATE_AGENT_CERT_LIFETIME_SECS", "5")],
            &["serve"],
        ),
        "DBCRATE_AGENT_CERT_LIFETIME_SECS",
    );
    fails_with(
        &run(
            &dir,
            &[("DBCRATE_REGISTRY_URL", "http://registry.example")],
            &["serve"],
        ),
        "DBCRATE_REGISTRY_ROOT_KEYS",
    );
    fails_with(
        &run(
            &dir,
            &[
                ("DBCRATE_REGISTRY_URL", "https://registry.example"),
                ("DBCRATE_REGISTRY_ROOT_KEYS", "RWQnot-a-minisign-key"),
            ],
            &["serve"],
        ),
        "DBCRATE_REGISTRY_ROOT_KEYS: ",
    );
    // A database that does not answer; its password is not printed.
    let out = run(
        &dir,
        &[(
            "DATABASE_URL",
            "postgres://dbcrate:hunter2-secret@127.0.0.1:1/control",
        )],
        &["serve"],
    );
    fails_with(&out, "cannot open the database (PostgreSQL)");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter2-secret"));
}

/// Reads the server's stdout until it says where it listens; returns (fingerprint,
/// generated?, port).
fn wait_for_listening(child: &mut Child) -> (String, bool, u16) {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut fingerprint = String::new();
    let mut generated = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let line = lines.next().expect("serve exited early").unwrap();
        if line.starts_with("generated a self-signed TLS certificate") {
            generated = true;
        }
        if let Some(fp) = line.strip_prefix("TLS certificate SHA-256 fingerprint: ") {
            fingerprint = fp.to_string();
        }
        if let Some(addr) = line.strip_prefix("listening on https://") {
            let port = addr.rsplit(':').next().unwrap().parse().unwrap();
            return (fingerprint, generated, port);
        }
    }
    panic!("serve did not start listening");
}

fn stop(mut child: Child) {
    let pid = child.id() as i32;
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "serve exited with {status} on SIGTERM");
            return;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn serve_on_embedded_defaults_generates_a_certificate_and_prints_its_fingerprint() {
    let dir = TempDir::new("control-serve").unwrap();
    assert!(run(&dir, &[], &["migrate"]).status.success());
    let check = run(&dir, &[], &["check"]);
    assert!(String::from_utf8_lossy(&check.stdout).contains("will be generated"));

    let mut child = command(&dir, &[], &["serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (fingerprint, generated, port) = wait_for_listening(&mut child);
    assert!(generated);
    let cert_file = dir.path().join("data/tls/cert.pem");
    let key_mode = std::fs::metadata(dir.path().join("data/tls/key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let pem = std::fs::read(&cert_file).unwrap();
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(&pem)
        .map(|c: rustls::pki_types::CertificateDer<'static>| c.to_vec())
        .unwrap();
    assert_eq!(fingerprint, dbcrate_control::tls::fingerprint(&der));

    // A client that pins the certificate gets the API; one that does not is refused.
    let pinned = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}/api/v1/openapi.json");
    let reply = pinned.get(&url).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().await.unwrap(), dbcrate_control::http::OPENAPI);
    let unpinned = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    assert!(unpinned.get(&url).send().await.is_err());
    stop(child);

    // The next start reuses the certificate.
    let mut child = command(&dir, &[], &["serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (again, generated, _) = wait_for_listening(&mut child);
    assert!(!generated);
    assert_eq!(again, fingerprint);
    let check = run(&dir, &[], &["check"]);
    assert!(String::from_utf8_lossy(&check.stdout).contains(&fingerprint));
    stop(child);
}
