//! Organisations' key pairs on both engines: the private key is stored only
//! envelope-encrypted, exports as an identity file that stock `age` accepts, every unwrap
//! is audited, and master-key rotation re-wraps DEKs only — also when stopped midway.

use dbcrate_control::audit;
use dbcrate_control::db::Db;
use dbcrate_control::envelope::MasterKeys;
use dbcrate_control::{orgs, second_factor, secrets, totp, users};
use dbcrate_testkit::{Deps, PgServer, TempDir};
use std::process::{Command, Stdio};

const K1: &str = "mk1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const K2: &str = "mk2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
const NOW: &str = "2026-11-29T05:00:00Z";
const T: i64 = 1_800_000_000;

fn keys(text: &str) -> MasterKeys {
    MasterKeys::parse(text).unwrap()
}

async fn ciphertexts(db: &Db) -> Vec<(String, Vec<u8>)> {
    use sqlx::Row;
    sqlx::query(
        "SELECT id, ciphertext FROM secrets UNION ALL SELECT id, ciphertext FROM user_secrets \
         ORDER BY id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// Encrypts a message to `recipient` with stock age and decrypts it with stock age and
/// the exported identity file.
fn stock_age_round_trip(recipient: &str, identity_file: &std::path::Path) {
    let age = Deps::from_env().tool("age").unwrap();
    let mut enc = Command::new(&age)
        .args(["-r", recipient])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    enc.stdin.take().unwrap().write_all(b"a backup").unwrap();
    let ciphertext = enc.wait_with_output().unwrap();
    assert!(ciphertext.status.success());
    let mut dec = Command::new(&age)
        .arg("-d")
        .arg("-i")
        .arg(identity_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    dec.stdin
        .take()
        .unwrap()
        .write_all(&ciphertext.stdout)
        .unwrap();
    let plaintext = dec.wait_with_output().unwrap();
    assert!(
        plaintext.status.success(),
        "stock age -d refused the exported key"
    );
    assert_eq!(plaintext.stdout, b"a backup");
}

async fn org_keys(db: Db) {
    db.migrate().await.unwrap();
    let k1 = keys(K1);
    dbcrate_control::audit_key::load(&db, &k1, NOW)
        .await
        .unwrap();
    let org = orgs::create(&db, &k1, "Acme", "user:owner", NOW)
        .await
        .unwrap();
    assert!(org.recipient.starts_with("age1"));
    assert!(orgs::create(&db, &k1, "Acme", "user:owner", NOW)
        .await
        .unwrap_err()
        .to_string()
        .contains("exists already"));
    assert_eq!(orgs::get(&db, &org.id).await.unwrap().unwrap(), org);

    // The database holds no plaintext key.
    for (_, ct) in ciphertexts(&db).await {
        assert!(!String::from_utf8_lossy(&ct).contains("AGE-SECRET-KEY"));
    }

    let export = orgs::export_recovery_key(&db, &k1, &org.id, "user:owner", NOW)
        .await
        .unwrap();
    assert!(export.expose_secret().contains("AGE-SECRET-KEY-1"));
    let dir = TempDir::new("recovery").unwrap();
    let file = dir.path().join("exported.key");
    std::fs::write(&file, export.expose_secret()).unwrap();
    stock_age_round_trip(&org.recipient, &file);

    let actions: Vec<String> = audit::rows(&db, &org.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert_eq!(
        actions,
        ["org.create", "org.recovery_key.export", "secret.unwrap"]
    );
    assert_eq!(audit::verify(&db, &org.id).await.unwrap(), Ok(3));

    // Rotation: three orgs under mk1, re-wrapped under mk2, stopped after one.
    orgs::create(&db, &k1, "Beta", "user:owner", NOW)
        .await
        .unwrap();
    orgs::create(&db, &k1, "Gamma", "user:owner", NOW)
        .await
        .unwrap();
    // A person's TOTP seed is a sealed secret too, in its own table.
    let mut conn = db.begin().await.unwrap();
    let pw = dbcrate_core::secret::SecretString::new("a long passphrase".into());
    let user = users::create_in(&mut conn, "p@example.com", &pw, false, NOW)
        .await
        .unwrap();
    dbcrate_control::db::end_write(conn, Ok::<(), sqlx::Error>(()))
        .await
        .unwrap();
    let enrolment = second_factor::begin(&db, &k1, &user, "p@example.com", T)
        .await
        .unwrap();
    let before = ciphertexts(&db).await;
    assert_eq!(before.len(), 4);
    let both = keys(&format!("{K2} {K1}"));
    assert_eq!(
        secrets::rotate_master_key(&db, &both, "system", NOW, 1)
            .await
            .unwrap(),
        1
    );
    // Stopped midway: with both keys configured every secret still opens.
    secrets::check_master_keys(&db, &both).await.unwrap();
    let err = secrets::check_master_keys(&db, &keys(K2))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mk1") && err.contains("rotate-master-key"),
        "{err}"
    );
    orgs::export_recovery_key(&db, &both, &org.id, "user:owner", NOW)
        .await
        .unwrap();
    // Running it again finishes; ciphertexts never changed; the old key is not needed.
    assert_eq!(
        secrets::rotate_master_key(&db, &both, "system", NOW, usize::MAX)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        secrets::rotate_master_key(&db, &both, "system", NOW, usize::MAX)
            .await
            .unwrap(),
        0
    );
    assert_eq!(ciphertexts(&db).await, before, "secret ciphertexts changed");
    let k2 = keys(K2);
    secrets::check_master_keys(&db, &k2).await.unwrap();
    let export = orgs::export_recovery_key(&db, &k2, &org.id, "user:owner", NOW)
        .await
        .unwrap();
    std::fs::write(&file, export.expose_secret()).unwrap();
    stock_age_round_trip(&org.recipient, &file);
    // The re-wrapped seed still opens: enrolment completes under mk2 alone.
    let seed = data_encoding::BASE32_NOPAD
        .decode(enrolment.secret.expose_secret().as_bytes())
        .unwrap();
    let code = format!("{:06}", totp::code_at(&seed, totp::step_of(T)));
    assert_eq!(
        second_factor::confirm(&db, &k2, &user, &code, T)
            .await
            .unwrap()
            .len(),
        10
    );
    // One audit row per re-wrapped secret, in its owner's chain (the person's seed in
    // the instance chain, each organisation's key in that organisation's).
    let all: Vec<(String, String)> =
        sqlx::query_as("SELECT org_id, target FROM audit_log WHERE action = 'master_key.rotate'")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(all.iter().any(|(chain, _)| chain == audit::INSTANCE_CHAIN));
    assert!(all.iter().any(|(chain, _)| chain == &org.id));
    let all: Vec<String> = all.into_iter().map(|(_, target)| target).collect();
    assert!(all.iter().all(|t| t.starts_with("secret:")), "{all:?}");
    assert_eq!(
        secrets::unwrap(
            &db,
            &k2,
            secrets::SecretRef {
                owner: secrets::Owner::Org("org_other"),
                id: "sec_x",
                purpose: orgs::ORG_KEY_PURPOSE,
            },
            "user:owner",
            "test",
            NOW
        )
        .await
        .unwrap_err()
        .to_string(),
        "secret sec_x not found"
    );
}

#[tokio::test]
async fn sqlite_org_keys() {
    let dir = TempDir::new("control-orgs").unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("control.db").display()
    );
    org_keys(Db::connect(&url).await.unwrap()).await;
}

#[tokio::test]
async fn postgres_org_keys() {
    let server = PgServer::start(17).unwrap();
    server.create_database("control").unwrap();
    org_keys(Db::connect(&server.url("control")).await.unwrap()).await;
}
