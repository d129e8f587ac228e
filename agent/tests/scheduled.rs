//! Scheduled backups end to end for every PostgreSQL major: a schedule in the control
//! plane (in this process, over mutual TLS) fires, the enrolled agent (`dbcrate-agent
//! run`) claims the job, fetches its credentials once, backs the database up into the
//! destination and reports; the control plane records the backup; and the object
//! restores with stock age (and the organisation's exported recovery key), zstd and
//! pg_restore.

mod common;

use dbcrate_control::db::Db;
use dbcrate_control::envelope::MasterKeys;
use dbcrate_control::http::AgentSettings;
use dbcrate_control::{agents, databases, destinations, local, orgs, restores, schedules};
use dbcrate_core::retention::Rules;
use dbcrate_core::secret::SecretString;
use dbcrate_testkit::{PgServer, TempDir};
use serde_json::json;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

const K1: &str = "mk1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A control plane (in this process), a PostgreSQL `major` with a sample database, an
/// enrolled agent's data directory, the database registered, a directory destination
/// and a schedule that is due.
struct Scene {
    server: PgServer,
    dir: TempDir,
    db: Db,
    keys: Arc<MasterKeys>,
    org: dbcrate_control::orgs::Org,
    control: local::LocalControlPlane,
    data: std::path::PathBuf,
    agent_id: String,
    database: databases::DatabaseInfo,
    target: std::path::PathBuf,
    now: i64,
}

async fn scene(major: u32) -> Scene {
    scene_with(
        major,
        AgentSettings {
            poll_interval_secs: 1,
            crl_interval_secs: 60,
            ..AgentSettings::default()
        },
    )
    .await
}

async fn scene_with(major: u32, settings: AgentSettings) -> Scene {
    let server = PgServer::start(major).unwrap();
    server.create_database("shop").unwrap();
    server.psql("shop", &common::varied_schema(300)).unwrap();
    let dir = TempDir::new("agent-scheduled").unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("c.db").display());
    let db = Db::connect(&url).await.unwrap();
    db.migrate().await.unwrap();
    let keys = Arc::new(MasterKeys::parse(K1).unwrap());
    let org = orgs::create(&db, &keys, "Acme", "system:test", "2026-11-29T05:00:00Z")
        .await
        .unwrap();
    let control = local::start(db.clone(), keys.clone(), &dir.path().join("tls"), settings)
        .await
        .unwrap();
    let now = dbcrate_core::time::unix_now();

    // Enrol the agent on this "host".
    let token = agents::create_token(&db, &org.id, "db host", None, "system:test", now)
        .await
        .unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token.token.expose_secret()).unwrap();
    let data = dir.path().join("agent");
    let out = tokio::process::Command::from(common::agent())
        .arg("enroll")
        .args([
            "--control-url",
            &control.agent_url,
            "--server-fingerprint",
            &control.fingerprint,
        ])
        .arg("--token-file")
        .arg(&token_file)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", common::stderr_of(&out));
    let agent_id = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["agent_id"]
        .as_str()
        .unwrap()
        .to_string();

    // The database, a directory destination (probed), and a schedule already due.
    let database = databases::create(
        &db,
        &keys,
        &org.id,
        &databases::NewDatabase {
            name: "shop",
            host: "127.0.0.1",
            port: i64::from(server.port()),
            dbname: "shop",
            username: "postgres",
            tls_mode: "disable",
            password: Some(&SecretString::new(server.password().to_string())),
            agent_id: &agent_id,
        },
        "system:test",
        now,
    )
    .await
    .unwrap();
    let target = dir.path().join("backups");
    std::fs::create_dir(&target).unwrap();
    let settings = json!({ "path": target });
    let (destination, _) = destinations::create(
        &db,
        &keys,
        &org.id,
        &destinations::NewDestination {
            name: "local",
            kind: "directory",
            settings: &settings,
            credentials: None,
        },
        "system:test",
        now,
    )
    .await
    .unwrap()
    .unwrap();
    schedules::create(
        &db,
        &org.id,
        &schedules::NewSchedule {
            database_id: &database.id,
            destination_id: &destination.id,
            cron: "* * * * *",
            time_zone: "UTC",
            retention: Rules {
                keep_daily: 7,
                ..Rules::default()
            },
        },
        "system:test",
        now - 120,
    )
    .await
    .unwrap();
    Scene {
        server,
        dir,
        db,
        keys,
        org,
        control,
        data,
        agent_id,
        database,
        target,
        now,
    }
}

/// `dbcrate-agent run` with `path_first` ahead of PATH (the server's client tools).
fn run_agent(scene: &Scene, path_first: &std::path::Path) -> tokio::process::Child {
    let path = format!(
        "{}:{}:{}",
        path_first.display(),
        scene.server.bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    tokio::process::Command::from(common::agent())
        .arg("run")
        .arg("--data-dir")
        .arg(&scene.data)
        .env("PATH", path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn scheduled_backup_restores_with_stock_tools(major: u32) {
    let Scene {
        server,
        dir,
        db,
        keys,
        org,
        control,
        data,
        agent_id,
        database,
        target,
        now,
    } = scene(major).await;
    let _scheduler = control.run_scheduler(Duration::from_millis(500));

    // The agent runs with this major's client tools on PATH and no database password in
    // its environment: everything comes from the job.
    let path = format!(
        "{}:{}",
        server.bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut agent = tokio::process::Command::from(common::agent())
        .arg("run")
        .arg("--data-dir")
        .arg(&data)
        .env("PATH", path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let backup = loop {
        let row: Option<(String, i64, String)> =
            sqlx::query_as("SELECT object_key, size, sha256 FROM backups WHERE database_id = $1")
                .bind(&database.id)
                .fetch_optional(db.pool())
                .await
                .unwrap();
        if let Some(row) = row {
            break row;
        }
        let failed: Option<String> =
            sqlx::query_scalar("SELECT error FROM jobs WHERE error IS NOT NULL")
                .fetch_optional(db.pool())
                .await
                .unwrap();
        if let Some(error) = failed {
            let _ = agent.kill().await;
            panic!("the job failed: {error}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no backup within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    // A managed restore of that backup into another database on the same server, by the
    // same agent: it gets only the backup's file key.
    server.create_database("managed").unwrap();
    let target_db = databases::create(
        &db,
        &keys,
        &org.id,
        &databases::NewDatabase {
            name: "managed",
            host: "127.0.0.1",
            port: i64::from(server.port()),
            dbname: "managed",
            username: "postgres",
            tls_mode: "disable",
            password: Some(&SecretString::new(server.password().to_string())),
            agent_id: &agent_id,
        },
        "system:test",
        now,
    )
    .await
    .unwrap();
    let backup_id: String = sqlx::query_scalar("SELECT id FROM backups WHERE database_id = $1")
        .bind(&database.id)
        .fetch_one(db.pool())
        .await
        .unwrap();
    let restore_job = restores::create(&db, &org.id, &backup_id, &target_db.id, "user:owner", now)
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let (state, error): (String, Option<String>) =
            sqlx::query_as("SELECT state, error FROM jobs WHERE id = $1")
                .bind(&restore_job)
                .fetch_one(db.pool())
                .await
                .unwrap();
        match state.as_str() {
            "succeeded" => break,
            "failed" => panic!("the restore failed: {error:?}"),
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no restore within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = agent.start_kill();
    let out = agent.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !log.contains(server.password()),
        "the database password reached the agent's log"
    );
    common::assert_same_database(&server, "shop", &server, "managed");

    // The recorded object is there, with the recorded size and hash.
    let (key, size, sha256) = backup;
    let file = target.join(&key);
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(bytes.len() as i64, size);
    use sha2::Digest;
    assert_eq!(
        dbcrate_core::hex::encode(&sha2::Sha256::digest(&bytes)),
        sha256
    );

    // Stock tools and the organisation's exported recovery key restore it.
    let recovery =
        orgs::export_recovery_key(&db, &keys, &org.id, "user:owner", "2026-11-29T05:00:00Z")
            .await
            .unwrap();
    let key_file = dir.path().join("recovery.key");
    std::fs::write(&key_file, recovery.expose_secret()).unwrap();
    common::stock_restore(&server, &key_file, &file, "restored");
    common::assert_same_database(&server, "shop", &server, "restored");

    // The file key handed to the agent is in no row and no log line.
    let identity: age::x25519::Identity = recovery
        .expose_secret()
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        .parse()
        .unwrap();
    let head = &bytes[..bytes.len().min(4096)];
    let file_key = dbcrate_core::file_key::unwrap_file_key(head, &identity).unwrap();
    let file_key_hex = dbcrate_core::hex::encode(file_key.expose_secret());
    assert!(
        !log.contains(&file_key_hex),
        "the file key reached the agent's log"
    );
    let mut everything = String::new();
    for table in [
        "jobs",
        "backups",
        "audit_log",
        "secrets",
        "destinations",
        "databases",
    ] {
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(db.pool())
            .await
            .unwrap();
        for row in rows {
            use sqlx::Row;
            for i in 0..row.len() {
                if let Ok(text) = row.try_get::<String, _>(i) {
                    everything.push_str(&text);
                } else if let Ok(blob) = row.try_get::<Vec<u8>, _>(i) {
                    everything.push_str(&dbcrate_core::hex::encode(&blob));
                }
            }
        }
    }
    assert!(
        !everything.contains(&file_key_hex),
        "the file key is stored in the database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg13_scheduled_backup_restores_with_stock_tools() {
    scheduled_backup_restores_with_stock_tools(13).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg14_scheduled_backup_restores_with_stock_tools() {
    scheduled_backup_restores_with_stock_tools(14).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg15_scheduled_backup_restores_with_stock_tools() {
    scheduled_backup_restores_with_stock_tools(15).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg16_scheduled_backup_restores_with_stock_tools() {
    scheduled_backup_restores_with_stock_tools(16).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg17_scheduled_backup_restores_with_stock_tools() {
    scheduled_backup_restores_with_stock_tools(17).await;
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg18_scheduled_backup_restores_with_stock_tools() {
    scheduled_backup_restores_with_stock_tools(18).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_killed_mid_job_leaves_no_backup_and_the_job_runs_again() {
    let scene = scene(17).await;
    let _scheduler = scene.control.run_scheduler(Duration::from_millis(500));
    // First attempt: pg_dump takes its time, and the agent is killed while it runs.
    let slow = common::wrapped_pg_dump(
        scene.dir.path(),
        &scene.server,
        "sleep 30; exec \"$REAL\" \"$@\"",
    );
    let mut agent = run_agent(&scene, &slow);
    let started = Instant::now();
    let job = loop {
        let running: Option<String> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE state = 'running' AND credentials_fetched_at IS NOT NULL",
        )
        .fetch_optional(scene.db.pool())
        .await
        .unwrap();
        if let Some(job) = running {
            break job;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the job never started"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    agent.start_kill().unwrap();
    agent.wait().await.unwrap();
    let finals: Vec<String> = common::files_under(&scene.target)
        .into_iter()
        .filter(|f| f != "README-dbcrate.txt")
        .filter(|f| !f.rsplit('/').next().unwrap_or("").starts_with('.'))
        .collect();
    assert!(finals.is_empty(), "a killed job left {finals:?}");

    // Its lease lapses (as if the time had passed): the job is queued again, and the
    // agent, back with working tools, runs it as attempt 2.
    let later = scene.now
        + dbcrate_control::jobs::LEASE_SECS
        + dbcrate_control::jobs::LEASE_GRACE_SECS
        + 3600;
    assert_eq!(
        dbcrate_control::jobs::expire_leases(&scene.db, later)
            .await
            .unwrap(),
        1
    );
    let mut agent = run_agent(&scene, scene.server.bin_dir());
    let started = Instant::now();
    loop {
        let (state, attempt): (String, i64) =
            sqlx::query_as("SELECT state, attempt FROM jobs WHERE id = $1")
                .bind(&job)
                .fetch_one(scene.db.pool())
                .await
                .unwrap();
        if state == "succeeded" {
            assert_eq!(attempt, 2);
            break;
        }
        assert_ne!(state, "failed");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no retry within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = agent.start_kill();
    let _ = agent.wait().await;
    let key: String = sqlx::query_scalar("SELECT object_key FROM backups WHERE job_id = $1")
        .bind(&job)
        .fetch_one(scene.db.pool())
        .await
        .unwrap();
    assert!(scene.target.join(key).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_longer_than_the_certificate_renews_it_midway_and_reports() {
    // Ten-second certificates (renewed at 8 s) and a job that takes about 15 s: the
    // agent must renew while the job runs and report with the new certificate.
    let scene = scene_with(
        17,
        AgentSettings {
            cert_lifetime_secs: 10,
            poll_interval_secs: 1,
            crl_interval_secs: 60,
            ..AgentSettings::default()
        },
    )
    .await;
    let _scheduler = scene.control.run_scheduler(Duration::from_millis(500));
    let slow = common::wrapped_pg_dump(
        scene.dir.path(),
        &scene.server,
        "sleep 15; exec \"$REAL\" \"$@\"",
    );
    let mut agent = run_agent(&scene, &slow);
    let started = Instant::now();
    loop {
        let done: Option<(String, Option<String>)> = sqlx::query_as(
            "SELECT state, error FROM jobs WHERE state IN ('succeeded', 'failed') LIMIT 1",
        )
        .fetch_optional(scene.db.pool())
        .await
        .unwrap();
        match done {
            Some((state, _)) if state == "succeeded" => break,
            Some((_, error)) => panic!("the job failed: {error:?}"),
            None => {}
        }
        if let Ok(Some(status)) = agent.try_wait() {
            panic!("the agent stopped ({status}) before the job finished");
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no result within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let _ = agent.start_kill();
    let out = agent.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("certificate renewed"), "{log}");
}
