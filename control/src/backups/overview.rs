//! The health of an organisation at a glance, for the dashboard's overview: per
//! database the last successful backup against its schedules (late when a run that
//! should have happened has not produced one — the recovery point objective breached),
//! the sizes and durations of its recent backups; recent failed jobs; what is stored per
//! destination.

use super::jobs::JobState;
use crate::db::Db;
use crate::error::Result;
use dbcrate_core::schedule::Schedule;

/// How long after a scheduled run its backup may take before the database counts as
/// late (a dump of a large database takes a while), unless its schedule sets another
/// (`schedules.grace_secs`).
pub const GRACE_SECS: i64 = 3600;

/// A schedule's grace as SQL: its own, else [`GRACE_SECS`].
const GRACE_SQL: &str = "coalesce(s.grace_secs, 3600) AS grace_secs";
/// How many recent backups a database's chart shows.
pub const CHART_POINTS: i64 = 30;
/// How far back "recent failures" reach.
pub const FAILURES_WITHIN_SECS: i64 = 7 * 86_400;

/// One database's recovery point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseHealth {
    /// `dbs_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When its newest successful backup finished, if ever.
    pub last_success: Option<i64>,
    /// Whether an enabled schedule backs it up.
    pub scheduled: bool,
    /// When the run that has not produced a backup was due, if one is late.
    pub late_since: Option<i64>,
    /// Its recent backups, oldest first: (finished, bytes stored, milliseconds taken).
    pub recent: Vec<(i64, i64, Option<i64>)>,
    /// Its newest restore drill, if one ran: its recovery time measured.
    pub last_drill: Option<LastDrill>,
}

/// A database's newest restore drill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastDrill {
    /// Whether the backup restored and its checks held (1) or not (0).
    pub passed: i64,
    /// How long the restore took, when it finished.
    pub restore_ms: Option<i64>,
    /// When the drill ended.
    pub finished_at: i64,
}

crate::rows::from_row!(LastDrill {
    passed,
    restore_ms,
    finished_at
});

struct Row {
    id: String,
    name: String,
    last_success: Option<i64>,
}

crate::rows::from_row!(Row {
    id,
    name,
    last_success
});

struct ScheduleRow {
    database_id: String,
    cron: String,
    time_zone: String,
    /// When its timing took effect (creation, a change, a resumption): runs due before
    /// it were never asked for.
    timing_since: i64,
    /// How long a run's backup may take before it is late.
    grace_secs: i64,
}

crate::rows::from_row!(ScheduleRow {
    database_id,
    cron,
    time_zone,
    timing_since,
    grace_secs
});

struct Point {
    finished_at: i64,
    size: i64,
    duration_ms: Option<i64>,
}

crate::rows::from_row!(Point {
    finished_at,
    size,
    duration_ms
});

/// When a schedule's run after `since` was due, if that is more than its grace before
/// `now` (so its backup is missing).
fn due_unmet(schedule: &ScheduleRow, since: i64, now: i64) -> Option<i64> {
    next_run(&schedule.cron, &schedule.time_zone, since)
        .filter(|due| due + schedule.grace_secs < now)
}

/// The run of a schedule after `since`, if it ever runs again.
fn next_run(cron: &str, time_zone: &str, since: i64) -> Option<i64> {
    Schedule::parse(cron, time_zone).ok()?.next_after(since)
}

/// A scheduled database's next deadline: a backup must have finished by `due_by` (its
/// next run after its last backup, or after its schedule's timing took effect, plus
/// [`GRACE_SECS`]); later, it is late.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// `org_…`.
    pub org_id: String,
    /// `dbs_…`.
    pub database_id: String,
    /// Unix seconds.
    pub due_by: i64,
}

struct DeadlineRow {
    org_id: String,
    database_id: String,
    cron: String,
    time_zone: String,
    timing_since: i64,
    grace_secs: i64,
    last_success: Option<i64>,
}

crate::rows::from_row!(DeadlineRow {
    org_id,
    database_id,
    cron,
    time_zone,
    timing_since,
    grace_secs,
    last_success
});

/// Every scheduled database's deadline, in every organisation (the metrics' overdue
/// signal: the same rule as the overview's "Late"). A database with several schedules
/// has the earliest.
pub async fn deadlines(db: &Db) -> Result<Vec<Deadline>> {
    let sql = format!(
        "SELECT s.org_id, s.database_id, s.cron, s.time_zone, s.timing_since, {GRACE_SQL}, \
         (SELECT max(b.finished_at) FROM backups b WHERE b.database_id = s.database_id) \
         AS last_success FROM schedules s WHERE s.enabled = 1 ORDER BY s.org_id, s.database_id"
    );
    let rows: Vec<DeadlineRow> = sqlx::query_as(&sql).fetch_all(db.pool()).await?;
    let mut out: Vec<Deadline> = Vec::new();
    for row in rows {
        let since = row
            .last_success
            .unwrap_or(row.timing_since)
            .max(row.timing_since);
        let Some(due) = next_run(&row.cron, &row.time_zone, since) else {
            continue;
        };
        let due_by = due + row.grace_secs;
        match out.last_mut() {
            Some(last) if last.database_id == row.database_id => {
                last.due_by = last.due_by.min(due_by);
            }
            _ => out.push(Deadline {
                org_id: row.org_id,
                database_id: row.database_id,
                due_by,
            }),
        }
    }
    Ok(out)
}

/// Every database of the organisation with its recovery point, by name.
pub async fn databases(db: &Db, org_id: &str, now: i64) -> Result<Vec<DatabaseHealth>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT d.id, d.name, (SELECT max(b.finished_at) FROM backups b WHERE b.database_id = d.id) \
         AS last_success FROM databases d WHERE d.org_id = $1 ORDER BY d.name",
    )
    .bind(org_id)
    .fetch_all(db.pool())
    .await?;
    let sql = format!(
        "SELECT s.database_id, s.cron, s.time_zone, s.timing_since, {GRACE_SQL} \
         FROM schedules s WHERE s.org_id = $1 AND s.enabled = 1"
    );
    let schedules: Vec<ScheduleRow> = sqlx::query_as(&sql)
        .bind(org_id)
        .fetch_all(db.pool())
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mine: Vec<&ScheduleRow> = schedules
            .iter()
            .filter(|s| s.database_id == row.id)
            .collect();
        let late_since = mine
            .iter()
            .filter_map(|s| {
                due_unmet(
                    s,
                    row.last_success
                        .unwrap_or(s.timing_since)
                        .max(s.timing_since),
                    now,
                )
            })
            .min();
        let mut recent: Vec<Point> = sqlx::query_as(
            "SELECT finished_at, size, duration_ms FROM backups WHERE database_id = $1 \
             ORDER BY finished_at DESC, id LIMIT $2",
        )
        .bind(&row.id)
        .bind(CHART_POINTS)
        .fetch_all(db.pool())
        .await?;
        recent.reverse();
        let last_drill: Option<LastDrill> = sqlx::query_as(
            "SELECT passed, restore_ms, finished_at FROM drill_results WHERE database_id = $1 \
             ORDER BY finished_at DESC, job_id DESC LIMIT 1",
        )
        .bind(&row.id)
        .fetch_optional(db.pool())
        .await?;
        out.push(DatabaseHealth {
            id: row.id,
            name: row.name,
            last_success: row.last_success,
            scheduled: !mine.is_empty(),
            late_since,
            recent: recent
                .into_iter()
                .map(|p| (p.finished_at, p.size, p.duration_ms))
                .collect(),
            last_drill,
        });
    }
    Ok(out)
}

/// A job that failed recently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `job_…`.
    pub id: String,
    /// `backup` or `restore`.
    pub kind: String,
    /// The database's name.
    pub database: String,
    /// When it failed.
    pub finished_at: i64,
    /// Why.
    pub error: Option<String>,
}

crate::rows::from_row!(Failure {
    id,
    kind,
    database,
    finished_at,
    error
});

/// The jobs that failed (out of attempts) in the last week, newest first (at most 10).
pub async fn failures(db: &Db, org_id: &str, now: i64) -> Result<Vec<Failure>> {
    Ok(sqlx::query_as(
        "SELECT j.id, j.kind, d.name AS database, j.finished_at, j.error FROM jobs j \
         JOIN databases d ON d.id = j.database_id \
         WHERE j.org_id = $1 AND j.state = $2 AND j.finished_at >= $3 \
         ORDER BY j.finished_at DESC, j.id LIMIT 10",
    )
    .bind(org_id)
    .bind(JobState::Failed)
    .bind(now - FAILURES_WITHIN_SECS)
    .fetch_all(db.pool())
    .await?)
}

/// What one destination holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The destination's name.
    pub name: String,
    /// Backups held (not deleted by retention).
    pub backups: i64,
    /// Their bytes.
    pub bytes: i64,
}

crate::rows::from_row!(Stored {
    name,
    backups,
    bytes
});

/// Bytes and backups held per destination, by name.
pub async fn stored(db: &Db, org_id: &str) -> Result<Vec<Stored>> {
    Ok(sqlx::query_as(
        "SELECT t.name, count(b.id) AS backups, CAST(COALESCE(sum(b.size), 0) AS BIGINT) AS bytes \
         FROM destinations t LEFT JOIN backups b ON b.destination_id = t.id AND b.deleted_at IS NULL \
         WHERE t.org_id = $1 GROUP BY t.id, t.name ORDER BY t.name",
    )
    .bind(org_id)
    .fetch_all(db.pool())
    .await?)
}

#[cfg(test)]
mod tests {
    use super::{due_unmet, ScheduleRow, GRACE_SECS};

    #[test]
    fn a_database_is_late_once_a_due_run_plus_the_grace_has_passed() {
        let hourly = ScheduleRow {
            database_id: "dbs_1".into(),
            cron: "0 * * * *".into(),
            time_zone: "UTC".into(),
            timing_since: 0,
            grace_secs: GRACE_SECS,
        };
        let last = 1_800_003_600 / 3600 * 3600; // on the hour
        let due = last + 3600;
        assert_eq!(
            due_unmet(&hourly, last, due + GRACE_SECS),
            None,
            "within the grace"
        );
        assert_eq!(due_unmet(&hourly, last, due + GRACE_SECS + 1), Some(due));
        // A schedule's own grace replaces the default.
        let patient = ScheduleRow {
            grace_secs: 4 * 3600,
            ..hourly
        };
        assert_eq!(due_unmet(&patient, last, due + GRACE_SECS + 1), None);
        assert_eq!(due_unmet(&patient, last, due + 4 * 3600 + 1), Some(due));
    }
}
