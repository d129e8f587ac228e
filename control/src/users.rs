//! People: accounts with Argon2id password hashes, and their role in each organisation.
//!
//! Sign-in, second factors, sessions and API tokens build on this in later steps.

use crate::audit::{self, AuditEvent};
use crate::error::{new_id, Error, Result};
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

/// Creates a user inside the caller's transaction; returns the new id.
pub async fn create_in(
    conn: &mut AnyConnection,
    email: &str,
    password: &SecretString,
    must_change_password: bool,
    now: &str,
) -> Result<String> {
    let email = email.trim().to_ascii_lowercase();
    let valid = email.len() <= 254
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !valid {
        return Err(Error::invalid(format!(
            "{email:?} is not an e-mail address"
        )));
    }
    let id = new_id("usr")?;
    sqlx::query(
        "INSERT INTO users (id, email, password_hash, must_change_password, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(&email)
    .bind(hash_password(password)?)
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
