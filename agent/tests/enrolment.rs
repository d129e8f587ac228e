//! The agent against a real control plane (in this process, over TLS on loopback):
//! enrolment with a pinned server certificate, identity files and their modes, the run
//! loop renewing its certificate and checking its CRL (refusing one older than a CRL it
//! accepted), stopping when revoked (through the CRL or at the TLS layer), and never a
//! listening socket — during enrolment, renewal, CRL polling and a backup job.

mod common;

use common::sockets;
use dbcrate_control::config::AgentSettings;
use dbcrate_control::local::{self, LocalControlPlane};
use dbcrate_testkit::{assert_succeeded, TempDir};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

struct World {
    control: LocalControlPlane,
    org: String,
    dir: TempDir,
}

async fn world(settings: AgentSettings) -> World {
    let dir = TempDir::new("agent-enrol").unwrap();
    let common::control::ControlDb { db, keys, org, .. } = common::control::control_db(
        &dir.path().join("c.db"),
        "Acme",
        "system:test",
        "2026-11-29T05:00:00Z",
    )
    .await;
    let reach = local::loopback_reach(&std::env::temp_dir()).unwrap();
    let control = local::start(db, keys, &dir.path().join("tls"), settings, reach)
        .await
        .unwrap();
    World {
        control,
        org: org.id,
        dir,
    }
}

impl World {
    async fn token(&self) -> String {
        let state = &self.control.state;
        let now = dbcrate_core::time::unix_now();
        dbcrate_control::agents::create_token(
            &state.db,
            &self.org,
            "host",
            None,
            "system:test",
            now,
        )
        .await
        .unwrap()
        .token
        .expose_secret()
        .to_string()
    }

    fn token_file(&self, token: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(format!("token-{}", &token[5..13]));
        std::fs::write(&path, token).unwrap();
        path
    }

    /// `dbcrate-agent enroll` into `data`, pinned by fingerprint; its output.
    async fn enroll(&self, data: &Path, token: &str) -> std::process::Output {
        let mut cmd = tokio::process::Command::from(common::agent());
        cmd.arg("enroll")
            .args(["--control-url", &self.control.agent_url])
            .arg("--token-file")
            .arg(self.token_file(token))
            .args(["--server-fingerprint", &self.control.fingerprint])
            .arg("--data-dir")
            .arg(data);
        cmd.output().await.unwrap()
    }

    /// An agent enrolled (successfully) into `<dir>/agent` with a fresh token; returns
    /// its data directory and its id.
    async fn enrolled(&self) -> (std::path::PathBuf, String) {
        let data = self.dir.path().join("agent");
        let enrolled = report(&self.enroll(&data, &self.token().await).await);
        let agent_id = enrolled["agent_id"].as_str().unwrap().to_string();
        (data, agent_id)
    }

    async fn revoke(&self, agent: &str, reload_tls: bool) {
        let state = &self.control.state;
        let now = dbcrate_core::time::unix_now();
        dbcrate_control::agents::revoke(&state.db, &state.keys, &self.org, agent, "user:test", now)
            .await
            .unwrap();
        if reload_tls {
            state.reload_agent_tls().await;
        }
    }
}

fn fast() -> AgentSettings {
    AgentSettings {
        cert_lifetime_secs: 3600,
        crl_interval_secs: 1,
        poll_interval_secs: 1,
        ..AgentSettings::default()
    }
}

fn report(out: &std::process::Output) -> serde_json::Value {
    assert_succeeded("dbcrate-agent", out);
    serde_json::from_slice(&out.stdout).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn link(data: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(data.join("identity/link.json")).unwrap())
        .unwrap()
}

/// Runs `dbcrate-agent run` under a socket watch until it exits or `deadline` passes
/// (then it is stopped); returns its exit code, stderr and what the watch saw.
async fn run_agent(
    data: &Path,
    deadline: Duration,
    mut while_running: impl AsyncFnMut(),
) -> (Option<i32>, String, sockets::Seen) {
    let mut cmd = tokio::process::Command::from(common::agent());
    cmd.arg("run")
        .arg("--data-dir")
        .arg(data)
        .env("DBCRATE_LOG", "debug");
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let watch = sockets::Watch::start(child.id().unwrap());
    while_running().await;
    let out = tokio::time::timeout(deadline, child.wait_with_output()).await;
    let seen = watch.finish();
    match out {
        Ok(out) => {
            let out = out.unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
                seen,
            )
        }
        Err(_) => (None, "(still running at the deadline)".into(), seen),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrolment_stores_a_private_identity_and_tokens_work_once() {
    let w = world(fast()).await;
    let data = w.dir.path().join("agent");
    let token = w.token().await;

    // Wrong pin: refused before the token is sent anywhere it could be read.
    let mut cmd = tokio::process::Command::from(common::agent());
    let wrong = format!(
        "{}00",
        &w.control.fingerprint[..w.control.fingerprint.len() - 2]
    );
    let out = cmd
        .arg("enroll")
        .args([
            "--control-url",
            &w.control.agent_url,
            "--server-fingerprint",
            &wrong,
        ])
        .arg("--token-file")
        .arg(w.token_file(&token))
        .arg("--data-dir")
        .arg(&data)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        common::stderr_of(&out).contains("fingerprint"),
        "{}",
        common::stderr_of(&out)
    );

    // Enrolment under a socket watch.
    let mut cmd = tokio::process::Command::from(common::agent());
    cmd.arg("enroll")
        .args(["--control-url", &w.control.agent_url])
        .arg("--token-file")
        .arg(w.token_file(&token))
        .args(["--server-fingerprint", &w.control.fingerprint])
        .arg("--data-dir")
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let watch = sockets::Watch::start(child.id().unwrap());
    let out = child.wait_with_output().await.unwrap();
    let seen = watch.finish();
    seen.assert_never_listened("enrolment");
    let enrolled = report(&out);
    assert_eq!(enrolled["org_id"], w.org.as_str());

    let identity = data.join("identity");
    assert_eq!(mode(&identity), 0o700);
    for file in ["key.pem", "cert.pem", "root.pem", "link.json"] {
        assert_eq!(mode(&identity.join(file)), 0o600, "{file}");
    }
    let key = std::fs::read_to_string(identity.join("key.pem")).unwrap();
    assert!(key.contains("PRIVATE KEY"));
    assert!(
        !std::fs::read_to_string(identity.join("link.json"))
            .unwrap()
            .contains("dbce_"),
        "the token is not stored"
    );

    // The token worked once; a second host with it is refused. So is a bad --org.
    let other = w.dir.path().join("agent2");
    let out = w.enroll(&other, &token).await;
    assert!(!out.status.success());
    assert!(
        common::stderr_of(&out).contains("used already"),
        "{}",
        common::stderr_of(&out)
    );
    let mut cmd = tokio::process::Command::from(common::agent());
    let out = cmd
        .arg("enroll")
        .args([
            "--control-url",
            &w.control.agent_url,
            "--org",
            "org_00000000000000000000000000000000",
        ])
        .arg("--token-file")
        .arg(w.token_file(&w.token().await))
        .arg("--ca-file")
        .arg(w.dir.path().join("tls/cert.pem"))
        .arg("--data-dir")
        .arg(&other)
        .output()
        .await
        .unwrap();
    assert!(
        common::stderr_of(&out).contains("another organisation"),
        "{}",
        common::stderr_of(&out)
    );
    assert!(!other.join("identity/key.pem").exists());
}

#[test]
fn run_does_not_start_with_a_directory_root_it_cannot_use() {
    // Checked before anything else: no identity is needed to see it refused.
    let dir = common::scratch("agent-missing-root");
    let missing = dir.path().join("missing");
    let run = |flag: bool| {
        let mut cmd = common::agent();
        cmd.arg("run")
            .arg("--data-dir")
            .arg(dir.path().join("agent"))
            .env_remove("DBCRATE_AGENT_DIRECTORY_ROOTS");
        if flag {
            cmd.arg("--directory-root").arg(&missing);
        } else {
            cmd.env("DBCRATE_AGENT_DIRECTORY_ROOTS", &missing);
        }
        cmd.output().unwrap()
    };
    for out in [run(true), run(false)] {
        let stderr = common::stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        for needle in [
            &missing.display().to_string(),
            "create it first",
            "--directory-root",
        ] {
            assert!(stderr.contains(needle), "no {needle:?} in: {stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_an_identity_others_can_read_or_own() {
    let w = world(fast()).await;
    let (data, _) = w.enrolled().await;
    let identity = data.join("identity");
    let refused = |needle: &'static str| {
        let data = data.clone();
        async move {
            let run = tokio::process::Command::from(common::agent())
                .arg("run")
                .arg("--data-dir")
                .arg(&data)
                .kill_on_drop(true)
                .output();
            let out = tokio::time::timeout(std::time::Duration::from_secs(30), run)
                .await
                .unwrap_or_else(|_| panic!("the agent ran instead of refusing ({needle})"))
                .unwrap();
            assert_eq!(out.status.code(), Some(3), "{}", common::stderr_of(&out));
            assert!(
                common::stderr_of(&out).contains(needle),
                "{}",
                common::stderr_of(&out)
            );
        }
    };
    std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o755)).unwrap();
    refused("chmod 700").await;
    std::fs::set_permissions(&identity, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The directory itself as a symbolic link (to a directory that would pass).
    let real_dir = data.join("identity.real");
    std::fs::rename(&identity, &real_dir).unwrap();
    std::os::unix::fs::symlink(&real_dir, &identity).unwrap();
    refused("symbolic link").await;
    std::fs::remove_file(&identity).unwrap();
    std::fs::rename(&real_dir, &identity).unwrap();
    std::fs::set_permissions(
        identity.join("key.pem"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    refused("chmod 600").await;
    std::fs::set_permissions(
        identity.join("key.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // Every identity file is held to the key's standard: the certificate chain, the
    // pinned root and the link (which holds the server pin) decide whom the agent
    // trusts, so a file others may change, or a symbolic link, is refused too.
    for file in ["cert.pem", "root.pem", "link.json"] {
        let path = identity.join(file);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        refused("chmod 600").await;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let real = identity.join(format!("{file}.real"));
        std::fs::rename(&path, &real).unwrap();
        std::os::unix::fs::symlink(&real, &path).unwrap();
        refused("symbolic link").await;
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(&real, &path).unwrap();
    }
    if std::fs::metadata(&identity).unwrap().uid() == 0 {
        // Running as root: hand the key to another user.
        std::os::unix::fs::chown(identity.join("key.pem"), Some(65534), None).unwrap();
        refused("owned by uid 65534").await;
        std::os::unix::fs::chown(identity.join("key.pem"), Some(0), None).unwrap();
    }
    // An expired certificate stops the agent with the way out.
    let mut stored = link(&data);
    stored["not_after"] = serde_json::json!(1);
    std::fs::write(identity.join("link.json"), stored.to_string()).unwrap();
    refused("re-enrol").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_renews_checks_its_crl_and_stops_when_a_verified_crl_lists_it() {
    // Short certificates, so renewal happens within the test: at 80% of 10 s. Job long
    // polls last 30 s, so the CRL check (every second) is what notices the revocation
    // (a poll would be refused at the application layer too).
    let w = world(AgentSettings {
        cert_lifetime_secs: 10,
        poll_interval_secs: 30,
        ..fast()
    })
    .await;
    let (data, agent_id) = w.enrolled().await;
    let first_serial_file = std::fs::read_to_string(data.join("identity/cert.pem")).unwrap();
    let started = Instant::now();
    let (code, stderr, seen) = run_agent(&data, Duration::from_secs(40), async || {
        // Wait for a renewal, then revoke without telling the TLS layer (as on a
        // replica that has not reloaded its CRLs yet): only the agent's CRL check can
        // stop it now.
        while std::fs::read_to_string(data.join("identity/cert.pem")).unwrap() == first_serial_file
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no renewal within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // Revoke once the old certificate has expired (2 s after a renewal at 80 % of
        // 10 s) and the agent's long poll, which ends at its certificate's expiry, has been
        // renewed with the new one: that poll then lasts until the new certificate nears
        // expiry, so the 1 s CRL check, not the job poll's own revocation check, is what
        // sees the revocation first.
        tokio::time::sleep(Duration::from_secs(4)).await;
        w.revoke(&agent_id, false).await;
    })
    .await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("certificate renewed"), "{stderr}");
    assert!(stderr.contains("CRL checked"), "{stderr}");
    assert!(stderr.contains("signed CRL"), "{stderr}");
    seen.assert_saw_sockets();
    seen.assert_never_listened("the agent");
    assert_eq!(mode(&data.join("identity/key.pem")), 0o600);
    // The control plane noted it as seen, with this build's version.
    let listed = dbcrate_control::agents::list(&w.control.state.db, &w.org)
        .await
        .unwrap();
    let agent = listed.iter().find(|a| a.id == agent_id).unwrap();
    assert!(agent.last_seen_at.is_some(), "{agent:?}");
    assert_eq!(agent.version.as_deref(), Some(env!("CARGO_PKG_VERSION")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stops_when_the_control_plane_refuses_its_certificate_as_revoked() {
    let w = world(fast()).await;
    let (data, agent_id) = w.enrolled().await;
    let (code, stderr, seen) = run_agent(&data, Duration::from_secs(30), async || {
        tokio::time::sleep(Duration::from_secs(3)).await;
        w.revoke(&agent_id, true).await;
    })
    .await;
    assert_eq!(code, Some(3), "{stderr}");
    seen.assert_saw_sockets();
    // Whichever call came first refused it: one on a new connection gets the TLS alert
    // certificate_revoked, one on the kept-alive connection the answer agent_revoked
    // (the next test pins that path down alone).
    assert!(
        stderr.contains("refused this agent's certificate as revoked")
            || stderr.contains("this agent has been revoked ("),
        "{stderr}"
    );
    seen.assert_never_listened("the agent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_stops_when_the_control_plane_answers_that_it_has_been_revoked() {
    // Revoked without telling the TLS layer (a replica that has not reloaded its CRLs)
    // and with the next CRL check an hour away: only the control plane's answer to the
    // job poll (401, agent_revoked) can stop the agent now.
    let w = world(AgentSettings {
        crl_interval_secs: 3600,
        ..fast()
    })
    .await;
    let (data, agent_id) = w.enrolled().await;
    let (code, stderr, _) = run_agent(&data, Duration::from_secs(30), async || {
        tokio::time::sleep(Duration::from_secs(3)).await;
        w.revoke(&agent_id, false).await;
    })
    .await;
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains(
            "this agent has been revoked (GET /agent/v1/jobs/next: this agent has been revoked)"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("signed CRL"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_job_opens_no_listening_socket() {
    let server = dbcrate_testkit::PgServer::start(17).unwrap();
    server.create_database("app").unwrap();
    server.psql("app", &common::varied_schema(200)).unwrap();
    let dir = common::scratch("agent-job-sockets");
    let (_, recipient) = common::org_key(dir.path());
    let mut cmd = common::agent();
    cmd.arg("backup")
        .args(["--database-url", &server.url("app")])
        .args(["--recipient", &recipient])
        .args(["--destination", &common::file_url(&dir.path().join("out"))])
        .arg("--pg-bin-dir")
        .arg(server.bin_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    let child = cmd.spawn().unwrap();
    let watch = sockets::Watch::start(child.id());
    let out = child.wait_with_output().unwrap();
    let seen = watch.finish();
    assert_succeeded("backup", &out);
    seen.assert_saw_sockets();
    seen.assert_never_listened("the backup");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_or_foreign_crls_are_refused_and_a_listed_serial_is_found() {
    use dbcrate_agent::control::revocation::{check, Verdict};
    // A month-long certificate, so a stale CRL is the only thing wrong two days ahead.
    let w = world(AgentSettings {
        cert_lifetime_secs: 30 * 86_400,
        ..fast()
    })
    .await;
    let (data, agent_id) = w.enrolled().await;
    let chain = std::fs::read_to_string(data.join("identity/cert.pem")).unwrap();
    let root = std::fs::read_to_string(data.join("identity/root.pem")).unwrap();
    let state = &w.control.state;
    let now = dbcrate_core::time::unix_now();
    let crl = dbcrate_control::pki::crl::current(&state.db, &state.keys, &w.org, now)
        .await
        .unwrap();
    assert_eq!(check(&chain, &root, &crl, now).unwrap(), Verdict::Good);

    // One bit changed in the signature, or anywhere in the list: refused.
    for at in [crl.len() - 1, crl.len() / 2] {
        let mut tampered = crl.clone();
        tampered[at] ^= 0x01;
        let err = check(&chain, &root, &tampered, now)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not verify"), "{err}");
    }
    // Another organisation's (validly signed) CRL says nothing about us: refused.
    let other = dbcrate_control::orgs::create(
        &state.db,
        &state.keys,
        "Other",
        "system:test",
        "2026-11-29T05:00:00Z",
    )
    .await
    .unwrap();
    dbcrate_control::pki::ca::org_ca_cert_pem(&state.db, &state.keys, &other.id, now)
        .await
        .unwrap();
    let foreign = dbcrate_control::pki::crl::current(&state.db, &state.keys, &other.id, now)
        .await
        .unwrap();
    assert!(check(&chain, &root, &foreign, now).is_err());
    // A CRL past its next update: refused.
    let late = now + 2 * dbcrate_control::pki::crl::VALIDITY_SECS;
    let err = check(&chain, &root, &crl, late).unwrap_err().to_string();
    assert!(err.contains("does not verify"), "{err}");
    // Garbage: refused.
    assert!(check(&chain, &root, b"not a crl", now).is_err());

    w.revoke(&agent_id, false).await;
    let listed = dbcrate_control::pki::crl::current(&state.db, &state.keys, &w.org, now)
        .await
        .unwrap();
    assert_eq!(
        check(&chain, &root, &listed, now).unwrap(),
        Verdict::Revoked
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_interrupted_after_its_journal_is_completed_on_load() {
    use dbcrate_agent::control::identity;
    let w = world(fast()).await;
    let (data, _) = w.enrolled().await;
    let dir = data.join("identity");
    // A crash after the journal was written, before the files were replaced.
    let mut journal_link = link(&data);
    journal_link["not_after"] = serde_json::json!(4_000_000_000i64);
    let journal = serde_json::json!({
        "key_pem": std::fs::read_to_string(dir.join("key.pem")).unwrap(),
        "chain_pem": std::fs::read_to_string(dir.join("cert.pem")).unwrap(),
        "link": journal_link,
    });
    std::fs::write(dir.join("renewal.json"), journal.to_string()).unwrap();
    std::fs::set_permissions(
        dir.join("renewal.json"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let loaded = identity::load(&data).unwrap();
    assert_eq!(loaded.link.not_after, 4_000_000_000);
    assert_eq!(link(&data)["not_after"], 4_000_000_000i64);
    assert!(!dir.join("renewal.json").exists());
    // A journal others can read is refused like a loose key.
    std::fs::write(dir.join("renewal.json"), journal.to_string()).unwrap();
    std::fs::set_permissions(
        dir.join("renewal.json"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = identity::load(&data).unwrap_err().to_string();
    assert!(err.contains("chmod 600"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_a_replayed_older_crl_and_still_stops_on_the_newer_one() {
    // Job long polls last 30 s, so the CRL checks (every second) are what run.
    let w = world(AgentSettings {
        poll_interval_secs: 30,
        ..fast()
    })
    .await;
    let (data, agent_id) = w.enrolled().await;
    let state = &w.control.state;
    let now = dbcrate_core::time::unix_now();
    // A CRL from before, then a newer one that the control plane serves.
    let older = dbcrate_control::pki::crl::regenerate(&state.db, &state.keys, &w.org, "test", now)
        .await
        .unwrap();
    dbcrate_control::pki::crl::regenerate(&state.db, &state.keys, &w.org, "test", now)
        .await
        .unwrap();
    let floor_file = data.join("identity/crl-floor.json");
    let started = Instant::now();
    let (code, stderr, _) = run_agent(&data, Duration::from_secs(40), async || {
        while !floor_file.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no CRL accepted"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let floor = std::fs::read(&floor_file).unwrap();
        // The control plane (or whoever stands in for it) now serves the older CRL:
        // signed by the organisation's CA and still valid.
        sqlx::query("UPDATE org_cas SET crl_der = $1, crl_this_update = $2 WHERE org_id = $3")
            .bind(&older)
            .bind(dbcrate_core::time::unix_now())
            .bind(&w.org)
            .execute(state.db.pool())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(std::fs::read(&floor_file).unwrap(), floor);
        // The revocation re-signs a newer CRL, which the agent takes and stops on.
        w.revoke(&agent_id, false).await;
    })
    .await;
    assert_eq!(code, Some(3), "{stderr}");
    let refused: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains("is older than CRL number"))
        .collect();
    assert!(!refused.is_empty(), "{stderr}");
    assert!(refused.iter().all(|l| l.contains("ERROR")), "{refused:?}");
    assert!(stderr.contains("signed CRL"), "{stderr}");
}
