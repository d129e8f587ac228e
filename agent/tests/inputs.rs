//! Bad input gets a clear one-line error and a non-zero exit — never a panic or a hang —
//! and the database password never reaches a spawned command line or a log line.

mod common;

use common::*;
use dbcrate_testkit::{PgServer, S3Server};
use std::process::Output;
use std::time::{Duration, Instant};

const MAJOR: u32 = 15;

fn run_backup(
    source: &PgServer,
    url: &str,
    recipient: &str,
    destination: &str,
    bin: &std::path::Path,
    extra: impl FnOnce(&mut std::process::Command),
) -> Output {
    let mut cmd = agent();
    cmd.arg("backup")
        .args(["--database-url", url])
        .args(["--recipient", recipient])
        .args(["--destination", destination])
        .arg("--pg-bin-dir")
        .arg(bin);
    extra(&mut cmd);
    let _ = source;
    let started = Instant::now();
    let out = cmd.output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    out
}

fn assert_clear_failure(out: &Output, expect: &str) {
    let err = stderr_of(out);
    assert!(
        !out.status.success(),
        "succeeded; expected failure with {expect:?}"
    );
    assert!(
        out.stdout.is_empty(),
        "stdout on failure: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!err.contains("panicked"), "panic: {err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("dbcrate-agent: error: "),
        "last line is not the error: {err}"
    );
    assert!(last.contains(expect), "expected {expect:?} in: {last}");
}

#[test]
fn bad_inputs_are_refused_clearly() {
    let (source, dir, identity, recipient) = start("inputs", MAJOR);
    source
        .psql("app", "CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
        .unwrap();
    let dest = file_url(&dir.path().join("bucket"));
    let bin = source.bin_dir().clone();
    let url = source.url("app");

    let out = run_backup(&source, &url, "age1notakey", &dest, &bin, |_| {});
    assert_clear_failure(&out, "--recipient #1: not an age X25519 public key");
    assert_eq!(out.status.code(), Some(2));

    let secret = std::fs::read_to_string(&identity).unwrap();
    let secret = secret
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap();
    let out = run_backup(&source, &url, secret, &dest, &bin, |_| {});
    assert_clear_failure(&out, "this is an age SECRET key");
    assert!(
        !stderr_of(&out).contains(secret),
        "the secret key was echoed"
    );

    let out = run_backup(&source, &url, &recipient, "ftp://host/x", &bin, |_| {});
    assert_clear_failure(&out, "--destination: unknown scheme");

    let wrong_pw = url.replace(source.password(), "WrongPassw0rd");
    let out = run_backup(&source, &wrong_pw, &recipient, &dest, &bin, |_| {});
    assert_clear_failure(&out, "password authentication failed");
    assert!(
        !stderr_of(&out).contains("WrongPassw0rd"),
        "password in the log"
    );

    let closed = url.replace(&format!(":{}/", source.port()), ":1/");
    let out = run_backup(&source, &closed, &recipient, &dest, &bin, |_| {});
    assert_clear_failure(&out, "connecting to 127.0.0.1:1");

    let empty = dir.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run_backup(&source, &url, &recipient, &dest, &empty, |_| {});
    assert_clear_failure(&out, "cannot run");

    let older = dbcrate_testkit::Deps::from_env().pg_bin_dir(13).unwrap();
    let out = run_backup(&source, &url, &recipient, &dest, &older, |_| {});
    assert_clear_failure(&out, "an older client cannot handle a newer server");

    let out = run_backup(&source, &url, &recipient, "s3://bucket/x", &bin, |c| {
        c.args(["--s3-endpoint", "http://127.0.0.1:1", "--s3-path-style"])
            .env("AWS_ACCESS_KEY_ID", "GK0000")
            .env("AWS_SECRET_ACCESS_KEY", "0000");
    });
    assert_clear_failure(&out, "cannot start the upload to s3://bucket/");

    let out = run_backup(&source, &url, &recipient, "s3://bucket/x", &bin, |_| {});
    assert_clear_failure(&out, "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");

    assert_eq!(
        files_under(&dir.path().join("bucket")),
        Vec::<String>::new()
    );
}

#[test]
fn full_storage_fails_and_stores_nothing() {
    let (source, _dir, _, recipient) = start("full", MAJOR);
    let s3 = S3Server::start().unwrap();
    s3.admin(&["bucket", "set-quotas", "--max-size", "2MiB", s3.bucket()])
        .unwrap();
    noise_table(&source, "app", 24);
    let out = run_backup(
        &source,
        &source.url("app"),
        &recipient,
        &format!("s3://{}/x", s3.bucket()),
        source.bin_dir(),
        |c| s3.agent_flags(c),
    );
    assert_clear_failure(&out, "nothing was stored");
    assert_eq!(curl_list(&s3), Vec::<String>::new());
}

#[test]
fn the_password_is_on_no_command_line_and_in_no_log() {
    let (source, dir, _, recipient) = start("password", MAJOR);
    let argv_log = dir.path().join("argv");
    let env_log = dir.path().join("env");
    let bin = wrapped_pg_dump(
        dir.path(),
        &source,
        &format!(
            "printf '%s\\n' \"$0\" \"$@\" > {argv:?}\n[ -n \"$PGPASSWORD\" ] && echo set > {env:?}\nexec \"$REAL\" \"$@\"",
            argv = argv_log.display().to_string(),
            env = env_log.display().to_string()
        ),
    );
    let out = run_backup(
        &source,
        &source.url("app"),
        &recipient,
        &file_url(&dir.path().join("b")),
        &bin,
        |c| {
            c.env("DBCRATE_LOG", "debug");
        },
    );
    assert_succeeded("backup", &out);
    let argv = std::fs::read_to_string(&argv_log).unwrap();
    assert!(
        argv.contains("--dbname=postgresql://postgres@127.0.0.1"),
        "{argv}"
    );
    assert!(
        !argv.contains(source.password()),
        "password on pg_dump's command line: {argv}"
    );
    assert_eq!(
        std::fs::read_to_string(&env_log).unwrap().trim(),
        "set",
        "PGPASSWORD not passed"
    );
    assert!(
        !stderr_of(&out).contains(source.password()),
        "password in the log"
    );
}
