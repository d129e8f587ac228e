//! For every major 13–18: a varied database backed up by `dbcrate-agent backup` to a
//! real S3 store is fetched with a plain client and restored with stock `age -d`,
//! `zstd -d` and that major's own `pg_restore`, and equals the source; the same object
//! restored by `dbcrate-agent restore` does too.

mod common;

use common::*;
use dbcrate_testkit::{PgServer, S3Server};

fn independence(major: u32) {
    let source = PgServer::start(major).expect("source server");
    let target = PgServer::start(major).expect("target server");
    let s3 = S3Server::start().expect("S3 store");
    let dir = scratch("independence");
    let (identity, recipient) = org_key(dir.path());
    source.create_database("app").unwrap();
    source.psql("app", &varied_schema(3000)).unwrap();

    let destination = format!("s3://{}/backups/prod", s3.bucket());
    let report = backup(&source, "app", &recipient, &destination, |c| {
        s3.agent_flags(c)
    });
    let object = report["object"].as_str().unwrap();
    let key = s3_key(object, s3.bucket());
    assert!(key.starts_with("backups/prod/app/"), "{key}");
    assert!(key.ends_with("-cli.pgdump.zst.age"), "{key}");
    assert!(report["pg_dump_version"]
        .as_str()
        .unwrap()
        .contains(&format!(" {major}.")));
    assert!(report["pg_server_version"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{major}.")));

    // Independence: a plain HTTP client and stock tools only.
    let file = dir.path().join("fetched.age");
    curl_get(&s3, &key, &file);
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(
        bytes.len() as u64,
        report["ciphertext_bytes"].as_u64().unwrap()
    );
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    stock_restore(&target, &identity, &file, "restored_stock");
    assert_same_database(&source, "app", &target, "restored_stock");

    // The agent's own restore, checking the recorded SHA-256.
    let mut cmd = restore_cmd(&target, object, "restored_agent");
    cmd.arg("--identity")
        .arg(&identity)
        .args(["--expect-sha256", report["sha256"].as_str().unwrap()]);
    s3.agent_flags(&mut cmd);
    let out = output_ok("agent restore", &mut cmd);
    let restored: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(restored["sha256"], report["sha256"]);
    assert_same_database(&source, "app", &target, "restored_agent");
}

macro_rules! majors {
    ($($name:ident => $major:expr),* $(,)?) => {$(
        #[test]
        fn $name() {
            independence($major);
        }
    )*};
}

majors! {
    pg13_s3_backup_restores_with_stock_tools => 13,
    pg14_s3_backup_restores_with_stock_tools => 14,
    pg15_s3_backup_restores_with_stock_tools => 15,
    pg16_s3_backup_restores_with_stock_tools => 16,
    pg17_s3_backup_restores_with_stock_tools => 17,
    pg18_s3_backup_restores_with_stock_tools => 18,
}
