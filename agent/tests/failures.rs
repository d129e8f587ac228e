//! Every way a backup can fail leaves nothing under a final name and says why; every
//! way a restore can fail leaves the target database unchanged and says why.

mod common;

use common::*;
use dbcrate_testkit::{PgServer, S3Server};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MAJOR: u32 = 16;

fn backup_cmd(
    source: &PgServer,
    recipient: &str,
    destination: &str,
    bin: &std::path::Path,
) -> Command {
    let mut cmd = agent();
    cmd.arg("backup")
        .args(["--database-url", &source.url("app")])
        .args(["--recipient", recipient])
        .args(["--destination", destination])
        .arg("--pg-bin-dir")
        .arg(bin);
    cmd
}

#[test]
fn pg_dump_failing_midway_stores_nothing() {
    let (source, dir, _, recipient) = start("pgdump-fails", MAJOR);
    let s3 = S3Server::start().unwrap();
    noise_table(&source, "app", 4);
    let bin = wrapped_pg_dump(
        dir.path(),
        &source,
        "\"$REAL\" \"$@\" | head -c 300000\necho 'pg_dump: error: simulated failure midway' >&2\nexit 1",
    );
    // pg_dumpall works: the globals, saved while the dump runs, must not be left either.
    wrapped_pg_dumpall(&bin, &source, "");
    let bucket = dir.path().join("bucket");
    for destination in [file_url(&bucket), format!("s3://{}/x", s3.bucket())] {
        let mut cmd = backup_cmd(&source, &recipient, &destination, &bin);
        s3.agent_flags(&mut cmd);
        let out = cmd.output().unwrap();
        assert!(
            !out.status.success(),
            "{destination}: backup claimed success"
        );
        assert!(out.stdout.is_empty(), "no JSON on failure");
        let err = stderr_of(&out);
        assert!(
            err.contains("simulated failure midway"),
            "{destination}: {err}"
        );
        assert!(err.contains("nothing was stored"), "{destination}: {err}");
    }
    assert_eq!(
        files_under(&bucket),
        Vec::<String>::new(),
        "file destination not clean"
    );
    assert_eq!(
        curl_list(&s3),
        Vec::<String>::new(),
        "S3 destination not clean"
    );
}

/// A pg_dump that stalls after 24 MB for `secs` seconds, so the agent is mid-upload.
/// (pg_dump writes bytea as hex, which zstd halves: 24 MB of dump make more than one
/// 8 MiB part.)
fn stalling_pg_dump(dir: &std::path::Path, source: &PgServer, secs: u32) -> std::path::PathBuf {
    wrapped_pg_dump(
        dir,
        source,
        &format!("\"$REAL\" \"$@\" | {{ head -c 24000000; sleep {secs}; cat; }}"),
    )
}

/// Waits until `cond` holds, failing the test after 60 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_midway_leaves_no_final_object() {
    let (source, dir, _, recipient) = start("sigkill", MAJOR);
    let s3 = S3Server::start().unwrap();
    noise_table(&source, "app", 16);
    let bin = stalling_pg_dump(dir.path(), &source, 30);
    let bucket = dir.path().join("bucket");

    // File: kill once the temp file holds data.
    let mut child = backup_cmd(&source, &recipient, &file_url(&bucket), &bin)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the temp file to fill", || {
        files_under(&bucket).iter().any(|f| f.contains(".partial-"))
            && common::bytes_under(&bucket) > 1_000_000
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "agent finished before it could be killed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let left = files_under(&bucket);
    assert!(
        left.iter().all(|f| !f.ends_with(".pgdump.zst.age")),
        "a final name appeared: {left:?}"
    );

    // S3: kill once the first part is uploaded (Garage has stored data).
    let log = dir.path().join("agent-s3.log");
    let mut child = s3_backup_mid_upload(&source, &recipient, &s3, &bin, &log);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        curl_list(&s3),
        Vec::<String>::new(),
        "an object appeared after SIGKILL"
    );
    // The killed agent could not abort: its upload is still open (invisible; the
    // AbortIncompleteMultipartUpload lifecycle rule removes it). This also proves that
    // the SIGTERM test's "no open upload" check can see one.
    assert!(
        curl_get_text(&s3, "?uploads=").contains("<Upload>"),
        "expected the killed agent's multipart upload to be listed"
    );
}

/// Starts a backup of `app` into `s3` through `bin`'s stalling pg_dump, and returns the
/// agent once Garage holds a whole part while the agent still runs. Its stderr goes to
/// `log`.
fn s3_backup_mid_upload(
    source: &PgServer,
    recipient: &str,
    s3: &S3Server,
    bin: &std::path::Path,
    log: &std::path::Path,
) -> std::process::Child {
    let mut cmd = backup_cmd(source, recipient, &format!("s3://{}/x", s3.bucket()), bin);
    s3.agent_flags(&mut cmd);
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    let data = s3.dir().join("data");
    wait_for("a part to reach Garage", || {
        let exited = child.try_wait().unwrap();
        assert!(
            exited.is_none(),
            "the agent stopped before it could be interrupted: {}",
            std::fs::read_to_string(log).unwrap()
        );
        common::bytes_under(&data) > 4_000_000
    });
    child
}

#[test]
fn storage_stopping_midway_fails_and_stores_nothing() {
    let (source, dir, _, recipient) = start("storage-stops", MAJOR);
    let mut s3 = S3Server::start().unwrap();
    noise_table(&source, "app", 16);
    let bin = stalling_pg_dump(dir.path(), &source, 3);
    let log = dir.path().join("agent-s3.log");
    let mut child = s3_backup_mid_upload(&source, &recipient, &s3, &bin, &log);
    s3.kill();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "backup claimed success with storage gone"
    );
    let err = std::fs::read_to_string(&log).unwrap();
    assert!(
        err.contains("uploading part") || err.contains("S3"),
        "{err}"
    );
    s3.restart().unwrap();
    assert_eq!(curl_list(&s3), Vec::<String>::new(), "an object appeared");
}

/// A good backup in a file, and what restoring it needs.
struct Fixture {
    source: PgServer,
    target: PgServer,
    dir: dbcrate_testkit::TempDir,
    identity: std::path::PathBuf,
    object: std::path::PathBuf,
    sha256: String,
}

fn fixture() -> Fixture {
    let (source, dir, identity, recipient) = start("restore-failures", MAJOR);
    let target = PgServer::start(MAJOR).unwrap();
    source.psql("app", &varied_schema(2000)).unwrap();
    noise_table(&source, "app", 3);
    let bucket = dir.path().join("bucket");
    let report = backup(&source, "app", &recipient, &file_url(&bucket), |_| {});
    let object = report["object"]
        .as_str()
        .unwrap()
        .strip_prefix("file://")
        .unwrap()
        .into();
    let sha256 = report["sha256"].as_str().unwrap().to_string();
    Fixture {
        source,
        target,
        dir,
        identity,
        object,
        sha256,
    }
}

impl Fixture {
    /// Runs `dbcrate-agent restore` of `object` into a new database `db`.
    fn restore(
        &self,
        object: &std::path::Path,
        db: &str,
        key: (&str, &std::path::Path),
        sha: Option<&str>,
    ) -> std::process::Output {
        let source = file_url(object);
        let mut cmd = restore_cmd(&self.target, &source, db);
        cmd.arg(key.0).arg(key.1);
        if let Some(sha) = sha {
            cmd.args(["--expect-sha256", sha]);
        }
        cmd.output().unwrap()
    }

    fn variant(&self, name: &str, change: impl FnOnce(&mut Vec<u8>)) -> std::path::PathBuf {
        let mut bytes = std::fs::read(&self.object).unwrap();
        change(&mut bytes);
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn assert_refused(&self, out: &std::process::Output, db: &str, expect: &str) {
        assert!(!out.status.success(), "restore into {db} claimed success");
        let err = stderr_of(out);
        assert!(
            err.contains(expect),
            "restore into {db}: expected {expect:?} in: {err}"
        );
        assert!(
            err.contains("unchanged") || out.status.code() == Some(2),
            "{err}"
        );
        assert_eq!(user_tables(&self.target, db), 0, "{db} was changed");
    }
}

#[test]
fn damaged_or_wrong_key_backups_leave_the_target_unchanged() {
    let f = fixture();
    let identity = ("--identity", f.identity.as_path());
    let len = std::fs::metadata(&f.object).unwrap().len() as usize;

    let truncated = f.variant("truncated.age", |b| b.truncate(len - 1000));
    let out = f.restore(&truncated, "r_truncated", identity, None);
    f.assert_refused(&out, "r_truncated", "corrupt, truncated or tampered");

    // Cut at a chunk boundary: every remaining chunk authenticates, only the missing
    // final flag betrays the truncation.
    let at_chunk = f.variant("chunk-cut.age", |b| {
        let header_end = b.windows(4).position(|w| w == b"\n---").unwrap() + 1;
        let payload =
            header_end + b[header_end..].iter().position(|&c| c == b'\n').unwrap() + 1 + 16;
        let chunks = (len - payload) / 65_552;
        assert!(chunks >= 2, "the fixture backup is too small to cut");
        b.truncate(payload + (chunks - 1) * 65_552);
    });
    let out = f.restore(&at_chunk, "r_chunk_cut", identity, None);
    f.assert_refused(&out, "r_chunk_cut", "corrupt, truncated or tampered");

    let flipped = f.variant("flipped.age", |b| b[len / 2] ^= 0x01);
    let out = f.restore(&flipped, "r_flipped", identity, None);
    f.assert_refused(&out, "r_flipped", "corrupt, truncated or tampered");

    let header_flip = f.variant("header.age", |b| b[40] ^= 0x01);
    let out = f.restore(&header_flip, "r_header", identity, None);
    assert!(!out.status.success());
    assert_eq!(user_tables(&f.target, "r_header"), 0);

    let not_age = f.variant("not-age.bin", |b| {
        b.iter_mut().for_each(|x| *x = x.wrapping_add(1))
    });
    let out = f.restore(&not_age, "r_not_age", identity, None);
    f.assert_refused(&out, "r_not_age", "age header");

    let trailing = f.variant("trailing.age", |b| b.extend_from_slice(b"garbage"));
    let out = f.restore(&trailing, "r_trailing", identity, None);
    assert!(!out.status.success(), "trailing garbage accepted");
    assert_eq!(user_tables(&f.target, "r_trailing"), 0);

    let (other_identity, _) = org_key(&f.dir.path().join("other"));
    let out = f.restore(
        &f.object,
        "r_wrong_identity",
        ("--identity", &other_identity),
        None,
    );
    f.assert_refused(&out, "r_wrong_identity", "not encrypted to any identity");

    let wrong_key = f.dir.path().join("wrong.filekey");
    std::fs::write(&wrong_key, [0x5au8; 16]).unwrap();
    let out = f.restore(
        &f.object,
        "r_wrong_key",
        ("--file-key-file", &wrong_key),
        None,
    );
    f.assert_refused(&out, "r_wrong_key", "does not open this backup");

    let wrong_sha = "0".repeat(64);
    let out = f.restore(&f.object, "r_wrong_sha", identity, Some(&wrong_sha));
    f.assert_refused(&out, "r_wrong_sha", "SHA-256 mismatch");

    // And the intact backup, with its recorded hash, restores.
    let out = f.restore(&f.object, "r_good", identity, Some(&f.sha256));
    assert_succeeded("restore r_good", &out);
    assert_same_database(&f.source, "app", &f.target, "r_good");
}

#[test]
fn a_bare_file_key_from_the_header_restores_the_backup() {
    use std::str::FromStr;
    let f = fixture();
    // What a managed restore does: read the start of the object, unwrap only its file key.
    let start: Vec<u8> = std::fs::read(&f.object)
        .unwrap()
        .into_iter()
        .take(4096)
        .collect();
    let text = std::fs::read_to_string(&f.identity).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap();
    let identity = age::x25519::Identity::from_str(line).unwrap();
    let key = dbcrate_agent::crypto::unwrap_file_key(&start, &identity).unwrap();

    let raw = f.dir.path().join("raw.filekey");
    std::fs::write(&raw, key.expose_secret()).unwrap();
    let out = f.restore(
        &f.object,
        "r_raw_key",
        ("--file-key-file", &raw),
        Some(&f.sha256),
    );
    assert_succeeded("restore r_raw_key", &out);
    assert_same_database(&f.source, "app", &f.target, "r_raw_key");

    let hex = f.dir.path().join("hex.filekey");
    let hex_text = dbcrate_core::hex::encode(key.expose_secret());
    std::fs::write(&hex, format!("{hex_text}\n")).unwrap();
    let out = f.restore(&f.object, "r_hex_key", ("--file-key-file", &hex), None);
    assert_succeeded("restore r_hex_key", &out);
    assert_same_database(&f.source, "app", &f.target, "r_hex_key");

    let (other, _) = org_key(&f.dir.path().join("other"));
    let other_line = std::fs::read_to_string(&other).unwrap();
    let other_line = other_line
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap();
    let other = age::x25519::Identity::from_str(other_line).unwrap();
    let err = dbcrate_agent::crypto::unwrap_file_key(&start, &other).unwrap_err();
    assert!(
        err.to_string()
            .contains("not encrypted to the given identity"),
        "{err}"
    );
}

/// Sends SIGTERM to `pid` with the stock `kill`.
fn sigterm(pid: u32) {
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[test]
fn sigterm_midway_aborts_and_cleans_up() {
    let (source, dir, _, recipient) = start("sigterm", MAJOR);
    let s3 = S3Server::start().unwrap();
    noise_table(&source, "app", 16);
    // pg_dump stalls for a minute: a clean stop must not wait for it.
    let bin = stalling_pg_dump(dir.path(), &source, 60);
    let bucket = dir.path().join("bucket");

    let child = backup_cmd(&source, &recipient, &file_url(&bucket), &bin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the temp file to fill", || {
        common::bytes_under(&bucket) > 1_000_000
    });
    let stopped = Instant::now();
    sigterm(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(
        stopped.elapsed() < Duration::from_secs(15),
        "took {:?}",
        stopped.elapsed()
    );
    assert_eq!(out.status.code(), Some(130), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("interrupted"),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        files_under(&bucket),
        Vec::<String>::new(),
        "temp file left behind"
    );

    let log = dir.path().join("agent-s3.log");
    let mut child = s3_backup_mid_upload(&source, &recipient, &s3, &bin, &log);
    sigterm(child.id());
    let status = child.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(130), "{log}");
    assert_eq!(curl_list(&s3), Vec::<String>::new(), "an object appeared");
    let uploads = curl_get_text(&s3, "?uploads=");
    assert!(
        !uploads.contains("<Upload>"),
        "the multipart upload was not aborted: {uploads}"
    );
}
