//! People: accounts with Argon2id password hashes, and their role in each organisation.
//!
//! Sign-in and sessions live in `sessions`, second factors in `second_factor`,
//! membership changes in `members`.

use crate::audit::{self, AuditEvent};
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{new_id, Code, Error, Result};
use crate::{sessions, throttle};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use dbcrate_core::secret::SecretString;
use sqlx::AnyConnection;

/// The roles a member can have in an organisation, most powerful first.
pub const ROLES: [&str; 4] = ["owner", "admin", "operator", "viewer"];

/// An Argon2id hash (PHC string, salted, default parameters) of `password`.
pub fn hash_password(password: &SecretString) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("hashing a password failed: {e}")))
}

/// Whether `password` matches the stored `hash`.
pub fn verify_password(hash: &str, password: &SecretString) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok()
    })
}

/// [`verify_password`] on the blocking pool: Argon2 takes tens of milliseconds of CPU,
/// which must not stall the async workers serving everything else (on 2 cores a few
/// sign-ins would).
pub async fn verify_password_off_thread(hash: String, password: &SecretString) -> bool {
    let password = SecretString::new(password.expose_secret().to_string());
    tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false)
}

/// [`hash_password`] on the blocking pool (see [`verify_password_off_thread`]).
pub async fn hash_password_off_thread(password: &SecretString) -> Result<String> {
    let password = SecretString::new(password.expose_secret().to_string());
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| Error::internal("hashing a password was cancelled"))?
}

/// A random one-time password (144 bits, URL-safe), shown once and changed at first
/// sign-in.
pub fn one_time_password() -> Result<SecretString> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 18]);
    getrandom::getrandom(bytes.as_mut_slice())
        .map_err(|_| Error::internal("the system random number generator failed"))?;
    Ok(SecretString::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_slice()),
    ))
}

/// The shortest password accepted. Long passphrases beat composition rules (NIST SP
/// 800-63B); the upper bound keeps Argon2 input sane.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted, in bytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Checks a new password against the policy.
pub fn check_new_password(password: &SecretString) -> Result<()> {
    let text = password.expose_secret();
    if text.chars().count() < MIN_PASSWORD_CHARS || text.len() > MAX_PASSWORD_BYTES {
        return Err(Error::invalid(format!(
            "a password must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} characters long; \
             a few random words make a good one"
        )));
    }
    Ok(())
}

/// Re-checks a signed-in person's password before a sensitive change (new password,
/// second factor off). Wrong guesses count against the account like failed sign-ins,
/// so a stolen session cannot be used to guess the password quickly.
pub async fn confirm_password(
    db: &Db,
    keys: &MasterKeys,
    user_id: &str,
    password: &SecretString,
    now: i64,
) -> Result<()> {
    let row = sqlx::query("SELECT email, password_hash FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(|| Error::not_found("no such user"))?;
    let email: String = sqlx::Row::try_get(&row, 0)?;
    let hash: String = sqlx::Row::try_get(&row, 1)?;
    let key = throttle::account_key(keys, &email);
    let attempt = throttle::Attempt::begin(db, &[(&key, throttle::MAX_PER_ACCOUNT)], now).await?;
    if verify_password_off_thread(hash, password).await {
        return attempt.succeeded(db).await;
    }
    Err(Error::new(Code::WrongCredentials, "the password is wrong"))
}

/// Changes a person's own password after checking the current one; ends their other
/// sessions (the one with token hash `keep_session` stays). Audited on the instance
/// chain as `user.password_change`.
pub async fn change_password(
    db: &Db,
    keys: &MasterKeys,
    user_id: &str,
    current: &SecretString,
    new: &SecretString,
    keep_session: &str,
    now: i64,
) -> Result<()> {
    check_new_password(new)?;
    confirm_password(db, keys, user_id, current, now).await?;
    if current.expose_secret() == new.expose_secret() {
        return Err(Error::invalid(
            "the new password must differ from the current one",
        ));
    }
    let new_hash = hash_password(new)?;
    let mut conn = db.begin().await?;
    let done: Result<()> = async {
        sqlx::query("UPDATE users SET password_hash = $1, must_change_password = 0 WHERE id = $2")
            .bind(&new_hash)
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        sessions::revoke_all_in(&mut conn, user_id, Some(keep_session)).await?;
        let actor = format!("user:{user_id}");
        audit::append_in(
            &mut conn,
            &AuditEvent {
                org_id: audit::INSTANCE_CHAIN,
                actor: &actor,
                action: "user.password_change",
                target: &actor,
                details: "{}",
            },
            &dbcrate_core::time::rfc3339(now),
        )
        .await?;
        Ok(())
    }
    .await;
    end_write(conn, done).await
}

/// `email` trimmed and lower-cased, or an error when it is not an e-mail address.
pub fn normalise_email(email: &str) -> Result<String> {
    crate::names::email("email", email)
}

/// Creates a user inside the caller's transaction; returns the new id.
pub async fn create_in(
    conn: &mut AnyConnection,
    email: &str,
    password: &SecretString,
    must_change_password: bool,
    now: &str,
) -> Result<String> {
    let email = normalise_email(email)?;
    create_hashed_in(
        conn,
        &email,
        &hash_password(password)?,
        must_change_password,
        now,
    )
    .await
}

/// [`create_in`] with the password hashed already (by [`hash_password_off_thread`]).
pub async fn create_hashed_in(
    conn: &mut AnyConnection,
    email: &str,
    password_hash: &str,
    must_change_password: bool,
    now: &str,
) -> Result<String> {
    let email = normalise_email(email)?;
    let id = new_id("usr")?;
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, must_change_password, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(&email)
    .bind(password_hash)
    .bind(i64::from(must_change_password))
    .bind(now)
    .execute(&mut *conn)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::conflict(format!("a user with e-mail {email} exists already"))
        }
        _ => Error::from(e),
    })?;
    Ok(id)
}

/// How much a role may do: owners 3 … viewers 0; `None` for an unknown role.
pub fn role_rank(role: &str) -> Option<usize> {
    ROLES
        .iter()
        .position(|r| *r == role)
        .map(|i| ROLES.len() - 1 - i)
}

/// Gives `user_id` `role` in `org_id` inside the caller's transaction, audited.
pub async fn add_member_in(
    conn: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
    role: &str,
    actor: &str,
    now: &str,
) -> Result<()> {
    if !ROLES.contains(&role) {
        return Err(Error::invalid(format!(
            "unknown role {role:?}; roles are {}",
            ROLES.join(", ")
        )));
    }
    sqlx::query("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)")
        .bind(org_id)
        .bind(user_id)
        .bind(role)
        .execute(&mut *conn)
        .await?;
    let details = serde_json::json!({ "role": role }).to_string();
    audit::append_in(
        conn,
        &AuditEvent {
            org_id,
            actor,
            action: "member.add",
            target: &format!("user:{user_id}"),
            details: &details,
        },
        now,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_hashes_verify_and_differ() {
        let pw = SecretString::new("correct horse".into());
        let a = hash_password(&pw).unwrap();
        let b = hash_password(&pw).unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "salts must differ");
        assert!(verify_password(&a, &pw));
        assert!(!verify_password(&a, &SecretString::new("wrong".into())));
        assert!(!verify_password("not a hash", &pw));
        let otp = one_time_password().unwrap();
        assert_eq!(otp.expose_secret().len(), 24);
    }
}
