//! The control plane's side of the agent's tests and of the release gate: its database
//! with keys and an organisation, agents enrolled through an agent binary, databases
//! registered for them.
//!
//! Why here and not in dbcrate-testkit: these call the control plane's library, and the
//! kit does not depend on the control plane (whose tests depend on the kit). The release
//! gate includes this directory with `#[path]`, so the scheduled tests and the gate
//! enrol the same way.

use dbcrate_control::backups::{databases, schedules};
use dbcrate_control::db::Db;
use dbcrate_control::envelope::MasterKeys;
use dbcrate_control::{agents, orgs};
use dbcrate_core::retention::Rules;
use dbcrate_core::secret::SecretString;
use dbcrate_testkit::{assert_succeeded, sqlite_url, PgServer, TEST_MASTER_KEY};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

/// A control plane's database, its keys and one organisation.
pub struct ControlDb {
    pub db: Db,
    /// The database's URL, for a control-plane process of its own.
    pub url: String,
    pub keys: Arc<MasterKeys>,
    pub org: orgs::Org,
}

/// A control plane's database on SQLite in `file`, migrated, with the test master keys
/// (the audit chain key loaded at `stamp`, RFC 3339) and the organisation `org_name`
/// made by `actor` at `stamp`.
pub async fn control_db(file: &Path, org_name: &str, actor: &str, stamp: &str) -> ControlDb {
    control_db_at(sqlite_url(file), org_name, actor, stamp).await
}

/// [`control_db`] at `url` (a PostgreSQL database, say).
pub async fn control_db_at(url: String, org_name: &str, actor: &str, stamp: &str) -> ControlDb {
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let keys = Arc::new(MasterKeys::parse(TEST_MASTER_KEY).unwrap());
    dbcrate_control::secrets::audit_key::load(&db, &keys, stamp)
        .await
        .unwrap();
    let org = orgs::create(&db, &keys, org_name, actor, stamp)
        .await
        .unwrap();
    ControlDb { db, url, keys, org }
}

/// An organisation of a control plane, and who acts in it when.
pub struct Tenant<'a> {
    pub db: &'a Db,
    pub keys: &'a MasterKeys,
    pub org_id: &'a str,
    /// The actor the audit log records (`system:test`, `user:release-gate`).
    pub actor: &'a str,
    /// When it acts (Unix seconds).
    pub now: i64,
}

impl Tenant<'_> {
    /// Enrols an agent with `agent` (a `dbcrate-agent` command: the test build or a
    /// release candidate) at the control plane's `agent_url`, pinned by `fingerprint`: a
    /// one-time token for `host` is written to `dir/token`, the identity goes to the data
    /// directory `data`. Returns the agent's id.
    pub async fn enrol(
        &self,
        mut agent: tokio::process::Command,
        host: &str,
        (agent_url, fingerprint): (&str, &str),
        dir: &Path,
        data: &Path,
    ) -> String {
        let token = agents::create_token(self.db, self.org_id, host, None, self.actor, self.now)
            .await
            .unwrap();
        let token_file = dir.join("token");
        std::fs::write(&token_file, token.token.expose_secret()).unwrap();
        let out = agent
            .arg("enroll")
            .args([
                "--control-url",
                agent_url,
                "--server-fingerprint",
                fingerprint,
            ])
            .arg("--token-file")
            .arg(&token_file)
            .arg("--data-dir")
            .arg(data)
            .output()
            .await
            .unwrap();
        assert_succeeded("dbcrate-agent enroll", &out);
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["agent_id"]
            .as_str()
            .expect("enroll prints the agent id")
            .to_string()
    }

    /// Registers database `name` of `server` (over 127.0.0.1 as `postgres`, without
    /// TLS, with the server's password), reached by agent `agent_id`.
    pub async fn register_database(
        &self,
        server: &PgServer,
        name: &str,
        agent_id: &str,
    ) -> databases::DatabaseInfo {
        databases::create(
            self.db,
            self.keys,
            self.org_id,
            &databases::NewDatabase {
                name,
                host: "127.0.0.1",
                port: i64::from(server.port()),
                dbname: name,
                username: "postgres",
                tls_mode: "disable",
                password: Some(&SecretString::new(server.password().to_string())),
                agent_id,
            },
            self.actor,
            self.now,
        )
        .await
        .unwrap()
    }

    /// A schedule of `database_id` into `destination_id` that fires every minute and
    /// keeps seven dailies, made two minutes ago so that it is due at once; its id.
    pub async fn due_schedule(&self, database_id: &str, destination_id: &str) -> String {
        schedules::create(
            self.db,
            self.org_id,
            &schedules::NewSchedule {
                database_id,
                destination_id,
                cron: "* * * * *",
                time_zone: "UTC",
                retention: Rules {
                    keep_daily: 7,
                    ..Rules::default()
                },
            },
            self.actor,
            self.now - 120,
        )
        .await
        .unwrap()
        .id
    }
}
