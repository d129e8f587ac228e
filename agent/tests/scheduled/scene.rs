//! The stage every scheduled-job test starts from: a PostgreSQL major with a sample
//! database, a control plane's database (SQLite) with an organisation, an agent
//! enrolled through `dbcrate-agent enroll`, the database registered for that agent, a
//! probed destination and a schedule that is already due.

use crate::common;
use dbcrate_control::backups::{databases, destinations};
use dbcrate_control::config::AgentSettings;
use dbcrate_control::db::Db;
use dbcrate_control::envelope::MasterKeys;
use dbcrate_control::{local, orgs};
use dbcrate_testkit::{PgServer, S3Server, SftpServer, TempDir};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The master key every scene's control plane runs with.
pub use dbcrate_testkit::TEST_MASTER_KEY as K1;

/// Where backups go.
pub enum Storage<'a> {
    /// A directory both the agent and the control plane reach (`Scene::target`).
    Directory,
    /// The bucket of a running Garage.
    S3(&'a S3Server),
    /// A directory of a running OpenSSH SFTP server (`Enrolled::target` is where its
    /// files are on this host).
    Sftp(&'a SftpServer),
}

/// The server, the control plane's database and keys, and one organisation.
pub struct Basis {
    pub server: PgServer,
    pub dir: TempDir,
    pub db: Db,
    pub db_url: String,
    pub keys: Arc<MasterKeys>,
    pub org: orgs::Org,
    pub now: i64,
}

/// A PostgreSQL `major` with the database `shop`, a migrated SQLite control-plane
/// database and the organisation Acme.
pub async fn basis(major: u32) -> Basis {
    basis_with_control_db(major, None).await
}

/// [`basis`], with the control plane's database at `control_url` (PostgreSQL) instead
/// of SQLite.
pub async fn basis_with_control_db(major: u32, control_url: Option<String>) -> Basis {
    let server = PgServer::start(major).unwrap();
    server.create_database("shop").unwrap();
    server.psql("shop", &common::varied_schema(300)).unwrap();
    let dir = TempDir::new("agent-scheduled").unwrap();
    let url = control_url.unwrap_or_else(|| dbcrate_testkit::sqlite_url(&dir.path().join("c.db")));
    let (org, actor, stamp) = ("Acme", "system:test", "2026-11-29T05:00:00Z");
    let control = common::control::control_db_at(url, org, actor, stamp).await;
    let now = dbcrate_core::time::unix_now();
    Basis {
        server,
        dir,
        db: control.db,
        db_url: control.url,
        keys: control.keys,
        org: control.org,
        now,
    }
}

impl Basis {
    /// The organisation, acted in as `system:test` at the basis' time.
    pub fn tenant(&self) -> common::control::Tenant<'_> {
        common::control::Tenant {
            db: &self.db,
            keys: &self.keys,
            org_id: &self.org.id,
            actor: "system:test",
            now: self.now,
        }
    }
}

/// What the test needs after the agent is enrolled and the schedule saved.
pub struct Enrolled {
    /// The agent's data directory.
    pub data: PathBuf,
    pub agent_id: String,
    pub database: databases::DatabaseInfo,
    pub schedule_id: String,
    /// The directory destination's path, or the SFTP server's directory on this host
    /// (exists but unused with S3).
    pub target: PathBuf,
}

/// Enrols an agent with the control plane at `agent_url` (pinned by `fingerprint`)
/// through the agent binary, registers `shop` for it, saves a destination on
/// `storage` (probed) and a schedule due two minutes ago.
pub async fn enrol_and_schedule(
    basis: &Basis,
    agent_url: &str,
    fingerprint: &str,
    storage: Storage<'_>,
) -> Enrolled {
    let Basis {
        dir,
        db,
        keys,
        org,
        now,
        ..
    } = basis;
    let now = *now;
    let data = dir.path().join("agent");
    let agent_id = basis
        .tenant()
        .enrol(
            tokio::process::Command::from(common::agent()),
            "db host",
            (agent_url, fingerprint),
            dir.path(),
            &data,
        )
        .await;

    let database = register_database(basis, "shop", &agent_id).await;
    let mut target = dir.path().join("backups");
    std::fs::create_dir(&target).unwrap();
    let (kind, settings, credentials) = match storage {
        Storage::Directory => ("directory", json!({ "path": target }), None),
        Storage::Sftp(sftp) => {
            target = sftp.root().join("backups");
            std::fs::create_dir(&target).unwrap();
            // The server's user owns its root, and must own this directory too.
            let owner = std::fs::metadata(sftp.root()).unwrap();
            use std::os::unix::fs::MetadataExt;
            std::os::unix::fs::chown(&target, Some(owner.uid()), Some(owner.gid())).unwrap();
            let key = std::fs::read_to_string(sftp.client_key()).unwrap();
            (
                "sftp",
                json!({
                    "host": "127.0.0.1", "port": sftp.port(), "user": sftp.user(),
                    "path": target, "host_key": sftp.known_hosts_line(),
                }),
                Some(json!({ "private_key": key })),
            )
        }
        Storage::S3(s3) => (
            "s3",
            json!({
                "endpoint": s3.endpoint(), "region": s3.region(), "bucket": s3.bucket(),
                "prefix": "acme", "path_style": true,
            }),
            Some(json!({
                "access_key_id": s3.access_key_id(),
                "secret_access_key": s3.secret_access_key(),
            })),
        ),
    };
    let (destination, _) = destinations::create(
        db,
        keys,
        &std::sync::Arc::new(
            dbcrate_control::local::loopback_reach(&std::env::temp_dir()).unwrap(),
        ),
        &org.id,
        &destinations::NewDestination {
            name: "backups",
            kind,
            settings: &settings,
            credentials: credentials.as_ref(),
        },
        "system:test",
        now,
    )
    .await
    .unwrap()
    .unwrap();
    let schedule_id = basis
        .tenant()
        .due_schedule(&database.id, &destination.id)
        .await;
    Enrolled {
        data,
        agent_id,
        database,
        schedule_id,
        target,
    }
}

/// Registers database `name` of the basis' server, reached by `agent_id`.
pub async fn register_database(
    basis: &Basis,
    name: &str,
    agent_id: &str,
) -> databases::DatabaseInfo {
    basis
        .tenant()
        .register_database(&basis.server, name, agent_id)
        .await
}

/// A basis with an in-process control plane, an enrolled agent and a due schedule.
pub struct Scene {
    pub basis: Basis,
    pub control: local::LocalControlPlane,
    pub enrolled: Enrolled,
}

/// A scene for `major` with a directory destination and a 1-second job poll.
pub async fn scene(major: u32) -> Scene {
    scene_with(major, quick_settings(), Storage::Directory).await
}

/// Agent settings that keep tests short: jobs polled and heartbeats sent every second.
pub fn quick_settings() -> AgentSettings {
    AgentSettings {
        poll_interval_secs: 1,
        crl_interval_secs: 60,
        heartbeat_secs: 1,
        ..AgentSettings::default()
    }
}

/// A scene with the given agent settings and storage.
pub async fn scene_with(major: u32, settings: AgentSettings, storage: Storage<'_>) -> Scene {
    let basis = basis(major).await;
    let control = local::start(
        basis.db.clone(),
        basis.keys.clone(),
        &basis.dir.path().join("tls"),
        settings,
        local::loopback_reach(&std::env::temp_dir()).unwrap(),
    )
    .await
    .unwrap();
    let enrolled =
        enrol_and_schedule(&basis, &control.agent_url, &control.fingerprint, storage).await;
    Scene {
        basis,
        control,
        enrolled,
    }
}

/// `dbcrate-agent run --data-dir <data>` with its log piped, to be given a PATH; its
/// directory root is the scene's directory (the parent of `data`), which holds the
/// directory destination (`Enrolled::target`).
pub fn agent_run(data: &Path) -> tokio::process::Command {
    let mut cmd = agent_run_without_roots(data);
    cmd.arg("--directory-root").arg(
        data.parent()
            .expect("the agent's data directory is in the scene's"),
    );
    cmd
}

/// `dbcrate-agent run --data-dir <data>` with its log piped and no directory root (none
/// from the environment either), to be given a PATH.
pub fn agent_run_without_roots(data: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::from(common::agent());
    cmd.arg("run")
        .arg("--data-dir")
        .arg(data)
        .env_remove("DBCRATE_AGENT_DIRECTORY_ROOTS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// `dbcrate-agent run` on the agent data directory `data`, with `path_first` ahead of
/// the server's client tools on PATH.
pub fn run_agent(
    server: &PgServer,
    data: &Path,
    path_first: Option<&Path>,
) -> tokio::process::Child {
    let mut path = String::new();
    if let Some(first) = path_first {
        path.push_str(&format!("{}:", first.display()));
    }
    path.push_str(&path_with_tools(server));
    agent_run(data).env("PATH", path).spawn().unwrap()
}

/// [`run_agent`] with its log appended to `log` instead of a pipe: an agent that runs
/// for long and is never read from would fill the pipe and stall on its next log line.
pub fn run_agent_logging_to(server: &PgServer, data: &Path, log: &Path) -> tokio::process::Child {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    agent_run(data)
        .env("PATH", path_with_tools(server))
        .stderr(file)
        .spawn()
        .unwrap()
}

/// This process's PATH with `server`'s client tools (pg_dump, pg_restore) ahead.
pub fn path_with_tools(server: &PgServer) -> String {
    format!(
        "{}:{}",
        server.bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Kills `agent` and waits for it, whatever state it is in.
pub async fn stop(mut agent: tokio::process::Child) {
    let _ = agent.start_kill();
    let _ = agent.wait().await;
}

/// Makes the next attempt of `job` due now (its wait before a retry passed).
pub async fn retry_now(db: &Db, job: &str) {
    sqlx::query("UPDATE jobs SET retry_at = 0 WHERE id = $1")
        .bind(job)
        .execute(db.pool())
        .await
        .unwrap();
}

/// How many audit records of `action` name `job` as their target.
pub async fn audited(db: &Db, action: &str, job: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = $1 AND target = $2")
        .bind(action)
        .bind(format!("job:{job}"))
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// Polls `check` every 300 ms until it gives a value, failing the test after `limit`
/// with `what`.
pub async fn wait_for<T, F>(what: &str, limit: Duration, mut check: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// A job's state, attempt and error.
pub async fn job_state(db: &Db, job: &str) -> (String, i64, Option<String>) {
    sqlx::query_as("SELECT state, attempt, error FROM jobs WHERE id = $1")
        .bind(job)
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// Waits until job `job` succeeds, failing the test when it fails for good or takes
/// longer than `limit`.
pub async fn wait_for_success(db: &Db, job: &str, limit: Duration) -> i64 {
    wait_for("the job to succeed", limit, || async {
        match job_state(db, job).await {
            (state, attempt, _) if state == "succeeded" => Some(attempt),
            (state, _, error) if state == "failed" => panic!("the job failed: {error:?}"),
            _ => None,
        }
    })
    .await
}

/// Waits until the scheduler has queued a backup job, and returns its id.
pub async fn wait_for_backup_job(db: &Db) -> String {
    wait_for("a backup job", Duration::from_secs(30), || async {
        sqlx::query_scalar("SELECT id FROM jobs WHERE kind = 'backup' ORDER BY created_at LIMIT 1")
            .fetch_optional(db.pool())
            .await
            .unwrap()
    })
    .await
}

/// Waits until job `job` ends, and returns its state and error.
pub async fn wait_for_end(db: &Db, job: &str, limit: Duration) -> (String, Option<String>) {
    wait_for("the job to end", limit, || async {
        match job_state(db, job).await {
            (state, _, error) if state == "succeeded" || state == "failed" => Some((state, error)),
            _ => None,
        }
    })
    .await
}

/// Waits until attempt `attempt` of job `job` is over: the job ended, or that attempt
/// failed and the job waits for its retry; returns its state and error.
pub async fn wait_for_attempt(
    db: &Db,
    job: &str,
    attempt: i64,
    limit: Duration,
) -> (String, Option<String>) {
    wait_for("the attempt to end", limit, || async {
        match job_state(db, job).await {
            (state, _, error) if state == "succeeded" || state == "failed" => Some((state, error)),
            (state, n, Some(error)) if state == "queued" && n >= attempt => {
                Some((state, Some(error)))
            }
            _ => None,
        }
    })
    .await
}

/// Waits until a drill of backup `backup_id` was queued, and returns its job's id.
pub async fn wait_for_drill_of(db: &Db, backup_id: &str) -> String {
    wait_for("a drill of the backup", Duration::from_secs(30), || async {
        sqlx::query_scalar("SELECT id FROM jobs WHERE drill = 1 AND backup_id = $1")
            .bind(backup_id)
            .fetch_optional(db.pool())
            .await
            .unwrap()
    })
    .await
}

/// Waits until some job is running with its credentials fetched, and returns its id.
pub async fn wait_for_running_job(db: &Db) -> String {
    wait_for("a job to start", Duration::from_secs(30), || async {
        sqlx::query_scalar(
            "SELECT id FROM jobs WHERE state = 'running' AND credentials_fetched_at IS NOT NULL",
        )
        .fetch_optional(db.pool())
        .await
        .unwrap()
    })
    .await
}

/// The object keys under `dir`, without the README and hidden temporary files.
pub fn final_objects(dir: &Path) -> Vec<String> {
    common::files_under(dir)
        .into_iter()
        .filter(|f| f != "README-dbcrate.txt")
        .filter(|f| !f.rsplit('/').next().unwrap_or("").starts_with('.'))
        .collect()
}
