//! Hourly verification of each organisation's audit chain, kept in `audit_checks`, so
//! the `audit_chain_broken` condition can be read cheaply every tick. Verifying reads
//! every row of a chain: an hour between checks bounds that cost; a chain edited behind
//! the control plane's back is told within the hour.

use crate::audit;
use crate::db::Db;
use crate::error::Result;

/// How long a verification stands before the chain is read again.
pub const CHECK_EVERY_SECS: i64 = 3600;

/// Verifies every organisation's chain whose last check is older than
/// [`CHECK_EVERY_SECS`] (or that was never checked); answers how many were checked.
pub async fn run_due(db: &Db, now: i64) -> Result<usize> {
    let due: Vec<String> = sqlx::query_scalar(
        "SELECT o.id FROM orgs o LEFT JOIN audit_checks c ON c.org_id = o.id \
         WHERE c.checked_at IS NULL OR c.checked_at <= $1 ORDER BY o.id",
    )
    .bind(now - CHECK_EVERY_SECS)
    .fetch_all(db.pool())
    .await?;
    for org_id in &due {
        let (rows, broken) = match audit::verify(db, org_id).await? {
            Ok(rows) => (rows as i64, None),
            Err(b) => (b.seq.max(1) - 1, Some(b)),
        };
        sqlx::query(
            "INSERT INTO audit_checks (org_id, checked_at, verified_rows, broken_seq, reason) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id) DO UPDATE SET \
             checked_at = $2, verified_rows = $3, broken_seq = $4, reason = $5",
        )
        .bind(org_id)
        .bind(now)
        .bind(rows)
        .bind(broken.as_ref().map(|b| b.seq))
        .bind(broken.as_ref().map(|b| b.reason.clone()))
        .execute(db.pool())
        .await?;
    }
    Ok(due.len())
}
