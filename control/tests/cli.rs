//! `dbcrate-control` fails loud on missing configuration and names the fix; migrate,
//! check, rotate-master-key and audit verify work end to end on the embedded database.

mod common;

use dbcrate_control::db::Db;
use dbcrate_control::orgs;
use dbcrate_testkit::{
    assert_failed_saying, assert_succeeded, sqlite_url, TempDir, TEST_MASTER_KEY as K1,
    TEST_MASTER_KEY_2 as K2,
};
use std::process::{Command, Output};

fn control(dir: &TempDir, master: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbcrate-control"));
    cmd.arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("DBCRATE_MASTER_KEY_FILE")
        .env_remove("DBCRATE_MASTER_KEY");
    if let Some(m) = master {
        cmd.env("DBCRATE_MASTER_KEY", m);
    }
    cmd.output().unwrap()
}

fn fails_with(out: &Output, expect: &str) {
    let err = assert_failed_saying(out, &[expect]);
    assert!(!err.contains("AAECAwQF"), "a master key was printed: {err}");
}

fn succeeds(out: &Output) -> String {
    assert_succeeded("dbcrate-control", out);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn boot_checks_fail_loud_and_commands_work() {
    let dir = TempDir::new("control-cli").unwrap();

    fails_with(
        &control(&dir, None, &["check"]),
        "set DBCRATE_MASTER_KEY or DBCRATE_MASTER_KEY_FILE",
    );
    fails_with(
        &control(&dir, Some("mk1:AAEC"), &["check"]),
        "must be exactly 32 random bytes",
    );
    fails_with(
        &control(&dir, Some(K1), &["check"]),
        "run `dbcrate-control migrate`",
    );

    assert!(succeeds(&control(&dir, None, &["migrate"])).contains("schema at version"));
    assert!(succeeds(&control(&dir, Some(K1), &["check"])).starts_with("ok"));

    // Two organisations with keys under mk1, written through the library.
    let db = Db::connect(&sqlite_url(&dir.path().join("data/control.db")))
        .await
        .unwrap();
    let k1 = common::keys_with_audit_key(&db, "2026-11-29T05:00:00Z").await;
    let org = orgs::create(&db, &k1, "Acme", "user:owner", "2026-11-29T05:00:00Z")
        .await
        .unwrap();
    orgs::create(&db, &k1, "Beta", "user:owner", "2026-11-29T05:00:00Z")
        .await
        .unwrap();

    // The new key alone cannot open them: the boot check names the missing key.
    fails_with(
        &control(&dir, Some(K2), &["check"]),
        "master key(s) mk1 that are not configured",
    );
    // Both organisations' keys and the audit chain key (a sealed secret like them).
    let both = format!("{K2} {K1}");
    assert!(
        succeeds(&control(&dir, Some(&both), &["rotate-master-key"])).starts_with("3 secret(s)")
    );
    assert!(succeeds(&control(&dir, Some(K2), &["check"])).starts_with("ok"));
    assert!(succeeds(&control(&dir, Some(K2), &["audit", "verify"])).contains("in 3 chain(s)"));

    // Cutting the newest rows off a chain leaves a valid (shorter) chain: only heads saved
    // earlier (off this host) can tell. `audit heads` prints them; `--expect-heads` checks.
    let heads = succeeds(&control(&dir, Some(K2), &["audit", "heads"]));
    // The two organisations and the instance chain (the audit key's unwraps).
    assert_eq!(heads.lines().count(), 3, "{heads}");
    assert!(heads.contains(&org.id), "{heads}");
    let heads_file = dir.path().join("heads.txt");
    std::fs::write(&heads_file, &heads).unwrap();
    let expect = [
        "audit",
        "verify",
        "--expect-heads",
        heads_file.to_str().unwrap(),
    ];
    assert!(succeeds(&control(&dir, Some(K2), &expect)).contains("3 saved head(s) found"));
    sqlx::raw_sql("DROP TRIGGER audit_log_no_delete")
        .execute(db.pool())
        .await
        .unwrap();
    let newest: i64 = sqlx::query_scalar("SELECT max(seq) FROM audit_log WHERE org_id = $1")
        .bind(&org.id)
        .fetch_one(db.pool())
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE org_id = $1 AND seq = $2")
        .bind(&org.id)
        .bind(newest)
        .execute(db.pool())
        .await
        .unwrap();
    assert!(succeeds(&control(&dir, Some(K2), &["audit", "verify"])).contains("in 3 chain(s)"));
    let out = control(&dir, Some(K2), &expect);
    fails_with(
        &out,
        &format!("audit chain of organisation {} ends at sequence", org.id),
    );
    assert_eq!(out.status.code(), Some(1));
    let garbage = dir.path().join("garbage.txt");
    std::fs::write(&garbage, "not a heads file\n").unwrap();
    fails_with(
        &control(
            &dir,
            Some(K2),
            &[
                "audit",
                "verify",
                "--expect-heads",
                garbage.to_str().unwrap(),
            ],
        ),
        "line 1",
    );

    // Tampering behind the application's back is reported with exit status 1.
    sqlx::raw_sql("DROP TRIGGER audit_log_no_update")
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'user:mallory' WHERE org_id = $1 AND seq = 1")
        .bind(&org.id)
        .execute(db.pool())
        .await
        .unwrap();
    let out = control(&dir, Some(K2), &["audit", "verify"]);
    fails_with(&out, "is broken at sequence 1");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_data_directory_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("control-perms").unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    fails_with(&control(&dir, Some(K1), &["migrate"]), "chmod 700");
}

#[tokio::test]
async fn init_creates_the_first_org_and_owner_once() {
    let dir = TempDir::new("control-init").unwrap();
    succeeds(&control(&dir, None, &["migrate"]));
    fails_with(
        &control(
            &dir,
            Some(K1),
            &["init", "--org", "Acme", "--owner", "not-an-address"],
        ),
        "is not an e-mail address",
    );
    let out = succeeds(&control(
        &dir,
        Some(K1),
        &["init", "--org", "Acme", "--owner", "Owner@Example.com"],
    ));
    assert!(
        out.contains("recipient (what backups are encrypted to): age1"),
        "{out}"
    );
    let password = out
        .split("one-time password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();
    assert_eq!(password.len(), 24, "{out}");

    // Nothing half-written by the refused attempt, and the password is stored hashed.
    let db = Db::connect(&sqlite_url(&dir.path().join("data/control.db")))
        .await
        .unwrap();
    let (email, hash): (String, String) = sqlx::query_as("SELECT email, password_hash FROM users")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(email, "owner@example.com");
    assert!(!hash.contains(&password));
    assert!(dbcrate_control::accounts::passwords::verify_password(
        &hash,
        &dbcrate_core::secret::SecretString::new(password)
    ));
    let role: String = sqlx::query_scalar("SELECT role FROM memberships")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(role, "owner");

    fails_with(
        &control(
            &dir,
            Some(K1),
            &["init", "--org", "Other", "--owner", "b@example.com"],
        ),
        "init runs once",
    );
    // The organisation's two rows, and on the instance chain the audit chain key's
    // unwrap by the successful init, the refused one and this verify (every start that
    // opens the key records it; the first, failed, init created it, unwrapping nothing).
    let verified = succeeds(&control(&dir, Some(K1), &["audit", "verify"]));
    assert!(verified.contains("5 row(s) in 2 chain(s)"), "{verified}");
}
