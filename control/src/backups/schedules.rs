//! Schedules: a database backed up to a destination on a cron expression in a time
//! zone, with the retention rules that apply to what it produced. Creating one is
//! audited; the expression and zone are checked with `dbcrate_core::schedule` before
//! anything is saved.
//!
//! `last_fired_at` starts at the creation time, so a new schedule never "catches up" on
//! fire times from before it existed.

mod grace;
use crate::audit::{self, AuditAction};
use crate::db::{end_write, Db};
use crate::error::{is_id, new_id, Error, Result};
use dbcrate_core::retention::Rules;
use dbcrate_core::schedule::Schedule;
pub use grace::{set_grace, MAX_GRACE_MINUTES, MIN_GRACE_MINUTES};
use serde::Serialize;

/// The largest count a retention rule may hold (a decade of dailies).
pub const MAX_KEEP: u32 = 3660;

/// A schedule to create.
#[derive(Debug)]
pub struct NewSchedule<'a> {
    /// The database (`dbs_…`).
    pub database_id: &'a str,
    /// The destination (`dst_…`).
    pub destination_id: &'a str,
    /// Five-field cron expression (or @daily etc.).
    pub cron: &'a str,
    /// IANA time zone the expression and the retention calendar are in.
    pub time_zone: &'a str,
    /// Retention.
    pub retention: Rules,
}

/// A schedule as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleInfo {
    /// Its id (`sch_…`).
    pub id: String,
    /// The database.
    pub database_id: String,
    /// The destination.
    pub destination_id: String,
    /// Cron expression.
    pub cron: String,
    /// Time zone.
    pub time_zone: String,
    /// Whether it fires.
    pub enabled: bool,
    /// Keep the N newest.
    pub keep_last: i64,
    /// Daily buckets.
    pub keep_daily: i64,
    /// ISO-week buckets.
    pub keep_weekly: i64,
    /// Month buckets.
    pub keep_monthly: i64,
    /// Year buckets.
    pub keep_yearly: i64,
    /// The next time it fires (Unix seconds), if ever.
    pub next_run_at: Option<i64>,
    /// How long a run's backup may take before the database is late (and an alert
    /// goes out), in minutes.
    pub grace_minutes: i64,
}

/// A schedule's new timing, retention and state. Its database and destination stay:
/// backing up something else, or elsewhere, is another schedule.
#[derive(Debug)]
pub struct ScheduleChange<'a> {
    /// Five-field cron expression (or @daily etc.).
    pub cron: &'a str,
    /// IANA time zone.
    pub time_zone: &'a str,
    /// Retention.
    pub retention: Rules,
    /// Whether it fires (and its retention runs); `false` pauses it.
    pub enabled: bool,
}

/// The expression in its zone, after checking it and the counts.
fn checked(cron: &str, time_zone: &str, r: &Rules) -> Result<Schedule> {
    let schedule = Schedule::parse(cron, time_zone).map_err(|e| Error::invalid(e.to_string()))?;
    for (name, value) in [
        ("keep_last", r.keep_last),
        ("keep_daily", r.keep_daily),
        ("keep_weekly", r.keep_weekly),
        ("keep_monthly", r.keep_monthly),
        ("keep_yearly", r.keep_yearly),
    ] {
        if value > MAX_KEEP {
            return Err(Error::invalid(format!("{name} must be 0-{MAX_KEEP}")));
        }
    }
    Ok(schedule)
}

fn retention_json(r: &Rules) -> serde_json::Value {
    serde_json::json!({
        "keep_last": r.keep_last, "keep_daily": r.keep_daily, "keep_weekly": r.keep_weekly,
        "keep_monthly": r.keep_monthly, "keep_yearly": r.keep_yearly,
    })
}

/// Creates a schedule after checking the expression, the zone, the counts, and that the
/// database and destination belong to the organisation.
pub async fn create(
    db: &Db,
    org_id: &str,
    new: &NewSchedule<'_>,
    actor: &str,
    now: i64,
) -> Result<ScheduleInfo> {
    let schedule = checked(new.cron, new.time_zone, &new.retention)?;
    let r = &new.retention;
    if !is_id(new.database_id, "dbs") || !is_id(new.destination_id, "dst") {
        return Err(Error::invalid(
            "database_id and destination_id must be ids of this organisation's objects",
        ));
    }
    let id = new_id("sch")?;
    let mut tx = db.begin().await?;
    let created: Result<()> = async {
        let found: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM databases WHERE id = $1 AND org_id = $3) \
             + (SELECT count(*) FROM destinations WHERE id = $2 AND org_id = $3)",
        )
        .bind(new.database_id)
        .bind(new.destination_id)
        .bind(org_id)
        .fetch_one(&mut *tx)
        .await?;
        if found != 2 {
            return Err(Error::invalid(
                "no such database or destination in this organisation",
            ));
        }
        sqlx::query(
            "INSERT INTO schedules (id, org_id, database_id, destination_id, cron, time_zone, \
             enabled, keep_last, keep_daily, keep_weekly, keep_monthly, keep_yearly, \
             last_fired_at, created_at, timing_since) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $8, $9, $10, $11, $12, $12, $12)",
        )
        .bind(&id)
        .bind(org_id)
        .bind(new.database_id)
        .bind(new.destination_id)
        .bind(schedule.cron())
        .bind(schedule.zone())
        .bind(i64::from(r.keep_last))
        .bind(i64::from(r.keep_daily))
        .bind(i64::from(r.keep_weekly))
        .bind(i64::from(r.keep_monthly))
        .bind(i64::from(r.keep_yearly))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let details = serde_json::json!({
            "database": new.database_id, "destination": new.destination_id,
            "cron": schedule.cron(), "time_zone": schedule.zone(),
            "retention": retention_json(r),
        });
        let (target, action) = (format!("schedule:{id}"), AuditAction::ScheduleCreate);
        audit::record_in(&mut tx, org_id, actor, action, &target, details, now).await
    }
    .await;
    end_write(tx, created).await?;
    get(db, org_id, &id, now)
        .await?
        .ok_or_else(|| Error::internal("the new schedule vanished"))
}

/// Changes schedule `id` of `org_id` (`None`: no such schedule there), audited as
/// `schedule.update` with its settings before and after.
///
/// A new expression or zone, and a resumed schedule, count from `now`: the scheduler
/// does not fire for slots before the change (or during the pause), as a new schedule
/// does not fire for slots before it existed, and the database is not late for them
/// (`timing_since`). A paused schedule neither fires nor has
/// its retention applied, so nothing is deleted while it is paused.
pub async fn update(
    db: &Db,
    org_id: &str,
    id: &str,
    change: &ScheduleChange<'_>,
    actor: &str,
    now: i64,
) -> Result<Option<ScheduleInfo>> {
    let schedule = checked(change.cron, change.time_zone, &change.retention)?;
    let mut tx = db.begin().await?;
    let updated: Result<bool> = async {
        let found: Option<StoredSchedule> = sqlx::query_as(
            "SELECT id, database_id, destination_id, cron, time_zone, enabled, keep_last, \
             keep_daily, keep_weekly, keep_monthly, keep_yearly, grace_secs FROM schedules \
             WHERE id = $1 AND org_id = $2",
        )
        .bind(id)
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(before) = found.map(|stored| stored.info(now)) else {
            return Ok(false);
        };
        let last_fired_at: i64 =
            sqlx::query_scalar("SELECT last_fired_at FROM schedules WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        let was_enabled = before.enabled;
        let retimed = before.cron != schedule.cron() || before.time_zone != schedule.zone();
        let resumed = change.enabled && !was_enabled;
        let restarts = retimed || resumed;
        let last_fired_at = if restarts {
            last_fired_at.max(now)
        } else {
            last_fired_at
        };
        let r = &change.retention;
        sqlx::query(
            "UPDATE schedules SET cron = $1, time_zone = $2, enabled = $3, keep_last = $4, \
             keep_daily = $5, keep_weekly = $6, keep_monthly = $7, keep_yearly = $8, \
             last_fired_at = $9, timing_since = CASE WHEN $10 = 1 THEN $11 ELSE timing_since END \
             WHERE id = $12 AND org_id = $13",
        )
        .bind(schedule.cron())
        .bind(schedule.zone())
        .bind(i64::from(change.enabled))
        .bind(i64::from(r.keep_last))
        .bind(i64::from(r.keep_daily))
        .bind(i64::from(r.keep_weekly))
        .bind(i64::from(r.keep_monthly))
        .bind(i64::from(r.keep_yearly))
        .bind(last_fired_at)
        .bind(i64::from(restarts))
        .bind(now)
        .bind(id)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
        let details = serde_json::json!({
            "before": {
                "cron": before.cron, "time_zone": before.time_zone, "enabled": was_enabled,
                "retention": retention_json(&before.rules()),
            },
            "after": {
                "cron": schedule.cron(), "time_zone": schedule.zone(), "enabled": change.enabled,
                "retention": retention_json(r),
            },
        });
        let (target, action) = (format!("schedule:{id}"), AuditAction::ScheduleUpdate);
        audit::record_in(&mut tx, org_id, actor, action, &target, details, now).await?;
        Ok(true)
    }
    .await;
    if !end_write(tx, updated).await? {
        return Ok(None);
    }
    get(db, org_id, id, now).await
}

/// Schedule `id` of `org_id` with its next fire time after `now` (`None`: not there).
/// One row: answering a create or an update with the whole list cost a read of every
/// schedule, which at 10,000 schedules made each create take half a second.
pub async fn get(db: &Db, org_id: &str, id: &str, now: i64) -> Result<Option<ScheduleInfo>> {
    let stored: Option<StoredSchedule> = sqlx::query_as(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = $1 AND org_id = $2"
    ))
    .bind(id)
    .bind(org_id)
    .fetch_optional(db.pool())
    .await?;
    Ok(stored.map(|s| s.info(now)))
}

/// What [`StoredSchedule`] is read from.
const SCHEDULE_COLUMNS: &str = "id, database_id, destination_id, cron, time_zone, enabled, \
     keep_last, keep_daily, keep_weekly, keep_monthly, keep_yearly, grace_secs";

/// The organisation's schedules with their next fire time after `now`.
pub async fn list(db: &Db, org_id: &str, now: i64) -> Result<Vec<ScheduleInfo>> {
    let stored: Vec<StoredSchedule> = sqlx::query_as(&format!(
        "SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE org_id = $1 ORDER BY created_at, id"
    ))
    .bind(org_id)
    .fetch_all(db.pool())
    .await?;
    Ok(stored.into_iter().map(|s| s.info(now)).collect())
}

impl ScheduleInfo {
    /// Its retention counts as the planner takes them.
    pub fn rules(&self) -> Rules {
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

/// The ids of every organisation's enabled schedules, in order: what the scheduler fires
/// and retention applies.
pub async fn enabled_ids(db: &Db) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM schedules WHERE enabled = 1 ORDER BY id")
            .fetch_all(db.pool())
            .await?,
    )
}

/// A schedule's row (`enabled` an integer, as SQLite stores flags).
struct StoredSchedule {
    id: String,
    database_id: String,
    destination_id: String,
    cron: String,
    time_zone: String,
    enabled: i64,
    keep_last: i64,
    keep_daily: i64,
    keep_weekly: i64,
    keep_monthly: i64,
    keep_yearly: i64,
    grace_secs: Option<i64>,
}

crate::rows::from_row!(StoredSchedule {
    id,
    database_id,
    destination_id,
    cron,
    time_zone,
    enabled,
    keep_last,
    keep_daily,
    keep_weekly,
    keep_monthly,
    keep_yearly,
    grace_secs,
});

impl StoredSchedule {
    /// As listed at `now`, with its next fire time.
    fn info(self, now: i64) -> ScheduleInfo {
        let enabled = self.enabled != 0;
        let next_run_at = Schedule::parse(&self.cron, &self.time_zone)
            .ok()
            .filter(|_| enabled)
            .and_then(|s| s.next_after(now));
        ScheduleInfo {
            id: self.id,
            database_id: self.database_id,
            destination_id: self.destination_id,
            cron: self.cron,
            time_zone: self.time_zone,
            enabled,
            keep_last: self.keep_last,
            keep_daily: self.keep_daily,
            keep_weekly: self.keep_weekly,
            keep_monthly: self.keep_monthly,
            keep_yearly: self.keep_yearly,
            next_run_at,
            grace_minutes: self.grace_secs.unwrap_or(super::overview::GRACE_SECS) / 60,
        }
    }
}
