//! Storage that misbehaves, through a proxy in front of the real S3 store: answers that
//! take seconds, `503 SlowDown` and `500 InternalError` mixed in, or every request
//! failing. A backup either finishes — the S3 client retries — and restores to the
//! source with stock tools, or fails naming the storage and leaves no object and no open
//! upload.

mod common;

use common::*;
use dbcrate_testkit::{Faults, FaultyHttp, PgServer, S3Server};
use std::process::Stdio;
use std::time::Duration;

/// A source with `app`: the varied schema and `noise_mib` of incompressible rows (16 MiB
/// make several 8 MiB parts of a multipart upload).
fn source_with(noise_mib: u32) -> PgServer {
    let source = PgServer::start(17).expect("source server");
    source.create_database("app").unwrap();
    source.psql("app", &varied_schema(500)).unwrap();
    if noise_mib > 0 {
        noise_table(&source, "app", noise_mib);
    }
    source
}

/// Backs `app` up through `proxy`, fetches the object from the store itself with curl,
/// restores it with stock tools and compares.
fn backs_up_and_restores(source: &PgServer, s3: &S3Server, proxy: &FaultyHttp) {
    let dir = scratch("outage");
    let (identity, recipient) = org_key(dir.path());
    let destination = format!("s3://{}/outage", s3.bucket());
    let report = backup(source, "app", &recipient, &destination, |c| {
        s3.agent_flags_through(c, &proxy.endpoint)
    });
    let key = s3_key(report["object"].as_str().unwrap(), s3.bucket());
    // The dump and the cluster's globals beside it, nothing else.
    let mut stored = curl_list(s3);
    stored.retain(|k| k != &key);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].ends_with(".globals.sql.zst.age"), "{stored:?}");
    let file = dir.path().join("fetched.age");
    curl_get(s3, &key, &file);
    let target = PgServer::start(17).expect("target server");
    stock_restore(&target, &identity, &file, "restored");
    assert_same_database(source, "app", &target, "restored");
}

#[test]
fn slow_downs_and_internal_errors_are_retried_and_the_backup_restores() {
    let source = source_with(16);
    let s3 = S3Server::start().expect("S3 store");
    let proxy = FaultyHttp::start(
        s3.endpoint(),
        Faults {
            slow_down_every: Some(3),
            internal_error_every: Some(5),
            ..Faults::default()
        },
    )
    .unwrap();
    backs_up_and_restores(&source, &s3, &proxy);
    assert!(
        proxy.faulted() >= 2,
        "the proxy injected {} errors in {} requests",
        proxy.faulted(),
        proxy.requests()
    );
}

#[test]
fn storage_answering_in_seconds_still_gets_the_whole_backup() {
    let source = source_with(0);
    let s3 = S3Server::start().expect("S3 store");
    let proxy = FaultyHttp::start(
        s3.endpoint(),
        Faults {
            delay: Duration::from_millis(1500),
            ..Faults::default()
        },
    )
    .unwrap();
    backs_up_and_restores(&source, &s3, &proxy);
}

#[test]
fn storage_failing_every_request_fails_the_backup_and_stores_nothing() {
    let source = source_with(0);
    let s3 = S3Server::start().expect("S3 store");
    let proxy = FaultyHttp::start(
        s3.endpoint(),
        Faults {
            internal_error_every: Some(1),
            ..Faults::default()
        },
    )
    .unwrap();
    let dir = scratch("outage-failing");
    let (_, recipient) = org_key(dir.path());
    let mut cmd = agent();
    cmd.arg("backup")
        .args(["--database-url", &source.url("app")])
        .args(["--recipient", &recipient])
        .args(["--destination", &format!("s3://{}/outage", s3.bucket())])
        .arg("--pg-bin-dir")
        .arg(source.bin_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    s3.agent_flags_through(&mut cmd, &proxy.endpoint);
    let out = cmd.output().unwrap();
    let stderr = stderr_of(&out);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("storage") || stderr.contains("S3") || stderr.contains("s3"),
        "the error names the storage: {stderr}"
    );
    assert!(
        proxy.requests() >= 3,
        "the client retried: {}",
        proxy.requests()
    );
    assert_eq!(curl_list(&s3), Vec::<String>::new(), "an object appeared");
    let uploads = curl_get_text(&s3, "?uploads=");
    assert!(
        !uploads.contains("<Upload>"),
        "an upload was left open: {uploads}"
    );
}
