//! The dashboard from first sign-in to a restored database, in a real Chromium, with
//! nothing faked: a control plane over TLS on loopback (SQLite), the agent binary
//! enrolled by the very command the page showed, a real PostgreSQL, a directory
//! destination, and stock `age`, `zstd` and `pg_restore` at the end.
//!
//! The owner signs in with the one-time password, chooses a password and turns on TOTP;
//! creates an enrolment token and pastes the command; adds the database and a restore
//! target; tests a destination that fails and one that passes, and saves it; schedules
//! backups and runs one now; watches the job succeed; restores the backup by typing the
//! target's name and watches that job; signs out and in again with a TOTP code; reads the
//! audit rows; downloads the recovery key, and decrypts the backup object with it using
//! stock tools. Every page is checked (CSP, JavaScript errors, axe-core, 375 px) and
//! photographed under `target/dashboard-screenshots/`.
//!
//! It lives with the agent's tests because only they have the agent binary built for
//! them (`CARGO_BIN_EXE_dbcrate-agent`).

mod common;

use dbcrate_control::config::AgentSettings;
use dbcrate_control::db::Db;
use dbcrate_control::envelope::MasterKeys;
use dbcrate_control::local;
use dbcrate_testkit::browser::{Browser, BrowserOptions};
use dbcrate_testkit::page_checks::Pages;
use dbcrate_testkit::{assert_succeeded, sqlite_url, PgServer, TempDir, TEST_MASTER_KEY};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const OWNER: &str = "owner@example.com";
const PASSWORD: &str = "a long passphrase for the owner";
const STAMP: &str = "2026-11-29T05:00:00Z";

/// The control plane, serving while the test thread drives the browser.
struct Plane {
    db: Db,
    org_id: String,
    one_time_password: String,
    base: String,
    spki_sha256: String,
    _local: local::LocalControlPlane,
    rt: tokio::runtime::Runtime,
}

impl Plane {
    fn start(dir: &Path) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (db, init, local) = rt.block_on(async {
            let db = Db::connect(&sqlite_url(&dir.join("control.db")))
                .await
                .unwrap();
            db.migrate().await.unwrap();
            let keys = Arc::new(MasterKeys::parse(TEST_MASTER_KEY).unwrap());
            dbcrate_control::secrets::audit_key::load(&db, &keys, STAMP)
                .await
                .unwrap();
            let init = dbcrate_control::setup::init(&db, &keys, "Acme", OWNER, STAMP)
                .await
                .unwrap();
            let settings = AgentSettings {
                poll_interval_secs: 1,
                heartbeat_secs: 1,
                ..AgentSettings::default()
            };
            let reach = local::loopback_reach(&std::env::temp_dir()).unwrap();
            let local = local::start(db.clone(), keys, &dir.join("tls"), settings, reach)
                .await
                .unwrap();
            (db, init, local)
        });
        Self {
            db,
            org_id: init.org.id.clone(),
            one_time_password: init.one_time_password.expose_secret().to_string(),
            base: local.api_url.clone(),
            spki_sha256: spki_sha256(&local.cert_pem),
            _local: local,
            rt,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn org_url(&self, path: &str) -> String {
        self.url(&format!("/orgs/{}{path}", self.org_id))
    }

    fn audited(&self) -> Vec<String> {
        self.rt.block_on(async {
            sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id")
                .fetch_all(self.db.pool())
                .await
                .unwrap()
        })
    }
}

/// The base64 SHA-256 of the certificate's public key, which the browser trusts alone.
fn spki_sha256(cert_pem: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    let spki = cert.tbs_certificate.subject_pki.raw;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(spki))
}

/// The TOTP code for the base32 `seed`, `ahead` steps from now.
fn totp_code(seed: &str, ahead: i64) -> String {
    use dbcrate_control::accounts::totp;
    let secret = data_encoding::BASE32_NOPAD.decode(seed.as_bytes()).unwrap();
    let step = totp::step_of(dbcrate_core::time::unix_now()) + ahead;
    format!("{:06}", totp::code_at(&secret, step))
}

/// The hex SHA-256 of the file at `path`.
fn sha256_hex(path: &Path) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reloads the job page at `url` until its facts say the job finished; answers them.
fn watch_job(b: &Browser, url: &str) -> String {
    let started = Instant::now();
    loop {
        b.goto(url).unwrap();
        let facts = b.text_of("dl.facts").unwrap();
        if facts.contains("Succeeded") || facts.contains("Failed") {
            return facts;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the job did not finish in 3 minutes: {facts}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits for the one finished download in `dir` (Chromium writes `*.crdownload` first).
fn downloaded(dir: &Path) -> PathBuf {
    let started = Instant::now();
    loop {
        let files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        if let [file] = files.as_slice() {
            if file.extension().is_none_or(|e| e != "crdownload") {
                return file.clone();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no download in 30 s: {files:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The value of the form field `id`.
fn value_of(b: &Browser, id: &str) -> serde_json::Value {
    b.execute(
        &format!("return document.querySelector('#{id}').value;"),
        serde_json::json!([]),
    )
    .unwrap()
}

/// Runs the enrolment command exactly as the page showed it (the token in its
/// environment assignment), with the test's data directory appended.
fn paste_enrol_command(command: &str, data: &Path) {
    let bin_dir = common::agent_binary().parent().unwrap().to_path_buf();
    let line = format!("{} --data-dir '{}'", command.trim_end(), data.display());
    let out = Command::new("sh")
        .arg("-c")
        .arg(&line)
        .env(
            "PATH",
            format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
        )
        .env("DBCRATE_LOG", "info")
        .output()
        .unwrap();
    assert_succeeded("the pasted dbcrate-agent enroll", &out);
}

/// `dbcrate-agent run` on `data`, writing directory destinations under `root`, with
/// `server`'s client tools on PATH.
fn run_agent(server: &PgServer, data: &Path, root: &Path) -> std::process::Child {
    common::agent()
        .arg("run")
        .arg("--data-dir")
        .arg(data)
        .arg("--directory-root")
        .arg(root)
        .env(
            "PATH",
            format!(
                "{}:{}",
                server.bin_dir().display(),
                std::env::var("PATH").unwrap()
            ),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills the agent when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_flow_from_first_sign_in_to_a_backup_decrypted_with_the_exported_key() {
    let dir = TempDir::new("dashboard-e2e").unwrap();
    let server = PgServer::start(17).unwrap();
    server.create_database("shop").unwrap();
    server.psql("shop", &common::varied_schema(200)).unwrap();
    server.create_database("shop_restored").unwrap();
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let plane = Plane::start(dir.path());
    let b = Browser::start(&BrowserOptions {
        trusted_spki_sha256: vec![plane.spki_sha256.clone()],
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut pages = Pages::new(&b, "e2e");

    // Flow 1: the one-time password, a password of one's own, TOTP.
    b.goto(&plane.url("/sign-in")).unwrap();
    pages.check("sign-in");
    b.fill_in("#email", OWNER).unwrap();
    b.fill_in("#password", &plane.one_time_password).unwrap();
    b.submit("main button[type=submit]").unwrap();
    assert_eq!(b.title().unwrap(), "Choose your password · dbcrate");
    pages.check("choose-password");
    b.fill_in("#current_password", &plane.one_time_password)
        .unwrap();
    b.fill_in("#new_password", PASSWORD).unwrap();
    b.fill_in("#repeat_password", PASSWORD).unwrap();
    b.submit("main button[type=submit]").unwrap();
    b.fill_in("#password", PASSWORD).unwrap();
    b.submit("main button[type=submit]").unwrap();
    let seed = b.text_of("code.secret").unwrap().replace(' ', "");
    pages.check("second-factor-qr");
    b.fill_in("#code", &totp_code(&seed, 0)).unwrap();
    b.fill_in("#password", PASSWORD).unwrap();
    b.submit("main button[type=submit]").unwrap();
    assert_eq!(b.title().unwrap(), "Save your recovery codes · dbcrate");
    assert_eq!(b.find_all("ol.codes code").unwrap().len(), 10);
    pages.check("recovery-codes");

    // Flow 3: an enrolment token, and the command the page shows, pasted as shown.
    b.goto(&plane.org_url("/agents")).unwrap();
    b.fill_in("#name", "db-host").unwrap();
    b.submit("main form button[type=submit]").unwrap();
    let command = b.text_of("pre.command").unwrap();
    pages.check("enrolment-token");
    let data = dir.path().join("agent");
    paste_enrol_command(&command, &data);
    let _agent = Running(run_agent(&server, &data, dir.path()));
    let started = Instant::now();
    loop {
        b.goto(&plane.org_url("/agents")).unwrap();
        let row = b.text_of("tbody tr").unwrap();
        if row.contains("Online") && row.contains(env!("CARGO_PKG_VERSION")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the agent is not shown online: {row}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    pages.check("agent-online");

    // Flow 4: the database and a restore target, reached by that agent.
    for name in ["shop", "shop_restored"] {
        b.goto(&plane.org_url("/databases")).unwrap();
        b.fill_in("#name", name).unwrap();
        b.fill_in("#host", "127.0.0.1").unwrap();
        b.fill_in("#port", &server.port().to_string()).unwrap();
        b.fill_in("#dbname", name).unwrap();
        b.fill_in("#username", "postgres").unwrap();
        b.fill_in("#password", server.password()).unwrap();
        b.choose("#tls_mode", "disable: no TLS").unwrap();
        assert_eq!(value_of(&b, "tls_mode"), "disable");
        b.choose("#agent_id", "db-host").unwrap();
        b.submit("main form button[type=submit]").unwrap();
        let status = b.text_of("[role=status]").unwrap();
        assert!(status.contains(name), "{status}");
    }
    pages.check("databases");

    // Flow 5: a directory that does not exist fails its probe; the real one passes.
    b.goto(&plane.org_url("/destinations/new?kind=directory"))
        .unwrap();
    b.fill_in("#name", "local").unwrap();
    b.fill_in("#path", "/nonexistent/backups").unwrap();
    b.submit("button[value=test]").unwrap();
    assert!(b.text_of("ol.probe").unwrap().contains("failed"));
    pages.check("destination-probe-failed");
    b.fill_in("#path", &backups.display().to_string()).unwrap();
    b.submit("button[value=test]").unwrap();
    let steps = b.text_of("ol.probe").unwrap();
    assert!(steps.contains("delete: passed"), "{steps}");
    pages.check("destination-probe-passed");
    b.submit("button[value=save]").unwrap();
    assert!(b
        .text_of("[role=status]")
        .unwrap()
        .contains("local is added"));

    // Flow 6: a nightly schedule, then Run now.
    b.goto(&plane.org_url("/schedules")).unwrap();
    b.choose("#database_id", "shop").unwrap();
    b.choose("#destination_id", "local").unwrap();
    b.fill_in("#cron", "30 2 * * *").unwrap();
    b.fill_in("#time_zone", "UTC").unwrap();
    b.fill_in("#keep_daily", "7").unwrap();
    b.submit("button[value=preview]").unwrap();
    assert_eq!(b.find_all("ol.runs li").unwrap().len(), 5);
    b.submit("button[value=save]").unwrap();
    assert_eq!(b.title().unwrap(), "shop to local · dbcrate");
    pages.check("schedule");
    b.submit("form[action$='/run'] button").unwrap();

    // Flow 7: the job from the jobs list, until it succeeds.
    b.goto(&plane.org_url("/jobs")).unwrap();
    b.click_through(&b.find("tbody tr a").unwrap()).unwrap();
    let job_url = b.url().unwrap();
    let facts = watch_job(&b, &job_url);
    assert!(facts.contains("Succeeded"), "{facts}");
    pages.check("backup-succeeded");
    let objects: Vec<String> = common::files_under(&backups)
        .into_iter()
        .filter(|f| f.ends_with(dbcrate_core::object_key::BACKUP_SUFFIX))
        .collect();
    assert_eq!(objects.len(), 1, "{objects:?}");
    // The job page names what it made: the object's SHA-256, not "0 B moved".
    let object_sha256 = sha256_hex(&backups.join(&objects[0]));
    let made = b.text_of("main").unwrap();
    assert!(made.contains(&object_sha256), "{made}");
    assert!(!made.contains("0 B"), "{made}");

    // The backup in the list; restore it into shop_restored, confirmed by its name.
    b.goto(&plane.org_url("/backups")).unwrap();
    let row = b.text_of("tbody tr").unwrap();
    assert!(row.contains("shop") && row.contains("17."), "{row}");
    pages.check("backups");
    b.click_through(&b.find("a[href$='/restore']").unwrap())
        .unwrap();
    b.choose("#target_database_id", "shop_restored").unwrap();
    b.fill_in("#confirm_name", "shop_restored").unwrap();
    b.submit("button.danger").unwrap();
    assert!(b.title().unwrap().starts_with("Job job_"));
    let facts = watch_job(&b, &b.url().unwrap());
    assert!(facts.contains("Succeeded"), "{facts}");
    let restored_from = b.text_of("main").unwrap();
    assert!(restored_from.contains(&object_sha256), "{restored_from}");
    pages.check("restore-succeeded");
    common::assert_same_database(&server, "shop", &server, "shop_restored");

    // Flow 1 again: sign out, and in with a TOTP code.
    b.submit("form.sign-out button").unwrap();
    b.fill_in("#email", OWNER).unwrap();
    b.fill_in("#password", PASSWORD).unwrap();
    b.fill_in("#code", &totp_code(&seed, 1)).unwrap();
    b.submit("main button[type=submit]").unwrap();
    assert!(
        b.find_all("[role=alert]").unwrap().is_empty(),
        "{}",
        b.text_of("main").unwrap()
    );

    // Flow 8: the audit rows of what was just done.
    b.goto(&plane.org_url("/audit")).unwrap();
    let actions: Vec<String> = b
        .find_all("td[data-label=Action]")
        .unwrap()
        .iter()
        .map(|cell| b.text(cell).unwrap())
        .collect();
    for action in [
        "agent.enrol",
        "database.create",
        "destination.create",
        "schedule.create",
        "job.succeeded",
        "restore.create",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} not in {actions:?}"
        );
    }
    pages.check("audit");

    // Flow 9: the recovery key (the second factor was just given), downloaded.
    b.goto(&plane.org_url("/recovery-key")).unwrap();
    assert!(
        b.find_all("#code").unwrap().is_empty(),
        "just signed in with a code"
    );
    pages.check("recovery-key");
    let downloads = dir.path().join("downloads");
    std::fs::create_dir(&downloads).unwrap();
    b.download_into(&downloads).unwrap();
    let button = b.find("main form button[type=submit]").unwrap();
    b.click(&button).unwrap();
    let key_file = downloaded(&downloads);
    assert!(std::fs::read_to_string(&key_file)
        .unwrap()
        .contains("AGE-SECRET-KEY-1"));
    assert!(plane
        .audited()
        .contains(&"org.recovery_key.export".to_string()));

    // The customer's way out: stock age, zstd and pg_restore with that file.
    common::stock_restore(
        &server,
        &key_file,
        &backups.join(&objects[0]),
        "shop_from_key",
    );
    common::assert_same_database(&server, "shop", &server, "shop_from_key");
}
