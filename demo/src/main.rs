//! `dbcrate-demo`: the README's first command, the main job on embedded defaults.
//!
//! It starts a throwaway PostgreSQL with sample data and a control plane on embedded
//! defaults (SQLite, self-signed TLS), enrols an agent, registers the database, a
//! directory destination and a schedule, lets `dbcrate-agent run` take the backup job,
//! then restores the recorded object into a fresh server with stock `age` (and the
//! exported recovery key), `zstd` and `pg_restore` only, checks that the contents
//! match, and prints what it did.
//!
//! With `--serve` it then keeps the control plane running, with the dashboard at its
//! URL, and prints the owner's e-mail and one-time password, so that a newcomer can sign
//! in and look at what the demo did; Ctrl-C stops it and removes everything it made.

use dbcrate_control::backups::{databases, destinations, scheduler, schedules};
use dbcrate_control::config::AgentSettings;
use dbcrate_control::db::Db;
use dbcrate_control::envelope::MasterKeys;
use dbcrate_control::{agents, local, orgs, setup};
use dbcrate_core::retention::Rules;
use dbcrate_testkit::{Deps, KitError, PgServer, TempDir, PG_MAJORS};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Instant;

/// The sample schema: a few related tables with a few thousand varied rows.
const SAMPLE: &str = "
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers(id),
    total numeric(10,2) NOT NULL,
    placed timestamptz NOT NULL,
    items jsonb
);
INSERT INTO customers (name, email)
SELECT 'Customer ' || g, 'c' || g || '@example.com' FROM generate_series(1, 1000) g;
INSERT INTO orders (customer_id, total, placed, items)
SELECT 1 + g % 1000, (g % 997) * 1.1, '2026-01-01'::timestamptz + g * interval '1 minute',
       jsonb_build_array(jsonb_build_object('sku', 'S' || g % 50, 'qty', 1 + g % 4))
FROM generate_series(1, 20000) g;
";

/// What must match after the restore.
const FINGERPRINT: &str = "
SELECT (SELECT count(*) FROM customers) || ' customers, ' ||
       (SELECT count(*) FROM orders) || ' orders, digest ' ||
       (SELECT md5(string_agg(o::text, '|' ORDER BY id)) FROM orders o);
";

/// What the command line asks for: whether to keep serving after the demo.
fn serve_flag() -> Result<bool, String> {
    let mut serve = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--serve" => serve = true,
            other => {
                return Err(format!(
                    "unknown argument {other:?}; usage: dbcrate-demo [--serve] (--serve keeps \
                     the control plane and its dashboard running after the demo)"
                ))
            }
        }
    }
    Ok(serve)
}

fn main() -> ExitCode {
    let serve = match serve_flag() {
        Ok(serve) => serve,
        Err(e) => {
            eprintln!("dbcrate-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dbcrate-demo failed: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(serve)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dbcrate-demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn control(e: impl std::fmt::Display) -> KitError {
    KitError::new(format!("control plane: {e}"))
}

/// The steps the README promises, in order; each prints what it does. With `serve`,
/// the control plane then stays up until Ctrl-C.
async fn run(serve: bool) -> Result<(), KitError> {
    let deps = Deps::from_env();
    let major = *PG_MAJORS.last().unwrap_or(&18);
    let started = Instant::now();
    let work = TempDir::new("demo")?;

    let (source, before) = start_source(&deps, major)?;
    let plane = start_control_plane(&work).await?;
    let data = work.path().join("agent");
    let (agent_bin, agent_id) = enrol(&plane, &work, &data).await?;
    let bucket = work.path().join("bucket");
    let database_id = register_and_schedule(&plane, &source, &agent_id, &bucket).await?;
    let object = back_up(&plane, &source, &agent_bin, &data, &bucket, &database_id).await?;
    let key_file = export_recovery_key(&plane, &work).await?;
    restore_and_compare(&deps, major, &key_file, &object, &before)?;

    let chain = dbcrate_control::audit::verify(&plane.db, &plane.org.id)
        .await
        .map_err(control)?;
    step(&format!(
        "done in {:.1} s: enrolled, scheduled, backed up by the agent, restored with stock \
         age, zstd and pg_restore only; audit chain intact ({} rows)",
        started.elapsed().as_secs_f64(),
        chain.map_err(|b| KitError::new(format!("audit chain broken at {}", b.seq)))?
    ));
    if serve {
        serve_dashboard(&plane).await?;
    }
    Ok(())
}

/// How the person at the terminal signs in: the owner's one-time password, shown on
/// purpose and once, as `dbcrate-control init` shows it (the dashboard makes them choose
/// their own at once). Not a log line: it goes to this terminal only.
fn sign_in_instructions(plane: &Plane) -> String {
    format!(
        "    sign in as {OWNER_EMAIL} with the one-time password {} (you choose your own next)",
        plane.one_time_password.expose_secret()
    )
}

/// Keeps the control plane up with its dashboard until Ctrl-C, saying how to sign in.
async fn serve_dashboard(plane: &Plane) -> Result<(), KitError> {
    step("serving the dashboard until Ctrl-C");
    println!("    open {}/ in a browser", plane.local.api_url);
    println!(
        "    its certificate is self-signed: SHA-256 {}",
        plane.local.fingerprint
    );
    println!("{}", sign_in_instructions(plane));
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| KitError::io("waiting for Ctrl-C", e))?;
    step("stopped; the demo's files are removed");
    Ok(())
}

/// A throwaway PostgreSQL `major` with the sample database `shop`, and its fingerprint.
fn start_source(deps: &Deps, major: u32) -> Result<(PgServer, String), KitError> {
    step(&format!(
        "starting a throwaway PostgreSQL {major} with sample data"
    ));
    let source = PgServer::start_with(deps, major)?;
    source.create_database("shop")?;
    source.psql("shop", SAMPLE)?;
    let before = source.psql("shop", FINGERPRINT)?;
    println!("    source: {before}");
    Ok((source, before))
}

/// The control plane the demo runs: its database, keys, organisation and listeners.
struct Plane {
    db: Db,
    keys: Arc<MasterKeys>,
    org: orgs::Org,
    local: local::LocalControlPlane,
    /// When the demo started (Unix seconds), and the same as RFC 3339.
    now: i64,
    stamp: String,
    /// The owner's one-time password from `init`, for `--serve`.
    one_time_password: dbcrate_core::secret::SecretString,
}

/// The demo organisation's owner.
const OWNER_EMAIL: &str = "owner@example.com";

/// A control plane on embedded defaults: SQLite in `work`, a random master key, the
/// organisation Demo, self-signed TLS on loopback.
async fn start_control_plane(work: &TempDir) -> Result<Plane, KitError> {
    step("starting the control plane on embedded defaults (SQLite, self-signed TLS, loopback)");
    let url = dbcrate_testkit::sqlite_url(&work.path().join("control.db"));
    let db = Db::connect(&url).await.map_err(control)?;
    db.migrate().await.map_err(control)?;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut key))
        .map_err(|e| KitError::io("reading /dev/urandom", e))?;
    let keys = Arc::new(
        MasterKeys::parse(&format!(
            "demo:{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, key)
        ))
        .map_err(control)?,
    );
    let now = dbcrate_core::time::unix_now();
    let stamp = dbcrate_core::time::UtcDateTime::from_unix(now).rfc3339();
    dbcrate_control::secrets::audit_key::load(&db, &keys, &stamp)
        .await
        .map_err(control)?;
    let init = setup::init(&db, &keys, "Demo", OWNER_EMAIL, &stamp)
        .await
        .map_err(control)?;
    let settings = AgentSettings {
        poll_interval_secs: 1,
        ..AgentSettings::default()
    };
    let reach = local::loopback_reach(work.path()).map_err(control)?;
    let local = local::start(
        db.clone(),
        keys.clone(),
        &work.path().join("tls"),
        settings,
        reach,
    )
    .await
    .map_err(control)?;
    println!(
        "    organisation {} encrypts to {}",
        init.org.name, init.org.recipient
    );
    println!(
        "    API {} · agents {} · TLS SHA-256 {}",
        local.api_url, local.agent_url, local.fingerprint
    );
    Ok(Plane {
        db,
        keys,
        org: init.org,
        local,
        now,
        stamp,
        one_time_password: init.one_time_password,
    })
}

/// Enrols this host's agent (the `dbcrate-agent` built next to the demo) into the data
/// directory `data` with a one-time token; returns the binary and the agent's id.
async fn enrol(plane: &Plane, work: &TempDir, data: &Path) -> Result<(PathBuf, String), KitError> {
    step("enrolling this host's agent (one-time token, key made here, mutual TLS)");
    let agent_bin = sibling_binary("dbcrate-agent")?;
    let token = agents::create_token(
        &plane.db,
        &plane.org.id,
        "demo host",
        None,
        "user:demo",
        plane.now,
    )
    .await
    .map_err(control)?;
    let token_file = work.path().join("token");
    std::fs::write(&token_file, token.token.expose_secret())
        .map_err(|e| KitError::io("writing the token", e))?;
    let enrolled = Command::new(&agent_bin)
        .arg("enroll")
        .args([
            "--control-url",
            &plane.local.agent_url,
            "--server-fingerprint",
            &plane.local.fingerprint,
        ])
        .arg("--token-file")
        .arg(&token_file)
        .arg("--data-dir")
        .arg(data)
        .env("DBCRATE_LOG", "warn")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| KitError::io("running dbcrate-agent enroll", e))?;
    if !enrolled.status.success() {
        return Err(KitError::new(
            "dbcrate-agent enroll failed (its error is above)",
        ));
    }
    let agent_id = serde_json::from_slice::<serde_json::Value>(&enrolled.stdout)
        .ok()
        .and_then(|v| v["agent_id"].as_str().map(String::from))
        .ok_or_else(|| KitError::new("enroll printed no agent id"))?;
    println!("    agent {agent_id}");
    Ok((agent_bin, agent_id))
}

/// Registers `shop` of `source` for the agent, a directory destination `bucket`
/// (probed) and a daily schedule, and runs that schedule now; returns the database's id.
async fn register_and_schedule(
    plane: &Plane,
    source: &PgServer,
    agent_id: &str,
    bucket: &Path,
) -> Result<String, KitError> {
    step("registering the database, a directory destination (probed) and a schedule");
    let (db, keys, org_id, now) = (&plane.db, &plane.keys, &plane.org.id, plane.now);
    let database = databases::create(
        db,
        keys,
        org_id,
        &databases::NewDatabase {
            name: "shop",
            host: "127.0.0.1",
            port: i64::from(source.port()),
            dbname: "shop",
            username: "postgres",
            tls_mode: "disable",
            password: Some(&dbcrate_core::secret::SecretString::new(
                source.password().to_string(),
            )),
            agent_id,
        },
        "user:demo",
        now,
    )
    .await
    .map_err(control)?;
    std::fs::create_dir_all(bucket)
        .map_err(|e| KitError::io("creating the bucket directory", e))?;
    let dest_settings = serde_json::json!({ "path": bucket });
    let (destination, _) = destinations::create(
        db,
        keys,
        &plane.local.state.reach,
        org_id,
        &destinations::NewDestination {
            name: "local",
            kind: "directory",
            settings: &dest_settings,
            credentials: None,
        },
        "user:demo",
        now,
    )
    .await
    .map_err(control)?
    .map_err(|report| KitError::new(format!("the destination probe failed: {report:?}")))?;
    let schedule = schedules::create(
        db,
        org_id,
        &schedules::NewSchedule {
            database_id: &database.id,
            destination_id: &destination.id,
            cron: "0 3 * * *",
            time_zone: "UTC",
            retention: Rules {
                keep_daily: 7,
                keep_weekly: 4,
                keep_monthly: 12,
                ..Rules::default()
            },
        },
        "user:demo",
        now,
    )
    .await
    .map_err(control)?;
    println!(
        "    schedule: daily at 03:00 UTC, keeping 7 daily, 4 weekly, 12 monthly; running it now"
    );
    scheduler::run_now(db, org_id, &schedule.id, "user:demo", now)
        .await
        .map_err(control)?;
    Ok(database.id)
}

/// Runs `dbcrate-agent run` until the control plane records the backup of
/// `database_id` (or its job fails, or two minutes pass); returns the object's path.
async fn back_up(
    plane: &Plane,
    source: &PgServer,
    agent_bin: &Path,
    data: &Path,
    bucket: &Path,
    database_id: &str,
) -> Result<PathBuf, KitError> {
    step("dbcrate-agent run takes the job: credentials once, pg_dump -Fc | zstd | age, streamed");
    let path = format!(
        "{}:{}",
        source.bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The agent writes directory destinations only under roots its operator gives it.
    let mut agent = Command::new(agent_bin)
        .arg("run")
        .arg("--data-dir")
        .arg(data)
        .arg("--directory-root")
        .arg(bucket)
        .env("PATH", path)
        .env("DBCRATE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| KitError::io("starting dbcrate-agent run", e))?;
    let backup = wait_for_backup(&plane.db, database_id).await;
    let _ = agent.kill();
    let _ = agent.wait();
    let (object_key, size, sha256) = backup?;
    println!("    recorded: {object_key} ({size} bytes, sha256 {sha256})");
    println!("    (the demo's directory is removed on exit; DBCRATE_KEEP_TEST_DIRS=1 keeps it)");
    Ok(bucket.join(&object_key))
}

/// The recorded backup of `database_id` (object key, size, SHA-256), polled every
/// 300 ms; an error when a job failed or after two minutes.
async fn wait_for_backup(db: &Db, database_id: &str) -> Result<(String, i64, String), KitError> {
    let waited = Instant::now();
    loop {
        let row: Option<(String, i64, String)> =
            sqlx::query_as("SELECT object_key, size, sha256 FROM backups WHERE database_id = $1")
                .bind(database_id)
                .fetch_optional(db.pool())
                .await
                .map_err(control)?;
        if let Some(row) = row {
            return Ok(row);
        }
        let failed: Option<String> =
            sqlx::query_scalar("SELECT error FROM jobs WHERE error IS NOT NULL")
                .fetch_optional(db.pool())
                .await
                .map_err(control)?;
        if let Some(error) = failed {
            return Err(KitError::new(format!("the backup job failed: {error}")));
        }
        if waited.elapsed().as_secs() > 120 {
            return Err(KitError::new("no backup within two minutes"));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// Exports the organisation's recovery key to `work/recovery.key`.
async fn export_recovery_key(plane: &Plane, work: &TempDir) -> Result<PathBuf, KitError> {
    step("exporting the organisation's recovery key (what the owner keeps offline)");
    let recovery = orgs::export_recovery_key(
        &plane.db,
        &plane.keys,
        &plane.org.id,
        "user:demo",
        &plane.stamp,
    )
    .await
    .map_err(control)?;
    let key_file = work.path().join("recovery.key");
    std::fs::write(&key_file, recovery.expose_secret())
        .map_err(|e| KitError::io("writing the key", e))?;
    Ok(key_file)
}

/// Restores `object` into a fresh PostgreSQL `major` with stock tools only and checks
/// that its contents match the source's fingerprint `before`.
fn restore_and_compare(
    deps: &Deps,
    major: u32,
    key_file: &Path,
    object: &Path,
    before: &str,
) -> Result<(), KitError> {
    step(&format!(
        "restoring into a fresh PostgreSQL {major}: age -d -i recovery.key | zstd -d | pg_restore"
    ));
    let target = PgServer::start_with(deps, major)?;
    target.create_database("shop_restored")?;
    restore(deps, &target, key_file, object)?;
    let after = target.psql("shop_restored", FINGERPRINT)?;
    println!("    restored: {after}");
    if before != after {
        return Err(KitError::new(format!(
            "restored contents differ: source `{before}`, restored `{after}`"
        )));
    }
    Ok(())
}

fn step(what: &str) {
    println!("==> {what}");
}

/// A binary built next to this one (`cargo build` puts them in the same directory).
fn sibling_binary(name: &str) -> Result<PathBuf, KitError> {
    let exe = std::env::current_exe().map_err(|e| KitError::io("locating dbcrate-demo", e))?;
    let path = exe.with_file_name(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(KitError::new(format!(
            "{} is missing: build it with `cargo build -p dbcrate-agent` (scripts/demo does)",
            path.display()
        )))
    }
}

/// Spawns one stage of a pipeline.
fn spawn(what: &str, cmd: &mut Command) -> Result<Child, KitError> {
    cmd.stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| KitError::io(format!("starting {what}"), e))
}

/// Waits for every stage and fails if any exited non-zero: a truncated stream must not
/// pass for a backup.
fn wait_all(stages: Vec<(&str, Child)>) -> Result<(), KitError> {
    for (what, mut child) in stages {
        let status = child
            .wait()
            .map_err(|e| KitError::io(format!("waiting for {what}"), e))?;
        if !status.success() {
            return Err(KitError::new(format!("{what} exited with {status}")));
        }
    }
    Ok(())
}

fn restore(deps: &Deps, target: &PgServer, key: &Path, object: &Path) -> Result<(), KitError> {
    let mut age = spawn(
        "age -d",
        Command::new(deps.tool("age")?)
            .arg("-d")
            .arg("-i")
            .arg(key)
            .arg(object)
            .stdout(Stdio::piped()),
    )?;
    let mut zstd = spawn(
        "zstd -d",
        Command::new(deps.tool("zstd")?)
            .args(["-q", "-d", "-c"])
            .stdin(age.stdout.take().map_or(Stdio::null(), Stdio::from))
            .stdout(Stdio::piped()),
    )?;
    let mut pg_restore = target.client_command("pg_restore");
    pg_restore
        .args(["--exit-on-error", "--single-transaction", "--no-owner"])
        .arg("--dbname=shop_restored")
        .stdin(zstd.stdout.take().map_or(Stdio::null(), Stdio::from));
    let restore = spawn("pg_restore", &mut pg_restore)?;
    wait_all(vec![
        ("age -d", age),
        ("zstd -d", zstd),
        ("pg_restore", restore),
    ])
}
