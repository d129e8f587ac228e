//! Signing in: password (and second factor, when enrolled) with throttling, sessions
//! with idle and absolute expiry, step-up, sign-out.
//!
//! Session tokens are 256 random bits given to the client once; the database keeps only
//! their SHA-256, so a leaked database yields no usable session. Failed attempts are
//! throttled per account and per client address. Account events go to the instance's
//! own audit chain ([`INSTANCE_CHAIN`]), since a person may belong to several
//! organisations or none. Time is passed in (Unix seconds) so tests can move the clock.

use crate::accounts::passwords;
use crate::accounts::{second_factor, throttle};
use crate::audit::{AuditAction, AuditEvent, Writer};
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{Code, Error, Result};
use crate::tokens::new_token;
use crate::tokens::token_hash;
use dbcrate_core::secret::SecretString;
use dbcrate_core::time::rfc3339;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

pub use crate::audit::INSTANCE_CHAIN;

/// A session ends this long after sign-in, whatever happens.
pub const ABSOLUTE_LIFETIME_SECS: i64 = 12 * 3600;
/// A session ends after this long unused.
pub const IDLE_TIMEOUT_SECS: i64 = 30 * 60;
/// How recent a second-factor check must be for sensitive operations (recovery-key
/// export).
pub const STEP_UP_WINDOW_SECS: i64 = 5 * 60;

/// The one message for a wrong e-mail or a wrong password: it must not tell which.
const BAD_CREDENTIALS: &str = "wrong e-mail address or password";

/// The CSRF token that goes with a session: derived from the session token, so it
/// needs no storage, and useless without the cookie it belongs to.
pub fn csrf_token(session_token: &SecretString) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"dbcrate csrf v1\0");
    hasher.update(session_token.expose_secret().as_bytes());
    dbcrate_core::hex::encode(&hasher.finalize())
}

/// Audits an event of the person's account in the instance's chain, in a transaction of
/// its own or the caller's (see [`Writer`]).
async fn record<'c>(
    to: impl Into<Writer<'c>>,
    actor: &str,
    action: AuditAction,
    target: &str,
    details: &str,
    now: i64,
) -> Result<()> {
    let event = AuditEvent {
        org_id: INSTANCE_CHAIN,
        actor,
        action,
        target,
        details,
    };
    to.into().append(&event, &rfc3339(now)).await?;
    Ok(())
}

/// What a person offers to sign in.
#[derive(Debug)]
pub struct Credentials<'a> {
    /// Their e-mail address (case-insensitive).
    pub email: &'a str,
    /// Their password.
    pub password: &'a SecretString,
    /// A code from their authenticator app or a recovery code, when they have a second
    /// factor.
    pub second_factor: Option<&'a SecretString>,
}

/// A new session.
#[derive(Debug)]
pub struct SignedIn {
    /// Who signed in.
    pub user_id: String,
    /// The session token, given to the client once.
    pub token: SecretString,
}

/// What a failed or throttled sign-in's audit row names. An account that exists is named
/// by its e-mail; text that names no account is not written down (people type passwords
/// into the e-mail field), only a prefix of its keyed hash, so repeated tries correlate
/// but nothing can be guessed back from the log.
fn failure_subject(keys: &MasterKeys, email: &str, known: bool, address: &str) -> (String, String) {
    if known {
        let details = serde_json::json!({ "email": email, "address": address });
        return (format!("email:{email}"), details.to_string());
    }
    let digest = keys.keyed_hash("audit sign-in name", email.as_bytes());
    let details = serde_json::json!({
        "email_hmac_prefix": dbcrate_core::hex::encode(&digest[..8]),
        "address": address,
    });
    ("email:unknown".to_string(), details.to_string())
}

/// An account as sign-in finds it by its e-mail address.
struct Account {
    id: String,
    password_hash: String,
}

crate::rows::from_row!(Account { id, password_hash });

/// Signs in from client `address`.
pub async fn sign_in(
    db: &Db,
    keys: &MasterKeys,
    credentials: &Credentials<'_>,
    address: &str,
    now: i64,
) -> Result<SignedIn> {
    let email = credentials.email.trim().to_ascii_lowercase();
    let account_key = throttle::account_key(keys, &email);
    let address_key = throttle::address_key(address);
    let user: Option<Account> =
        sqlx::query_as("SELECT id, password_hash FROM users WHERE email = $1")
            .bind(&email)
            .fetch_optional(db.pool())
            .await?;
    let (target, details) = failure_subject(keys, &email, user.is_some(), address);
    let limits = [
        (account_key.as_str(), throttle::MAX_PER_ACCOUNT),
        (address_key.as_str(), throttle::MAX_PER_ADDRESS),
    ];
    let attempt = match throttle::Attempt::begin(db, &limits, now).await {
        Ok(attempt) => attempt,
        Err(e) => {
            if e.code == Code::Throttled {
                record(
                    db,
                    "anonymous",
                    AuditAction::AuthThrottled,
                    &target,
                    &details,
                    now,
                )
                .await?;
            }
            return Err(e);
        }
    };
    let (user_id, hash) = match user {
        Some(Account { id, password_hash }) => (Some(id), password_hash),
        // Hash anyway, so an unknown address takes as long as a wrong password.
        None => (
            None,
            passwords::hash_password_off_thread(credentials.password).await?,
        ),
    };
    let verified = passwords::verify_password_off_thread(hash, credentials.password).await
        && user_id.is_some();
    let Some(user_id) = user_id.filter(|_| verified) else {
        // The attempt stays counted against the account and the address.
        record(
            db,
            "anonymous",
            AuditAction::AuthFailed,
            &target,
            &details,
            now,
        )
        .await?;
        return Err(Error::new(Code::WrongCredentials, BAD_CREDENTIALS));
    };
    attempt.succeeded(db).await?;
    let second_factor_at = if second_factor::is_enabled(db, &user_id).await? {
        let Some(code) = credentials.second_factor else {
            return Err(Error::new(
                Code::SecondFactorRequired,
                "this account has a second factor: enter the code from the authenticator \
                 app (or a recovery code)",
            ));
        };
        second_factor::check(db, keys, &user_id, code, now).await?;
        Some(now)
    } else {
        None
    };
    let token = new_token("")?;
    let actor = format!("user:{user_id}");
    let details = serde_json::json!({
        "address": address,
        "second_factor": second_factor_at.is_some(),
    })
    .to_string();
    let mut conn = db.begin().await?;
    let stored: Result<()> = async {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, \
             revoked, second_factor_at) VALUES ($1, $2, $3, $3, $4, 0, $5)",
        )
        .bind(token_hash(token.expose_secret()))
        .bind(&user_id)
        .bind(now)
        .bind(now + ABSOLUTE_LIFETIME_SECS)
        .bind(second_factor_at)
        .execute(&mut *conn)
        .await?;
        let action = AuditAction::AuthSignIn;
        record(&mut conn, &actor, action, &actor, &details, now).await
    }
    .await;
    end_write(conn, stored).await?;
    Ok(SignedIn { user_id, token })
}

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Whose.
    pub user_id: String,
    /// The stored hash of its token.
    pub token_hash: String,
    /// When a second factor was last checked in this session.
    pub second_factor_at: Option<i64>,
    /// Whether the person still has a one-time password to change.
    pub must_change_password: bool,
}

impl Session {
    /// Whether a second factor was checked within [`STEP_UP_WINDOW_SECS`] of `now`.
    pub fn recently_stepped_up(&self, now: i64) -> bool {
        self.second_factor_at
            .is_some_and(|at| now - at < STEP_UP_WINDOW_SECS)
    }
}

/// A session as stored, with its person's password state. Flags are integers, as
/// SQLite stores them.
struct StoredSession {
    user_id: String,
    last_seen_at: i64,
    expires_at: i64,
    revoked: i64,
    second_factor_at: Option<i64>,
    must_change_password: i64,
}

crate::rows::from_row!(StoredSession {
    user_id,
    last_seen_at,
    expires_at,
    revoked,
    second_factor_at,
    must_change_password,
});

/// The session a token belongs to, if it is live; refreshes its idle timer.
pub async fn authenticate(db: &Db, token: &SecretString, now: i64) -> Result<Session> {
    let hash = token_hash(token.expose_secret());
    let row: StoredSession = sqlx::query_as(
        "SELECT s.user_id, s.last_seen_at, s.expires_at, s.revoked, s.second_factor_at, \
         u.must_change_password FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| Error::new(Code::NotSignedIn, "not signed in"))?;
    if row.revoked != 0 || now >= row.expires_at || now - row.last_seen_at >= IDLE_TIMEOUT_SECS {
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
    Ok(Session {
        user_id: row.user_id,
        token_hash: hash,
        second_factor_at: row.second_factor_at,
        must_change_password: row.must_change_password != 0,
    })
}

/// Checks a second-factor code within a live session and records when, for operations
/// that need a recent one.
pub async fn step_up(
    db: &Db,
    keys: &MasterKeys,
    session: &Session,
    code: &SecretString,
    now: i64,
) -> Result<()> {
    if !second_factor::is_enabled(db, &session.user_id).await? {
        return Err(Error::new(
            Code::RecentSecondFactorRequired,
            "this account has no second factor: enrol one first",
        ));
    }
    second_factor::check(db, keys, &session.user_id, code, now).await?;
    sqlx::query("UPDATE sessions SET second_factor_at = $1 WHERE token_hash = $2")
        .bind(now)
        .bind(&session.token_hash)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Ends a session; it cannot be used again.
pub async fn sign_out(db: &Db, session: &Session, now: i64) -> Result<()> {
    let actor = format!("user:{}", session.user_id);
    let mut conn = db.begin().await?;
    let done: Result<()> = async {
        sqlx::query("UPDATE sessions SET revoked = 1 WHERE token_hash = $1")
            .bind(&session.token_hash)
            .execute(&mut *conn)
            .await?;
        let action = AuditAction::AuthSignOut;
        record(&mut conn, &actor, action, &actor, "{}", now).await
    }
    .await;
    end_write(conn, done).await
}

/// Revokes every session of `user_id` except the one with token hash `keep`, inside the
/// caller's transaction (after a password change or reset).
pub async fn revoke_all_in(
    conn: &mut AnyConnection,
    user_id: &str,
    keep: Option<&str>,
) -> Result<()> {
    sqlx::query("UPDATE sessions SET revoked = 1 WHERE user_id = $1 AND token_hash <> $2")
        .bind(user_id)
        .bind(keep.unwrap_or(""))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
