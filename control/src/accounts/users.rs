//! People: accounts with Argon2id password hashes, and their role in each organisation.
//!
//! Sign-in and sessions live in `sessions`, second factors in `second_factor`,
//! membership changes in `members`.

use crate::accounts::passwords::{check_new_password, hash_password, verify_password_off_thread};
use crate::accounts::roles::Role;
use crate::accounts::{sessions, throttle};
use crate::audit::{self, AuditAction, AuditEvent};
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{new_id, Code, Error, Result};
use dbcrate_core::secret::SecretString;
use sqlx::AnyConnection;

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
    let email: String = sqlx::Row::try_get(&row, "email")?;
    let hash: String = sqlx::Row::try_get(&row, "password_hash")?;
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
                action: AuditAction::UserPasswordChange,
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

/// [`create_in`] with the password hashed already (by [`crate::accounts::passwords::hash_password_off_thread`]).
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

/// Gives `user_id` `role` in `org_id` inside the caller's transaction, audited.
pub async fn add_member_in(
    conn: &mut AnyConnection,
    org_id: &str,
    user_id: &str,
    role: Role,
    actor: &str,
    now: &str,
) -> Result<()> {
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
            action: AuditAction::MemberAdd,
            target: &format!("user:{user_id}"),
            details: &details,
        },
        now,
    )
    .await?;
    Ok(())
}
