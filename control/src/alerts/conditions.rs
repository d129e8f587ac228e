//! What is wrong right now, for each organisation: the conditions alerts are about.
//! Each has a kind and a subject (the database, the agent, the job), so one condition
//! is one alert however long it lasts.
//!
//! - `backup_overdue` (a database): its next scheduled backup has not finished by its
//!   deadline (`backups::overview::deadlines`, the overview's "Late" and the metrics'
//!   rule) — the recovery point objective is breached; it clears when a backup arrives.
//! - `agent_offline` (an agent): not seen for [`AGENT_OFFLINE_SECS`]; clears when it
//!   calls again. Revoked agents and agents never seen are left out.
//! - `job_failed` (a job): a backup or restore job failed after its last attempt, in
//!   the last [`EVENT_WINDOW_SECS`]. An event: told once, nothing to clear.

use crate::backups::overview;
use crate::db::Db;
use crate::error::Result;
use dbcrate_core::time::rfc3339;

/// How long an agent may stay silent before it counts as offline: idle agents poll
/// every 30 s by default, so ten minutes is many missed polls, not a slow one.
pub const AGENT_OFFLINE_SECS: i64 = 600;
/// How far back failed jobs are told about (a restarted control plane does not tell
/// again: each job is told once, ever).
pub const EVENT_WINDOW_SECS: i64 = 86_400;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// A database's backup is overdue.
    BackupOverdue,
    /// An agent has not called.
    AgentOffline,
    /// A job failed for good.
    JobFailed,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: [AlertKind; 3] = [Self::BackupOverdue, Self::AgentOffline, Self::JobFailed];

    /// The kind as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BackupOverdue => "backup_overdue",
            Self::AgentOffline => "agent_offline",
            Self::JobFailed => "job_failed",
        }
    }

    /// The kind stored as `text`.
    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Whether the condition can end (and a recovery notice follow), or is an event
    /// told once.
    pub fn recovers(self) -> bool {
        !matches!(self, Self::JobFailed)
    }
}

/// One condition that holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `org_…`.
    pub org_id: String,
    /// What kind.
    pub kind: AlertKind,
    /// What it is about: `dbs_…`, `agt_…`, `job_…`.
    pub subject: String,
    /// One sentence for people.
    pub summary: String,
}

/// Every condition that holds at `now`, in every organisation.
pub async fn current(db: &Db, now: i64) -> Result<Vec<Condition>> {
    let mut out = Vec::new();
    let names: std::collections::HashMap<String, String> =
        sqlx::query_as::<_, (String, String)>("SELECT id, name FROM databases")
            .fetch_all(db.pool())
            .await?
            .into_iter()
            .collect();
    let name_of = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
    for d in overview::deadlines(db).await? {
        if d.due_by < now {
            out.push(Condition {
                summary: format!(
                    "No backup of {} has finished since one was due ({} at the latest).",
                    name_of(&d.database_id),
                    rfc3339(d.due_by)
                ),
                org_id: d.org_id,
                kind: AlertKind::BackupOverdue,
                subject: d.database_id,
            });
        }
    }
    let silent: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT org_id, id, name, last_seen_at FROM agents WHERE revoked_at IS NULL \
         AND last_seen_at IS NOT NULL AND last_seen_at < $1 ORDER BY org_id, id",
    )
    .bind(now - AGENT_OFFLINE_SECS)
    .fetch_all(db.pool())
    .await?;
    for (org_id, id, name, seen) in silent {
        out.push(Condition {
            org_id,
            kind: AlertKind::AgentOffline,
            summary: format!(
                "Agent {name} has not called the control plane since {}; its databases are \
                 not backed up while it is away.",
                rfc3339(seen)
            ),
            subject: id,
        });
    }
    let failed: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT org_id, id, kind, database_id, error FROM jobs WHERE state = 'failed' \
         AND finished_at >= $1 ORDER BY org_id, finished_at, id",
    )
    .bind(now - EVENT_WINDOW_SECS)
    .fetch_all(db.pool())
    .await?;
    for (org_id, id, kind, database, error) in failed {
        out.push(Condition {
            org_id,
            kind: AlertKind::JobFailed,
            summary: format!(
                "The {kind} job {id} of {} failed after its last attempt: {}",
                name_of(&database),
                error.as_deref().unwrap_or("no reason was recorded")
            ),
            subject: id,
        });
    }
    Ok(out)
}
