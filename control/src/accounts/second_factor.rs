//! Second factors: a TOTP seed per person (sealed like any secret, in `user_secrets`),
//! and single-use recovery codes for when the phone is lost.
//!
//! Enrolment has two steps so nobody is locked out by a mistyped seed: `begin` stores a
//! pending seed and shows it once (base32 and `otpauth://` URI, what a QR code holds);
//! `confirm` turns it on only after a code from the app matches, and returns the
//! recovery codes, also shown once and stored as SHA-256 hashes. A code is accepted at
//! most once: the accepted TOTP step is stored with a conditional update, so two
//! requests racing with the same code cannot both pass.

use crate::accounts::{throttle, totp};
use crate::audit::{self, AuditAction, AuditEvent, INSTANCE_CHAIN};
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{random_bytes, Code, Error, Result};
use crate::secrets::{self, Owner, SecretRef};
use dbcrate_core::secret::SecretString;
use dbcrate_core::time::rfc3339;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

/// The purpose recorded with a TOTP seed.
pub const SEED_PURPOSE: &str = "totp-seed";
/// Recovery codes issued at enrolment.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// What a person needs to set up their authenticator app; shown once.
#[derive(Debug)]
pub struct Enrolment {
    /// The seed in base32, for typing in.
    pub secret: SecretString,
    /// The `otpauth://` URI, for a QR code.
    pub otpauth_uri: SecretString,
}

fn account_event<'a>(actor: &'a str, action: AuditAction) -> AuditEvent<'a> {
    AuditEvent {
        org_id: INSTANCE_CHAIN,
        actor,
        action,
        target: actor,
        details: "{}",
    }
}

/// Audits an account event inside the caller's transaction.
async fn record_in(
    conn: &mut AnyConnection,
    user_id: &str,
    action: AuditAction,
    now: i64,
) -> Result<()> {
    let actor = format!("user:{user_id}");
    audit::append_in(conn, &account_event(&actor, action), &rfc3339(now)).await?;
    Ok(())
}

/// Audits an account event in a transaction of its own.
async fn record(db: &Db, user_id: &str, action: AuditAction, now: i64) -> Result<()> {
    let actor = format!("user:{user_id}");
    audit::append(db, &account_event(&actor, action), &rfc3339(now)).await?;
    Ok(())
}

/// Whether the person has a confirmed second factor.
pub async fn is_enabled(db: &Db, user_id: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM second_factors WHERE user_id = $1 AND confirmed = 1",
    )
    .bind(user_id)
    .fetch_one(db.pool())
    .await?;
    Ok(n > 0)
}

/// Deletes the person's factor row, seed and recovery codes inside a transaction.
async fn delete_all(conn: &mut AnyConnection, user_id: &str) -> Result<()> {
    let seed: Option<String> =
        sqlx::query_scalar("SELECT secret_id FROM second_factors WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut *conn)
            .await?;
    sqlx::query("DELETE FROM second_factors WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    if let Some(seed) = seed {
        sqlx::query("DELETE FROM user_secrets WHERE id = $1")
            .bind(seed)
            .execute(&mut *conn)
            .await?;
    }
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Starts enrolment: a fresh seed replaces any unconfirmed one. Refused while a
/// confirmed factor exists (disable it first).
pub async fn begin(
    db: &Db,
    keys: &MasterKeys,
    user_id: &str,
    account: &str,
    now: i64,
) -> Result<Enrolment> {
    if is_enabled(db, user_id).await? {
        return Err(Error::conflict(
            "a second factor is enrolled already: disable it first to enrol a new one",
        ));
    }
    let seed = random_bytes::<20>()?;
    let mut conn = db.begin().await?;
    let stored: Result<()> = async {
        delete_all(&mut conn, user_id).await?;
        let secret_id = secrets::insert(
            &mut conn,
            keys,
            Owner::User(user_id),
            SEED_PURPOSE,
            seed.as_slice(),
            &rfc3339(now),
        )
        .await?;
        sqlx::query(
            "INSERT INTO second_factors (user_id, secret_id, confirmed, created_at) \
             VALUES ($1, $2, 0, $3)",
        )
        .bind(user_id)
        .bind(secret_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
    .await;
    end_write(conn, stored).await?;
    Ok(Enrolment {
        secret: SecretString::new(data_encoding::BASE32_NOPAD.encode(seed.as_slice())),
        otpauth_uri: SecretString::new(totp::otpauth_uri(account, seed.as_slice())),
    })
}

/// A person's TOTP seed (its sealed secret) and the last step a code was used for.
struct Seed {
    secret_id: String,
    last_used_step: Option<i64>,
}

crate::rows::from_row!(Seed {
    secret_id,
    last_used_step
});

/// Checks a TOTP `code` against the person's seed (confirmed or, when `pending`, the
/// unconfirmed one) and consumes its step. Returns the seed's secret id when it matched.
async fn consume_totp(
    db: &Db,
    keys: &MasterKeys,
    user_id: &str,
    code: &str,
    pending: bool,
    now: i64,
) -> Result<Option<String>> {
    let seed: Option<Seed> = sqlx::query_as(
        "SELECT secret_id, last_used_step FROM second_factors WHERE user_id = $1 AND confirmed = $2",
    )
    .bind(user_id)
    .bind(if pending { 0i64 } else { 1 })
    .fetch_optional(db.pool())
    .await?;
    let Some(Seed {
        secret_id,
        last_used_step: last_used,
    }) = seed
    else {
        return Ok(None);
    };
    let reason = if pending {
        "second-factor enrolment"
    } else {
        "second-factor check"
    };
    let seed = secrets::unwrap(
        db,
        keys,
        SecretRef {
            owner: Owner::User(user_id),
            id: &secret_id,
            purpose: SEED_PURPOSE,
        },
        &format!("user:{user_id}"),
        reason,
        &rfc3339(now),
    )
    .await?;
    let Some(step) = totp::verify(&seed, code, now, last_used) else {
        return Ok(None);
    };
    let updated = sqlx::query(
        "UPDATE second_factors SET last_used_step = $1 \
         WHERE user_id = $2 AND secret_id = $3 AND (last_used_step IS NULL OR last_used_step < $1)",
    )
    .bind(step)
    .bind(user_id)
    .bind(&secret_id)
    .execute(db.pool())
    .await?;
    Ok((updated.rows_affected() == 1).then_some(secret_id))
}

fn recovery_hash(code: &str) -> String {
    let normalised: String = code
        .trim()
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    dbcrate_core::hex::encode(&Sha256::digest(normalised.as_bytes()))
}

/// A recovery code: 10 base32 characters (50 bits) as `xxxxx-xxxxx`. Guessing is
/// throttled to a handful of tries per 15 minutes.
fn new_recovery_code() -> Result<SecretString> {
    let bytes = random_bytes::<8>()?;
    let text = data_encoding::BASE32_NOPAD
        .encode(bytes.as_slice())
        .to_ascii_lowercase();
    Ok(SecretString::new(format!(
        "{}-{}",
        &text[..5],
        &text[5..10]
    )))
}

/// Confirms a pending enrolment with a code from the app; returns the recovery codes
/// (shown once). Audited as `user.second_factor.enrol`.
pub async fn confirm(
    db: &Db,
    keys: &MasterKeys,
    user_id: &str,
    code: &str,
    now: i64,
) -> Result<Vec<SecretString>> {
    let Some(secret_id) = consume_totp(db, keys, user_id, code, true, now).await? else {
        return Err(Error::new(
            Code::SecondFactorInvalid,
            "the code does not match: check the authenticator app's clock and enter the current code",
        ));
    };
    let codes = (0..RECOVERY_CODE_COUNT)
        .map(|_| new_recovery_code())
        .collect::<Result<Vec<_>>>()?;
    let mut conn = db.begin().await?;
    let done: Result<()> = async {
        // Only the seed the code was checked against: a concurrent new enrolment must
        // not be confirmed by this code.
        let confirmed = sqlx::query(
            "UPDATE second_factors SET confirmed = 1 \
             WHERE user_id = $1 AND secret_id = $2 AND confirmed = 0",
        )
        .bind(user_id)
        .bind(&secret_id)
        .execute(&mut *conn)
        .await?;
        if confirmed.rows_affected() != 1 {
            return Err(Error::conflict(
                "the enrolment changed meanwhile: start it again",
            ));
        }
        for code in &codes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(user_id)
                .bind(recovery_hash(code.expose_secret()))
                .execute(&mut *conn)
                .await?;
        }
        record_in(&mut conn, user_id, AuditAction::UserSecondFactorEnrol, now).await
    }
    .await;
    end_write(conn, done).await?;
    Ok(codes)
}

/// Checks a code from the app or a recovery code (used up) for a person with a
/// confirmed factor. Failures are throttled and audited.
pub async fn check(
    db: &Db,
    keys: &MasterKeys,
    user_id: &str,
    code: &SecretString,
    now: i64,
) -> Result<()> {
    let key = throttle::second_factor_key(user_id);
    let attempt = throttle::Attempt::begin(db, &[(&key, throttle::MAX_PER_ACCOUNT)], now).await?;
    let code = code.expose_secret().trim();
    let passed = if code.len() == 6 {
        consume_totp(db, keys, user_id, code, false, now)
            .await?
            .is_some()
    } else {
        // Using the code and auditing it happen together, or not at all.
        let mut conn = db.begin().await?;
        let used: Result<bool> = async {
            let used = sqlx::query(
                "UPDATE recovery_codes SET used_at = $1 \
                 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
            )
            .bind(now)
            .bind(user_id)
            .bind(recovery_hash(code))
            .execute(&mut *conn)
            .await?;
            let used = used.rows_affected() == 1;
            if used {
                record_in(&mut conn, user_id, AuditAction::AuthRecoveryCodeUse, now).await?;
            }
            Ok(used)
        }
        .await;
        end_write(conn, used).await?
    };
    if passed {
        return attempt.succeeded(db).await;
    }
    record(db, user_id, AuditAction::AuthSecondFactorFailed, now).await?;
    Err(Error::new(
        Code::SecondFactorInvalid,
        "the second-factor code is wrong or was used already: enter the current code from \
         the app, or an unused recovery code",
    ))
}

/// Turns the second factor off and forgets its seed and recovery codes. The caller
/// has checked the password and a current code. Audited as `user.second_factor.disable`.
pub async fn disable(db: &Db, user_id: &str, now: i64) -> Result<()> {
    let mut conn = db.begin().await?;
    let done: Result<()> = async {
        delete_all(&mut conn, user_id).await?;
        // No session keeps a step-up from a factor that no longer exists.
        sqlx::query("UPDATE sessions SET second_factor_at = NULL WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        record_in(
            &mut conn,
            user_id,
            AuditAction::UserSecondFactorDisable,
            now,
        )
        .await
    }
    .await;
    end_write(conn, done).await
}

/// How many unused recovery codes the person has left.
pub async fn recovery_codes_left(db: &Db, user_id: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
    )
    .bind(user_id)
    .fetch_one(db.pool())
    .await?)
}
