//! Sign-in, throttling, idle and absolute expiry, sign-out — on both engines.

mod common;

use dbcrate_control::accounts::sessions::{self, INSTANCE_CHAIN};
use dbcrate_control::accounts::throttle;
use dbcrate_control::audit;
use dbcrate_control::db::Db;
use dbcrate_control::envelope::MasterKeys;
use dbcrate_control::setup;
use dbcrate_core::secret::SecretString;

const T0: i64 = 1_800_000_000;

fn pw(s: &str) -> SecretString {
    SecretString::new(s.to_string())
}

async fn sign_in(
    db: &Db,
    keys: &MasterKeys,
    email: &str,
    password: &SecretString,
    address: &str,
    now: i64,
) -> dbcrate_control::error::Result<(String, SecretString)> {
    let credentials = sessions::Credentials {
        email,
        password,
        second_factor: None,
    };
    let signed_in = sessions::sign_in(db, keys, &credentials, address, now).await?;
    Ok((signed_in.user_id, signed_in.token))
}

/// `db` migrated, keyed and initialised with the organisation Acme and its owner
/// owner@example.com.
async fn initialised(db: &Db) -> (MasterKeys, setup::Initialised) {
    db.migrate().await.unwrap();
    let keys = common::keys_with_audit_key(db, "2026-11-29T05:00:00Z").await;
    let init = setup::init(
        db,
        &keys,
        "Acme",
        "owner@example.com",
        "2026-11-29T05:00:00Z",
    )
    .await
    .unwrap();
    (keys, init)
}

async fn sessions_behave(db: Db) {
    let (keys, init) = initialised(&db).await;
    let good = pw(init.one_time_password.expose_secret());

    let (user, token) = sign_in(&db, &keys, "Owner@Example.com", &good, "192.0.2.1", T0)
        .await
        .unwrap();
    assert_eq!(user, init.owner_id);
    assert_eq!(
        sessions::authenticate(&db, &token, T0 + 60)
            .await
            .unwrap()
            .user_id,
        user
    );
    // Only the token's hash is stored.
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM sessions")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_ne!(stored, token.expose_secret());

    // Wrong password and unknown account give the same answer.
    let wrong = sign_in(
        &db,
        &keys,
        "owner@example.com",
        &pw("nope"),
        "192.0.2.1",
        T0,
    )
    .await
    .unwrap_err();
    let unknown = sign_in(&db, &keys, "nobody@example.com", &good, "192.0.2.1", T0)
        .await
        .unwrap_err();
    assert_eq!(wrong.to_string(), unknown.to_string());

    // Idle timeout, refreshed by use; absolute lifetime regardless of use.
    let t = T0 + 60 + sessions::IDLE_TIMEOUT_SECS - 1;
    assert!(sessions::authenticate(&db, &token, t).await.is_ok());
    assert!(
        sessions::authenticate(&db, &token, t + sessions::IDLE_TIMEOUT_SECS)
            .await
            .is_err()
    );
    let (_, token2) = sign_in(&db, &keys, "owner@example.com", &good, "192.0.2.1", T0)
        .await
        .unwrap();
    let mut t = T0;
    while t + 600 < T0 + sessions::ABSOLUTE_LIFETIME_SECS {
        t += 600;
        sessions::authenticate(&db, &token2, t).await.unwrap();
    }
    assert!(
        sessions::authenticate(&db, &token2, T0 + sessions::ABSOLUTE_LIFETIME_SECS)
            .await
            .is_err()
    );

    // Sign-out revokes.
    let (_, token3) = sign_in(&db, &keys, "owner@example.com", &good, "192.0.2.1", T0)
        .await
        .unwrap();
    let session3 = sessions::authenticate(&db, &token3, T0 + 1).await.unwrap();
    sessions::sign_out(&db, &session3, T0 + 1).await.unwrap();
    assert!(sessions::authenticate(&db, &token3, T0 + 2).await.is_err());

    // Throttling per account: after 5 failures even the right password is refused.
    let later = T0 + 3600;
    for _ in 0..throttle::MAX_PER_ACCOUNT {
        sign_in(
            &db,
            &keys,
            "owner@example.com",
            &pw("guess"),
            "198.51.100.7",
            later,
        )
        .await
        .unwrap_err();
    }
    let err = sign_in(
        &db,
        &keys,
        "owner@example.com",
        &good,
        "198.51.100.8",
        later + 1,
    )
    .await
    .unwrap_err();
    assert!(err.code == dbcrate_control::error::Code::Throttled, "{err}");
    // The window passes.
    sign_in(
        &db,
        &keys,
        "owner@example.com",
        &good,
        "198.51.100.8",
        later + throttle::WINDOW_SECS + 1,
    )
    .await
    .unwrap();

    // A password typed into the e-mail field (no such account) is not written into the
    // audit log; failures on a real account name it.
    let typed = "Correct-Horse-Battery-Staple-9";
    let err = sign_in(&db, &keys, typed, &good, "198.51.100.9", later + 2000)
        .await
        .unwrap_err();
    assert!(
        err.code == dbcrate_control::error::Code::WrongCredentials,
        "{err}"
    );
    let rows = audit::rows(&db, INSTANCE_CHAIN).await.unwrap();
    let text: String = rows
        .iter()
        .map(|r| format!("{} {} {}\n", r.target, r.details, r.actor))
        .collect();
    assert!(
        !text
            .to_ascii_lowercase()
            .contains(&typed.to_ascii_lowercase()),
        "{text}"
    );
    assert!(
        rows.iter()
            .any(|r| r.action == "auth.failed" && r.target == "email:unknown"),
        "{text}"
    );
    assert!(
        rows.iter()
            .any(|r| r.action == "auth.failed" && r.details.contains("owner@example.com")),
        "{text}"
    );

    let throttled: Vec<String> = sqlx::query_scalar("SELECT throttle_key FROM sign_in_failures")
        .fetch_all(db.pool())
        .await
        .unwrap();
    assert!(
        !throttled
            .iter()
            .any(|k| k.to_ascii_lowercase().contains(&typed.to_ascii_lowercase())),
        "{throttled:?}"
    );

    dbcrate_testkit::assert_audited(
        db.pool(),
        INSTANCE_CHAIN,
        &[
            "auth.sign_in",
            "auth.failed",
            "auth.sign_out",
            "auth.throttled",
        ],
    )
    .await;
    assert!(audit::verify(&db, INSTANCE_CHAIN).await.unwrap().is_ok());
}

crate::sqlite_and_postgres!(sqlite_sessions, postgres_sessions, sessions_behave);

/// A burst of parallel wrong codes: at most the limit is even checked; the rest are
/// throttled, however they interleave.
async fn parallel_guesses_are_throttled(db: Db) {
    use dbcrate_control::accounts::{second_factor, totp};
    use dbcrate_control::error::Code;
    let (keys, init) = initialised(&db).await;
    let keys = std::sync::Arc::new(keys);
    let user = init.owner_id;
    let enrolment = second_factor::begin(&db, &keys, &user, "owner@example.com", T0)
        .await
        .unwrap();
    let seed = data_encoding::BASE32_NOPAD
        .decode(enrolment.secret.expose_secret().as_bytes())
        .unwrap();
    let code = format!("{:06}", totp::code_at(&seed, totp::step_of(T0)));
    second_factor::confirm(&db, &keys, &user, &code, T0)
        .await
        .unwrap();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (db, keys, user) = (db.clone(), keys.clone(), user.clone());
        tasks.push(tokio::spawn(async move {
            second_factor::check(&db, &keys, &user, &pw(wrong), T0 + 40)
                .await
                .unwrap_err()
                .code
        }));
    }
    let mut checked = 0;
    for t in tasks {
        match t.await.unwrap() {
            Code::SecondFactorInvalid => checked += 1,
            Code::Throttled => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    // Checking first and counting after would let all 20 through.
    assert!(
        checked <= throttle::MAX_PER_ACCOUNT,
        "{checked} guesses were checked"
    );

    // Failures older than the window count for nothing and are pruned; newer ones stay.
    let last = T0 + 40;
    assert_eq!(
        throttle::prune(&db, last + throttle::WINDOW_SECS - 1)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        throttle::prune(&db, last + throttle::WINDOW_SECS)
            .await
            .unwrap(),
        20
    );
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM sign_in_failures")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
}

crate::sqlite_and_postgres!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    sqlite_parallel_guesses_are_throttled,
    postgres_parallel_guesses_are_throttled,
    parallel_guesses_are_throttled
);
