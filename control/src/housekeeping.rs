//! Housekeeping: the work the control plane does by itself, on a clock, with nobody
//! asking — firing due schedules, expiring the leases of jobs whose agent went silent
//! (and removing what their attempts stored and never reported),
//! applying retention (deleting in customers' storage what the rules no longer keep),
//! opening, repeating and clearing alerts and delivering them, pruning old sign-in
//! failures, and handing freed memory back to the system. Each step is its own
//! module's; this is only the loop that runs them, so what happens every minute is
//! visible in one place.

use crate::accounts::throttle;
use crate::alerts;
use crate::backups::{destinations, jobs, retention, scheduler};
use crate::db::Db;

/// How often the loop applies retention and prunes sign-in failures.
pub const RETENTION_EVERY_SECS: i64 = 60;

/// Starts the loop: fires due schedules and expires stale job leases every `every`, and
/// applies retention (and prunes sign-in failures older than the throttle window) every
/// minute, until the process ends. Several replicas may run it at once (each fire and
/// each expiry happens once; retention deletions are idempotent).
pub fn spawn_loop(
    db: Db,
    keys: std::sync::Arc<crate::envelope::MasterKeys>,
    reach: std::sync::Arc<dbcrate_storage::reach::ReachPolicy>,
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
                if let Err(e) = retention::apply_all(&db, &keys, &reach, now).await {
                    tracing::error!("applying retention failed: {}", e.message);
                }
                if let Err(e) = jobs::abandoned::sweep(&db, &keys, &reach, now).await {
                    tracing::error!(
                        "removing what abandoned attempts left failed: {}",
                        e.message
                    );
                }
                if let Err(e) = throttle::prune(&db, now).await {
                    tracing::error!("pruning old sign-in failures failed: {}", e.message);
                }
                if let Err(e) = alerts::chain_checks::run_due(&db, now).await {
                    tracing::error!("verifying the audit chains failed: {}", e.message);
                }
                if let Err(e) = destinations::reprobe_due(&db, &keys, &reach, now).await {
                    tracing::error!("re-probing destinations failed: {}", e.message);
                }
                // What the allocator kept of freed memory goes back to the system.
                crate::memory::release_free_memory();
            }
            if let Err(e) = scheduler::fire_due(&db, now).await {
                tracing::error!("firing schedules failed: {}", e.message);
            }
            if let Err(e) = jobs::expire_leases(&db, now).await {
                tracing::error!("expiring job leases failed: {}", e.message);
            }
            if let Err(e) = alerts::engine::tick(&db, now).await {
                tracing::error!("evaluating alerts failed: {}", e.message);
            }
            if let Err(e) = alerts::delivery::deliver_due(&db, &keys, &reach, now).await {
                tracing::error!("delivering alerts failed: {}", e.message);
            }
        }
    })
}
