//! The opt-in parallel restore (`restore --jobs N --staging-dir DIR`): it restores the
//! same database as the single stream, stages the dump only in a private directory
//! under the one named, and leaves nothing there on any way out.

mod common;

use common::*;
use dbcrate_testkit::PgServer;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const MAJOR: u32 = 17;

/// A parallel restore of `object` into a new database `db`.
fn parallel_restore(
    target: &PgServer,
    object: &str,
    identity: &Path,
    db: &str,
    staging: &Path,
) -> Command {
    parallel_restore_with(target, target.bin_dir(), (object, identity), db, staging)
}

/// The same with the pg_restore in `bin`.
fn parallel_restore_with(
    target: &PgServer,
    bin: &Path,
    (object, identity): (&str, &Path),
    db: &str,
    staging: &Path,
) -> Command {
    let mut cmd = restore_cmd_with(target, bin, object, db);
    cmd.arg("--identity")
        .arg(identity)
        .args(["--jobs", "2"])
        .arg("--staging-dir")
        .arg(staging);
    cmd
}

/// A backup of a varied database (with indexes, constraints and 4 MiB of noise) to
/// `file://`; the object's URL.
fn backed_up(source: &PgServer, dir: &Path, recipient: &str) -> String {
    source.psql("app", &varied_schema(2000)).unwrap();
    noise_table(source, "app", 4);
    let report = backup(
        source,
        "app",
        recipient,
        &file_url(&dir.join("bucket")),
        |_| {},
    );
    report["object"].as_str().unwrap().to_string()
}

fn staging_dir(dir: &Path) -> PathBuf {
    let staging = dir.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    staging
}

#[test]
fn a_parallel_restore_equals_the_source_and_leaves_nothing_staged() {
    let (source, dir, identity, recipient) = start("parallel", MAJOR);
    let target = PgServer::start(MAJOR).unwrap();
    let object = backed_up(&source, dir.path(), &recipient);
    let staging = staging_dir(dir.path());

    let out = output_ok(
        "parallel restore",
        &mut parallel_restore(&target, &object, &identity, "restored", &staging),
    );
    assert_same_database(&source, "app", &target, "restored");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["staged"]["jobs"], 2, "{report}");
    assert!(report["staged"]["seconds_pg_restore"].as_f64().unwrap() > 0.0);
    assert_eq!(files_under(&staging), Vec::<String>::new());

    // Into a database that has something, it is refused before anything is staged.
    target.create_database("busy").unwrap();
    target.psql("busy", "CREATE TABLE mine (id int)").unwrap();
    let mut cmd = agent();
    cmd.arg("restore")
        .args(["--source", &object, "--database-url", &target.url("busy")])
        .arg("--pg-bin-dir")
        .arg(target.bin_dir())
        .arg("--identity")
        .arg(&identity)
        .args(["--jobs", "2", "--staging-dir"])
        .arg(&staging);
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert!(stderr.contains("only into an empty database"), "{stderr}");
    assert_eq!(user_tables(&target, "busy"), 1);
    assert_eq!(files_under(&staging), Vec::<String>::new());

    // --jobs without --staging-dir is refused by the flags.
    let mut cmd = restore_cmd(&target, &object, "no_staging");
    let out = cmd
        .arg("--identity")
        .arg(&identity)
        .args(["--jobs", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("--staging-dir"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_damaged_backup_is_refused_before_pg_restore_and_nothing_stays_staged() {
    let (source, dir, identity, recipient) = start("parallel-damaged", MAJOR);
    let target = PgServer::start(MAJOR).unwrap();
    let object = backed_up(&source, dir.path(), &recipient);
    let path = PathBuf::from(object.strip_prefix("file://").unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let staging = staging_dir(dir.path());

    let out = parallel_restore(&target, &object, &identity, "restored", &staging)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert!(stderr.contains("nothing was restored"), "{stderr}");
    assert_eq!(user_tables(&target, "restored"), 0);
    assert_eq!(files_under(&staging), Vec::<String>::new());
}

/// pg_restore sees a staged file that only the agent's user can read, in a directory
/// only it can enter; when pg_restore fails the error says what is left, and the
/// staging directory is removed all the same.
#[test]
fn the_staged_dump_is_private_and_removed_when_pg_restore_fails() {
    let (source, dir, identity, recipient) = start("parallel-private", MAJOR);
    let target = PgServer::start(MAJOR).unwrap();
    let object = backed_up(&source, dir.path(), &recipient);
    let staging = staging_dir(dir.path());
    let seen = dir.path().join("seen");
    let bin = dir.path().join("failing-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        "#!/bin/bash\nif [ \"$1\" = --version ]; then exec {real:?} --version; fi\n\
         dump=\"${{@: -1}}\"\nstat -c '%a %s' \"$(dirname \"$dump\")\" \"$dump\" > {seen:?}\n\
         echo 'pg_restore: error: planted failure' >&2\nexit 1\n",
        real = target.pg_restore().display().to_string(),
        seen = seen.display().to_string(),
    );
    std::fs::write(bin.join("pg_restore"), script).unwrap();
    std::fs::set_permissions(
        bin.join("pg_restore"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();

    let out = parallel_restore_with(&target, &bin, (&object, &identity), "restored", &staging)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert!(stderr.contains("planted failure"), "{stderr}");
    assert!(stderr.contains("not one transaction"), "{stderr}");
    let seen = std::fs::read_to_string(&seen).unwrap();
    let lines: Vec<&str> = seen.lines().collect();
    assert!(lines[0].starts_with("700 "), "{seen}");
    assert!(lines[1].starts_with("600 "), "{seen}");
    let staged: u64 = lines[1].split(' ').nth(1).unwrap().parse().unwrap();
    assert!(staged > 4 << 20, "the whole dump was staged: {seen}");
    assert_eq!(files_under(&staging), Vec::<String>::new());
}

/// A signal while the dump is being staged stops the restore and removes the staging
/// directory; a staging directory left by a killed agent is removed by the next run.
#[test]
fn a_signal_while_staging_leaves_nothing_and_a_killed_runs_leftovers_go_next_time() {
    let (source, dir, identity, recipient) = start("parallel-signal", MAJOR);
    let target = PgServer::start(MAJOR).unwrap();
    source.psql("app", &varied_schema(100)).unwrap();
    noise_table(&source, "app", 160);
    let report = backup(
        &source,
        "app",
        &recipient,
        &file_url(&dir.path().join("bucket")),
        |_| {},
    );
    let object = report["object"].as_str().unwrap().to_string();
    let staging = staging_dir(dir.path());

    let child = parallel_restore(&target, &object, &identity, "signalled", &staging)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while files_under(&staging).is_empty() {
        assert!(Instant::now() < deadline, "nothing was ever staged");
        std::thread::sleep(Duration::from_millis(5));
    }
    // SIGTERM, as a service manager stops the agent.
    let killed = Command::new("kill")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("interrupted"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(files_under(&staging), Vec::<String>::new());
    assert_eq!(user_tables(&target, "signalled"), 0);

    // What a SIGKILLed agent leaves: its pid no longer runs.
    let mut child = parallel_restore(&target, &object, &identity, "killed", &staging)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    while files_under(&staging).is_empty() {
        assert!(
            Instant::now() < deadline + Duration::from_secs(60),
            "nothing was ever staged"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        std::fs::read_dir(&staging).unwrap().count(),
        1,
        "the killed run's leftover"
    );
    output_ok(
        "parallel restore after a killed one",
        &mut parallel_restore(&target, &object, &identity, "after", &staging),
    );
    assert_same_database(&source, "app", &target, "after");
    assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
}
