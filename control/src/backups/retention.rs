//! Applying retention: the control plane deletes what a schedule's rules no longer keep,
//! from the customer's storage, itself (agents cannot delete).
//!
//! Plan, then do: `dbcrate_core::retention::plan` decides from the schedule's backups
//! and failed attempts (in the schedule's time zone, with its safety holds: the newest
//! success is never deleted, and nothing is while recent backups have failed); this
//! executor deletes each planned object and records the outcome. A backup row is marked
//! deleted only once storage says the object is gone (deleted, or absent already); a
//! failed delete is counted, audited and retried on the next run — a record is never
//! dropped silently.

use crate::audit::{self, AuditEvent};
use crate::backups::destinations::DESTINATION_CREDENTIALS_PURPOSE;
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{Error, Result};
use crate::secrets::{self, Owner, SecretRef};
use dbcrate_core::retention::{self as plan, Backup, Outcome, Rules};
use dbcrate_core::schedule::Schedule;
use dbcrate_core::secret::SecretJson;
use dbcrate_core::time::rfc3339;
use dbcrate_core::wire::DestinationCredentials;
use dbcrate_storage::admin::{DeleteOutcome, Destination};
use dbcrate_storage::reach::ReachPolicy;
use sqlx::Row;
use std::sync::Arc;

/// What one run did for one schedule.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// Objects deleted (or found absent) and marked.
    pub deleted: usize,
    /// Deletions that failed (to be retried).
    pub failed: usize,
    /// Whether recent failures held every deletion.
    pub held: bool,
}

/// Deletes `key`. An object that was not there counts as deleted only if the
/// destination's README (written when it was saved) still is: a directory whose mount
/// dropped, or storage emptied behind the control plane's back, must not have its
/// backups marked deleted while they may still exist elsewhere.
async fn deleted_or_why(
    store: &Destination,
    key: &str,
) -> std::result::Result<DeleteOutcome, String> {
    let told = |step: &str, e: dbcrate_storage::Error| {
        crate::backups::destinations::tenant_failure(step, e.class(), e.message())
    };
    match store.delete(key).await.map_err(|e| told("delete", e))? {
        DeleteOutcome::Deleted => Ok(DeleteOutcome::Deleted),
        DeleteOutcome::Absent => match store
            .exists(crate::backups::destinations::README_NAME)
            .await
        {
            Ok(true) => Ok(DeleteOutcome::Absent),
            Ok(false) => Err(format!(
                "neither the object nor the destination's {} is there: is the storage \
                 mounted and the destination right? Nothing was marked deleted",
                crate::backups::destinations::README_NAME
            )),
            Err(e) => Err(format!(
                "checking the destination's README: {}",
                told("read", e)
            )),
        },
    }
}

/// How long retention waits before trying a failed deletion again, after `attempts`
/// failures: 2 minutes, doubling, at most a day (each try is audited).
pub fn delete_retry_delay(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.clamp(1, 11)).unwrap_or(1);
    (60 * 2_i64.pow(doublings)).min(86_400)
}

/// Applies every enabled schedule's retention.
pub async fn apply_all(
    db: &Db,
    keys: &MasterKeys,
    reach: &Arc<ReachPolicy>,
    now: i64,
) -> Result<Vec<(String, RunReport)>> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM schedules WHERE enabled = 1 ORDER BY id")
            .fetch_all(db.pool())
            .await?;
    let mut reports = Vec::new();
    for id in ids {
        match apply(db, keys, reach, &id, now).await {
            Ok(report) => reports.push((id, report)),
            Err(e) => tracing::error!(schedule.id = %id, "retention failed: {}", e.message),
        }
    }
    Ok(reports)
}

/// Applies one schedule's retention.
pub async fn apply(
    db: &Db,
    keys: &MasterKeys,
    reach: &Arc<ReachPolicy>,
    schedule_id: &str,
    now: i64,
) -> Result<RunReport> {
    let row = sqlx::query(
        "SELECT s.org_id, s.cron, s.time_zone, s.keep_last, s.keep_daily, s.keep_weekly, \
         s.keep_monthly, s.keep_yearly, t.kind, t.settings, t.credentials_secret_id \
         FROM schedules s JOIN destinations t ON t.id = s.destination_id WHERE s.id = $1",
    )
    .bind(schedule_id)
    .fetch_one(db.pool())
    .await?;
    let org_id: String = row.try_get(0)?;
    let schedule = Schedule::parse(&row.try_get::<String, _>(1)?, &row.try_get::<String, _>(2)?)
        .map_err(|e| Error::internal(format!("a stored schedule no longer parses: {e}")))?;
    let count = |i: usize| -> std::result::Result<u32, sqlx::Error> {
        Ok(u32::try_from(row.try_get::<i64, _>(i)?).unwrap_or(0))
    };
    let rules = Rules {
        keep_last: count(3)?,
        keep_daily: count(4)?,
        keep_weekly: count(5)?,
        keep_monthly: count(6)?,
        keep_yearly: count(7)?,
    };
    let mut records: Vec<Backup> = Vec::new();
    for r in sqlx::query(
        "SELECT id, finished_at FROM backups WHERE schedule_id = $1 AND deleted_at IS NULL",
    )
    .bind(schedule_id)
    .fetch_all(db.pool())
    .await?
    {
        records.push(Backup {
            id: r.try_get(0)?,
            finished_at: r.try_get(1)?,
            outcome: Outcome::Succeeded,
        });
    }
    for r in sqlx::query(
        "SELECT id, finished_at FROM jobs WHERE schedule_id = $1 AND kind = 'backup' \
         AND state = 'failed' AND finished_at IS NOT NULL",
    )
    .bind(schedule_id)
    .fetch_all(db.pool())
    .await?
    {
        records.push(Backup {
            id: r.try_get(0)?,
            finished_at: r.try_get(1)?,
            outcome: Outcome::Failed,
        });
    }
    let planned = plan::plan(&records, &rules, &schedule.calendar(), now);
    let doomed: Vec<(String, Vec<String>)> = planned
        .decisions
        .iter()
        .filter(|d| !d.keep)
        .map(|d| {
            (
                d.id.clone(),
                d.reasons.iter().map(|r| format!("{r:?}")).collect(),
            )
        })
        .collect();
    let mut report = RunReport {
        held: planned.recent_failures > 0,
        ..RunReport::default()
    };
    // What is due for deletion now: not a backup an operator is restoring (it stays
    // until that restore has ended), nor one whose last deletion failed too recently.
    let mut due = Vec::new();
    for (backup_id, reasons) in doomed {
        let (key, attempts, last_try, restoring): (String, i64, Option<i64>, i64) = sqlx::query_as(
            "SELECT b.object_key, b.delete_attempts, b.last_delete_at, \
                 (SELECT count(*) FROM jobs j WHERE j.backup_id = b.id AND j.kind = 'restore' \
                  AND j.state IN ('queued', 'running')) \
                 FROM backups b WHERE b.id = $1",
        )
        .bind(&backup_id)
        .fetch_one(db.pool())
        .await?;
        let backing_off = last_try.is_some_and(|at| now < at + delete_retry_delay(attempts));
        if restoring == 0 && !backing_off {
            due.push((backup_id, reasons, key));
        }
    }
    // Nothing to do: the destination's credentials are not even unwrapped.
    if due.is_empty() {
        return Ok(report);
    }
    // The destination's credentials, unwrapped once for this run (audited), straight
    // into their wire type (zeroized on drop); the JSON the storage parser takes is
    // wiped as soon as the destination is opened.
    let credentials: Option<DestinationCredentials> = match row.try_get::<Option<String>, _>(10)? {
        None => None,
        Some(secret_id) => {
            let bytes = secrets::unwrap(
                db,
                keys,
                SecretRef {
                    owner: Owner::Org(&org_id),
                    id: &secret_id,
                    purpose: DESTINATION_CREDENTIALS_PURPOSE,
                },
                "system:retention",
                &format!("retention of schedule {schedule_id}"),
                &rfc3339(now),
            )
            .await?;
            Some(serde_json::from_slice(&bytes).map_err(|_| {
                Error::internal("stored destination credentials are not JSON of their shape")
            })?)
        }
    };
    let settings: serde_json::Value = serde_json::from_str(&row.try_get::<String, _>(9)?)
        .map_err(|_| Error::internal("stored destination settings are not JSON"))?;
    let secret_json = credentials
        .as_ref()
        .map(DestinationCredentials::to_secret_json);
    let (location, options) = crate::backups::destinations::open(
        reach,
        &row.try_get::<String, _>(8)?,
        &settings,
        secret_json.as_ref().map(SecretJson::expose_secret),
    )?;
    drop((secret_json, credentials));
    let store = Destination::connect(&location, &options).await;
    for (backup_id, reasons, key) in due {
        let outcome = match &store {
            Ok(store) => deleted_or_why(store, &key).await,
            Err(e) => Err(format!(
                "cannot reach the destination: {}",
                crate::backups::destinations::tenant_failure("connect", e.class(), e.message())
            )),
        };
        let mut tx = db.begin().await?;
        let recorded: Result<()> = async {
            let (action, details) = match &outcome {
                Ok(found) => {
                    sqlx::query("UPDATE backups SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
                        .bind(now)
                        .bind(&backup_id)
                        .execute(&mut *tx)
                        .await?;
                    let storage = match found {
                        DeleteOutcome::Deleted => "deleted",
                        DeleteOutcome::Absent => "absent already",
                    };
                    ("backup.delete", serde_json::json!({
                        "object_key": key, "storage": storage,
                        "reason": "kept by no retention rule", "kept_by": reasons,
                    }))
                }
                Err(error) => {
                    sqlx::query(
                        "UPDATE backups SET delete_attempts = delete_attempts + 1, last_delete_error = $1, \
                         last_delete_at = $2 WHERE id = $3",
                    )
                    .bind(error.chars().take(1000).collect::<String>())
                    .bind(now)
                    .bind(&backup_id)
                    .execute(&mut *tx)
                    .await?;
                    ("backup.delete_failed", serde_json::json!({ "object_key": key, "error": error, "retry": true }))
                }
            };
            audit::append_in(
                &mut tx,
                &AuditEvent {
                    org_id: &org_id,
                    actor: "system:retention",
                    action,
                    target: &format!("backup:{backup_id}"),
                    details: &details.to_string(),
                },
                &rfc3339(now),
            )
            .await?;
            Ok(())
        }
        .await;
        end_write(tx, recorded).await?;
        match outcome {
            Ok(_) => report.deleted += 1,
            Err(_) => report.failed += 1,
        }
    }
    if let Ok(store) = store {
        store.close().await;
    }
    Ok(report)
}
