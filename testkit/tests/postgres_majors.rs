//! Proves the kit for every supported major: a real server starts, and that major's
//! pg_dump and pg_restore move a table's contents to a second server of the same major.

use dbcrate_testkit::PgServer;
use std::process::Command;

/// Rows with text, numbers, NULLs, JSON and non-ASCII, plus an index and a sequence,
/// so that a restore which dropped or mangled anything changes the fingerprint.
const SAMPLE: &str = "
CREATE TABLE accounts (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    balance numeric(12,2),
    meta jsonb,
    created timestamptz NOT NULL DEFAULT '2026-01-01 00:00:00+00'
);
CREATE INDEX accounts_name ON accounts (name);
INSERT INTO accounts (name, balance, meta)
SELECT 'account ' || g || ' – ünïcode', g * 1.25, CASE WHEN g % 3 = 0 THEN NULL
       ELSE jsonb_build_object('g', g) END
FROM generate_series(1, 500) AS g;
";

/// A fingerprint of the table's contents and of the sequence's position.
const FINGERPRINT: &str = "
SELECT count(*) || ':' || md5(string_agg(a::text, '|' ORDER BY id)) || ':' ||
       (SELECT last_value FROM accounts_id_seq)
FROM accounts a;
";

fn dump_and_restore(major: u32) {
    let source = PgServer::start(major).expect("start source server");
    let target = PgServer::start(major).expect("start target server");
    source.create_database("app").unwrap();
    source.psql("app", SAMPLE).unwrap();
    let before = source.psql("app", FINGERPRINT).unwrap();
    assert!(
        before.starts_with("500:"),
        "sample data not loaded: {before}"
    );

    let version = Command::new(source.pg_dump())
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(
        version.contains(&format!(" {major}.")),
        "pg_dump of major {major} reports {version}"
    );

    let dir = dbcrate_testkit::TempDir::new("dump").unwrap();
    let file = dir.path().join("app.pgdump");
    let out = source
        .client_command("pg_dump")
        .args(["--format=custom", "--compress=0", "--dbname=app", "--file"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_dump {major}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    target.create_database("restored").unwrap();
    let out = target
        .client_command("pg_restore")
        .args(["--exit-on-error", "--no-owner", "--dbname=restored"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_restore {major}: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let after = target.psql("restored", FINGERPRINT).unwrap();
    assert_eq!(before, after, "restored contents differ for major {major}");
    let server_version = target.psql("restored", "SHOW server_version_num").unwrap();
    assert_eq!(
        server_version[..2],
        major.to_string(),
        "server is not major {major}"
    );
}

macro_rules! major_tests {
    ($($name:ident => $major:expr),* $(,)?) => {$(
        #[test]
        fn $name() {
            dump_and_restore($major);
        }
    )*};
}

major_tests! {
    pg13_dump_and_restore => 13,
    pg14_dump_and_restore => 14,
    pg15_dump_and_restore => 15,
    pg16_dump_and_restore => 16,
    pg17_dump_and_restore => 17,
    pg18_dump_and_restore => 18,
}
