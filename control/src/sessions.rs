//! Signing in: password check with throttling, sessions with idle and absolute expiry.
//!
//! Session tokens are 256 random bits given to the client once; the database keeps only
//! their SHA-256, so a leaked database yields no usable session. Failed attempts are
//! throttled per account and per client address. Account events go to the instance's
//! own audit chain ([`INSTANCE_CHAIN`]), since a person may belong to several
//! organisations or none. Pure time arithmetic takes `now` (Unix seconds) so tests can
//! move the clock.

use crate::audit::{self, AuditEvent};
use crate::db::Db;
use crate::error::{Code, Error, Result};
use crate::users;
use base64::Engine;
use dbcrate_core::secret::SecretString;
use sha2::{Digest, Sha256};
use sqlx::Row;

pub use crate::audit::INSTANCE_CHAIN;
/// A session ends this long after sign-in, whatever happens.
pub const ABSOLUTE_LIFETIME_SECS: i64 = 12 * 3600;
/// A session ends after this long unused.
pub const IDLE_TIMEOUT_SECS: i64 = 30 * 60;
/// The window in which failures are counted.
pub const THROTTLE_WINDOW_SECS: i64 = 15 * 60;
/// Failures per account within the window before sign-in is refused.
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
/// Failures per client address within the window before sign-in is refused.
pub const MAX_FAILURES_PER_ADDRESS: i64 = 20;

/// The one message for a wrong e-mail or a wrong password: it must not tell which.
const BAD_CREDENTIALS: &str = "wrong e-mail address or password";

fn token_hash(token: &str) -> String {
    dbcrate_core::hex::encode(&Sha256::digest(token.as_bytes()))
}

fn rfc3339(unix: i64) -> String {
    dbcrate_core::time::UtcDateTime::from_unix(unix).rfc3339()
}

async fn record(
    db: &Db,
    actor: &str,
    action: &str,
    target: &str,
    details: &str,
    now: i64,
) -> Result<()> {
    audit::append(
        db,
        &AuditEvent {
            org_id: INSTANCE_CHAIN,
            actor,
            action,
            target,
            details,
        },
        &rfc3339(now),
    )
    .await?;
    Ok(())
}

async fn recent_failures(db: &Db, key: &str, now: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM sign_in_failures WHERE throttle_key = $1 AND at > $2",
    )
    .bind(key)
    .bind(now - THROTTLE_WINDOW_SECS)
    .fetch_one(db.pool())
    .await?)
}

/// Signs in with e-mail and password from client `address`. Returns the user id and a
/// new session token (shown to the client once).
pub async fn sign_in(
    db: &Db,
    email: &str,
    password: &SecretString,
    address: &str,
    now: i64,
) -> Result<(String, SecretString)> {
    let email = email.trim().to_ascii_lowercase();
    let account_key = format!("account:{email}");
    let address_key = format!("address:{address}");
    if recent_failures(db, &account_key, now).await? >= MAX_FAILURES_PER_ACCOUNT
        || recent_failures(db, &address_key, now).await? >= MAX_FAILURES_PER_ADDRESS
    {
        let details = serde_json::json!({ "email": email, "address": address }).to_string();
        record(
            db,
            "anonymous",
            "auth.throttled",
            &format!("email:{email}"),
            &details,
            now,
        )
        .await?;
        return Err(Error::new(
            Code::Throttled,
            "too many failed sign-ins: try again in 15 minutes",
        ));
    }
    let user = sqlx::query("SELECT id, password_hash FROM users WHERE email = $1")
        .bind(&email)
        .fetch_optional(db.pool())
        .await?;
    let (user_id, hash) = match &user {
        Some(row) => (
            Some(row.try_get::<String, _>(0)?),
            row.try_get::<String, _>(1)?,
        ),
        // Hash anyway, so an unknown address takes as long as a wrong password.
        None => (None, users::hash_password(password)?),
    };
    let verified = users::verify_password(&hash, password) && user_id.is_some();
    let Some(user_id) = user_id.filter(|_| verified) else {
        for key in [&account_key, &address_key] {
            sqlx::query("INSERT INTO sign_in_failures (throttle_key, at) VALUES ($1, $2)")
                .bind(key)
                .bind(now)
                .execute(db.pool())
                .await?;
        }
        let details = serde_json::json!({ "email": email, "address": address }).to_string();
        record(
            db,
            "anonymous",
            "auth.failed",
            &format!("email:{email}"),
            &details,
            now,
        )
        .await?;
        return Err(Error::new(Code::WrongCredentials, BAD_CREDENTIALS));
    };
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::getrandom(raw.as_mut_slice())
        .map_err(|_| Error::internal("the system random number generator failed"))?;
    let token =
        SecretString::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw.as_slice()));
    sqlx::query(
        "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, revoked) \
         VALUES ($1, $2, $3, $3, $4, 0)",
    )
    .bind(token_hash(token.expose_secret()))
    .bind(&user_id)
    .bind(now)
    .bind(now + ABSOLUTE_LIFETIME_SECS)
    .execute(db.pool())
    .await?;
    let details = serde_json::json!({ "address": address }).to_string();
    record(
        db,
        &format!("user:{user_id}"),
        "auth.sign_in",
        &format!("user:{user_id}"),
        &details,
        now,
    )
    .await?;
    Ok((user_id, token))
}

/// The user a session token belongs to, if the session is live; refreshes its idle
/// timer.
pub async fn authenticate(db: &Db, token: &SecretString, now: i64) -> Result<String> {
    let hash = token_hash(token.expose_secret());
    let row = sqlx::query(
        "SELECT user_id, last_seen_at, expires_at, revoked FROM sessions WHERE token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| Error::new(Code::NotSignedIn, "not signed in"))?;
    let user_id: String = row.try_get(0)?;
    let last_seen: i64 = row.try_get(1)?;
    let expires: i64 = row.try_get(2)?;
    let revoked: i64 = row.try_get(3)?;
    if revoked != 0 || now >= expires || now - last_seen >= IDLE_TIMEOUT_SECS {
        return Err(Error::new(
            Code::NotSignedIn,
            "the session has ended: sign in again",
        ));
    }
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
        .bind(now)
        .bind(&hash)
        .execute(db.pool())
        .await?;
    Ok(user_id)
}

/// Ends a session; it cannot be used again.
pub async fn sign_out(db: &Db, token: &SecretString, now: i64) -> Result<()> {
    let user_id = authenticate(db, token, now).await?;
    sqlx::query("UPDATE sessions SET revoked = 1 WHERE token_hash = $1")
        .bind(token_hash(token.expose_secret()))
        .execute(db.pool())
        .await?;
    record(
        db,
        &format!("user:{user_id}"),
        "auth.sign_out",
        &format!("user:{user_id}"),
        "{}",
        now,
    )
    .await
}
