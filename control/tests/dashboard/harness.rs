//! A real control plane (HTTPS on loopback, SQLite, `init` run) and a real headless
//! Chromium that trusts exactly its key; and the checks every page gets.

use base64::Engine as _;
use dbcrate_control::accounts::roles::Role;
use dbcrate_control::accounts::users;
use dbcrate_control::config::AgentSettings;
use dbcrate_control::db::Db;
use dbcrate_control::envelope::MasterKeys;
use dbcrate_control::local::{self, LocalControlPlane};
use dbcrate_control::orgs;
use dbcrate_core::secret::SecretString;
use dbcrate_testkit::browser::{Browser, BrowserOptions};
pub use dbcrate_testkit::page_checks::Pages;
use dbcrate_testkit::TempDir;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub const NOW: &str = "2026-11-29T05:00:00Z";
pub const OWNER: &str = "owner@example.com";
pub const ORG: &str = "Acme Backups";

/// A running control plane with one organisation and its owner, fresh from `init`.
pub struct Dashboard {
    pub base: String,
    pub cert_pem: String,
    pub one_time_password: String,
    pub db: Db,
    pub keys: Arc<MasterKeys>,
    /// The organisation `init` made.
    pub org_id: String,
    /// Where agents enrol (the agent listener).
    pub agent_url: String,
    // The runtime serves the control plane while the test thread drives the browser.
    _local: LocalControlPlane,
    _dir: TempDir,
    pub rt: tokio::runtime::Runtime,
}

impl Dashboard {
    pub fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = TempDir::new("dashboard").unwrap();
        let (local, db, keys, org_id, otp) = rt.block_on(async {
            let db = crate::common::sqlite_db(&dir).await;
            db.migrate().await.unwrap();
            let keys = Arc::new(crate::common::keys_with_audit_key(&db, NOW).await);
            let init = dbcrate_control::setup::init(&db, &keys, ORG, OWNER, NOW)
                .await
                .unwrap();
            let local = local::start(
                db.clone(),
                keys.clone(),
                &dir.path().join("tls"),
                AgentSettings::default(),
                local::loopback_reach(&std::env::temp_dir()).unwrap(),
            )
            .await
            .unwrap();
            (
                local,
                db,
                keys,
                init.org.id.clone(),
                init.one_time_password.expose_secret().to_string(),
            )
        });
        Self {
            base: local.api_url.clone(),
            agent_url: local.agent_url.clone(),
            cert_pem: local.cert_pem.clone(),
            one_time_password: otp,
            db,
            keys,
            org_id,
            _local: local,
            _dir: dir,
            rt,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The base64 SHA-256 of the server's SubjectPublicKeyInfo, for Chromium's
    /// `--ignore-certificate-errors-spki-list`: trust this one key, nothing else.
    pub fn spki_sha256(&self) -> String {
        let (_, pem) = x509_parser::pem::parse_x509_pem(self.cert_pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        let spki = cert.tbs_certificate.subject_pki.raw;
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(spki))
    }

    /// A browser that trusts this control plane's certificate.
    pub fn browser(&self) -> Browser {
        Browser::start(&BrowserOptions {
            trusted_spki_sha256: vec![self.spki_sha256()],
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// A person with their own password (no one-time password to change) and `role` in
    /// `org_id`; answers the password.
    pub fn add_person(&self, email: &str, role: Role, org_id: &str) -> String {
        let password = format!("{email} has a long passphrase");
        self.rt.block_on(async {
            let mut conn = self.db.begin().await.unwrap();
            let secret = SecretString::new(password.clone());
            let user = users::create_in(&mut conn, email, &secret, false, NOW)
                .await
                .unwrap();
            users::add_member_in(&mut conn, org_id, &user, role, "system:test", NOW)
                .await
                .unwrap();
            conn.commit().await.unwrap();
        });
        password
    }

    /// A second organisation (its id), which the people of the first do not belong to.
    pub fn other_org(&self) -> String {
        self.rt.block_on(async {
            orgs::create(&self.db, &self.keys, "Other Org", "system:test", NOW)
                .await
                .unwrap()
                .id
        })
    }

    /// An enrolled agent, a database `database` it reaches and a directory destination
    /// `local` in `dir` (probed): what every flow past enrolment starts from.
    pub fn objects(&self, database: &str, dir: &TempDir) -> Objects {
        self.rt.block_on(async {
            let now = dbcrate_core::time::unix_now();
            let (enrolled, key) =
                dbcrate_control::local::enrol_agent(&self.db, &self.keys, &self.org_id, now)
                    .await
                    .unwrap();
            let new = crate::common::remote_database(database, &enrolled.agent_id);
            let database = dbcrate_control::backups::databases::create(
                &self.db,
                &self.keys,
                &self.org_id,
                &new,
                "system:test",
                now,
            )
            .await
            .unwrap()
            .id;
            let settings = json!({ "path": dir.path() });
            let new = dbcrate_control::backups::destinations::NewDestination {
                name: "local",
                kind: "directory",
                settings: &settings,
                credentials: None,
            };
            let reach = Arc::new(local::loopback_reach(&std::env::temp_dir()).unwrap());
            let destination = dbcrate_control::backups::destinations::create(
                &self.db,
                &self.keys,
                &reach,
                &self.org_id,
                &new,
                "system:test",
                now,
            )
            .await
            .unwrap()
            .unwrap()
            .0
            .id;
            Objects {
                agent: enrolled.agent_id,
                agent_identity: format!("{}{}", key.serialize_pem(), enrolled.chain_pem),
                database,
                destination,
            }
        })
    }

    /// A succeeded backup job of `schedule` (if any) and its recorded backup, finished
    /// at `at`, of `size` bytes taking `duration_ms`.
    pub fn record_backup(
        &self,
        o: &Objects,
        schedule: Option<&str>,
        at: i64,
        size: i64,
        duration_ms: i64,
    ) {
        let row = crate::common::BackupRow {
            org: &self.org_id,
            agent: &o.agent,
            database: &o.database,
            destination: &o.destination,
            schedule,
            finished_at: at,
            size,
            duration_ms: Some(duration_ms),
        };
        self.rt
            .block_on(crate::common::record_backup(&self.db, &row));
    }

    /// Signs `email` (an account without a second factor) in through the sign-in form
    /// in `browser`.
    pub fn sign_in(&self, browser: &Browser, email: &str, password: &str) {
        browser.goto(&self.url("/sign-in")).unwrap();
        browser.fill_in("#email", email).unwrap();
        browser.fill_in("#password", password).unwrap();
        browser.submit("main button[type=submit]").unwrap();
    }

    /// The actions audited so far, oldest first (every chain).
    pub fn audited_actions(&self) -> Vec<String> {
        self.rt.block_on(async {
            sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id")
                .fetch_all(self.db.pool())
                .await
                .unwrap()
        })
    }
}

/// What [`Dashboard::objects`] made.
#[derive(Clone)]
pub struct Objects {
    /// `agt_…`.
    pub agent: String,
    /// The agent's key and certificate chain (PEM), for a client that speaks for it.
    pub agent_identity: String,
    /// `dbs_…`.
    pub database: String,
    /// `dst_…`.
    pub destination: String,
}
