//! Exactly-once, read from the control plane's database (not from logs or from what the
//! agents say): every job was started as often as its attempts say and no more, no job
//! has two backups, no succeeded job lacks its backup, nothing is left queued or
//! running once the run has drained.

use sqlx::AnyPool;

/// What the database says about the run's jobs.
#[derive(Debug, Default)]
pub struct Verdict {
    pub jobs: i64,
    pub succeeded: i64,
    /// Still queued or running after the drain.
    pub unfinished: i64,
    /// Jobs started more than once (attempt > 1: a lease ran out, e.g. after a kill).
    pub retried: i64,
    /// Jobs whose `job.start` audit rows differ from their attempts: a second hand-out
    /// of one attempt.
    pub starts_not_matching_attempts: i64,
    /// Jobs with more than one backup row.
    pub double_backups: i64,
    /// Succeeded jobs without a backup row.
    pub missing_backups: i64,
}

impl Verdict {
    /// Whether every job was handed out once per attempt and recorded once.
    pub fn exactly_once(&self) -> bool {
        self.starts_not_matching_attempts == 0
            && self.double_backups == 0
            && self.missing_backups == 0
            && self.unfinished == 0
    }
}

async fn count(pool: &AnyPool, sql: &str) -> Result<i64, String> {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(pool)
        .await
        .map_err(|e| format!("{sql}: {e}"))
}

/// Reads the verdict from the database at `url`.
pub async fn verify(url: &str) -> Result<Verdict, String> {
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(url)
        .await
        .map_err(|e| format!("opening the control plane's database: {e}"))?;
    let verdict = Verdict {
        jobs: count(&pool, "SELECT COUNT(*) FROM jobs").await?,
        succeeded: count(&pool, "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'").await?,
        unfinished: count(
            &pool,
            "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')",
        )
        .await?,
        retried: count(&pool, "SELECT COUNT(*) FROM jobs WHERE attempt > 1").await?,
        starts_not_matching_attempts: count(
            &pool,
            // One pass over the audit log (its target column has no index: a subquery
            // per job read the whole log 15,000 times).
            "SELECT COUNT(*) FROM jobs j LEFT JOIN (SELECT target, COUNT(*) AS n \
             FROM audit_log WHERE action = 'job.start' GROUP BY target) s \
             ON s.target = 'job:' || j.id WHERE j.attempt <> COALESCE(s.n, 0)",
        )
        .await?,
        double_backups: count(
            &pool,
            "SELECT COUNT(*) FROM (SELECT job_id FROM backups GROUP BY job_id \
             HAVING COUNT(*) > 1) doubled",
        )
        .await?,
        missing_backups: count(
            &pool,
            "SELECT COUNT(*) FROM jobs j WHERE j.state = 'succeeded' AND j.kind = 'backup' \
             AND NOT EXISTS (SELECT 1 FROM backups b WHERE b.job_id = j.id)",
        )
        .await?,
    };
    pool.close().await;
    Ok(verdict)
}
