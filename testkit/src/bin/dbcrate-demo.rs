//! `dbcrate-demo`: the README's first command, the main job on embedded defaults.
//!
//! It starts a throwaway PostgreSQL with sample data, backs it up with `dbcrate-agent
//! backup` into a local "bucket" directory, restores it into a fresh server with stock
//! `age`, `zstd` and `pg_restore` only, checks that the contents match, and prints what
//! it did. Parts of the product that do not exist yet are named, not faked.

use dbcrate_testkit::{Deps, KitError, PgServer, TempDir, PG_MAJORS};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
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

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dbcrate-demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), KitError> {
    let deps = Deps::from_env();
    let major = *PG_MAJORS.last().unwrap_or(&18);
    let started = Instant::now();
    let work = TempDir::new("demo")?;
    let bucket = work.path().join("bucket");

    step(&format!(
        "starting a throwaway PostgreSQL {major} with sample data"
    ));
    let source = PgServer::start_with(&deps, major)?;
    source.create_database("shop")?;
    source.psql("shop", SAMPLE)?;
    let before = source.psql("shop", FINGERPRINT)?;
    println!("    source: {before}");

    step("creating the organisation's age key pair (stock age-keygen)");
    let (key_file, recipient) = dbcrate_testkit::age_keypair(&deps, work.path())?;
    println!("    recipient: {recipient}");

    step("backing up with dbcrate-agent backup (pg_dump -Fc | zstd | age, streamed)");
    let agent = sibling_binary("dbcrate-agent")?;
    let report = Command::new(&agent)
        .arg("backup")
        .args(["--database-url", &source.url("shop")])
        .args(["--recipient", &recipient])
        .arg("--destination")
        .arg(format!("file://{}", bucket.join("backups").display()))
        .arg("--pg-bin-dir")
        .arg(source.bin_dir())
        .env("DBCRATE_LOG", "warn")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| KitError::io(format!("running {}", agent.display()), e))?;
    if !report.status.success() {
        return Err(KitError::new(
            "dbcrate-agent backup failed (its error is above)",
        ));
    }
    let report = String::from_utf8_lossy(&report.stdout).trim().to_string();
    println!("    agent report: {report}");
    let object = json_string_field(&report, "object")
        .and_then(|url| url.strip_prefix("file://").map(PathBuf::from))
        .ok_or_else(|| KitError::new(format!("no file:// object in the report: {report}")))?;
    println!("    (the demo's directory is removed on exit; DBCRATE_KEEP_TEST_DIRS=1 keeps it)");

    step(&format!(
        "restoring into a fresh PostgreSQL {major}: age -d -i org.key | zstd -d | pg_restore"
    ));
    let target = PgServer::start_with(&deps, major)?;
    target.create_database("shop_restored")?;
    restore(&deps, &target, &key_file, &object)?;
    let after = target.psql("shop_restored", FINGERPRINT)?;
    println!("    restored: {after}");
    if before != after {
        return Err(KitError::new(format!(
            "restored contents differ: source `{before}`, restored `{after}`"
        )));
    }

    step(&format!(
        "done in {:.1} s: the restore used only stock age, zstd and pg_restore",
        started.elapsed().as_secs_f64()
    ));
    println!(
        "    NOT YET: schedules and jobs that drive agents from the control plane (its API, \
         accounts, audit log and agent enrolment over mutual TLS exist: \
         docs/control-plane.md); dbcrate-agent already writes to S3 and SFTP and fetches \
         signed pg_dump builds (--registry-url; see dbcrate-signer and dbcrate-registry \
         --help)."
    );
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

/// The string value of `"field":"…"` in a one-line JSON object without escapes in it.
fn json_string_field(json: &str, field: &str) -> Option<String> {
    let start = json.find(&format!("\"{field}\":\""))? + field.len() + 4;
    let end = json[start..].find('"')? + start;
    Some(json[start..end].to_string())
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
