//! Proves the kit's S3 store with a stock client (curl's SigV4 signing): put, list,
//! ranged get and delete against a real Garage.

use dbcrate_testkit::S3Server;
use std::process::{Command, Output};

/// Runs curl against the store and appends the HTTP status to its output.
fn curl(s3: &S3Server, method: &str, path: &str, extra: &[&str], body: Option<&[u8]>) -> Output {
    let dir = dbcrate_testkit::TempDir::new("curl").unwrap();
    let mut args = vec!["-X", method, "-w", "\n%{http_code}"];
    args.extend_from_slice(extra);
    let body_arg;
    if let Some(body) = body {
        let file = dir.path().join("body");
        std::fs::write(&file, body).unwrap();
        body_arg = format!("@{}", file.display());
        args.extend_from_slice(&["--data-binary", &body_arg]);
    }
    s3.curl(&args, path)
        .expect("curl is needed for this test (Debian package curl)")
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
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg("--user")
        .arg(format!("{}:{}", s3.access_key_id(), "0".repeat(64)))
        .arg("--aws-sigv4")
        .arg(format!("aws:amz:{}:s3", s3.region()))
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
        .arg(format!("{}/{}/?list-type=2", s3.endpoint(), s3.bucket()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "403");
}
