//! `dbcrate-control serve` as a process: boot checks refuse bad TLS material and
//! configuration before binding; on embedded defaults it generates a self-signed
//! certificate, prints its fingerprint, serves HTTPS, and stops on SIGTERM.

use dbcrate_testkit::{TempDir, TEST_MASTER_KEY as K1};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
        "DBCRATE_AGENT_MAX_CONNECTION_AGE_SECS",
        "DBCRATE_AGENT_PUBLIC_URL",
        "DBCRATE_METRICS_LISTEN",
        "DBCRATE_METRICS_TOKEN_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("DBCRATE_MASTER_KEY", K1)
        .env("DBCRATE_LISTEN", "127.0.0.1:0")
        .env("DBCRATE_AGENT_LISTEN", "127.0.0.1:0")
        .env("DBCRATE_METRICS_LISTEN", "127.0.0.1:0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// `dbcrate-control serve` started in the background with `env`, its stdout piped for
/// [`wait_for_listening`].
fn serve(dir: &TempDir, env: &[(&str, &str)]) -> Child {
    command(dir, env, &["serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
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
    // Metrics on the network without a bearer token: refused, by check too.
    let open_metrics = [("DBCRATE_METRICS_LISTEN", "0.0.0.0:0")];
    fails_with(
        &run(&dir, &open_metrics, &["serve"]),
        "set DBCRATE_METRICS_TOKEN_FILE",
    );
    fails_with(
        &run(&dir, &open_metrics, &["check"]),
        "set DBCRATE_METRICS_TOKEN_FILE",
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
            &[("DBCRATE_AGENT_MAX_CONNECTION_AGE_SECS", "0")],
            &["serve"],
        ),
        "DBCRATE_AGENT_MAX_CONNECTION_AGE_SECS",
    );
    // A heartbeat slower than half the job lease would let running jobs lapse.
    fails_with(
        &run(&dir, &[("DBCRATE_AGENT_HEARTBEAT_SECS", "61")], &["serve"]),
        "DBCRATE_AGENT_HEARTBEAT_SECS=\"61\" must be a number of seconds from 1 to 60",
    );
    for url in [
        "http://control.example:8444",
        "https://",
        "https://a.example/path?x",
    ] {
        fails_with(
            &run(&dir, &[("DBCRATE_AGENT_PUBLIC_URL", url)], &["serve"]),
            "DBCRATE_AGENT_PUBLIC_URL",
        );
    }
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
/// generated?, port, agent listener port). The metrics port goes to `METRICS_PORT`.
fn wait_for_listening(child: &mut Child) -> (String, bool, u16, u16) {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut fingerprint = String::new();
    let mut generated = false;
    let mut agent_port = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let line = lines.next().expect("serve exited early").unwrap();
        if line.starts_with("generated a self-signed TLS certificate") {
            generated = true;
        }
        if let Some(fp) = line.strip_prefix("TLS certificate SHA-256 fingerprint: ") {
            fingerprint = fp.to_string();
        }
        if let Some(addr) = line.strip_prefix("agents connect to https://") {
            agent_port = addr.rsplit(':').next().unwrap().parse().unwrap();
        }
        if let Some(url) = line.strip_prefix("metrics on http://") {
            let port = url.trim_end_matches("/metrics").rsplit(':').next().unwrap();
            METRICS_PORT.store(port.parse().unwrap(), std::sync::atomic::Ordering::SeqCst);
        }
        if let Some(addr) = line.strip_prefix("listening on https://") {
            let port = addr.rsplit(':').next().unwrap().parse().unwrap();
            return (fingerprint, generated, port, agent_port);
        }
    }
    panic!("serve did not start listening");
}

/// The metrics port the last server started here printed (tests run one per process).
static METRICS_PORT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

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

    let mut child = serve(&dir, &[]);
    let (fingerprint, generated, port, _) = wait_for_listening(&mut child);
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
    assert_eq!(fingerprint, dbcrate_control::server::tls::fingerprint(&der));

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
    // Metrics on loopback, plain HTTP, no token needed there.
    let metrics_port = METRICS_PORT.load(std::sync::atomic::Ordering::SeqCst);
    assert_ne!(metrics_port, 0, "serve printed no metrics address");
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics
        .text()
        .await
        .unwrap()
        .contains("dbcrate_control_info{version="));
    stop(child);

    // The next start reuses the certificate.
    let mut child = serve(&dir, &[]);
    let (again, generated, _, _) = wait_for_listening(&mut child);
    assert!(!generated);
    assert_eq!(again, fingerprint);
    let check = run(&dir, &[], &["check"]);
    assert!(String::from_utf8_lossy(&check.stdout).contains(&fingerprint));
    stop(child);
}

/// A TLS connection to `port` on loopback that trusts `cert_pem` and presents no client
/// certificate, speaking HTTP/1.1 with keep-alive; the task drives it until the server
/// closes it.
async fn keep_alive_connection(
    port: u16,
    cert_pem: &[u8],
) -> (
    hyper::client::conn::http1::SendRequest<String>,
    tokio::task::JoinHandle<()>,
) {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(cert_pem).unwrap())
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    let driven = tokio::spawn(async move {
        let _ = connection.await;
    });
    (sender, driven)
}

/// With `DBCRATE_AGENT_MAX_CONNECTION_AGE_SECS=2` the agent listener closes a
/// connection two seconds after accepting it, however busy the client keeps it.
#[tokio::test]
async fn the_agent_listener_closes_a_connection_at_its_maximum_age() {
    let dir = TempDir::new("control-serve-max-age").unwrap();
    assert!(run(&dir, &[], &["migrate"]).status.success());
    let child = serve(&dir, &[("DBCRATE_AGENT_MAX_CONNECTION_AGE_SECS", "2")]);
    // Killed if an assertion fails before the orderly stop below.
    struct KillOnDrop(Option<Child>);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            if let Some(child) = &mut self.0 {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    let mut server = KillOnDrop(Some(child));
    let (_, _, _, agent_port) = wait_for_listening(server.0.as_mut().unwrap());
    assert_ne!(agent_port, 0, "serve did not say where agents connect");
    let cert_pem = std::fs::read(dir.path().join("data/tls/cert.pem")).unwrap();

    let (mut sender, driven) = keep_alive_connection(agent_port, &cert_pem).await;
    let opened = Instant::now();
    // A request every 200 ms: the connection is never idle long enough for the idle
    // timeout, and every answer comes over this one connection.
    let mut answered = 0;
    while !driven.is_finished() && opened.elapsed() < Duration::from_secs(10) {
        if sender.ready().await.is_err() {
            break;
        }
        let request = hyper::Request::get("/agent/v1/config")
            .header("host", "localhost")
            .body(String::new())
            .unwrap();
        match sender.send_request(request).await {
            Ok(response) => {
                // No client certificate: refused, but answered, and kept alive.
                assert_eq!(response.status(), 401);
                answered += 1;
            }
            Err(_) => break,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::timeout(Duration::from_secs(5), driven)
        .await
        .expect("the server did not close the connection")
        .unwrap();
    let lived = opened.elapsed();
    assert!(
        lived >= Duration::from_millis(1500) && lived < Duration::from_secs(5),
        "the connection lived {lived:?}; its maximum age is 2 s"
    );
    assert!(answered >= 4, "only {answered} answers on the connection");
    stop(server.0.take().unwrap());
}
