//! Waking an agent's long poll when a job is queued for it.
//!
//! An agent waits in `GET /agent/v1/jobs/next` for up to the poll interval. Having each
//! waiting poll look at the database every half second cost 20,000 queries a second at
//! 10,000 agents, and on SQLite every look took the write lock. Instead one watcher per
//! control plane asks the database every [`WATCH_EVERY`] which agents have a claimable
//! job (queued, and any retry time passed) and wakes the polls of those agents that are
//! waiting here. Whoever queued the job — this replica's scheduler, another replica, an
//! API call, a retry coming due — the watcher sees it, so no code path has to remember to
//! signal, and replicas need nothing between them but the database.

use crate::db::Db;
use crate::error::Result;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How often the watcher looks for claimable jobs: the longest a queued job waits before
/// the poll of its (waiting) agent tries to claim it.
pub const WATCH_EVERY: Duration = Duration::from_millis(100);

/// How long a poll waits for a job when none comes: between three quarters of the poll
/// interval and all of it, by `random`. Agents that connected together — all of them,
/// after a control-plane restart — would otherwise come back together every interval,
/// thousands of requests within a few seconds; spread, they arrive evenly.
pub fn hold(interval: Duration, random: u16) -> Duration {
    let fraction = 0.75 + 0.25 * f64::from(random) / f64::from(u16::MAX);
    interval.mul_f64(fraction)
}

/// The long polls waiting in this process, by agent.
#[derive(Debug, Default)]
pub struct JobWakeups {
    waiting: Mutex<HashMap<String, Arc<Notify>>>,
}

/// One waiting poll; dropping it stops the agent being watched (when it was the last).
#[derive(Debug)]
pub struct Waiter {
    wakeups: Arc<JobWakeups>,
    agent_id: String,
    notify: Arc<Notify>,
}

impl Waiter {
    /// The signal to wait on; a wake that came before the wait is kept, so none is lost
    /// between a fruitless claim and the wait.
    pub fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut waiting = self.wakeups.lock();
        // The map's handle and this one: nobody else waits for the agent.
        if Arc::strong_count(&self.notify) <= 2 {
            waiting.remove(&self.agent_id);
        }
    }
}

impl JobWakeups {
    /// No poll waiting yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Notify>>> {
        // A panic while holding the map cannot leave it inconsistent (single inserts and
        // removals), so a poisoned lock is still usable.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a poll of `agent_id` that is about to wait.
    pub fn wait_for(self: &Arc<Self>, agent_id: &str) -> Waiter {
        let notify = self.lock().entry(agent_id.to_string()).or_default().clone();
        Waiter {
            wakeups: self.clone(),
            agent_id: agent_id.to_string(),
            notify,
        }
    }

    /// Agents with a poll waiting here.
    fn waiting_agents(&self) -> usize {
        self.lock().len()
    }

    /// Wakes the waiting polls of `agents` (others are not waiting here).
    pub fn wake(&self, agents: &HashSet<String>) {
        let waiting = self.lock();
        for agent in agents {
            if let Some(notify) = waiting.get(agent) {
                notify.notify_waiters();
                // Also a permit, for a poll between its claim and its wait.
                notify.notify_one();
            }
        }
    }

    /// Runs the watcher until the process ends: every [`WATCH_EVERY`], when any poll
    /// waits here, wakes those whose agent has a claimable job. A failed look is logged
    /// and tried again; polls then still end at their interval.
    pub fn spawn_watcher(self: &Arc<Self>, db: Db) -> tokio::task::JoinHandle<()> {
        let wakeups = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(WATCH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tick.tick().await;
                if wakeups.waiting_agents() == 0 {
                    continue;
                }
                match claimable_agents(&db, dbcrate_core::time::unix_now()).await {
                    Ok(agents) => {
                        failing = false;
                        wakeups.wake(&agents);
                    }
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(
                            "cannot look for queued jobs ({e}); waiting agents get theirs \
                             when the database answers again"
                        );
                    }
                    Err(_) => {}
                }
            }
        })
    }
}

/// Agents with a queued job whose retry time (if any) has come.
async fn claimable_agents(db: &Db, now: i64) -> Result<HashSet<String>> {
    let agents: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT agent_id FROM jobs WHERE state = $1 \
         AND (retry_at IS NULL OR retry_at <= $2)",
    )
    .bind(super::JobState::Queued)
    .bind(now)
    .fetch_all(db.pool())
    .await?;
    Ok(agents.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_spread_over_the_last_quarter_of_the_interval() {
        let interval = Duration::from_secs(30);
        assert_eq!(hold(interval, 0), Duration::from_millis(22_500));
        assert_eq!(hold(interval, u16::MAX), interval);
        let middle = hold(interval, u16::MAX / 2);
        assert!(middle > Duration::from_millis(26_000) && middle < Duration::from_millis(26_500));
    }

    #[tokio::test]
    async fn only_the_named_agents_waiting_polls_wake_and_a_wake_before_the_wait_counts() {
        let wakeups = JobWakeups::new();
        let a = wakeups.wait_for("agt_a");
        let b = wakeups.wait_for("agt_b");
        wakeups.wake(&HashSet::from(["agt_a".to_string(), "agt_c".to_string()]));
        // Woken before it waited: the permit is kept.
        tokio::time::timeout(Duration::from_secs(1), a.notify().notified())
            .await
            .expect("agt_a was woken");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), b.notify().notified())
                .await
                .is_err(),
            "agt_b has no job and stays asleep"
        );
        assert_eq!(wakeups.waiting_agents(), 2);
        let a_again = wakeups.wait_for("agt_a");
        drop(a);
        assert_eq!(
            wakeups.waiting_agents(),
            2,
            "agt_a still has a poll waiting"
        );
        drop((a_again, b));
        assert_eq!(wakeups.waiting_agents(), 0);
    }
}
