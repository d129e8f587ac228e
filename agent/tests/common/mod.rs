//! Shared pieces of the agent's integration tests: a varied database, ways to compare
//! two databases, the org key pair, running the agent binary, and the control plane's
//! side (`control`).
#![allow(dead_code)]

pub mod control;
pub mod registry;
pub mod sockets;

use dbcrate_testkit::{Deps, PgServer, S3Server, SftpServer, TempDir};
// The kit's checks of a tool's run, for the test files that take all of `common`.
pub use dbcrate_testkit::{assert_succeeded, output_ok};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Several schemas, non-ASCII names, bytea, large objects, jsonb, arrays, enums, a
/// partitioned table, sequences, a view and a trigger. `{rows}` orders.
pub fn varied_schema(rows: u32) -> String {
    format!(
        r#"
CREATE SCHEMA sales;
CREATE SCHEMA "Ünïcode schéma";
CREATE TYPE sales.status AS ENUM ('new', 'paid', 'shipped');
CREATE TABLE sales.orders (
    id bigserial PRIMARY KEY,
    status sales.status NOT NULL,
    tags text[],
    amounts numeric[],
    doc jsonb,
    blob bytea,
    placed timestamptz NOT NULL,
    note text
);
CREATE TABLE sales.audit (id serial PRIMARY KEY, order_id bigint NOT NULL);
CREATE FUNCTION sales.log_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO sales.audit (order_id) VALUES (NEW.id); RETURN NEW; END $$;
CREATE TRIGGER orders_audit AFTER INSERT ON sales.orders
    FOR EACH ROW EXECUTE FUNCTION sales.log_order();
CREATE TABLE "Ünïcode schéma"."tâble ✓" ("clé" int PRIMARY KEY, "valeur €" text);
CREATE TABLE sales.events (id int NOT NULL, at date NOT NULL, payload jsonb)
    PARTITION BY RANGE (at);
CREATE TABLE sales.events_2025 PARTITION OF sales.events
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE sales.events_2026 PARTITION OF sales.events
    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE SEQUENCE sales.invoice_no START 1000;
CREATE VIEW sales.paid_orders AS SELECT id, placed FROM sales.orders WHERE status = 'paid';
INSERT INTO sales.orders (status, tags, amounts, doc, blob, placed, note)
SELECT (ARRAY['new', 'paid', 'shipped'])[1 + g % 3]::sales.status,
       ARRAY['t' || g, 'ü' || g % 7],
       ARRAY[g * 1.5, g / 3.0],
       jsonb_build_object('g', g, 'nested', jsonb_build_array(g, 'x', NULL)),
       decode(md5(g::text), 'hex'),
       '2026-01-01 00:00:00+00'::timestamptz + g * interval '1 hour',
       CASE WHEN g % 5 = 0 THEN NULL ELSE 'note ' || g || ' – ✓' END
FROM generate_series(1, {rows}) AS g;
INSERT INTO "Ünïcode schéma"."tâble ✓" SELECT g, 'välue ' || g FROM generate_series(1, 100) g;
INSERT INTO sales.events
SELECT g, DATE '2025-06-01' + (g % 400), jsonb_build_object('e', g) FROM generate_series(1, 2000) g;
SELECT setval('sales.invoice_no', 4242);
SELECT lo_from_bytea(0, convert_to('large object ' || g, 'UTF8')) FROM generate_series(1, 5) g;
"#
    )
}

/// Roles that own and may use parts of [`varied_schema`]: restoring its dump into a
/// server without them fails on ownership and grants unless the cluster's globals are
/// applied first. A quoted name, a membership, a connection limit and a role setting.
pub const CUSTOM_ROLES: &str = r#"
CREATE ROLE shop_owner NOLOGIN;
CREATE ROLE shop_reader NOLOGIN;
CREATE ROLE "Shop ""Clerk""" LOGIN CONNECTION LIMIT 3 IN ROLE shop_reader;
ALTER ROLE shop_reader SET statement_timeout = '5min';
ALTER SCHEMA sales OWNER TO shop_owner;
ALTER TABLE sales.orders OWNER TO shop_owner;
ALTER TABLE sales.audit OWNER TO shop_owner;
GRANT USAGE ON SCHEMA sales TO shop_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA sales TO shop_reader;
GRANT INSERT ON sales.orders TO "Shop ""Clerk""";
"#;

/// The roles [`CUSTOM_ROLES`] made, as the server has them (attributes, memberships,
/// settings), one line each.
pub fn custom_role_facts(server: &PgServer) -> String {
    server
        .psql(
            "postgres",
            "SELECT r.rolname || ' login=' || r.rolcanlogin || ' limit=' || r.rolconnlimit \
             || ' in=' || coalesce((SELECT string_agg(g.rolname, ',' ORDER BY g.rolname) \
                FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid \
                WHERE m.member = r.oid), '') \
             || ' set=' || coalesce((SELECT array_to_string(s.setconfig, ',') \
                FROM pg_db_role_setting s WHERE s.setrole = r.oid AND s.setdatabase = 0), '') \
             FROM pg_roles r WHERE r.rolname IN ('shop_owner', 'shop_reader', 'Shop \"Clerk\"') \
             ORDER BY 1",
        )
        .unwrap()
}

/// Applies the globals object `file` (age ciphertext) to `target` with stock `age -d |
/// zstd -d | psql`, as the destination's README says; psql's errors (the roles that
/// exist already) do not stop it.
pub fn stock_apply_globals(target: &PgServer, identity: &Path, file: &Path) {
    let mut psql = target.client_command("psql");
    psql.args(["-X", "-q", "--dbname", "postgres", "-f", "-"]);
    let applied = stock_decrypt_into(identity, file, psql);
    assert_succeeded("stock psql", &applied);
}

/// Runs `consumer` on `file` (age ciphertext) decrypted and decompressed by stock `age
/// -d -i identity` and `zstd -d`; its output, once age and zstd succeeded.
fn stock_decrypt_into(identity: &Path, file: &Path, mut consumer: Command) -> Output {
    let deps = Deps::from_env();
    let mut age = Command::new(deps.tool("age").unwrap())
        .arg("-d")
        .arg("-i")
        .arg(identity)
        .arg(file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut zstd = Command::new(deps.tool("zstd").unwrap())
        .args(["-d", "-c", "-q"])
        .stdin(age.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = consumer
        .stdin(zstd.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(age.wait().unwrap().success(), "stock age -d failed");
    assert!(zstd.wait().unwrap().success(), "stock zstd -d failed");
    out
}

/// Row count and an order-independent checksum of every table, one line per table.
pub fn table_checksums(server: &PgServer, db: &str) -> String {
    let tables = server
        .psql(
            db,
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
             AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1",
        )
        .unwrap();
    let mut out = Vec::new();
    for table in tables.lines() {
        let sum = server
            .psql(
                db,
                &format!(
                    "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') FROM {table} t"
                ),
            )
            .unwrap();
        out.push(format!("{table} {sum}"));
    }
    let los = server
        .psql(
            db,
            "SELECT count(*) || ' ' || coalesce(md5(string_agg(lo_get(oid)::text, '|' ORDER BY oid)), '-') \
             FROM pg_largeobject_metadata",
        )
        .unwrap();
    out.push(format!("large objects {los}"));
    out.join("\n")
}

/// A plain-format dump of `db`, without the lines that differ on every run
/// (`\restrict` keys of newer minor releases).
pub fn plain_dump(server: &PgServer, db: &str) -> String {
    let out = server
        .client_command("pg_dump")
        .args(["--format=plain", "--dbname", db])
        .output()
        .unwrap();
    assert_succeeded("plain pg_dump", &out);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts that `restored` on `target` equals `source_db` on `source`.
pub fn assert_same_database(source: &PgServer, source_db: &str, target: &PgServer, restored: &str) {
    let (a, b) = (
        table_checksums(source, source_db),
        table_checksums(target, restored),
    );
    assert!(a.lines().count() >= 6, "too few tables checked:\n{a}");
    assert_eq!(a, b, "per-table checksums differ");
    let (a, b) = (plain_dump(source, source_db), plain_dump(target, restored));
    assert!(
        a.contains("CREATE TRIGGER orders_audit"),
        "plain dump lacks the trigger"
    );
    if a != b {
        let diff: Vec<_> = a
            .lines()
            .zip(b.lines())
            .filter(|(x, y)| x != y)
            .take(5)
            .collect();
        panic!("plain dumps differ; first differing lines: {diff:#?}");
    }
}

/// An age key pair made with stock age-keygen: (identity file, recipient).
pub fn org_key(dir: &Path) -> (PathBuf, String) {
    dbcrate_testkit::age_keypair(&Deps::from_env(), dir).unwrap()
}

/// The agent binary cargo built for these tests. (`option_env!`, because the release
/// gate, an example that runs candidate binaries, shares this module and has none.)
pub fn agent_binary() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_dbcrate-agent") {
        Some(bin) => PathBuf::from(bin),
        None => panic!("no agent binary: only integration tests have one"),
    }
}

/// The agent binary under test, with no credential in its environment.
pub fn agent() -> Command {
    let mut cmd = Command::new(agent_binary());
    cmd.env_remove("PGPASSWORD")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("DBCRATE_LOG", "info");
    cmd
}

/// Adds the SFTP flags for `sftp`.
pub fn with_sftp(cmd: &mut Command, sftp: &SftpServer) {
    cmd.arg("--ssh-key")
        .arg(sftp.client_key())
        .arg("--known-hosts")
        .arg(sftp.write_known_hosts().unwrap());
}

/// A `dbcrate-agent restore` of `object` into a new database `db` on `target` (created
/// here); the caller adds the key flag (`--identity`/`--file-key-file`) and any other.
pub fn restore_cmd(target: &PgServer, object: &str, db: &str) -> Command {
    restore_cmd_with(target, target.bin_dir(), object, db)
}

/// The same with the pg_restore in `bin`.
pub fn restore_cmd_with(target: &PgServer, bin: &Path, object: &str, db: &str) -> Command {
    target.create_database(db).unwrap();
    let mut cmd = agent();
    cmd.arg("restore")
        .args(["--source", object])
        .args(["--database-url", &target.url(db)])
        .arg("--pg-bin-dir")
        .arg(bin);
    cmd
}

/// Runs `dbcrate-agent backup` of `db` to `destination` and returns its JSON report.
pub fn backup(
    source: &PgServer,
    db: &str,
    recipient: &str,
    destination: &str,
    extra: impl FnOnce(&mut Command),
) -> serde_json::Value {
    let mut cmd = agent();
    cmd.arg("backup")
        .args(["--database-url", &source.url(db)])
        .args(["--recipient", recipient])
        .args(["--destination", destination])
        .arg("--pg-bin-dir")
        .arg(source.bin_dir());
    extra(&mut cmd);
    let out = output_ok("backup", &mut cmd);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().count(),
        1,
        "stdout must be one JSON line: {stdout}"
    );
    serde_json::from_str(&stdout).unwrap()
}

/// Restores `file` (age ciphertext) with stock `age -d | zstd -d | pg_restore` into a
/// new database `db` on `target`.
pub fn stock_restore(target: &PgServer, identity: &Path, file: &Path, db: &str) {
    target.create_database(db).unwrap();
    let mut pg_restore = target.client_command("pg_restore");
    pg_restore.args(["--exit-on-error", "--single-transaction", "--dbname", db]);
    let restore = stock_decrypt_into(identity, file, pg_restore);
    assert_succeeded("stock pg_restore", &restore);
}

/// Runs stock curl (a plain client, not the agent's SDK) and insists on success.
fn curl(s3: &S3Server, path: &str, extra: &[&str]) -> Output {
    let mut args = vec!["--fail"];
    args.extend_from_slice(extra);
    let out = s3.curl(&args, path).unwrap();
    assert!(
        out.status.success(),
        "curl {path} failed: {}",
        stderr_of(&out)
    );
    out
}

/// Fetches `key` from `s3` into `to` with curl.
pub fn curl_get(s3: &S3Server, key: &str, to: &Path) {
    curl(s3, &encode_key(key), &["-o", to.to_str().unwrap()]);
}

/// GETs `path_and_query` (relative to the bucket) with curl and returns the body.
pub fn curl_get_text(s3: &S3Server, path_and_query: &str) -> String {
    String::from_utf8_lossy(&curl(s3, path_and_query, &[]).stdout).into_owned()
}

/// Lists the bucket's keys with curl.
pub fn curl_list(s3: &S3Server) -> Vec<String> {
    curl_get_text(s3, "?list-type=2")
        .split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_string)
        .collect()
}

/// Percent-encodes a key for a URL path (keeping `/`).
pub fn encode_key(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The object key of an `s3://bucket/key` URL.
pub fn s3_key(url: &str, bucket: &str) -> String {
    url.strip_prefix(&format!("s3://{bucket}/"))
        .unwrap()
        .to_string()
}

/// A scratch directory.
pub fn scratch(label: &str) -> TempDir {
    TempDir::new(label).unwrap()
}

/// Where most backup tests start: a PostgreSQL `major` server with an empty database
/// `app`, a scratch directory `label` and an organisation key pair in it. Returns
/// (server, directory, identity file, recipient).
pub fn start(label: &str, major: u32) -> (PgServer, TempDir, PathBuf, String) {
    let source = PgServer::start(major).unwrap();
    let dir = scratch(label);
    let (identity, recipient) = org_key(dir.path());
    source.create_database("app").unwrap();
    (source, dir, identity, recipient)
}

/// The `file://` destination URL of a local directory.
pub fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

/// A table of `mib` MiB of incompressible bytes (SHA-512 output), so that a backup
/// takes long enough to interrupt.
pub fn noise_table(server: &PgServer, db: &str, mib: u32) {
    server
        .psql(
            db,
            &format!(
                "CREATE TABLE noise AS SELECT g AS id, \
                 (SELECT string_agg(sha512((g * 100 + i)::text::bytea), ''::bytea) \
                  FROM generate_series(1, 16) i) AS data \
                 FROM generate_series(1, {}) g",
                mib * 1024
            ),
        )
        .unwrap();
}

/// A `--pg-bin-dir` whose pg_dump wraps the real one of `server` with `body`, a bash
/// snippet that receives the real pg_dump's output on stdin (`$REAL` runs it).
pub fn wrapped_pg_dump(dir: &Path, server: &PgServer, body: &str) -> PathBuf {
    let bin = dir.join("wrapped-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let real = server.pg_dump();
    write_script(
        &bin.join("pg_dump"),
        &format!(
            "REAL={real:?}\nif [ \"$1\" = --version ]; then exec \"$REAL\" --version; fi\n{body}",
            real = real.display().to_string()
        ),
    );
    bin
}

/// Adds to a wrapped `bin` (see [`wrapped_pg_dump`]) a pg_dumpall that runs `before`, a
/// bash snippet, then the real one of `server`, so the globals can be saved too.
pub fn wrapped_pg_dumpall(bin: &Path, server: &PgServer, before: &str) {
    let real = server.bin_dir().join("pg_dumpall");
    write_script(
        &bin.join("pg_dumpall"),
        &format!(
            "if [ \"$1\" != --version ]; then\n:\n{before}\nfi\nexec {real:?} \"$@\"",
            real = real.display().to_string()
        ),
    );
}

/// Writes an executable bash script of `lines` at `path`.
fn write_script(path: &Path, lines: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/bash\n{lines}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The total size of the files under `dir` (recursively): how much a server has stored.
pub fn bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            total += if path.is_dir() {
                bytes_under(&path)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            };
        }
    }
    total
}

/// Names of the files in `dir` (recursively), relative to it.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let path = e.unwrap().path();
            if path.is_dir() {
                out.extend(
                    files_under(&path)
                        .into_iter()
                        .map(|f| format!("{}/{f}", path.file_name().unwrap().to_string_lossy())),
                );
            } else {
                out.push(path.file_name().unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out
}

/// Output of a finished command, for assertions.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Number of tables in `db` outside the system schemas.
pub fn user_tables(server: &PgServer, db: &str) -> u32 {
    server
        .psql(
            db,
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
        )
        .unwrap()
        .parse()
        .unwrap()
}
