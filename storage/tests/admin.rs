//! The control plane's storage operations (feature `admin`) against real servers: a
//! Garage S3 store, an OpenSSH sshd and a local directory. Credentials are given in
//! memory (`StorageOptions`), never through the environment or files.

#![cfg(feature = "admin")]

use dbcrate_core::secret::SecretString;
use dbcrate_storage::admin::{
    probe, DeleteOutcome, Destination, ProbeReport, ProbeStep, StepOutcome, MAX_RANGE_LEN,
};
use dbcrate_storage::{ErrorKind, Location, StorageOptions};
use dbcrate_testkit::{names_in, Deps, S3Server, SftpServer, TempDir, TestCa};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn s3_options(s3: &S3Server, key_id: &str, secret: &str) -> StorageOptions {
    StorageOptions {
        s3_endpoint: Some(s3.endpoint().to_string()),
        s3_region: Some(s3.region().to_string()),
        s3_path_style: true,
        s3_access_key_id: Some(key_id.to_string()),
        s3_secret_access_key: Some(SecretString::new(secret.to_string())),
        ..StorageOptions::default()
    }
}

fn sftp_options(private_key: &Path, host_key_line: &str) -> StorageOptions {
    StorageOptions {
        ssh_private_key: Some(SecretString::new(
            std::fs::read_to_string(private_key).unwrap(),
        )),
        ssh_host_key: Some(host_key_line.to_string()),
        // Neither a key file nor a known_hosts file: memory only.
        ssh_key: None,
        known_hosts: None,
        ..StorageOptions::default()
    }
}

fn sftp_location(sftp: &SftpServer, dir: &str) -> Location {
    Location::parse(&format!("{}/{dir}", sftp.url()), "test").unwrap()
}

/// Asserts the probe failed at `step` with a message containing `needle`, that the
/// later steps did not run, and that no secret is in the report.
fn assert_fails_at(report: &ProbeReport, step: ProbeStep, needle: &str, secrets: &[&str]) {
    assert!(!report.succeeded(), "{report:?}");
    let (failed, message) = report.first_failure().unwrap();
    assert_eq!(failed, step, "{report:?}");
    assert!(message.contains(needle), "{message}");
    let text = format!("{report:?}");
    for secret in secrets {
        assert!(!text.contains(secret), "a secret in the report: {text}");
    }
    let later: Vec<_> = report
        .steps
        .iter()
        .skip_while(|s| s.step != step)
        .skip(1)
        .collect();
    assert!(
        later.iter().all(|s| s.outcome == StepOutcome::NotRun),
        "{report:?}"
    );
}

/// put_small / get_range / list / delete, overwrite refusal and key checks on any
/// destination that starts empty.
async fn round_trip(dest: &Destination) {
    assert!(dest.list("", 100).await.unwrap().is_empty());
    let body = b"age-encryption.org/v1\n-> X25519 abc\n--- mac\nrest of the file";
    dest.put_small("app/2026/01/02/b.age", body, false)
        .await
        .unwrap();
    dest.put_small("README.txt", b"how to restore\n", false)
        .await
        .unwrap();

    // Without overwrite an existing key is refused and keeps its content.
    let err = dest
        .put_small("README.txt", b"other", false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert_eq!(
        dest.get_range("README.txt", 0, 100).await.unwrap(),
        b"how to restore\n"
    );
    dest.put_small("README.txt", b"v2\n", true).await.unwrap();
    assert_eq!(dest.get_range("README.txt", 0, 100).await.unwrap(), b"v2\n");

    // Ranged reads: a slice, a short tail, nothing beyond the end, a capped length.
    assert_eq!(
        dest.get_range("app/2026/01/02/b.age", 0, 22).await.unwrap(),
        b"age-encryption.org/v1\n"
    );
    assert_eq!(
        dest.get_range("app/2026/01/02/b.age", 45, 1000)
            .await
            .unwrap(),
        &body[45..]
    );
    assert!(dest
        .get_range("app/2026/01/02/b.age", 10_000, 10)
        .await
        .unwrap()
        .is_empty());
    let err = dest
        .get_range("app/2026/01/02/b.age", 0, MAX_RANGE_LEN + 1)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(dest.get_range("missing", 0, 10).await.is_err());

    // Listing: everything, a prefix, a missing prefix, a limit.
    let mut all = dest.list("", 100).await.unwrap();
    all.sort_by(|a, b| a.key.cmp(&b.key));
    let keys: Vec<_> = all.iter().map(|o| (o.key.as_str(), o.size)).collect();
    assert_eq!(
        keys,
        [
            ("README.txt", 3),
            ("app/2026/01/02/b.age", body.len() as u64)
        ]
    );
    let under = dest.list("app/2026", 100).await.unwrap();
    assert_eq!(under.len(), 1);
    assert_eq!(under[0].key, "app/2026/01/02/b.age");
    assert!(dest.list("nothing-here", 100).await.unwrap().is_empty());
    assert_eq!(dest.list("", 1).await.unwrap().len(), 1);

    // Keys that leave the destination are refused before any request.
    for bad in ["../x", "/etc/passwd", "a//b", "a/../../b", ""] {
        let err = dest.put_small(bad, b"x", true).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}: {err}");
        assert!(dest.get_range(bad, 0, 1).await.is_err());
        assert!(dest.delete(bad).await.is_err());
    }
    assert!(dest.list("../", 10).await.is_err());

    // Delete tells deleted from absent.
    assert_eq!(
        dest.delete("app/2026/01/02/b.age").await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(
        dest.delete("app/2026/01/02/b.age").await.unwrap(),
        DeleteOutcome::Absent
    );
    assert_eq!(
        dest.delete("README.txt").await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(dest.list("", 100).await.unwrap().is_empty());
}

fn assert_probe_ok(report: &ProbeReport) {
    assert!(report.succeeded(), "{report:?}");
    assert!(report.probe_key.starts_with(".dbcrate-probe-"));
    assert_eq!(report.steps.len(), 4);
}

#[tokio::test]
async fn s3_probe_and_round_trip_with_in_memory_keys() {
    let s3 = S3Server::start().unwrap();
    let options = s3_options(&s3, s3.access_key_id(), s3.secret_access_key());
    assert!(!format!("{options:?}").contains(s3.secret_access_key()));
    let location = Location::parse(&format!("s3://{}/nightly", s3.bucket()), "t").unwrap();

    assert_probe_ok(&probe(&location, &options).await);
    let whole = Location::parse(&format!("s3://{}", s3.bucket()), "t").unwrap();
    let bucket = Destination::connect(&whole, &options).await.unwrap();
    assert!(
        bucket.list("", 100).await.unwrap().is_empty(),
        "the probe left something"
    );

    let dest = Destination::connect(&location, &options).await.unwrap();
    round_trip(&dest).await;
    // Keys really are under the prefix.
    dest.put_small("x", b"1", false).await.unwrap();
    let listed = bucket.list("", 10).await.unwrap();
    assert_eq!(listed[0].key, "nightly/x");
    assert_eq!(dest.delete("x").await.unwrap(), DeleteOutcome::Deleted);
}

#[tokio::test]
async fn s3_probe_failures_name_the_step_and_leave_nothing() {
    let s3 = S3Server::start().unwrap();
    let secret = s3.secret_access_key();
    let location = Location::parse(&format!("s3://{}/p", s3.bucket()), "t").unwrap();

    let wrong_secret = "0".repeat(64);
    let report = probe(
        &location,
        &s3_options(&s3, s3.access_key_id(), &wrong_secret),
    )
    .await;
    assert_fails_at(
        &report,
        ProbeStep::List,
        "secret access key",
        &[&wrong_secret],
    );

    let report = probe(
        &location,
        &s3_options(&s3, &format!("GK{}", "1".repeat(24)), secret),
    )
    .await;
    assert_fails_at(&report, ProbeStep::List, "listing", &[secret]);

    let missing = Location::parse("s3://no-such-bucket-here/p", "t").unwrap();
    let report = probe(&missing, &s3_options(&s3, s3.access_key_id(), secret)).await;
    assert_fails_at(&report, ProbeStep::List, "bucket", &[secret]);

    // A key that may read but not write fails at the write step.
    let ro_id = format!("GK{}", "ab".repeat(12));
    let ro_secret = "cd".repeat(32);
    s3.admin(&["key", "import", "--yes", &ro_id, &ro_secret])
        .unwrap();
    s3.admin(&["bucket", "allow", "--read", s3.bucket(), "--key", &ro_id])
        .unwrap();
    let report = probe(&location, &s3_options(&s3, &ro_id, &ro_secret)).await;
    assert_fails_at(&report, ProbeStep::Write, "writing", &[&ro_secret, secret]);

    let bucket = Destination::connect(
        &Location::parse(&format!("s3://{}", s3.bucket()), "t").unwrap(),
        &s3_options(&s3, s3.access_key_id(), secret),
    )
    .await
    .unwrap();
    assert!(bucket.list("", 100).await.unwrap().is_empty());

    // Half a key pair is refused, naming the missing half.
    let mut half = s3_options(&s3, s3.access_key_id(), secret);
    half.s3_secret_access_key = None;
    let err = Destination::connect(&location, &half).await.err().unwrap();
    assert!(err.to_string().contains("without its secret"), "{err}");
}

/// A port on loopback where a TLS server answers with a certificate no trusted CA
/// signed (each handshake fails; the thread ends with the test process).
fn untrusted_https_port() -> u16 {
    let leaf = TestCa::new("dbcrate untrusted test CA").server("127.0.0.1", "untrusted S3");
    let certs = CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut tcp in listener.incoming().map_while(Result::ok) {
            let mut tls = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
            let _ = tls.complete_io(&mut tcp);
        }
    });
    port
}

/// The S3 client's TLS failure is told apart from a refused connection by the
/// TLS library's error in the chain of causes, and tenants are shown the TLS message.
#[tokio::test]
async fn s3_probe_of_an_untrusted_certificate_is_a_tls_failure() {
    let options = StorageOptions {
        s3_endpoint: Some(format!("https://127.0.0.1:{}", untrusted_https_port())),
        s3_region: Some("garage".into()),
        s3_path_style: true,
        s3_access_key_id: Some(format!("GK{}", "1".repeat(24))),
        s3_secret_access_key: Some(SecretString::new("2".repeat(64))),
        ..StorageOptions::default()
    };
    let location = Location::parse("s3://bucket/p", "t").unwrap();
    let report = probe(&location, &options).await;
    assert_fails_at(&report, ProbeStep::List, "listing", &[]);
    let StepOutcome::Failed { class, .. } = &report.steps[0].outcome else {
        unreachable!("{report:?}")
    };
    assert_eq!(*class, dbcrate_storage::FailureClass::Tls, "{report:?}");
}

#[tokio::test]
async fn sftp_probe_and_round_trip_with_in_memory_key_and_pinned_host_key() {
    let sftp = SftpServer::start().unwrap();
    std::fs::create_dir(sftp.root().join("dest")).unwrap();
    // Let the server's user own it (the root is theirs already).
    let owner = std::fs::metadata(sftp.root()).unwrap();
    chown_like(&sftp.root().join("dest"), &owner);
    let options = sftp_options(&sftp.client_key(), sftp.known_hosts_line());
    assert!(!format!("{options:?}").contains("OPENSSH PRIVATE KEY"));
    let location = sftp_location(&sftp, "dest");

    assert_probe_ok(&probe(&location, &options).await);
    assert_eq!(names_in(&sftp.root().join("dest")), Vec::<String>::new());

    let dest = Destination::connect(&location, &options).await.unwrap();
    round_trip(&dest).await;
    dest.close().await;
    // Only the (now empty) directories the round trip created remain.
    assert_eq!(names_in(&sftp.root().join("dest")), ["app"]);

    // The bare "type base64" form of the pin works too.
    let bare: Vec<&str> = sftp.known_hosts_line().split_whitespace().skip(1).collect();
    let options = sftp_options(&sftp.client_key(), &bare.join(" "));
    assert_probe_ok(&probe(&location, &options).await);
}

#[tokio::test]
async fn sftp_probe_failures_name_the_step_and_leave_nothing() {
    let sftp = SftpServer::start().unwrap();
    let key_text = std::fs::read_to_string(sftp.client_key()).unwrap();
    let key_body = key_text.lines().nth(1).unwrap().to_string();
    let good = || sftp_options(&sftp.client_key(), sftp.known_hosts_line());

    // Another key pinned as the host key: refused before authenticating.
    let client_pub = std::fs::read_to_string(sftp.client_key().with_extension("pub")).unwrap();
    let wrong_pin = sftp_options(&sftp.client_key(), client_pub.trim());
    let report = probe(&sftp_location(&sftp, ""), &wrong_pin).await;
    assert_fails_at(&report, ProbeStep::List, "HOST KEY MISMATCH", &[&key_body]);

    // A pin for another host is a configuration mistake.
    let other_host = sftp.known_hosts_line().replace("[127.0.0.1]", "[10.9.9.9]");
    let report = probe(
        &sftp_location(&sftp, ""),
        &sftp_options(&sftp.client_key(), &other_host),
    )
    .await;
    assert_fails_at(&report, ProbeStep::List, "not for [127.0.0.1]", &[]);

    // A client key the server does not know.
    let scratch = TempDir::new("admin-sftp-key").unwrap();
    let stranger = scratch.path().join("stranger");
    let keygen = Deps::from_env().tool("ssh-keygen").unwrap();
    let made = Command::new(keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .unwrap();
    assert!(made.success());
    let report = probe(
        &sftp_location(&sftp, ""),
        &sftp_options(&stranger, sftp.known_hosts_line()),
    )
    .await;
    let stranger_text = std::fs::read_to_string(&stranger).unwrap();
    let stranger_body = stranger_text.lines().nth(1).unwrap();
    assert_fails_at(
        &report,
        ProbeStep::List,
        "refused the SSH key",
        &[stranger_body],
    );

    // A directory that does not exist.
    let report = probe(&sftp_location(&sftp, "missing"), &good()).await;
    assert_fails_at(&report, ProbeStep::List, "does not exist", &[&key_body]);
    assert!(!sftp.root().join("missing").exists());

    // A directory the SFTP user cannot write to: listed, then refused at the write.
    let locked = sftp.root().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let report = probe(&sftp_location(&sftp, "locked"), &good()).await;
    assert_fails_at(&report, ProbeStep::Write, "cannot create", &[&key_body]);
    assert_eq!(names_in(&locked), Vec::<String>::new());
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test]
async fn file_probe_and_round_trip() {
    let dir = TempDir::new("admin-file").unwrap();
    let location = Location::File {
        path: dir.path().to_path_buf(),
    };
    let options = StorageOptions::default();
    assert_probe_ok(&probe(&location, &options).await);
    assert_eq!(names_in(dir.path()), Vec::<String>::new());

    let dest = Destination::connect(&location, &options).await.unwrap();
    round_trip(&dest).await;
    assert!(!dir.path().join("README.txt").exists());
}

#[tokio::test]
async fn file_probe_failures_name_the_step_and_leave_nothing() {
    let dir = TempDir::new("admin-file-fail").unwrap();
    let options = StorageOptions::default();

    let missing = Location::File {
        path: dir.path().join("missing"),
    };
    let report = probe(&missing, &options).await;
    assert_fails_at(&report, ProbeStep::List, "does not exist", &[]);
    assert!(!dir.path().join("missing").exists(), "the probe created it");

    // Not a directory at all.
    std::fs::write(dir.path().join("plain"), b"x").unwrap();
    let report = probe(
        &Location::File {
            path: dir.path().join("plain"),
        },
        &options,
    )
    .await;
    assert_fails_at(&report, ProbeStep::List, "not a directory", &[]);

    // An unwritable directory. Root ignores modes, so as root use a directory no one
    // may create files in.
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let root_ignores_modes = std::fs::write(locked.join("t"), b"x").is_ok();
    let target = if root_ignores_modes {
        std::fs::remove_file(locked.join("t")).unwrap();
        Path::new("/proc/self/fdinfo").to_path_buf()
    } else {
        locked.clone()
    };
    let report = probe(&Location::File { path: target }, &options).await;
    assert_fails_at(&report, ProbeStep::Write, "cannot create", &[]);
    assert_eq!(names_in(&locked), Vec::<String>::new());
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Gives `path` the owner of `like` (the SFTP server's user), when running as root.
fn chown_like(path: &Path, like: &std::fs::Metadata) {
    use std::os::unix::fs::MetadataExt;
    let _ = std::os::unix::fs::chown(path, Some(like.uid()), Some(like.gid()));
}
