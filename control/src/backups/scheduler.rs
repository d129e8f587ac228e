//! Firing schedules: each due schedule becomes one queued backup job, once.
//!
//! `dbcrate_core::schedule::due` decides (pure: after downtime, one run for all the
//! missed slots); this executor records the fire time and the job in one transaction
//! per schedule. On PostgreSQL the schedule rows are taken with `FOR UPDATE SKIP
//! LOCKED`, so with several replicas each fire is claimed by exactly one of them; on
//! SQLite (one node) writing transactions are serialised anyway.

use crate::audit::AuditAction;
use crate::backups::jobs::{enqueue, skip_locked, Because, NewJob};
use crate::db::{end_write, Db};
use crate::error::Result;
use dbcrate_core::schedule::{due, Schedule};

/// What a schedule's job needs: the database it backs up, the destination, and the
/// database's agent, which runs the job.
struct JobRoute {
    database_id: String,
    destination_id: String,
    agent_id: String,
}

crate::rows::from_row!(JobRoute {
    database_id,
    destination_id,
    agent_id
});

/// A schedule being fired: its route, organisation, expression and last fire time.
struct Firing {
    org_id: String,
    database_id: String,
    destination_id: String,
    agent_id: String,
    cron: String,
    time_zone: String,
    last_fired_at: i64,
}

crate::rows::from_row!(Firing {
    org_id,
    database_id,
    destination_id,
    agent_id,
    cron,
    time_zone,
    last_fired_at,
});

/// How many times a failed backup job is tried in all.
pub const MAX_ATTEMPTS: i64 = 3;

/// An enabled schedule's timing, read without a transaction to tell whether it may be
/// due; the transaction that fires it reads it again under its lock.
struct Timing {
    id: String,
    cron: String,
    time_zone: String,
    last_fired_at: i64,
}

crate::rows::from_row!(Timing {
    id,
    cron,
    time_zone,
    last_fired_at
});

impl Timing {
    /// Due now, or unreadable (then [`fire_one`] says so in the log).
    fn may_be_due(&self, now: i64) -> bool {
        match Schedule::parse(&self.cron, &self.time_zone) {
            Ok(schedule) => due(&schedule, self.last_fired_at, now).is_some(),
            Err(_) => true,
        }
    }
}

/// Fires every due schedule; returns the ids of the jobs made. One read finds the due
/// ones: a writing transaction per enabled schedule on every tick cost 10,000 of them
/// each ten seconds at 10,000 schedules, each taking SQLite's write lock.
pub async fn fire_due(db: &Db, now: i64) -> Result<Vec<String>> {
    let timings: Vec<Timing> = sqlx::query_as(
        "SELECT id, cron, time_zone, last_fired_at FROM schedules WHERE enabled = 1 ORDER BY id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut made = Vec::new();
    for timing in timings.iter().filter(|t| t.may_be_due(now)) {
        if let Some(job) = fire_one(db, &timing.id, now).await? {
            made.push(job);
        }
    }
    Ok(made)
}

async fn fire_one(db: &Db, schedule_id: &str, now: i64) -> Result<Option<String>> {
    let lock = skip_locked(db);
    let mut tx = db.begin().await?;
    let fired: Result<Option<String>> = async {
        let Some(firing) = sqlx::query_as::<_, Firing>(&format!(
            "SELECT s.org_id, s.database_id, s.destination_id, s.cron, s.time_zone, \
             s.last_fired_at, d.agent_id FROM schedules s JOIN databases d ON d.id = s.database_id \
             WHERE s.id = $1 AND s.enabled = 1{lock}"
        ))
        .bind(schedule_id)
        .fetch_optional(&mut *tx)
        .await?
        else {
            // Another replica holds it, or it was disabled meanwhile.
            return Ok(None);
        };
        let Ok(schedule) = Schedule::parse(&firing.cron, &firing.time_zone) else {
            tracing::error!(schedule.id = %schedule_id, "a stored schedule no longer parses");
            return Ok(None);
        };
        let Some(fire_at) = due(&schedule, firing.last_fired_at, now) else {
            return Ok(None);
        };
        sqlx::query("UPDATE schedules SET last_fired_at = $1 WHERE id = $2")
            .bind(fire_at)
            .bind(schedule_id)
            .execute(&mut *tx)
            .await?;
        let route = JobRoute {
            database_id: firing.database_id,
            destination_id: firing.destination_id,
            agent_id: firing.agent_id,
        };
        let job = backup_job(&firing.org_id, schedule_id, &route);
        let details = serde_json::json!({ "schedule": schedule_id, "fire_time": fire_at });
        let because = Because {
            actor: "system:scheduler",
            action: AuditAction::JobCreate,
            details: &details,
        };
        let job = enqueue(&mut tx, &job, &because, now).await?;
        Ok(Some(job))
    }
    .await;
    end_write(tx, fired).await
}

/// "Run now": queues one backup job for the schedule at once (its regular fire times
/// are unchanged). Returns the job id.
pub async fn run_now(
    db: &Db,
    org_id: &str,
    schedule_id: &str,
    actor: &str,
    now: i64,
) -> Result<String> {
    if !crate::error::is_id(schedule_id, "sch") {
        return Err(crate::error::Error::not_found("no such schedule"));
    }
    let mut tx = db.begin().await?;
    let made: Result<String> = async {
        let route: JobRoute = sqlx::query_as(
            "SELECT s.database_id, s.destination_id, d.agent_id FROM schedules s \
             JOIN databases d ON d.id = s.database_id WHERE s.id = $1 AND s.org_id = $2",
        )
        .bind(schedule_id)
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| crate::error::Error::not_found("no such schedule"))?;
        let job = backup_job(org_id, schedule_id, &route);
        let details = serde_json::json!({ "schedule": schedule_id, "run_now": true });
        let because = Because {
            actor,
            action: AuditAction::JobCreate,
            details: &details,
        };
        enqueue(&mut tx, &job, &because, now).await
    }
    .await;
    end_write(tx, made).await
}

/// A backup job of `schedule_id`, run by the database's agent.
fn backup_job<'a>(org_id: &'a str, schedule_id: &'a str, route: &'a JobRoute) -> NewJob<'a> {
    NewJob {
        org_id,
        kind: dbcrate_core::wire::JobKind::Backup,
        schedule_id: Some(schedule_id),
        database_id: &route.database_id,
        destination_id: &route.destination_id,
        agent_id: &route.agent_id,
        backup_id: None,
        max_attempts: MAX_ATTEMPTS,
    }
}
