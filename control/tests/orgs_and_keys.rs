//! Organisations' key pairs on both engines: the private key is stored only
//! envelope-encrypted, exports as an identity file that stock `age` accepts, every unwrap
//! is audited, and master-key rotation re-wraps DEKs only — also when stopped midway.

mod common;

use dbcrate_control::accounts::{second_factor, totp, users};
use dbcrate_control::audit;
use dbcrate_control::db::Db;
use dbcrate_control::envelope::MasterKeys;
use dbcrate_control::{orgs, secrets};
use dbcrate_testkit::{Deps, TempDir, TEST_MASTER_KEY as K1, TEST_MASTER_KEY_2 as K2};
use std::process::{Command, Stdio};

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
    let k1 = common::keys_with_audit_key(&db, NOW).await;
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

    assert_eq!(
        dbcrate_testkit::audited_actions(db.pool(), &org.id).await,
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
    // Running it again finishes (the other three, and the audit chain key, a sealed
    // instance secret); ciphertexts never changed; the old key is not needed.
    assert_eq!(
        secrets::rotate_master_key(&db, &both, "system", NOW, usize::MAX)
            .await
            .unwrap(),
        4
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
    // One audit row per re-wrapped secret, in its owner's chain (the person's seed and
    // the audit chain key in the instance chain, each organisation's key in that
    // organisation's).
    let all: Vec<(String, String)> =
        sqlx::query_as("SELECT org_id, target FROM audit_log WHERE action = 'master_key.rotate'")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(all.len(), 5, "{all:?}");
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

crate::sqlite_and_postgres!(sqlite_org_keys, postgres_org_keys, org_keys);

fn passphrase(text: &str) -> dbcrate_control::secrets::customer_seal::Passphrase {
    dbcrate_control::secrets::customer_seal::Passphrase::new(
        dbcrate_core::secret::SecretString::new(text.into()),
    )
    .unwrap()
}

/// The identity line of an exported recovery key file.
fn identity_of(export: &str) -> age::x25519::Identity {
    export
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
        .unwrap()
        .parse()
        .unwrap()
}

const SEAL_PASS: &str = "correct horse battery staple";

/// `org`'s recovery key, exported by `actor` with the customer passphrase `pass`.
async fn export_with(
    db: &Db,
    keys: &MasterKeys,
    org: &str,
    pass: &str,
    actor: &str,
) -> dbcrate_control::error::Result<dbcrate_core::secret::SecretString> {
    orgs::export_recovery_key_with(db, keys, org, Some(&passphrase(pass)), actor, NOW).await
}

/// Customer-sealed mode: after switching on, the database and the master key together
/// no longer open the organisation key; the passphrase does (the same key, which
/// decrypts a backup made before); a wrong one is refused, audited and throttled;
/// master-key rotation re-wraps the outer layer; switching off restores managed mode.
async fn customer_sealed(db: Db) {
    use dbcrate_control::error::Code;
    use orgs::KeyMode;
    db.migrate().await.unwrap();
    let k1 = common::keys_with_audit_key(&db, NOW).await;
    let org = orgs::create(&db, &k1, "Acme", "user:owner", NOW)
        .await
        .unwrap();
    let recipient: age::x25519::Recipient = org.recipient.parse().unwrap();
    let backup = age::encrypt(&recipient, b"made before sealing").unwrap();
    let before = orgs::export_recovery_key(&db, &k1, &org.id, "user:owner", NOW)
        .await
        .unwrap();
    assert_eq!(
        orgs::key_mode(&db, &org.id).await.unwrap(),
        KeyMode::Managed
    );

    // Too short a passphrase is refused, nothing changes.
    let err = orgs::enable_customer_seal(
        &db,
        &k1,
        &org.id,
        &passphrase("fifteen chars!!"),
        "user:owner",
        NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, Code::InvalidInput);
    assert!(err.message.contains("16"), "{}", err.message);
    assert_eq!(
        orgs::key_mode(&db, &org.id).await.unwrap(),
        KeyMode::Managed
    );

    orgs::enable_customer_seal(&db, &k1, &org.id, &passphrase(SEAL_PASS), "user:owner", NOW)
        .await
        .unwrap();
    assert_eq!(
        orgs::key_mode(&db, &org.id).await.unwrap(),
        KeyMode::CustomerSealed
    );
    let again =
        orgs::enable_customer_seal(&db, &k1, &org.id, &passphrase(SEAL_PASS), "user:owner", NOW)
            .await
            .unwrap_err();
    assert_eq!(again.code, Code::Conflict);

    // The database and the master key alone: no export, and no secret row of the
    // organisation opens (with the master key) to an age identity any more.
    let err = orgs::export_recovery_key(&db, &k1, &org.id, "user:owner", NOW)
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::CustomerPassphraseRequired);
    assert!(err.message.contains("passphrase"), "{}", err.message);
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT id, purpose FROM secrets WHERE org_id = $1")
            .bind(&org.id)
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|(_, p)| p != orgs::ORG_KEY_PURPOSE),
        "{rows:?}"
    );
    for (id, purpose) in &rows {
        let opened = secrets::unwrap(
            &db,
            &k1,
            secrets::SecretRef {
                owner: secrets::Owner::Org(&org.id),
                id,
                purpose,
            },
            "test",
            "test",
            NOW,
        )
        .await
        .unwrap();
        let text = String::from_utf8_lossy(&opened);
        assert!(
            !text.contains("AGE-SECRET-KEY"),
            "{purpose} opens to the key"
        );
        assert!(!text.contains(&before.expose_secret()[before.expose_secret().len() - 40..]));
    }

    // A wrong passphrase: refused, audited, counted.
    let err = export_with(&db, &k1, &org.id, "not the passphrase at all", "user:owner")
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::CustomerPassphraseInvalid);
    assert!(!err.message.contains("not the passphrase"));
    dbcrate_testkit::assert_audited(
        db.pool(),
        &org.id,
        &[
            "org.key.customer_seal.enable",
            "org.key.customer_seal.wrong_passphrase",
        ],
    )
    .await;
    let dump: Vec<String> = sqlx::query_scalar("SELECT details FROM audit_log")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert!(
        dump.iter()
            .all(|d| !d.contains("horse") && !d.contains("not the passphrase")),
        "{dump:?}"
    );

    // The right one gives the same key, which decrypts the backup made before.
    let after = export_with(&db, &k1, &org.id, SEAL_PASS, "user:owner")
        .await
        .unwrap();
    let identity = identity_of(after.expose_secret());
    assert_eq!(
        identity.to_public().to_string(),
        identity_of(before.expose_secret()).to_public().to_string()
    );
    assert_eq!(
        after.expose_secret().lines().last(),
        before.expose_secret().lines().last()
    );
    assert_eq!(
        age::decrypt(&identity, &backup).unwrap(),
        b"made before sealing"
    );

    // A managed restore cannot be queued without the passphrase.
    let (bkp, dbs) = (
        format!("bkp_{}", "0".repeat(32)),
        format!("dbs_{}", "0".repeat(32)),
    );
    let err = dbcrate_control::backups::restores::create(&db, &org.id, &bkp, &dbs, "user:o", T)
        .await
        .unwrap_err();
    assert_eq!(err.code, Code::CustomerPassphraseRequired);

    // Master-key rotation re-wraps the outer layer; the passphrase still opens it under
    // the new key alone.
    let both = keys(&format!("{K2} {K1}"));
    assert!(
        secrets::rotate_master_key(&db, &both, "system", NOW, usize::MAX)
            .await
            .unwrap()
            >= 1
    );
    let k2 = keys(K2);
    secrets::check_master_keys(&db, &k2).await.unwrap();
    let rotated = export_with(&db, &k2, &org.id, SEAL_PASS, "user:owner")
        .await
        .unwrap();
    assert_eq!(
        age::decrypt(&identity_of(rotated.expose_secret()), &backup).unwrap(),
        b"made before sealing"
    );

    // Switching off needs the passphrase; then managed mode works without it.
    let err = orgs::disable_customer_seal(
        &db,
        &k2,
        &org.id,
        &passphrase("still not the passphrase"),
        "user:owner",
        NOW,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, Code::CustomerPassphraseInvalid);
    orgs::disable_customer_seal(&db, &k2, &org.id, &passphrase(SEAL_PASS), "user:owner", NOW)
        .await
        .unwrap();
    assert_eq!(
        orgs::key_mode(&db, &org.id).await.unwrap(),
        KeyMode::Managed
    );
    let plain: Vec<String> = sqlx::query_scalar("SELECT purpose FROM secrets WHERE org_id = $1")
        .bind(&org.id)
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert!(
        !plain.iter().any(|p| p == orgs::ORG_KEY_SEALED_PURPOSE),
        "{plain:?}"
    );
    let managed = orgs::export_recovery_key(&db, &k2, &org.id, "user:owner", NOW)
        .await
        .unwrap();
    assert_eq!(
        age::decrypt(&identity_of(managed.expose_secret()), &backup).unwrap(),
        b"made before sealing"
    );
    dbcrate_testkit::assert_audited(db.pool(), &org.id, &["org.key.customer_seal.disable"]).await;
    assert!(audit::verify(&db, &org.id).await.unwrap().is_ok());

    // Guessing is throttled: after a few wrong passphrases even the right one waits.
    orgs::enable_customer_seal(&db, &k2, &org.id, &passphrase(SEAL_PASS), "user:g", NOW)
        .await
        .unwrap();
    let mut codes = Vec::new();
    for _ in 0..orgs::PASSPHRASE_TRIES_PER_PERSON + 1 {
        let e = export_with(&db, &k2, &org.id, "a wrong guess, again", "user:g")
            .await
            .unwrap_err();
        codes.push(e.code);
    }
    assert_eq!(codes.last(), Some(&Code::Throttled), "{codes:?}");
    let e = export_with(&db, &k2, &org.id, SEAL_PASS, "user:g")
        .await
        .unwrap_err();
    assert_eq!(e.code, Code::Throttled);
}

crate::sqlite_and_postgres!(
    sqlite_customer_sealed,
    postgres_customer_sealed,
    customer_sealed
);
