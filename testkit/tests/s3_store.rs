//! Proves the kit's S3 store with a stock client (curl's SigV4 signing): put, list,
//! ranged get and delete against a real Garage.

use dbcrate_testkit::S3Server;
use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs curl against the store. The credentials go in through a config on stdin, so
/// they never show on a command line.
fn curl(s3: &S3Server, method: &str, path: &str, extra: &[&str], body: Option<&[u8]>) -> Output {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-K", "-", "-X", method])
        .arg("--aws-sigv4")
        .arg(format!("aws:amz:{}:s3", s3.region()))
        .args([
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            "-w",
            "\n%{http_code}",
        ])
        .args(extra)
        .arg(format!("{}/{}/{path}", s3.endpoint(), s3.bucket()));
    let dir = dbcrate_testkit::TempDir::new("curl").unwrap();
    if let Some(body) = body {
        let file = dir.path().join("body");
        std::fs::write(&file, body).unwrap();
        cmd.arg("--data-binary").arg(format!("@{}", file.display()));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl is needed for this test (Debian package curl)");
    let config = format!(
        "user = \"{}:{}\"\n",
        s3.access_key_id(),
        s3.secret_access_key()
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(config.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Splits curl's output into (body, HTTP status).
fn response(out: &Output) -> (String, u16) {
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let (body, code) = text.rsplit_once('\n').unwrap();
    (body.to_string(), code.trim().parse().unwrap())
}

#[test]
fn put_list_ranged_get_delete() {
    let s3 = S3Server::start().expect("start Garage");
    let content = b"0123456789abcdefghij";

    let (_, code) = response(&curl(
        &s3,
        "PUT",
        "prefix/db/object.bin",
        &[],
        Some(content),
    ));
    assert_eq!(code, 200, "put");

    let (list, code) = response(&curl(
        &s3,
        "GET",
        "?list-type=2&prefix=prefix%2F",
        &[],
        None,
    ));
    assert_eq!(code, 200, "list: {list}");
    assert!(
        list.contains("<Key>prefix/db/object.bin</Key>"),
        "list: {list}"
    );
    assert!(list.contains("<Size>20</Size>"), "list: {list}");

    let (part, code) = response(&curl(
        &s3,
        "GET",
        "prefix/db/object.bin",
        &["-H", "Range: bytes=10-14"],
        None,
    ));
    assert_eq!(code, 206, "ranged get");
    assert_eq!(part, "abcde");

    let (_, code) = response(&curl(&s3, "DELETE", "prefix/db/object.bin", &[], None));
    assert_eq!(code, 204, "delete");

    let (list, _) = response(&curl(
        &s3,
        "GET",
        "?list-type=2&prefix=prefix%2F",
        &[],
        None,
    ));
    assert!(
        !list.contains("<Key>"),
        "deleted object still listed: {list}"
    );
    let (_, code) = response(&curl(&s3, "GET", "prefix/db/object.bin", &[], None));
    assert_eq!(code, 404, "deleted object still readable");
}

#[test]
fn wrong_secret_is_refused() {
    let s3 = S3Server::start().expect("start Garage");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-K", "-"])
        .arg("--aws-sigv4")
        .arg(format!("aws:amz:{}:s3", s3.region()))
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
        .arg(format!("{}/{}/?list-type=2", s3.endpoint(), s3.bucket()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let config = format!("user = \"{}:{}\"\n", s3.access_key_id(), "0".repeat(64));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(config.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "403");
}
