//! What `/metrics` says, read from the database at each scrape: every replica answers
//! the same, a restart loses nothing, and counters are counts of rows that are never
//! deleted (backups, jobs, audit rows), so they only grow.

use super::exposition::{Family, Kind};
use crate::agents::presence;
use crate::backups::overview;
use crate::db::Db;
use crate::error::Result;

/// How far back the claim-latency figures look.
pub const CLAIM_WINDOW_SECS: i64 = 3600;

/// The whole exposition at `now`.
pub async fn render(db: &Db, now: i64) -> Result<String> {
    let mut families = Vec::new();
    families.extend(databases(db).await?);
    families.push(deadlines(db).await?);
    families.extend(agents(db, now).await?);
    families.extend(jobs(db, now).await?);
    families.extend(retention_and_restores(db).await?);
    families.push(unwraps(db).await?);
    families.extend(alerts(db).await?);
    families.extend(drills(db).await?);
    let mut info = Family::new(
        "dbcrate_control_info",
        Kind::Gauge,
        "This control plane's version (always 1).",
    );
    info.push(&[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    families.push(info);
    let mut out = String::new();
    for family in &families {
        family.write(&mut out);
    }
    Ok(out)
}

struct LastBackup {
    org_id: String,
    database_id: String,
    name: String,
    finished_at: i64,
    size: i64,
    duration_ms: Option<i64>,
}

crate::rows::from_row!(LastBackup {
    org_id,
    database_id,
    name,
    finished_at,
    size,
    duration_ms
});

/// Per database: its newest backup (time, size, duration) and its failed backup jobs.
async fn databases(db: &Db) -> Result<Vec<Family>> {
    let last: Vec<LastBackup> = sqlx::query_as(
        "SELECT d.org_id, d.id AS database_id, d.name, b.finished_at, b.size, b.duration_ms \
         FROM databases d JOIN backups b ON b.database_id = d.id \
         WHERE b.id = (SELECT b2.id FROM backups b2 WHERE b2.database_id = d.id \
                       ORDER BY b2.finished_at DESC, b2.id LIMIT 1) \
         ORDER BY d.org_id, d.name",
    )
    .fetch_all(db.pool())
    .await?;
    let mut when = Family::new(
        "dbcrate_database_last_success_timestamp_seconds",
        Kind::Gauge,
        "When the database's newest successful backup finished (Unix seconds).",
    );
    let mut size = Family::new(
        "dbcrate_database_last_backup_size_bytes",
        Kind::Gauge,
        "Bytes stored (encrypted) by the database's newest backup.",
    );
    let mut took = Family::new(
        "dbcrate_database_last_backup_duration_seconds",
        Kind::Gauge,
        "How long the database's newest backup took.",
    );
    for b in &last {
        let labels = [
            ("org", b.org_id.as_str()),
            ("database", b.database_id.as_str()),
            ("name", b.name.as_str()),
        ];
        when.push(&labels, b.finished_at as f64);
        size.push(&labels, b.size as f64);
        if let Some(ms) = b.duration_ms {
            took.push(&labels, ms as f64 / 1000.0);
        }
    }
    let failed: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT org_id, database_id, count(*) FROM jobs WHERE kind = 'backup' \
         AND state = 'failed' GROUP BY org_id, database_id ORDER BY org_id, database_id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut failures = Family::new(
        "dbcrate_database_backup_failures_total",
        Kind::Counter,
        "Backup jobs of the database that failed after their last attempt.",
    );
    for (org, database, count) in &failed {
        failures.push(&[("org", org), ("database", database)], *count as f64);
    }
    Ok(vec![when, size, took, failures])
}

/// Per database, its newest restore drill: whether it passed, how long the restore took
/// (the measured recovery time), when it ended.
async fn drills(db: &Db) -> Result<Vec<Family>> {
    let newest: Vec<(String, String, i64, Option<i64>, i64)> = sqlx::query_as(
        "SELECT r.org_id, r.database_id, r.passed, r.restore_ms, r.finished_at \
         FROM drill_results r WHERE r.job_id = (SELECT r2.job_id FROM drill_results r2 \
         WHERE r2.database_id = r.database_id ORDER BY r2.finished_at DESC, r2.job_id DESC \
         LIMIT 1) ORDER BY r.org_id, r.database_id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut passed = Family::new(
        "dbcrate_database_last_drill_passed",
        Kind::Gauge,
        "1 if the database's newest restore drill restored its backup and its checks held.",
    );
    let mut restore = Family::new(
        "dbcrate_database_last_drill_restore_seconds",
        Kind::Gauge,
        "How long the newest drill's restore took: the database's measured recovery time.",
    );
    let mut when = Family::new(
        "dbcrate_database_last_drill_timestamp_seconds",
        Kind::Gauge,
        "When the database's newest restore drill ended (Unix seconds).",
    );
    for (org, database, ok, ms, at) in &newest {
        let labels = [("org", org.as_str()), ("database", database.as_str())];
        passed.push(&labels, *ok as f64);
        if let Some(ms) = ms {
            restore.push(&labels, *ms as f64 / 1000.0);
        }
        when.push(&labels, *at as f64);
    }
    Ok(vec![passed, restore, when])
}

/// Per scheduled database: the time by which its next backup must have finished.
async fn deadlines(db: &Db) -> Result<Family> {
    let mut due = Family::new(
        "dbcrate_database_backup_due_timestamp_seconds",
        Kind::Gauge,
        "When the database's next scheduled backup must have finished (its next run after \
         its last backup, plus an hour's grace); past it, the recovery point objective is \
         breached.",
    );
    for d in overview::deadlines(db).await? {
        due.push(
            &[("org", &d.org_id), ("database", &d.database_id)],
            d.due_by as f64,
        );
    }
    Ok(due)
}

struct AgentRow {
    org_id: String,
    id: String,
    name: String,
    version: Option<String>,
    last_seen_at: Option<i64>,
    revoked_at: Option<i64>,
}

crate::rows::from_row!(AgentRow {
    org_id,
    id,
    name,
    version,
    last_seen_at,
    revoked_at
});

/// Agents: when each was last seen, the version it runs, and how many are online.
async fn agents(db: &Db, now: i64) -> Result<Vec<Family>> {
    let rows: Vec<AgentRow> = sqlx::query_as(
        "SELECT org_id, id, name, version, last_seen_at, revoked_at FROM agents \
         ORDER BY org_id, id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut seen = Family::new(
        "dbcrate_agent_last_seen_timestamp_seconds",
        Kind::Gauge,
        "When the agent last called the control plane (Unix seconds); revoked agents and \
         agents never seen are left out.",
    );
    let mut info = Family::new(
        "dbcrate_agent_info",
        Kind::Gauge,
        "The version each agent last said it runs (always 1).",
    );
    let mut states = Family::new(
        "dbcrate_agents",
        Kind::Gauge,
        "Agents by state: online (seen within two minutes), offline, never_seen, revoked.",
    );
    let mut counts: Vec<(String, [u32; 4])> = Vec::new();
    for a in &rows {
        let state = if a.revoked_at.is_some() {
            3
        } else if presence::is_online(a.last_seen_at, now) {
            0
        } else if a.last_seen_at.is_some() {
            1
        } else {
            2
        };
        match counts.last_mut() {
            Some((org, c)) if *org == a.org_id => c[state] += 1,
            _ => {
                let mut c = [0; 4];
                c[state] += 1;
                counts.push((a.org_id.clone(), c));
            }
        }
        if a.revoked_at.is_some() {
            continue;
        }
        let labels = [("org", a.org_id.as_str()), ("agent", a.id.as_str())];
        if let Some(at) = a.last_seen_at {
            let mut named = labels.to_vec();
            named.push(("name", a.name.as_str()));
            seen.push(&named, at as f64);
        }
        if let Some(version) = &a.version {
            let mut versioned = labels.to_vec();
            versioned.push(("version", version.as_str()));
            info.push(&versioned, 1.0);
        }
    }
    for (org, c) in &counts {
        for (i, state) in ["online", "offline", "never_seen", "revoked"]
            .iter()
            .enumerate()
        {
            states.push(&[("org", org), ("state", state)], f64::from(c[i]));
        }
    }
    Ok(vec![seen, info, states])
}

/// The job queue (queued and running jobs) and how long jobs waited to be claimed.
async fn jobs(db: &Db, now: i64) -> Result<Vec<Family>> {
    let queue: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT org_id, state, count(*) FROM jobs WHERE state IN ('queued', 'running') \
         GROUP BY org_id, state ORDER BY org_id, state",
    )
    .fetch_all(db.pool())
    .await?;
    let mut depth = Family::new(
        "dbcrate_jobs",
        Kind::Gauge,
        "Jobs waiting for their agent (queued) and being run (running).",
    );
    for (org, state, count) in &queue {
        depth.push(&[("org", org), ("state", state)], *count as f64);
    }
    let mut waits: Vec<i64> = sqlx::query_scalar(
        "SELECT started_at - created_at FROM jobs WHERE started_at IS NOT NULL \
         AND started_at >= $1",
    )
    .bind(now - CLAIM_WINDOW_SECS)
    .fetch_all(db.pool())
    .await?;
    waits.sort_unstable();
    let mut latency = Family::new(
        "dbcrate_job_claim_latency_seconds",
        Kind::Gauge,
        "From queueing to the agent's claim, for jobs claimed in the last hour (a retried \
         job counts its wait before the retry too): the median, the 99th percentile and the \
         longest.",
    );
    let mut claimed = Family::new(
        "dbcrate_jobs_claimed_last_hour",
        Kind::Gauge,
        "Jobs their agents claimed in the last hour.",
    );
    claimed.push(&[], waits.len() as f64);
    if !waits.is_empty() {
        let at = |q: f64| waits[((waits.len() - 1) as f64 * q).round() as usize] as f64;
        // A `stat` label, not `quantile`: that one belongs to summaries, whose counts
        // would have to be cumulative (promtool says so).
        for (label, q) in [("median", 0.5), ("p99", 0.99), ("max", 1.0)] {
            latency.push(&[("stat", label)], at(q));
        }
    }
    Ok(vec![depth, latency, claimed])
}

/// Retention's deletions (and failed attempts) and managed restores by outcome.
async fn retention_and_restores(db: &Db) -> Result<Vec<Family>> {
    let deleted: Vec<(String, i64)> = sqlx::query_as(
        "SELECT org_id, count(*) FROM backups WHERE deleted_at IS NOT NULL \
         GROUP BY org_id ORDER BY org_id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut deletions = Family::new(
        "dbcrate_retention_deletions_total",
        Kind::Counter,
        "Backups retention deleted from the organisation's storage.",
    );
    for (org, count) in &deleted {
        deletions.push(&[("org", org)], *count as f64);
    }
    let failed: Vec<(String, i64)> = sqlx::query_as(
        "SELECT org_id, count(*) FROM audit_log WHERE action = 'backup.delete_failed' \
         GROUP BY org_id ORDER BY org_id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut failures = Family::new(
        "dbcrate_retention_deletion_failures_total",
        Kind::Counter,
        "Deletions retention attempted that failed (each is retried later).",
    );
    for (org, count) in &failed {
        failures.push(&[("org", org)], *count as f64);
    }
    let ended: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT org_id, state, count(*) FROM jobs WHERE kind = 'restore' AND drill = 0 \
         AND state IN ('succeeded', 'failed') GROUP BY org_id, state ORDER BY org_id, state",
    )
    .fetch_all(db.pool())
    .await?;
    let mut restores = Family::new(
        "dbcrate_restores_total",
        Kind::Counter,
        "Managed restores that ended, by outcome.",
    );
    for (org, state, count) in &ended {
        restores.push(&[("org", org), ("outcome", state)], *count as f64);
    }
    Ok(vec![deletions, failures, restores])
}

/// Open alerts by kind, and deliveries that failed for good (`alerts`).
async fn alerts(db: &Db) -> Result<Vec<Family>> {
    let open: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT org_id, kind, count(*) FROM alerts WHERE cleared_at IS NULL \
         GROUP BY org_id, kind ORDER BY org_id, kind",
    )
    .fetch_all(db.pool())
    .await?;
    let mut alerts = Family::new(
        "dbcrate_alerts_open",
        Kind::Gauge,
        "Alerts open now, by kind (docs/alerts.md).",
    );
    for (org, kind, count) in &open {
        alerts.push(&[("org", org), ("kind", kind)], *count as f64);
    }
    let failed: Vec<(String, i64)> = sqlx::query_as(
        "SELECT org_id, count(*) FROM alert_deliveries WHERE state = 'failed' \
         GROUP BY org_id ORDER BY org_id",
    )
    .fetch_all(db.pool())
    .await?;
    let mut undelivered = Family::new(
        "dbcrate_alert_deliveries_failed_total",
        Kind::Counter,
        "Alert deliveries given up after their last attempt: nobody was told.",
    );
    for (org, count) in &failed {
        undelivered.push(&[("org", org)], *count as f64);
    }
    Ok(vec![alerts, undelivered])
}

/// Secrets the master key unwrapped, by what they are and why (from the audit log).
async fn unwraps(db: &Db) -> Result<Family> {
    let groups: Vec<(String, i64)> = sqlx::query_as(
        "SELECT details, count(*) FROM audit_log WHERE action = 'secret.unwrap' \
         GROUP BY details",
    )
    .fetch_all(db.pool())
    .await?;
    let mut totals: std::collections::BTreeMap<(String, String), i64> = Default::default();
    for (details, count) in groups {
        let parsed: serde_json::Value = serde_json::from_str(&details).unwrap_or_default();
        let field = |name: &str| parsed[name].as_str().unwrap_or("unknown").to_string();
        *totals
            .entry((field("purpose"), field("reason")))
            .or_default() += count;
    }
    let mut family = Family::new(
        "dbcrate_master_key_unwraps_total",
        Kind::Counter,
        "Secrets unwrapped with the master key, by the secret's purpose and the reason.",
    );
    for ((purpose, reason), count) in &totals {
        family.push(&[("purpose", purpose), ("reason", reason)], *count as f64);
    }
    Ok(family)
}
