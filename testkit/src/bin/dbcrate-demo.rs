//! `dbcrate-demo`: the README's first command, the main job on embedded defaults.
//!
//! It starts a throwaway PostgreSQL with sample data, backs it up in dbcrate's backup
//! format into a local "bucket" directory, restores it into a fresh server with stock
//! `age`, `zstd` and `pg_restore` only, checks that the contents match, and prints what
//! it did. Parts of the product that do not exist yet are named, not faked: until the
//! agent's own pipeline lands, the backup step runs the same format with stock tools.

use dbcrate_testkit::{Deps, KitError, PgServer, TempDir, PG_MAJORS};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

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
    let key_file = work.path().join("org.key");
    let keygen = Command::new(deps.tool("age-keygen")?)
        .arg("-o")
        .arg(&key_file)
        .output()
        .map_err(|e| KitError::io("running age-keygen", e))?;
    let recipient = String::from_utf8_lossy(&keygen.stderr)
        .split_whitespace()
        .find(|w| w.starts_with("age1"))
        .map(str::to_string)
        .ok_or_else(|| KitError::new("age-keygen printed no public key"))?;
    println!("    recipient: {recipient}");

    step("backing up: pg_dump --format=custom --compress=0 | zstd | age -r <recipient>");
    println!(
        "    NOT YET: the agent's own streaming pipeline (dbcrate-agent backup) is the next \
         issue; this demo runs the same backup format with stock tools in its place."
    );
    let object = bucket.join(object_key("demo", "shop", "demo"));
    std::fs::create_dir_all(object.parent().unwrap_or(&bucket))
        .map_err(|e| KitError::io("creating the demo bucket directory", e))?;
    backup(&deps, &source, &recipient, &object)?;
    let size = std::fs::metadata(&object)
        .map_err(|e| KitError::io("reading the backup's size", e))?
        .len();
    println!(
        "    wrote {} ({size} bytes of age ciphertext)",
        object.display()
    );
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
        "    NOT YET: the control plane (schedules, envelope-encrypted secrets, audit), agent \
         enrolment over mutual TLS, the signed pg_dump registry, and S3/SFTP destinations \
         arrive with their issues."
    );
    Ok(())
}

fn step(what: &str) {
    println!("==> {what}");
}

/// `<prefix>/<database>/<YYYY>/<MM>/<DD>/<YYYYMMDDTHHMMSSZ>-<job>.pgdump.zst.age`, the
/// object key of DESIGN.md.
fn object_key(prefix: &str, database: &str, job: &str) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let (hh, mm, ss) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    PathBuf::from(format!(
        "{prefix}/{database}/{y:04}/{m:02}/{d:02}/{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}Z-{job}.pgdump.zst.age"
    ))
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after Howard
/// Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
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

fn backup(deps: &Deps, source: &PgServer, recipient: &str, object: &Path) -> Result<(), KitError> {
    let out = std::fs::File::create(object).map_err(|e| KitError::io("creating the backup", e))?;
    let mut pg_dump = source.client_command("pg_dump");
    pg_dump.args(["--format=custom", "--compress=0", "--dbname=shop"]);
    let mut dump = spawn("pg_dump", pg_dump.stdout(Stdio::piped()))?;
    let mut zstd = spawn(
        "zstd",
        Command::new(deps.tool("zstd")?)
            .args(["-q", "-c", "-3"])
            .stdin(dump.stdout.take().map_or(Stdio::null(), Stdio::from))
            .stdout(Stdio::piped()),
    )?;
    let age = spawn(
        "age",
        Command::new(deps.tool("age")?)
            .arg("-r")
            .arg(recipient)
            .stdin(zstd.stdout.take().map_or(Stdio::null(), Stdio::from))
            .stdout(out),
    )?;
    wait_all(vec![("pg_dump", dump), ("zstd", zstd), ("age", age)])
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

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_358), (2023, 1, 1));
        assert_eq!(civil_from_days(19_417), (2023, 3, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
