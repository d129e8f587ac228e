//! Counting failed attempts (passwords, second-factor codes) per account and per client
//! address, so guessing is slow whichever is varied.

use crate::db::Db;
use crate::error::{Code, Error, Result};

/// The window in which failures are counted.
pub const WINDOW_SECS: i64 = 15 * 60;
/// Failures per account within the window before attempts are refused.
pub const MAX_PER_ACCOUNT: i64 = 5;
/// Failures per client address within the window before attempts are refused.
pub const MAX_PER_ADDRESS: i64 = 20;

/// The throttle key of an account (by e-mail, so unknown addresses count too).
pub fn account_key(email: &str) -> String {
    format!("account:{email}")
}

/// The throttle key of a client address.
pub fn address_key(address: &str) -> String {
    format!("address:{address}")
}

/// The throttle key of a person's second-factor codes.
pub fn second_factor_key(user_id: &str) -> String {
    format!("second-factor:{user_id}")
}

async fn recent(db: &Db, key: &str, now: i64) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM sign_in_failures WHERE throttle_key = $1 AND at > $2",
    )
    .bind(key)
    .bind(now - WINDOW_SECS)
    .fetch_one(db.pool())
    .await?)
}

/// Refuses when any `(key, limit)` has had `limit` failures within the window.
pub async fn check(db: &Db, limits: &[(&str, i64)], now: i64) -> Result<()> {
    for (key, limit) in limits {
        if recent(db, key, now).await? >= *limit {
            return Err(Error::new(
                Code::Throttled,
                "too many failed attempts: try again in 15 minutes",
            ));
        }
    }
    Ok(())
}

/// Counts one failure against each key.
pub async fn record_failure(db: &Db, keys: &[&str], now: i64) -> Result<()> {
    for key in keys {
        sqlx::query("INSERT INTO sign_in_failures (throttle_key, at) VALUES ($1, $2)")
            .bind(key)
            .bind(now)
            .execute(db.pool())
            .await?;
    }
    Ok(())
}
