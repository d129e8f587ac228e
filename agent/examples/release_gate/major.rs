//! One architecture × one major: a control plane, the candidate enrolled, a schedule per
//! destination, and every object proven restorable by stock tools and by the agent.

use crate::args::{Arch, Candidate};
use crate::report::{Outcome, Row};
use crate::world::World;
use crate::{common, dataset, stock};
use dbcrate_control::backups::{databases, destinations, restores};
use dbcrate_control::config::AgentSettings;
use dbcrate_control::db::Db;
use dbcrate_control::envelope::MasterKeys;
use dbcrate_control::{local, orgs};
use dbcrate_testkit::{PgServer, TempDir};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ACTOR: &str = "user:release-gate";

/// The two kinds of object storage every case is gated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    S3,
    Sftp,
}

impl Storage {
    pub const ALL: [Storage; 2] = [Storage::S3, Storage::Sftp];

    pub fn name(self) -> &'static str {
        match self {
            Storage::S3 => "s3",
            Storage::Sftp => "sftp",
        }
    }
}

/// Gates `candidate` on `major`: one row per destination, whatever happens.
pub fn gate(world: Arc<World>, candidate: Candidate, major: u32) -> Vec<Row> {
    let row = |storage: Storage, outcome| Row::new(&candidate, major, storage, outcome);
    if candidate.arch == Arch::Arm64 && !world.arm64_sysroots.contains_key(&major) {
        let why = format!(
            "no arm64 PostgreSQL {major} client in the registries this machine reaches \
             (scripts/provision-releasetools)"
        );
        return Storage::ALL
            .iter()
            .map(|&s| row(s, Outcome::NotCovered(why.clone())))
            .collect();
    }
    // Its own thread and runtime, so that a failed assertion anywhere in the setup fails
    // this major's rows and the gate goes on with the next.
    let thread = {
        let candidate = candidate.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime")
                .block_on(run(world, candidate, major))
        })
    };
    match thread.join() {
        Ok(rows) => rows,
        Err(payload) => {
            let why = panic_text(payload);
            Storage::ALL
                .iter()
                .map(|&s| row(s, Outcome::Fail(format!("setup: {why}"))))
                .collect()
        }
    }
}

/// The message of a panic.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".into())
}

/// Everything one major's cases share.
struct Stage {
    world: Arc<World>,
    candidate: Candidate,
    major: u32,
    dir: TempDir,
    source: PgServer,
    target: PgServer,
    db: Db,
    keys: Arc<MasterKeys>,
    org: orgs::Org,
    now: i64,
    agent_id: String,
    recovery_key: PathBuf,
}

async fn run(world: Arc<World>, candidate: Candidate, major: u32) -> Vec<Row> {
    let started = Instant::now();
    let source = PgServer::start(major).expect("source server");
    source.create_database("shop").unwrap();
    source
        .psql("shop", &dataset::sql())
        .expect("the dataset loads");
    let target = PgServer::start(major).expect("a fresh target server");
    let dir = TempDir::new(&format!("gate-{}-{major}", candidate.arch)).unwrap();
    let common::control::ControlDb { db, keys, org, .. } = common::control::control_db(
        &dir.path().join("control.db"),
        "Gate",
        ACTOR,
        "2026-12-04T00:00:00Z",
    )
    .await;
    let registry = world
        .registry(candidate.arch)
        .expect("a registry for every covered architecture");
    let control = local::start(
        db.clone(),
        keys.clone(),
        &dir.path().join("tls"),
        AgentSettings {
            registry_url: Some(registry.served.url.clone()),
            registry_root_keys: vec![registry.registry.root_v1.clone()],
            poll_interval_secs: 1,
            crl_interval_secs: 60,
            heartbeat_secs: 1,
            ..AgentSettings::default()
        },
        local::loopback_reach(&std::env::temp_dir()).unwrap(),
    )
    .await
    .unwrap();
    let recovery = orgs::export_recovery_key(&db, &keys, &org.id, ACTOR, "2026-12-04T00:00:00Z")
        .await
        .unwrap();
    let recovery_key = dir.path().join("recovery.key");
    std::fs::write(&recovery_key, recovery.expose_secret()).unwrap();
    let now = dbcrate_core::time::unix_now();
    let mut stage = Stage {
        world: world.clone(),
        candidate,
        major,
        dir,
        source,
        target,
        db,
        keys,
        org,
        now,
        agent_id: String::new(),
        recovery_key,
    };
    stage.agent_id = stage.enrol(&control.agent_url, &control.fingerprint).await;
    let source_db = stage.register(&stage.source, "shop").await;
    let mut planned = Vec::new();
    for storage in Storage::ALL {
        let destination = stage.destination(storage).await;
        stage.schedule(&source_db.id, &destination).await;
        planned.push((storage, destination));
    }
    eprintln!(
        "release-gate:   set up in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let log = stage.dir.path().join("agent.log");
    let mut agent = stage.run_agent(&log);
    let scheduler = control.run_scheduler(Duration::from_millis(500));
    let mut rows = Vec::new();
    for (storage, destination) in &planned {
        let outcome = stage.case(*storage, destination).await;
        rows.push(Row::new(&stage.candidate, major, *storage, outcome));
    }
    scheduler.abort();
    let _ = agent.start_kill();
    let _ = agent.wait().await;
    if rows.iter().any(|r| !r.passed()) {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        eprintln!(
            "release-gate:   the agent's last log lines:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    rows
}

/// Where a destination keeps its objects, for the stock download.
struct Destination {
    id: String,
    /// S3: the key prefix; SFTP: the absolute directory on the server.
    place: String,
}

/// What a successful case measured.
pub struct Measured {
    pub backup_seconds: f64,
    pub restore_seconds: f64,
    pub bytes: u64,
}

impl Stage {
    fn label(&self, storage: Storage) -> String {
        format!(
            "gate-{}-{}-{}",
            self.candidate.arch,
            self.major,
            storage.name()
        )
    }

    /// The candidate binary, with no credential in its environment; arm64 candidates find
    /// their major's arm64 C library for the registry's tools through qemu-user.
    fn agent(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.candidate.binary);
        cmd.env_remove("PGPASSWORD")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("DBCRATE_AGENT_DIRECTORY_ROOTS")
            .env("DBCRATE_LOG", "info");
        if self.candidate.arch == Arch::Arm64 {
            cmd.env("QEMU_LD_PREFIX", &self.world.arm64_sysroots[&self.major]);
        }
        cmd
    }

    /// The organisation, acted in as the gate at the stage's time.
    fn tenant(&self) -> common::control::Tenant<'_> {
        common::control::Tenant {
            db: &self.db,
            keys: &self.keys,
            org_id: &self.org.id,
            actor: ACTOR,
            now: self.now,
        }
    }

    async fn enrol(&self, agent_url: &str, fingerprint: &str) -> String {
        self.tenant()
            .enrol(
                self.agent(),
                "gate host",
                (agent_url, fingerprint),
                self.dir.path(),
                &self.dir.path().join("agent"),
            )
            .await
    }

    async fn register(&self, server: &PgServer, name: &str) -> databases::DatabaseInfo {
        self.tenant()
            .register_database(server, name, &self.agent_id)
            .await
    }

    async fn destination(&self, storage: Storage) -> Destination {
        let label = self.label(storage);
        let (kind, settings, credentials, place) = match storage {
            Storage::S3 => {
                let s3 = &self.world.s3;
                (
                    "s3",
                    json!({
                        "endpoint": s3.endpoint(), "region": s3.region(), "bucket": s3.bucket(),
                        "prefix": label, "path_style": true,
                    }),
                    json!({
                        "access_key_id": s3.access_key_id(),
                        "secret_access_key": s3.secret_access_key(),
                    }),
                    label.clone(),
                )
            }
            Storage::Sftp => {
                let sftp = &self.world.sftp;
                let path = sftp.root().join(&label);
                std::fs::create_dir(&path).unwrap();
                let owner = std::fs::metadata(sftp.root()).unwrap();
                use std::os::unix::fs::MetadataExt;
                std::os::unix::fs::chown(&path, Some(owner.uid()), Some(owner.gid())).unwrap();
                (
                    "sftp",
                    json!({
                        "host": "127.0.0.1", "port": sftp.port(), "user": sftp.user(),
                        "path": path, "host_key": sftp.known_hosts_line(),
                    }),
                    json!({ "private_key": std::fs::read_to_string(sftp.client_key()).unwrap() }),
                    path.display().to_string(),
                )
            }
        };
        // The probe's steps are not needed: a failed probe is already the Err side.
        let (saved, _probe) = destinations::create(
            &self.db,
            &self.keys,
            &Arc::new(local::loopback_reach(&std::env::temp_dir()).unwrap()),
            &self.org.id,
            &destinations::NewDestination {
                name: &label,
                kind,
                settings: &settings,
                credentials: Some(&credentials),
            },
            ACTOR,
            self.now,
        )
        .await
        .unwrap()
        .unwrap_or_else(|failed| panic!("the {kind} destination's probe failed: {failed:?}"));
        Destination {
            id: saved.id,
            place,
        }
    }

    async fn schedule(&self, database_id: &str, destination: &Destination) {
        self.tenant()
            .due_schedule(database_id, &destination.id)
            .await;
    }

    /// `dbcrate-agent run` with an empty PATH: every tool comes from the registry.
    fn run_agent(&self, log: &Path) -> tokio::process::Child {
        let empty = self.dir.path().join("empty-path");
        std::fs::create_dir_all(&empty).unwrap();
        let registry = self.world.registry(self.candidate.arch).unwrap();
        self.agent()
            .arg("run")
            .arg("--data-dir")
            .arg(self.dir.path().join("agent"))
            .arg("--registry-ca")
            .arg(&registry.served.ca)
            .env("PATH", &empty)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    /// One destination: the scheduled backup, the stock restore, the managed restore.
    async fn case(&self, storage: Storage, destination: &Destination) -> Outcome {
        match self.prove(storage, destination).await {
            Ok(m) => Outcome::Pass(m),
            Err(why) => Outcome::Fail(why),
        }
    }

    async fn prove(&self, storage: Storage, destination: &Destination) -> Result<Measured, String> {
        let limit = match self.candidate.arch {
            Arch::Amd64 => Duration::from_secs(120),
            Arch::Arm64 => Duration::from_secs(600), // emulated: TLS and zstd are slow
        };
        let job = wait_for_job(&self.db, &destination.id, limit).await?;
        let (backup_id, key, size, sha256, duration_ms): (String, String, i64, String, i64) =
            sqlx::query_as(
                "SELECT id, object_key, size, sha256, duration_ms FROM backups WHERE job_id = $1",
            )
            .bind(&job)
            .fetch_one(self.db.pool())
            .await
            .map_err(|e| format!("the backup row: {e}"))?;
        // The cluster's roles were saved next to it with the registry's pg_dumpall.
        let globals: Option<i64> =
            sqlx::query_scalar("SELECT globals_size FROM backups WHERE id = $1")
                .bind(&backup_id)
                .fetch_one(self.db.pool())
                .await
                .map_err(|e| format!("the backup row: {e}"))?;
        if globals.is_none() {
            return Err(
                "the backup was recorded without the cluster's roles (pg_dumpall from \
                        the registry did not run; see the agent's log)"
                    .into(),
            );
        }

        // Fetched with a client that is not dbcrate.
        let file = self.dir.path().join(format!("{}.age", storage.name()));
        match storage {
            Storage::S3 => {
                let object = format!("{}/{key}", destination.place);
                let out = self
                    .world
                    .s3
                    .curl(
                        &["--fail", "-o", file.to_str().unwrap()],
                        &common::encode_key(&object),
                    )
                    .map_err(|e| format!("curl: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "curl --aws-sigv4 GET {object} failed: {}",
                        common::stderr_of(&out)
                    ));
                }
            }
            Storage::Sftp => {
                let remote = Path::new(&destination.place).join(&key);
                stock::sftp_get(&self.world.sftp, &remote, &file)?;
            }
        }
        let bytes = std::fs::read(&file).map_err(|e| format!("reading the download: {e}"))?;
        use sha2::Digest;
        let got = dbcrate_core::hex::encode(&sha2::Sha256::digest(&bytes));
        if bytes.len() as i64 != size || got != sha256 {
            return Err(format!(
                "the downloaded object ({} bytes, sha256 {got}) is not the recorded one \
                 ({size} bytes, sha256 {sha256})",
                bytes.len()
            ));
        }

        // Stock age + the exported recovery key, zstd -d, pg_restore into a fresh server.
        let stock_db = format!("stock_{}", storage.name());
        checked(|| {
            common::stock_restore(&self.target, &self.recovery_key, &file, &stock_db);
            common::assert_same_database(&self.source, "shop", &self.target, &stock_db);
        })
        .map_err(|e| format!("stock restore: {e}"))?;

        self.tools_came_from_the_registry("pg_dump")?;

        // A managed restore through the candidate (it gets only the file key).
        let managed_db = format!("managed_{}", storage.name());
        self.target
            .create_database(&managed_db)
            .map_err(|e| e.to_string())?;
        let target_db = self.register(&self.target, &managed_db).await;
        let restore_started = Instant::now();
        let restore = restores::create(
            &self.db,
            &self.org.id,
            &backup_id,
            &target_db.id,
            ACTOR,
            self.now,
        )
        .await
        .map_err(|e| format!("managed restore: {e}"))?;
        wait_for_success(&self.db, &restore, limit).await?;
        let restore_seconds = restore_started.elapsed().as_secs_f64();
        self.tools_came_from_the_registry("pg_restore")?;
        checked(|| common::assert_same_database(&self.source, "shop", &self.target, &managed_db))
            .map_err(|e| format!("managed restore: {e}"))?;
        Ok(Measured {
            backup_seconds: duration_ms as f64 / 1000.0,
            restore_seconds,
            bytes: size as u64,
        })
    }
}

impl Stage {
    /// The agent's log says it started `tool` from its data directory, where it unpacks
    /// registry artifacts: not from anything on the host.
    fn tools_came_from_the_registry(&self, tool: &str) -> Result<(), String> {
        let log = std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default();
        let data = self.dir.path().join("agent").display().to_string();
        let started = format!("starting {tool}");
        match log.lines().find(|l| l.contains(&started)) {
            Some(line) if line.contains(&data) => Ok(()),
            Some(line) => Err(format!("{tool} did not come from the registry: {line}")),
            None => Err(format!("the agent's log has no {started:?} line")),
        }
    }
}

/// Runs `check` (which asserts) and turns a failed assertion into its message.
fn checked(check: impl FnOnce()) -> Result<(), String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).map_err(panic_text)
}

/// Waits for the first backup job to `destination_id` and for it to succeed.
async fn wait_for_job(db: &Db, destination_id: &str, limit: Duration) -> Result<String, String> {
    let started = Instant::now();
    loop {
        let job: Option<String> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE kind = 'backup' AND destination_id = $1 \
             ORDER BY created_at LIMIT 1",
        )
        .bind(destination_id)
        .fetch_optional(db.pool())
        .await
        .map_err(|e| e.to_string())?;
        if let Some(job) = job {
            wait_for_success(db, &job, limit.saturating_sub(started.elapsed())).await?;
            return Ok(job);
        }
        if started.elapsed() > limit {
            return Err("the schedule queued no backup job".into());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn wait_for_success(db: &Db, job: &str, limit: Duration) -> Result<(), String> {
    let started = Instant::now();
    loop {
        let (state, error): (String, Option<String>) =
            sqlx::query_as("SELECT state, error FROM jobs WHERE id = $1")
                .bind(job)
                .fetch_one(db.pool())
                .await
                .map_err(|e| e.to_string())?;
        match state.as_str() {
            "succeeded" => return Ok(()),
            "failed" => return Err(format!("job {job} failed: {}", error.unwrap_or_default())),
            _ if started.elapsed() > limit => {
                return Err(format!(
                    "job {job} still {state} after {} s",
                    limit.as_secs()
                ))
            }
            _ => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}
