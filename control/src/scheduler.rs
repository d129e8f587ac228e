//! Firing schedules: each due schedule becomes one queued backup job, once.
//!
//! `dbcrate_core::schedule::due` decides (pure: after downtime, one run for all the
//! missed slots); this executor records the fire time and the job in one transaction
//! per schedule. On PostgreSQL the schedule rows are taken with `FOR UPDATE SKIP
//! LOCKED`, so with several replicas each fire is claimed by exactly one of them; on
//! SQLite (one node) writing transactions are serialised anyway.

use crate::audit::{self, AuditEvent};
use crate::db::{end_write, Db, Engine};
use crate::error::{new_id, Result};
use dbcrate_core::schedule::{due, Schedule};
use dbcrate_core::time::rfc3339;
use sqlx::Row;

/// How often the scheduler loop applies retention.
pub const RETENTION_EVERY_SECS: i64 = 60;

/// How many times a failed backup job is tried in all.
pub const MAX_ATTEMPTS: i64 = 3;

/// Fires every due schedule; returns the ids of the jobs made.
pub async fn fire_due(db: &Db, now: i64) -> Result<Vec<String>> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM schedules WHERE enabled = 1 ORDER BY id")
            .fetch_all(db.pool())
            .await?;
    let mut made = Vec::new();
    for id in ids {
        if let Some(job) = fire_one(db, &id, now).await? {
            made.push(job);
        }
    }
    Ok(made)
}

async fn fire_one(db: &Db, schedule_id: &str, now: i64) -> Result<Option<String>> {
    let lock = match db.engine() {
        Engine::Postgres => " FOR UPDATE SKIP LOCKED",
        Engine::Sqlite => "",
    };
    let mut tx = db.begin().await?;
    let fired: Result<Option<String>> = async {
        let Some(row) = sqlx::query(&format!(
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
        let org_id: String = row.try_get(0)?;
        let cron: String = row.try_get(3)?;
        let zone: String = row.try_get(4)?;
        let last_fired: i64 = row.try_get(5)?;
        let Ok(schedule) = Schedule::parse(&cron, &zone) else {
            tracing::error!(schedule.id = %schedule_id, "a stored schedule no longer parses");
            return Ok(None);
        };
        let Some(fire_at) = due(&schedule, last_fired, now) else {
            return Ok(None);
        };
        let job = new_id("job")?;
        sqlx::query("UPDATE schedules SET last_fired_at = $1 WHERE id = $2")
            .bind(fire_at)
            .bind(schedule_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO jobs (id, org_id, kind, schedule_id, database_id, destination_id, \
             agent_id, state, attempt, max_attempts, created_at, progress_bytes, phase) \
             VALUES ($1, $2, 'backup', $3, $4, $5, $6, 'queued', 0, $7, $8, 0, 'queued')",
        )
        .bind(&job)
        .bind(&org_id)
        .bind(schedule_id)
        .bind(row.try_get::<String, _>(1)?)
        .bind(row.try_get::<String, _>(2)?)
        .bind(row.try_get::<String, _>(6)?)
        .bind(MAX_ATTEMPTS)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let details = serde_json::json!({ "schedule": schedule_id, "fire_time": fire_at });
        audit::append_in(
            &mut tx,
            &AuditEvent {
                org_id: &org_id,
                actor: "system:scheduler",
                action: "job.create",
                target: &format!("job:{job}"),
                details: &details.to_string(),
            },
            &rfc3339(now),
        )
        .await?;
        Ok(Some(job))
    }
    .await;
    end_write(tx, fired).await
}

/// Fires due schedules and expires stale job leases every `every`, and applies
/// retention (and prunes sign-in failures older than the throttle window) every minute,
/// until the process ends. Several replicas may run this at once (each fire and each expiry happens once).
pub fn spawn_loop(
    db: Db,
    keys: std::sync::Arc<crate::envelope::MasterKeys>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_retention: Option<i64> = None;
        loop {
            tick.tick().await;
            let now = dbcrate_core::time::unix_now();
            // Retention at most once a minute: it lists and deletes in customers' storage.
            if last_retention.is_none_or(|at| now - at >= RETENTION_EVERY_SECS) {
                last_retention = Some(now);
                if let Err(e) = crate::retention::apply_all(&db, &keys, now).await {
                    tracing::error!("applying retention failed: {}", e.message);
                }
                if let Err(e) = crate::throttle::prune(&db, now).await {
                    tracing::error!("pruning old sign-in failures failed: {}", e.message);
                }
            }
            if let Err(e) = fire_due(&db, now).await {
                tracing::error!("firing schedules failed: {}", e.message);
            }
            if let Err(e) = crate::jobs::expire_leases(&db, now).await {
                tracing::error!("expiring job leases failed: {}", e.message);
            }
        }
    })
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
    let job = new_id("job")?;
    let mut tx = db.begin().await?;
    let made: Result<()> = async {
        let inserted = sqlx::query(
            "INSERT INTO jobs (id, org_id, kind, schedule_id, database_id, destination_id, \
             agent_id, state, attempt, max_attempts, created_at, progress_bytes, phase) \
             SELECT $1, s.org_id, 'backup', s.id, s.database_id, s.destination_id, d.agent_id, \
             'queued', 0, $2, $3, 0, 'queued' FROM schedules s JOIN databases d ON d.id = s.database_id \
             WHERE s.id = $4 AND s.org_id = $5",
        )
        .bind(&job)
        .bind(MAX_ATTEMPTS)
        .bind(now)
        .bind(schedule_id)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() != 1 {
            return Err(crate::error::Error::not_found("no such schedule"));
        }
        let details = serde_json::json!({ "schedule": schedule_id, "run_now": true });
        audit::append_in(
            &mut tx,
            &AuditEvent {
                org_id,
                actor,
                action: "job.create",
                target: &format!("job:{job}"),
                details: &details.to_string(),
            },
            &rfc3339(now),
        )
        .await?;
        Ok(())
    }
    .await;
    end_write(tx, made).await?;
    Ok(job)
}
