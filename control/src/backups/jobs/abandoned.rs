//! Objects a backup attempt stored and never reported.
//!
//! An agent stores the backup under its final name, then saves the globals next to it,
//! then reports. Killed in between (or cut off from the control plane until the lease
//! and its grace ran out), it leaves a complete object under a final name that no backup
//! records; the next attempt gets a key of its own, so nothing would ever delete it and
//! the customer's storage would hold a backup the control plane does not know about.
//! Agents cannot delete, so the control plane does: when an attempt's lease lapses its
//! key is remembered, and housekeeping deletes whatever is at that key (and the globals
//! key next to it) at once, again an hour later and a day later — an agent that was cut
//! off may still have been finishing — then forgets it. Each deletion is audited; a key
//! a backup records, or a running attempt holds, is never touched.

use crate::audit::{self, AuditAction};
use crate::backups::destinations::{self, StoredDestination, Unwrapping};
use crate::backups::jobs::JobState;
use crate::db::Db;
use crate::envelope::MasterKeys;
use crate::error::Result;
use dbcrate_core::object_key::globals_key;
use dbcrate_core::time::rfc3339;
use dbcrate_storage::admin::{DeleteOutcome, Destination};
use dbcrate_storage::reach::ReachPolicy;
use sqlx::AnyConnection;
use std::sync::Arc;

/// When to look again after the first look (seconds after the attempt was abandoned);
/// after the last, the key is forgotten.
pub const LOOK_AGAIN_AFTER: [i64; 2] = [3600, 86_400];

/// How long to wait before trying again when the destination could not be reached or a
/// key is held by a running attempt.
const RETRY_SECS: i64 = 600;

/// Who deletes, in the audit log.
const ACTOR: &str = "system:housekeeping";

/// Remembers the key a lapsed backup attempt was given (in the transaction that takes
/// the job back), to be looked at by [`sweep`].
pub(crate) async fn remember(
    conn: &mut AnyConnection,
    attempt: &LapsedAttempt<'_>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO abandoned_objects (job_id, attempt, org_id, destination_id, object_key, \
         abandoned_at, looks, look_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $6)",
    )
    .bind(attempt.job_id)
    .bind(attempt.attempt)
    .bind(attempt.org_id)
    .bind(attempt.destination_id)
    .bind(attempt.object_key)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A backup attempt whose lease lapsed, with the key it was given.
pub(crate) struct LapsedAttempt<'a> {
    pub job_id: &'a str,
    pub attempt: i64,
    pub org_id: &'a str,
    pub destination_id: &'a str,
    pub object_key: &'a str,
}

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    /// Keys looked at.
    pub looked: usize,
    /// Objects deleted (a backup's and its globals count apart).
    pub deleted: usize,
    /// Keys whose look failed (destination unreachable, delete refused), tried again later.
    pub failed: usize,
}

/// A remembered key due for a look.
struct Due {
    job_id: String,
    attempt: i64,
    org_id: String,
    destination_id: String,
    object_key: String,
    abandoned_at: i64,
    looks: i64,
}

crate::rows::from_row!(Due {
    job_id,
    attempt,
    org_id,
    destination_id,
    object_key,
    abandoned_at,
    looks
});

/// Looks at every remembered key that is due: deletes what is there unless a backup
/// records the key or a running attempt holds it.
pub async fn sweep(
    db: &Db,
    keys: &MasterKeys,
    reach: &Arc<ReachPolicy>,
    now: i64,
) -> Result<SweepReport> {
    let due: Vec<Due> = sqlx::query_as(
        "SELECT job_id, attempt, org_id, destination_id, object_key, abandoned_at, looks \
         FROM abandoned_objects WHERE look_at <= $1 ORDER BY look_at",
    )
    .bind(now)
    .fetch_all(db.pool())
    .await?;
    let mut report = SweepReport::default();
    for key in due {
        report.looked += 1;
        match look(db, keys, reach, &key, now).await? {
            Looked::Deleted(n) => {
                report.deleted += n;
                looked_at(db, &key).await?;
            }
            Looked::Recorded => forget(db, &key).await?,
            Looked::Held => later(db, &key, now).await?,
            Looked::Failed(why) => {
                tracing::warn!(
                    job = %key.job_id,
                    "removing what an abandoned attempt left failed, trying again later: {why}"
                );
                report.failed += 1;
                later(db, &key, now).await?;
            }
        }
    }
    Ok(report)
}

/// What looking at one key found.
enum Looked {
    /// Deleted this many objects (0: nothing there).
    Deleted(usize),
    /// A backup records the key: it is not abandoned.
    Recorded,
    /// A running attempt holds the key (same job, same second): not now.
    Held,
    /// The destination could not be reached or refused.
    Failed(String),
}

async fn look(
    db: &Db,
    keys: &MasterKeys,
    reach: &Arc<ReachPolicy>,
    key: &Due,
    now: i64,
) -> Result<Looked> {
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM backups WHERE destination_id = $1 AND object_key = $2",
    )
    .bind(&key.destination_id)
    .bind(&key.object_key)
    .fetch_one(db.pool())
    .await?;
    if recorded > 0 {
        return Ok(Looked::Recorded);
    }
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE destination_id = $1 AND object_key = $2 AND state = $3",
    )
    .bind(&key.destination_id)
    .bind(&key.object_key)
    .bind(JobState::Running)
    .fetch_one(db.pool())
    .await?;
    if held > 0 {
        return Ok(Looked::Held);
    }
    let destination: StoredDestination = sqlx::query_as(
        "SELECT kind, settings, credentials_secret_id FROM destinations WHERE id = $1",
    )
    .bind(&key.destination_id)
    .fetch_one(db.pool())
    .await?;
    let reason = format!(
        "removing what attempt {} of job {} stored and never reported",
        key.attempt, key.job_id
    );
    let by = Unwrapping {
        org_id: &key.org_id,
        actor: ACTOR,
        reason: &reason,
        at: &rfc3339(now),
    };
    let with = destinations::Access { keys, reach };
    let store = match destinations::connect(db, with, &destination, &by).await? {
        Ok(store) => store,
        Err(e) => {
            return Ok(Looked::Failed(destinations::tenant_failure(
                "connect",
                e.class(),
                e.message(),
            )))
        }
    };
    let looked = delete_both(db, &store, key, now).await;
    store.close().await;
    looked
}

/// Deletes the backup's key and its globals key, auditing each object deleted.
async fn delete_both(db: &Db, store: &Destination, key: &Due, now: i64) -> Result<Looked> {
    let mut deleted = 0;
    let both = std::iter::once(key.object_key.clone()).chain(globals_key(&key.object_key));
    for object_key in both {
        match store.delete(&object_key).await {
            Ok(DeleteOutcome::Deleted) => {
                deleted += 1;
                let details = serde_json::json!({
                    "attempt": key.attempt, "object_key": object_key,
                    "reason": "stored by an attempt whose lease lapsed before it reported",
                });
                audit::record(
                    db,
                    &key.org_id,
                    ACTOR,
                    AuditAction::JobAbandonedObjectDelete,
                    &format!("job:{}", key.job_id),
                    details,
                    now,
                )
                .await?;
            }
            Ok(DeleteOutcome::Absent) => {}
            Err(e) => {
                return Ok(Looked::Failed(destinations::tenant_failure(
                    "delete",
                    e.class(),
                    e.message(),
                )))
            }
        }
    }
    Ok(Looked::Deleted(deleted))
}

/// Counts a look; schedules the next or forgets the key after the last.
async fn looked_at(db: &Db, key: &Due) -> Result<()> {
    // The looks made before this one pick the wait before the next.
    match usize::try_from(key.looks)
        .ok()
        .and_then(|made| LOOK_AGAIN_AFTER.get(made))
    {
        Some(after) => {
            sqlx::query(
                "UPDATE abandoned_objects SET looks = $1, look_at = $2 \
                 WHERE job_id = $3 AND attempt = $4",
            )
            .bind(key.looks + 1)
            .bind(key.abandoned_at + after)
            .bind(&key.job_id)
            .bind(key.attempt)
            .execute(db.pool())
            .await?;
            Ok(())
        }
        None => forget(db, key).await,
    }
}

async fn later(db: &Db, key: &Due, now: i64) -> Result<()> {
    sqlx::query("UPDATE abandoned_objects SET look_at = $1 WHERE job_id = $2 AND attempt = $3")
        .bind(now + RETRY_SECS)
        .bind(&key.job_id)
        .bind(key.attempt)
        .execute(db.pool())
        .await?;
    Ok(())
}

async fn forget(db: &Db, key: &Due) -> Result<()> {
    sqlx::query("DELETE FROM abandoned_objects WHERE job_id = $1 AND attempt = $2")
        .bind(&key.job_id)
        .bind(key.attempt)
        .execute(db.pool())
        .await?;
    Ok(())
}
