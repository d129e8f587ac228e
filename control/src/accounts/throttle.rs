//! Counting failed attempts (passwords, second-factor codes) per account and per client
//! address, so guessing is slow whichever is varied.
//!
//! An attempt is counted *before* it is checked ([`Attempt::begin`]) and forgiven only
//! if it succeeds ([`Attempt::succeeded`]); so a burst of parallel guesses cannot all
//! slip past the limit before any failure is recorded.

use crate::db::Db;
use crate::envelope::MasterKeys;
use crate::error::{new_id, Code, Error, Result};

/// The window in which failures are counted.
pub const WINDOW_SECS: i64 = 15 * 60;
/// Failures per account within the window before attempts are refused.
pub const MAX_PER_ACCOUNT: i64 = 5;
/// Failures per client address within the window before attempts are refused.
pub const MAX_PER_ADDRESS: i64 = 20;

/// The throttle key of an account (by e-mail, so unknown addresses count alike and the
/// answers do not tell which accounts exist). A keyed hash of the address: whatever was
/// typed into the e-mail field (a password, at times) is not stored, nor a plain hash of
/// it.
pub fn account_key(keys: &MasterKeys, email: &str) -> String {
    let digest = keys.keyed_hash("sign-in throttle", email.as_bytes());
    format!("account:{}", dbcrate_core::hex::encode(&digest))
}

/// The throttle key of a client address.
pub fn address_key(address: &str) -> String {
    format!("address:{address}")
}

/// The throttle key of a person's second-factor codes.
pub fn second_factor_key(user_id: &str) -> String {
    format!("second-factor:{user_id}")
}

/// An attempt in progress, counted against its keys until it succeeds.
#[derive(Debug)]
#[must_use = "an attempt stays counted as a failure unless `succeeded` is called"]
pub struct Attempt {
    id: String,
}

impl Attempt {
    /// Counts an attempt against each `(key, limit)`; refuses it (it stays counted) when
    /// any key had `limit` attempts within the window already.
    pub async fn begin(db: &Db, limits: &[(&str, i64)], now: i64) -> Result<Self> {
        let id = new_id("att")?;
        for (key, _) in limits {
            sqlx::query(
                "INSERT INTO sign_in_failures (throttle_key, at, attempt_id) VALUES ($1, $2, $3)",
            )
            .bind(key)
            .bind(now)
            .bind(&id)
            .execute(db.pool())
            .await?;
        }
        for (key, limit) in limits {
            let counted: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM sign_in_failures WHERE throttle_key = $1 AND at > $2",
            )
            .bind(key)
            .bind(now - WINDOW_SECS)
            .fetch_one(db.pool())
            .await?;
            // This attempt is among those counted.
            if counted > *limit {
                return Err(Error::new(
                    Code::Throttled,
                    "too many failed attempts: try again in 15 minutes",
                ));
            }
        }
        Ok(Self { id })
    }

    /// The attempt succeeded: it no longer counts.
    pub async fn succeeded(self, db: &Db) -> Result<()> {
        sqlx::query("DELETE FROM sign_in_failures WHERE attempt_id = $1")
            .bind(&self.id)
            .execute(db.pool())
            .await?;
        Ok(())
    }
}

/// Deletes failures too old to count (outside the window at `now`), so the table holds
/// only the last window's. Returns how many went. The scheduler loop runs this.
pub async fn prune(db: &Db, now: i64) -> Result<u64> {
    let done = sqlx::query("DELETE FROM sign_in_failures WHERE at <= $1")
        .bind(now - WINDOW_SECS)
        .execute(db.pool())
        .await?;
    Ok(done.rows_affected())
}
