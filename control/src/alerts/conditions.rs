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
//! - `certificate_not_renewing` (an agent): its newest certificate is more than
//!   [`NOT_RENEWING_FRACTION`] through its life — agents renew at 80% — so it will expire
//!   and the agent stop; clears when a newer certificate is issued.
//! - `retention_delete_failed` (a backup): retention tried to delete it and failed (it
//!   retries with a back-off); clears when it is deleted.
//! - `destination_probe_failed` (a destination): the daily re-probe
//!   (`backups::destinations::reprobe_due`) failed a step; clears when one passes.
//! - `audit_chain_broken` (an organisation): its audit chain did not verify at the last
//!   hourly check (`chain_checks`): rows were changed or removed behind the control
//!   plane's back.
//! - `drill_failed` (a drill's job): a restore drill (`backups::drills`) found that a
//!   backup does not restore or fails its checks, in the last [`EVENT_WINDOW_SECS`]. An
//!   event, like `job_failed` (which leaves drills to this one).

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

/// How far through its life an agent's newest certificate may be before it counts as
/// not renewing (agents renew at `wire::DEFAULT_RENEW_AT_FRACTION`, 0.8).
pub const NOT_RENEWING_FRACTION: f64 = 0.9;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    /// A database's backup is overdue.
    BackupOverdue,
    /// An agent has not called.
    AgentOffline,
    /// A job failed for good.
    JobFailed,
    /// An agent's certificate nears its end without a renewal.
    CertificateNotRenewing,
    /// Retention cannot delete a backup.
    RetentionDeleteFailed,
    /// The organisation's audit chain does not verify.
    AuditChainBroken,
    /// A destination's daily re-probe failed.
    DestinationProbeFailed,
    /// A restore drill failed.
    DrillFailed,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: [AlertKind; 8] = [
        Self::BackupOverdue,
        Self::AgentOffline,
        Self::JobFailed,
        Self::CertificateNotRenewing,
        Self::RetentionDeleteFailed,
        Self::AuditChainBroken,
        Self::DestinationProbeFailed,
        Self::DrillFailed,
    ];

    /// The kind as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BackupOverdue => "backup_overdue",
            Self::AgentOffline => "agent_offline",
            Self::JobFailed => "job_failed",
            Self::CertificateNotRenewing => "certificate_not_renewing",
            Self::RetentionDeleteFailed => "retention_delete_failed",
            Self::AuditChainBroken => "audit_chain_broken",
            Self::DestinationProbeFailed => "destination_probe_failed",
            Self::DrillFailed => "drill_failed",
        }
    }

    /// The kind stored as `text`.
    pub fn from_name(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Whether the condition can end (and a recovery notice follow), or is an event
    /// told once.
    pub fn recovers(self) -> bool {
        !matches!(self, Self::JobFailed | Self::DrillFailed)
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
         AND drill = 0 AND finished_at >= $1 ORDER BY org_id, finished_at, id",
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
    let drills: Vec<(String, String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT org_id, job_id, backup_id, database_id, error FROM drill_results \
         WHERE passed = 0 AND finished_at >= $1 ORDER BY org_id, finished_at, job_id",
    )
    .bind(now - EVENT_WINDOW_SECS)
    .fetch_all(db.pool())
    .await?;
    for (org_id, job, backup, database, error) in drills {
        out.push(Condition {
            org_id,
            kind: AlertKind::DrillFailed,
            summary: format!(
                "The restore drill {job} of backup {backup} of {} failed: that backup may not \
                 restore. {}",
                name_of(&database),
                error.as_deref().unwrap_or("No reason was recorded.")
            ),
            subject: job,
        });
    }
    certificates(db, now, &mut out).await?;
    deletions(db, &name_of, &mut out).await?;
    let failing: Vec<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT p.org_id, p.destination_id, d.name, p.failure FROM destination_probes p \
         JOIN destinations d ON d.id = p.destination_id WHERE p.passed = 0 \
         ORDER BY p.org_id, p.destination_id",
    )
    .fetch_all(db.pool())
    .await?;
    for (org_id, id, name, failure) in failing {
        out.push(Condition {
            org_id,
            kind: AlertKind::DestinationProbeFailed,
            summary: format!(
                "The daily probe of destination {name} failed ({}): backups to it will fail \
                 too. Check its credentials and that it still exists.",
                failure.as_deref().unwrap_or("no reason recorded")
            ),
            subject: id,
        });
    }
    let broken: Vec<(String, i64, Option<String>)> = sqlx::query_as(
        "SELECT org_id, broken_seq, reason FROM audit_checks WHERE broken_seq IS NOT NULL \
         ORDER BY org_id",
    )
    .fetch_all(db.pool())
    .await?;
    for (org_id, seq, reason) in broken {
        out.push(Condition {
            summary: format!(
                "The audit log no longer verifies at row {seq}: {}. Rows may have been changed \
                 or removed behind the control plane's back; compare with a saved chain head \
                 (dbcrate-control audit verify --heads).",
                reason.as_deref().unwrap_or("unknown")
            ),
            subject: org_id.clone(),
            org_id,
            kind: AlertKind::AuditChainBroken,
        });
    }
    Ok(out)
}

/// Unrevoked agents whose newest certificate is past [`NOT_RENEWING_FRACTION`] of its
/// life (and not yet expired long ago: an agent gone for good is `agent_offline`).
async fn certificates(db: &Db, now: i64, out: &mut Vec<Condition>) -> Result<()> {
    let newest: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
        // From each agent to its newest certificate (by the agent's index), rather
        // than through every certificate ever issued.
        "SELECT a.org_id, a.id, a.name, c.not_before, c.not_after FROM agents a \
         JOIN agent_certificates c ON c.serial = \
         (SELECT c2.serial FROM agent_certificates c2 WHERE c2.agent_id = a.id \
          ORDER BY c2.not_after DESC LIMIT 1) \
         WHERE a.revoked_at IS NULL AND c.revoked_at IS NULL ORDER BY a.org_id, a.id",
    )
    .fetch_all(db.pool())
    .await?;
    for (org_id, id, name, not_before, not_after) in newest {
        let life = (not_after - not_before).max(1) as f64;
        let through = (now - not_before) as f64 / life;
        if through > NOT_RENEWING_FRACTION && now < not_after + EVENT_WINDOW_SECS {
            out.push(Condition {
                org_id,
                kind: AlertKind::CertificateNotRenewing,
                summary: format!(
                    "The certificate of agent {name} expires at {} and has not been renewed \
                     (agents renew at 80% of its life); when it expires the agent stops.",
                    rfc3339(not_after)
                ),
                subject: id,
            });
        }
    }
    Ok(())
}

/// Backups retention failed to delete and has not deleted since.
async fn deletions(
    db: &Db,
    name_of: &impl Fn(&str) -> String,
    out: &mut Vec<Condition>,
) -> Result<()> {
    let stuck: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT org_id, id, database_id, delete_attempts FROM backups \
         WHERE deleted_at IS NULL AND delete_attempts > 0 ORDER BY org_id, id",
    )
    .fetch_all(db.pool())
    .await?;
    for (org_id, id, database, attempts) in stuck {
        out.push(Condition {
            org_id,
            kind: AlertKind::RetentionDeleteFailed,
            summary: format!(
                "Retention cannot delete backup {id} of {} ({attempts} attempts failed; it \
                 keeps trying): check that the destination's credentials may delete.",
                name_of(&database)
            ),
            subject: id,
        });
    }
    Ok(())
}
