//! A schedule's grace: how long after a scheduled run its backup may take before the
//! database counts as late — the recovery point breached, the `backup_overdue` alert,
//! the overview's "Late", the metrics' deadline. An hour unless set
//! ([`crate::backups::overview::GRACE_SECS`]); a large database whose dump takes hours
//! needs more, a busy one may want less.

use crate::audit::{self, AuditAction};
use crate::db::{end_write, Db};
use crate::error::{Error, Result};

/// The shortest grace, in minutes.
pub const MIN_GRACE_MINUTES: i64 = 5;
/// The longest grace: a week, in minutes.
pub const MAX_GRACE_MINUTES: i64 = 7 * 24 * 60;

/// Sets schedule `id`'s grace to `minutes`; audited as `schedule.update` with the
/// grace before and after. `false` when there is no such schedule.
pub async fn set_grace(
    db: &Db,
    org_id: &str,
    id: &str,
    minutes: i64,
    actor: &str,
    now: i64,
) -> Result<bool> {
    if !(MIN_GRACE_MINUTES..=MAX_GRACE_MINUTES).contains(&minutes) {
        return Err(Error::invalid(format!(
            "the grace must be between {MIN_GRACE_MINUTES} and {MAX_GRACE_MINUTES} minutes"
        )));
    }
    let mut tx = db.begin().await?;
    let done: Result<bool> = async {
        let before: Option<Option<i64>> =
            sqlx::query_scalar("SELECT grace_secs FROM schedules WHERE id = $1 AND org_id = $2")
                .bind(id)
                .bind(org_id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(before) = before else {
            return Ok(false);
        };
        sqlx::query("UPDATE schedules SET grace_secs = $1 WHERE id = $2 AND org_id = $3")
            .bind(minutes * 60)
            .bind(id)
            .bind(org_id)
            .execute(&mut *tx)
            .await?;
        let before_minutes = before.unwrap_or(crate::backups::overview::GRACE_SECS) / 60;
        let details = serde_json::json!({
            "before": { "grace_minutes": before_minutes },
            "after": { "grace_minutes": minutes },
        });
        let target = format!("schedule:{id}");
        let action = AuditAction::ScheduleUpdate;
        audit::record_in(&mut tx, org_id, actor, action, &target, details, now).await?;
        Ok(true)
    }
    .await;
    end_write(tx, done).await
}
