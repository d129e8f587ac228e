//! Without --pg-bin-dir the agent picks, from PATH, the pg_dump whose major matches the
//! server, else the oldest newer one, and refuses an older one.

mod common;

use common::*;
use dbcrate_testkit::{Deps, PgServer};

fn backup_with_path(source: &PgServer, majors_on_path: &[u32]) -> std::process::Output {
    let deps = Deps::from_env();
    let dir = scratch("path-choice");
    let (_, recipient) = org_key(dir.path());
    let path: Vec<String> = majors_on_path
        .iter()
        .map(|m| deps.pg_bin_dir(*m).unwrap().display().to_string())
        .collect();
    // Nothing else on PATH: the system may have a pg_dump of its own in /usr/bin.
    agent()
        .arg("backup")
        .args(["--database-url", &source.url("app")])
        .args(["--recipient", &recipient])
        .arg("--destination")
        .arg(file_url(&dir.path().join("b")))
        .env("PATH", path.join(":"))
        .output()
        .unwrap()
}

fn dumped_with(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", stderr_of(out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["pg_dump_version"].as_str().unwrap().to_string()
}

#[test]
fn the_matching_major_is_preferred_then_a_newer_one_and_an_older_one_is_refused() {
    let source = PgServer::start(15).unwrap();
    source.create_database("app").unwrap();

    let version = dumped_with(&backup_with_path(&source, &[13, 17, 15, 18]));
    assert!(version.contains(" 15."), "{version}");

    let version = dumped_with(&backup_with_path(&source, &[13, 18, 17]));
    assert!(version.contains(" 17."), "{version}");

    let out = backup_with_path(&source, &[13, 14]);
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("PostgreSQL 14 but the server is PostgreSQL 15"),
        "{err}"
    );

    let out = backup_with_path(&source, &[]);
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("no pg_dump on PATH"),
        "{}",
        stderr_of(&out)
    );
}
