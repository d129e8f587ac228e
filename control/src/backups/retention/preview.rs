//! What retention would do to a schedule's backups, without doing it: the dashboard's
//! preview of the current rules, or of counts the operator is trying out. The same
//! planner and the same inputs (backups not deleted yet, failed attempts) as [`super::apply`],
//! so what the preview shows is what the next run deletes — except a deletion that is
//! waiting out a backoff or a running restore, which the run takes up later.

use super::attempts;
use crate::backups::schedules::ScheduleInfo;
use crate::db::Db;
use crate::error::{Error, Result};
use dbcrate_core::retention::{self as plan, Reason, Rules};
use dbcrate_core::schedule::Schedule;

/// The plan for `schedule`'s backups under `rules`, in the schedule's time zone, at `now`.
pub async fn preview(
    db: &Db,
    schedule: &ScheduleInfo,
    rules: &Rules,
    now: i64,
) -> Result<plan::Plan> {
    let parsed = Schedule::parse(&schedule.cron, &schedule.time_zone)
        .map_err(|e| Error::internal(format!("a stored schedule no longer parses: {e}")))?;
    let records = attempts(db, &schedule.id).await?;
    Ok(plan::plan(&records, rules, &parsed.calendar(), now))
}

/// Why a backup is kept, in words for people (the audit rows keep
/// [`super::reasons::text`]'s fixed form).
pub fn words(reason: &Reason) -> String {
    match reason {
        Reason::Last(1) => "the newest".into(),
        Reason::Last(rank) => format!("one of the last backups (number {rank})"),
        Reason::Daily(d) => format!(
            "the day's newest ({:04}-{:02}-{:02})",
            d.year, d.month, d.day
        ),
        Reason::Weekly(w) => format!("the week's newest ({:04}-W{:02})", w.year, w.week),
        Reason::Monthly(m) => format!("the month's newest ({:04}-{:02})", m.year, m.month),
        Reason::Yearly(year) => format!("the year's newest ({year:04})"),
        Reason::Newest => "the newest successful backup, never deleted".into(),
        Reason::InFuture => "finished in the future (clock skew), left alone".into(),
        Reason::NoRules => "no retention counts: everything is kept".into(),
        Reason::RecentFailures => "recent backups failed, so nothing is deleted".into(),
        Reason::NotSucceeded => "a failed attempt: nothing stored".into(),
        Reason::DuplicateId => "another record with the same id is kept".into(),
    }
}
