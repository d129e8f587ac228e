//! Passwords: Argon2id hashing and verification (off the async workers), the rules a
//! new password must meet, and one-time passwords for first sign-in and resets.

use crate::error::{Error, Result};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;
use dbcrate_core::secret::SecretString;

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
