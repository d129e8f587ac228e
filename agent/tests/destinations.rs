//! SFTP and local-directory destinations: backup, stock restore, agent restore.

mod common;

use common::*;
use dbcrate_testkit::{PgServer, SftpServer};
use std::path::Path;

const MAJOR: u32 = 17;

fn agent_restore(
    target: &PgServer,
    object: &str,
    identity: &Path,
    db: &str,
    extra: impl FnOnce(&mut std::process::Command),
) {
    let mut cmd = restore_cmd(target, object, db);
    cmd.arg("--identity").arg(identity);
    extra(&mut cmd);
    output_ok("agent restore", &mut cmd);
}

#[test]
fn sftp_backup_is_renamed_into_place_and_restores() {
    let (source, _dir, identity, recipient) = start("sftp-dest", MAJOR);
    let target = PgServer::start(MAJOR).unwrap();
    let sftp = SftpServer::start().unwrap();
    source.psql("app", &varied_schema(500)).unwrap();

    let destination = format!("{}/nightly", sftp.url());
    let report = backup(&source, "app", &recipient, &destination, |c| {
        with_sftp(c, &sftp)
    });
    let object = report["object"].as_str().unwrap();
    let path = object.split_once(&format!(":{}", sftp.port())).unwrap().1;
    assert!(
        path.starts_with(&format!("{}/nightly/app/", sftp.root().display())),
        "{path}"
    );
    // Only the final files remain, the backup and the globals saved next to it: no
    // temp name left in their directory.
    let parent = Path::new(path).parent().unwrap();
    let mut names: Vec<_> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let file_name = |p: &str| {
        Path::new(p)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    let globals = dbcrate_core::object_key::globals_key(path).unwrap();
    assert_eq!(names, [file_name(&globals), file_name(path)], "{names:?}");

    stock_restore(&target, &identity, Path::new(path), "restored_stock");
    assert_same_database(&source, "app", &target, "restored_stock");
    agent_restore(&target, object, &identity, "restored_agent", |c| {
        with_sftp(c, &sftp)
    });
    assert_same_database(&source, "app", &target, "restored_agent");
}

#[test]
fn file_backup_restores_with_stock_tools_and_the_agent() {
    let (source, dir, identity, recipient) = start("file-dest", MAJOR);
    let target = PgServer::start(MAJOR).unwrap();
    source.psql("app", &varied_schema(500)).unwrap();

    let bucket = dir.path().join("bucket");
    let report = backup(&source, "app", &recipient, &file_url(&bucket), |_| {});
    let object = report["object"].as_str().unwrap();
    let path = object.strip_prefix("file://").unwrap();
    assert_eq!(
        std::fs::metadata(path).unwrap().len(),
        report["ciphertext_bytes"].as_u64().unwrap()
    );
    stock_restore(&target, &identity, Path::new(path), "restored_stock");
    assert_same_database(&source, "app", &target, "restored_stock");
    agent_restore(&target, object, &identity, "restored_agent", |_| {});
    assert_same_database(&source, "app", &target, "restored_agent");
}

/// A dump of several zstd jobs (24 MiB of noise beside the usual tables) compressed at
/// level 9 with no workers, one and three of libzstd's workers: each object is one
/// zstd frame stock `zstd -d` reads, and each restores to the same database.
#[test]
fn backups_with_and_without_zstd_workers_restore_with_stock_tools() {
    let (source, dir, identity, recipient) = start("zstd-workers", MAJOR);
    let target = PgServer::start(MAJOR).unwrap();
    source.psql("app", &varied_schema(500)).unwrap();
    noise_table(&source, "app", 24);
    for threads in ["0", "1", "3"] {
        let bucket = dir.path().join(format!("threads-{threads}"));
        let report = backup(&source, "app", &recipient, &file_url(&bucket), |c| {
            c.args(["--zstd-level", "9", "--zstd-threads", threads]);
        });
        let object = report["object"].as_str().unwrap();
        let restored = format!("restored_{threads}");
        stock_restore(
            &target,
            &identity,
            Path::new(object.strip_prefix("file://").unwrap()),
            &restored,
        );
        assert_same_database(&source, "app", &target, &restored);
    }
    let mut refused = agent();
    refused.args([
        "backup",
        "--zstd-threads",
        "9",
        "--database-url",
        &source.url("app"),
    ]);
    let out = refused
        .args([
            "--recipient",
            &recipient,
            "--destination",
            &file_url(dir.path()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr_of(&out).contains("--zstd-threads"),
        "{}",
        stderr_of(&out)
    );
}

/// The globals are saved while the dump runs, not after it: pg_dumpall's start,
/// connection and catalog reads would otherwise add to every backup's time.
#[test]
fn globals_are_saved_while_the_dump_runs() {
    let (source, dir, _identity, recipient) = start("globals-alongside", MAJOR);
    source.psql("app", &varied_schema(50)).unwrap();
    let dump_ended = dir.path().join("dump-ended");
    let bin = wrapped_pg_dump(
        dir.path(),
        &source,
        &format!("\"$REAL\" \"$@\" | {{ head -c 1000; sleep 3; cat; }}\ntouch {dump_ended:?}"),
    );
    let when = dir.path().join("pg_dumpall-started");
    wrapped_pg_dumpall(
        &bin,
        &source,
        &format!(
            "if [ -e {dump_ended:?} ]; then echo after > {when:?}; else echo during > {when:?}; fi"
        ),
    );
    let mut cmd = agent();
    cmd.arg("backup")
        .args(["--database-url", &source.url("app")])
        .args(["--recipient", &recipient])
        .args(["--destination", &file_url(&dir.path().join("bucket"))])
        .arg("--pg-bin-dir")
        .arg(&bin);
    let out = output_ok("backup", &mut cmd);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["globals"]["object"].is_string(), "{report}");
    assert_eq!(std::fs::read_to_string(&when).unwrap().trim(), "during");
}

/// The roles saved next to a backup restore it into a fresh server with `restore
/// --globals`, keeping a role the server has; a backup whose pg_dumpall is missing
/// stands without them and says why.
#[test]
fn globals_restore_roles_into_a_fresh_server() {
    let (source, dir, identity, recipient) = start("globals", MAJOR);
    source.psql("app", &varied_schema(50)).unwrap();
    source.psql("app", CUSTOM_ROLES).unwrap();
    let bucket = dir.path().join("bucket");
    let report = backup(&source, "app", &recipient, &file_url(&bucket), |_| {});
    let globals = report["globals"]["object"].as_str().unwrap();
    assert!(globals.ends_with(".globals.sql.zst.age"), "{report}");

    let target = PgServer::start(MAJOR).unwrap();
    target
        .psql(
            "postgres",
            "CREATE ROLE shop_owner LOGIN CONNECTION LIMIT 9",
        )
        .unwrap();
    let object = report["object"].as_str().unwrap();
    let mut cmd = restore_cmd(&target, object, "restored");
    cmd.arg("--identity")
        .arg(&identity)
        .args(["--globals", globals]);
    let out = output_ok("agent restore --globals", &mut cmd);
    let restored: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        restored["globals"]["kept"],
        serde_json::json!(["postgres", "shop_owner"]),
        "{restored}"
    );
    assert_same_database(&source, "app", &target, "restored");
    assert!(
        custom_role_facts(&target).contains("shop_owner login=true limit=9"),
        "the existing role was changed: {}",
        custom_role_facts(&target)
    );

    // A globals object someone else wrote, with psql meta-commands: they are refused,
    // never run on this host; its SQL still reaches the server.
    let marker = dir.path().join("meta-command-ran");
    let evil = format!(
        "CREATE ROLE evil_globals;\n\\! touch {m}\n\\copy (SELECT 1) TO PROGRAM 'touch {m}'\n",
        m = marker.display()
    );
    let evil_plain = dir.path().join("evil.sql");
    std::fs::write(&evil_plain, evil).unwrap();
    let evil_object = dir.path().join("evil.globals.sql.zst.age");
    let deps = dbcrate_testkit::Deps::from_env();
    let sealed = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{zstd:?} -q -c {plain:?} | {age:?} -r {recipient} -o {out:?}",
            zstd = deps.tool("zstd").unwrap(),
            age = deps.tool("age").unwrap(),
            plain = evil_plain,
            out = evil_object,
        ))
        .status()
        .unwrap();
    assert!(sealed.success());
    let mut cmd = restore_cmd(&target, object, "restored_evil");
    cmd.arg("--identity")
        .arg(&identity)
        .args(["--globals", &format!("file://{}", evil_object.display())]);
    let out = output_ok("agent restore --globals (meta-commands)", &mut cmd);
    let restored: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = restored["globals"]["errors"].to_string();
    assert!(errors.contains("refused (never run)"), "{restored}");
    assert!(
        !marker.exists(),
        "a meta-command in a globals object ran on the agent's host"
    );
    assert_eq!(
        target
            .psql(
                "postgres",
                "SELECT count(*) FROM pg_roles WHERE rolname = 'evil_globals'"
            )
            .unwrap(),
        "1"
    );

    // No pg_dumpall next to pg_dump: the backup is made, without globals.
    let only_dump = dir.path().join("only-pg_dump");
    std::fs::create_dir(&only_dump).unwrap();
    std::os::unix::fs::symlink(source.pg_dump(), only_dump.join("pg_dump")).unwrap();
    let mut cmd = agent();
    cmd.arg("backup")
        .args(["--database-url", &source.url("app")])
        .args(["--recipient", &recipient])
        .args(["--destination", &file_url(&bucket)])
        .arg("--pg-bin-dir")
        .arg(&only_dump);
    let out = output_ok("backup without pg_dumpall", &mut cmd);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["object"].is_string(), "{report}");
    assert!(report["globals"].is_null(), "{report}");
    let why = report["globals_not_saved"].as_str().unwrap();
    assert!(why.contains("pg_dumpall"), "{why}");
}

#[test]
fn sftp_refuses_unknown_and_changed_host_keys() {
    let (source, dir, _, recipient) = start("sftp-host-keys", MAJOR);
    let sftp = SftpServer::start().unwrap();

    let unknown = dir.path().join("known_hosts_empty");
    std::fs::write(&unknown, "").unwrap();
    let other_key = dir.path().join("other_host_key");
    let keygen = dbcrate_testkit::Deps::from_env()
        .tool("ssh-keygen")
        .unwrap();
    let made = std::process::Command::new(keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key)
        .status()
        .unwrap();
    assert!(made.success());
    let other_pub = std::fs::read_to_string(other_key.with_extension("pub")).unwrap();
    let fields: Vec<&str> = other_pub.split_whitespace().take(2).collect();
    let changed = dir.path().join("known_hosts_changed");
    std::fs::write(
        &changed,
        format!("[127.0.0.1]:{} {}\n", sftp.port(), fields.join(" ")),
    )
    .unwrap();

    for (known_hosts, expect) in [
        (
            &unknown,
            format!("host key of 127.0.0.1:{} is unknown", sftp.port()),
        ),
        (&changed, "HOST KEY CHANGED".to_string()),
    ] {
        let out = agent()
            .arg("backup")
            .args(["--database-url", &source.url("app")])
            .args(["--recipient", &recipient])
            .args(["--destination", &sftp.url()])
            .arg("--pg-bin-dir")
            .arg(source.bin_dir())
            .arg("--ssh-key")
            .arg(sftp.client_key())
            .arg("--known-hosts")
            .arg(known_hosts)
            .output()
            .unwrap();
        assert!(!out.status.success(), "connected despite {expect}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&expect), "expected {expect:?} in: {err}");
    }
    assert_eq!(
        files_under(&sftp.root()),
        Vec::<String>::new(),
        "something was written"
    );
}
