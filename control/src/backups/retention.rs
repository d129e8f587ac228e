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

pub mod preview;
mod reasons;

use crate::audit::{self, AuditAction, AuditEvent};
use crate::backups::destinations::{self, StoredDestination, Unwrapping};
use crate::backups::jobs::JobState;
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{Error, Result};
use dbcrate_core::retention::{self as plan, Backup, Outcome, Rules};
use dbcrate_core::schedule::Schedule;
use dbcrate_core::time::rfc3339;
use dbcrate_storage::admin::{DeleteOutcome, Destination};
use dbcrate_storage::reach::ReachPolicy;
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
        destinations::tenant_failure(step, e.class(), e.message())
    };
    match store.delete(key).await.map_err(|e| told("delete", e))? {
        DeleteOutcome::Deleted => Ok(DeleteOutcome::Deleted),
        DeleteOutcome::Absent => match store.exists(destinations::README_NAME).await {
            Ok(true) => Ok(DeleteOutcome::Absent),
            Ok(false) => Err(format!(
                "neither the object nor the destination's {} is there: is the storage \
                 mounted and the destination right? Nothing was marked deleted",
                destinations::README_NAME
            )),
            Err(e) => Err(format!(
                "checking the destination's README: {}",
                told("read", e)
            )),
        },
    }
}

/// Deletes the backup's object, then the globals object saved with it: both or, for a
/// retry, what is left (an object already gone counts as deleted, with the README
/// check above). The backup is marked deleted only when both are gone.
async fn deleted_with_globals(
    store: &Destination,
    doomed: &Due,
) -> std::result::Result<DeleteOutcome, String> {
    let outcome = deleted_or_why(store, &doomed.object_key).await?;
    if let Some(globals) = &doomed.globals_key {
        deleted_or_why(store, globals)
            .await
            .map_err(|e| format!("the globals object saved with it: {e}"))?;
    }
    Ok(outcome)
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
    let ids = crate::backups::schedules::enabled_ids(db).await?;
    let mut reports = Vec::new();
    for id in ids {
        match apply(db, keys, reach, &id, now).await {
            Ok(report) => reports.push((id, report)),
            Err(e) => tracing::error!(schedule.id = %id, "retention failed: {}", e.message),
        }
    }
    Ok(reports)
}

/// A schedule as retention reads it: its organisation, expression, zone and rules.
struct Retained {
    org_id: String,
    cron: String,
    time_zone: String,
    keep_last: i64,
    keep_daily: i64,
    keep_weekly: i64,
    keep_monthly: i64,
    keep_yearly: i64,
}

crate::rows::from_row!(Retained {
    org_id,
    cron,
    time_zone,
    keep_last,
    keep_daily,
    keep_weekly,
    keep_monthly,
    keep_yearly,
});

impl Retained {
    fn rules(&self) -> Rules {
        let count = |n: i64| u32::try_from(n).unwrap_or(0);
        Rules {
            keep_last: count(self.keep_last),
            keep_daily: count(self.keep_daily),
            keep_weekly: count(self.keep_weekly),
            keep_monthly: count(self.keep_monthly),
            keep_yearly: count(self.keep_yearly),
        }
    }
}

/// One attempt of the schedule: a backup, or a failed job.
struct Attempt {
    id: String,
    finished_at: i64,
}

crate::rows::from_row!(Attempt { id, finished_at });

/// Where a planned deletion stands: its object, its failed tries, and how many restores
/// of it are queued or running.
struct DeletionState {
    object_key: String,
    globals_size: Option<i64>,
    delete_attempts: i64,
    last_delete_at: Option<i64>,
    restoring: i64,
}

crate::rows::from_row!(DeletionState {
    object_key,
    globals_size,
    delete_attempts,
    last_delete_at,
    restoring,
});

/// A backup due for deletion now.
struct Due {
    backup_id: String,
    object_key: String,
    /// The globals object saved with it, deleted with it.
    globals_key: Option<String>,
    /// Why the planner kept it (its stored texts; empty for a deletion).
    kept_by: Vec<String>,
}

/// Applies one schedule's retention: plan, pick what is due, reach the destination
/// once, delete and record each.
pub async fn apply(
    db: &Db,
    keys: &MasterKeys,
    reach: &Arc<ReachPolicy>,
    schedule_id: &str,
    now: i64,
) -> Result<RunReport> {
    let (retained, destination) = load_schedule(db, schedule_id).await?;
    let schedule = Schedule::parse(&retained.cron, &retained.time_zone)
        .map_err(|e| Error::internal(format!("a stored schedule no longer parses: {e}")))?;
    let records = attempts(db, schedule_id).await?;
    let planned = plan::plan(&records, &retained.rules(), &schedule.calendar(), now);
    let mut report = RunReport {
        held: planned.recent_failures > 0,
        ..RunReport::default()
    };
    let due = due_now(db, &planned, now).await?;
    // Nothing to do: the destination's credentials are not even unwrapped.
    if due.is_empty() {
        return Ok(report);
    }
    let org_id = &retained.org_id;
    // The destination's credentials, unwrapped once for this run (audited).
    let reason = format!("retention of schedule {schedule_id}");
    let by = Unwrapping {
        org_id,
        actor: ACTOR,
        reason: &reason,
        at: &rfc3339(now),
    };
    let with = destinations::Access { keys, reach };
    let store = destinations::connect(db, with, &destination, &by).await?;
    for doomed in due {
        let outcome = match &store {
            Ok(store) => deleted_with_globals(store, &doomed).await,
            Err(e) => Err(format!(
                "cannot reach the destination: {}",
                destinations::tenant_failure("connect", e.class(), e.message())
            )),
        };
        record(db, org_id, &doomed, &outcome, now).await?;
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

/// Who retention acts as, in the audit log.
const ACTOR: &str = "system:retention";

/// The schedule's rules and its destination.
async fn load_schedule(db: &Db, schedule_id: &str) -> Result<(Retained, StoredDestination)> {
    let sql = "SELECT s.org_id, s.cron, s.time_zone, s.keep_last, s.keep_daily, s.keep_weekly, \
               s.keep_monthly, s.keep_yearly, t.kind, t.settings, t.credentials_secret_id \
               FROM schedules s JOIN destinations t ON t.id = s.destination_id WHERE s.id = $1";
    StoredDestination::fetch_with(db, sql, schedule_id).await
}

/// The schedule's backups not deleted yet, and its failed backup jobs.
async fn attempts(db: &Db, schedule_id: &str) -> Result<Vec<Backup>> {
    let succeeded: Vec<Attempt> = sqlx::query_as(
        "SELECT id, finished_at FROM backups WHERE schedule_id = $1 AND deleted_at IS NULL",
    )
    .bind(schedule_id)
    .fetch_all(db.pool())
    .await?;
    let failed: Vec<Attempt> = sqlx::query_as(
        "SELECT id, finished_at FROM jobs WHERE schedule_id = $1 AND kind = 'backup' \
         AND state = $2 AND finished_at IS NOT NULL",
    )
    .bind(schedule_id)
    .bind(JobState::Failed)
    .fetch_all(db.pool())
    .await?;
    let as_backup = |outcome: Outcome| {
        move |a: Attempt| Backup {
            id: a.id,
            finished_at: a.finished_at,
            outcome,
        }
    };
    Ok(succeeded
        .into_iter()
        .map(as_backup(Outcome::Succeeded))
        .chain(failed.into_iter().map(as_backup(Outcome::Failed)))
        .collect())
}

/// What the plan deletes that is due now: not a backup an operator is restoring (it
/// stays until that restore has ended), nor one whose last deletion failed too recently.
async fn due_now(db: &Db, planned: &plan::Plan, now: i64) -> Result<Vec<Due>> {
    let mut due = Vec::new();
    for decision in planned.decisions.iter().filter(|d| !d.keep) {
        let state: DeletionState = sqlx::query_as(
            "SELECT b.object_key, b.globals_size, b.delete_attempts, b.last_delete_at, \
                 (SELECT count(*) FROM jobs j WHERE j.backup_id = b.id AND j.kind = 'restore' \
                  AND j.state IN ($2, $3)) AS restoring \
                 FROM backups b WHERE b.id = $1",
        )
        .bind(&decision.id)
        .bind(JobState::Queued)
        .bind(JobState::Running)
        .fetch_one(db.pool())
        .await?;
        let backing_off = state
            .last_delete_at
            .is_some_and(|at| now < at + delete_retry_delay(state.delete_attempts));
        if state.restoring == 0 && !backing_off {
            let globals_key = state
                .globals_size
                .and_then(|_| dbcrate_core::object_key::globals_key(&state.object_key));
            due.push(Due {
                backup_id: decision.id.clone(),
                object_key: state.object_key,
                globals_key,
                kept_by: decision.reasons.iter().map(reasons::text).collect(),
            });
        }
    }
    Ok(due)
}

/// Records one deletion's outcome, with its audit row, in one transaction: a backup
/// gone from storage is marked deleted; a failure is counted for the back-off.
async fn record(
    db: &Db,
    org_id: &str,
    doomed: &Due,
    outcome: &std::result::Result<DeleteOutcome, String>,
    now: i64,
) -> Result<()> {
    let mut tx = db.begin().await?;
    let recorded: Result<()> = async {
        let (action, details) = match outcome {
            Ok(found) => {
                sqlx::query(
                    "UPDATE backups SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
                )
                .bind(now)
                .bind(&doomed.backup_id)
                .execute(&mut *tx)
                .await?;
                let storage = match found {
                    DeleteOutcome::Deleted => "deleted",
                    DeleteOutcome::Absent => "absent already",
                };
                let details = serde_json::json!({
                    "object_key": doomed.object_key, "globals_object_key": doomed.globals_key,
                    "storage": storage,
                    "reason": "kept by no retention rule", "kept_by": doomed.kept_by,
                });
                (AuditAction::BackupDelete, details)
            }
            Err(error) => {
                sqlx::query(
                    "UPDATE backups SET delete_attempts = delete_attempts + 1, \
                     last_delete_error = $1, last_delete_at = $2 WHERE id = $3",
                )
                .bind(error.chars().take(1000).collect::<String>())
                .bind(now)
                .bind(&doomed.backup_id)
                .execute(&mut *tx)
                .await?;
                let details = serde_json::json!({
                    "object_key": doomed.object_key, "error": error, "retry": true,
                });
                (AuditAction::BackupDeleteFailed, details)
            }
        };
        audit::append_in(
            &mut tx,
            &AuditEvent {
                org_id,
                actor: ACTOR,
                action,
                target: &format!("backup:{}", doomed.backup_id),
                details: &details.to_string(),
            },
            &rfc3339(now),
        )
        .await?;
        Ok(())
    }
    .await;
    end_write(tx, recorded).await
}
