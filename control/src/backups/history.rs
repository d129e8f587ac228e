//! The organisation's backups and jobs as people browse them: newest first, filtered,
//! a page at a time. Pages are keyset-paginated — each page starts after the last row
//! of the one before (its time and id), not at an offset — so a page costs the same
//! however far back it is, and a row recorded meanwhile does not shift the next page.

use super::jobs::JobState;
use crate::db::Db;
use crate::error::Result;

/// Rows per page.
pub const PAGE_SIZE: usize = 50;

/// Where a page starts: after the row with this time and id (none for the first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct After {
    /// The last row's time (a backup's finish, a job's creation).
    pub at: i64,
    /// The last row's id.
    pub id: String,
}

impl After {
    /// The `at:id` form pages put in their "older" link.
    pub fn token(&self) -> String {
        format!("{}:{}", self.at, self.id)
    }

    /// Reads [`After::token`]; anything else is the first page.
    pub fn parse(token: &str) -> Option<Self> {
        let (at, id) = token.split_once(':')?;
        let id_ok = !id.is_empty()
            && id.len() <= 64
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        Some(Self {
            at: at.parse().ok()?,
            id: id.to_string(),
        })
        .filter(|_| id_ok)
    }

    /// The bounds a query binds: the first page starts after everything.
    fn bounds(after: Option<&Self>) -> (i64, &str) {
        after.map_or((i64::MAX, ""), |a| (a.at, a.id.as_str()))
    }
}

/// A recorded backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRecord {
    /// `bkp_…`.
    pub id: String,
    /// The database it is of.
    pub database_id: String,
    /// Where it is stored.
    pub destination_id: String,
    /// The schedule that made it, if one did.
    pub schedule_id: Option<String>,
    /// Its object key under the destination.
    pub object_key: String,
    /// Bytes stored (encrypted).
    pub size: i64,
    /// SHA-256 of the stored object, hex.
    pub sha256: String,
    /// When the dump started.
    pub started_at: i64,
    /// When the object was complete.
    pub finished_at: i64,
    /// The server's version.
    pub pg_server_version: String,
    /// pg_dump's version.
    pub pg_dump_version: String,
    /// pg_dump's output before compression, when the agent said.
    pub dump_size: Option<i64>,
    /// How long the backup took, when the agent said.
    pub duration_ms: Option<i64>,
    /// When retention deleted it, if it did.
    pub deleted_at: Option<i64>,
    /// The size of the roles and other globals saved next to it, if they were.
    pub globals_size: Option<i64>,
}

crate::rows::from_row!(BackupRecord {
    id,
    database_id,
    destination_id,
    schedule_id,
    object_key,
    size,
    sha256,
    started_at,
    finished_at,
    pg_server_version,
    pg_dump_version,
    dump_size,
    duration_ms,
    deleted_at,
    globals_size,
});

const BACKUP_COLUMNS: &str = "id, database_id, destination_id, schedule_id, object_key, size, \
    sha256, started_at, finished_at, pg_server_version, pg_dump_version, dump_size, \
    duration_ms, deleted_at, globals_size";

/// Which backups a page lists.
#[derive(Debug, Clone, Default)]
pub struct BackupFilter<'a> {
    /// Only this database's.
    pub database_id: Option<&'a str>,
    /// Only those finished at or after this time.
    pub since: Option<i64>,
    /// Where the page starts.
    pub after: Option<&'a After>,
}

/// A page of up to `limit` of the organisation's backups, newest first.
pub async fn backups(
    db: &Db,
    org_id: &str,
    filter: &BackupFilter<'_>,
    limit: usize,
) -> Result<Vec<BackupRecord>> {
    let (at, id) = After::bounds(filter.after);
    Ok(sqlx::query_as(&format!(
        "SELECT {BACKUP_COLUMNS} FROM backups WHERE org_id = $1 \
         AND ($2 IS NULL OR database_id = $2) AND finished_at >= $3 \
         AND (finished_at < $4 OR (finished_at = $4 AND id > $5)) \
         ORDER BY finished_at DESC, id LIMIT $6"
    ))
    .bind(org_id)
    .bind(filter.database_id)
    .bind(filter.since.unwrap_or(i64::MIN))
    .bind(at)
    .bind(id)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(db.pool())
    .await?)
}

/// Where the page after `page` starts, when `page` came back full (`limit` rows) and
/// so may not be the last.
pub fn next_page(page: &[BackupRecord], limit: usize) -> Option<After> {
    let last = page.last().filter(|_| page.len() == limit)?;
    Some(After {
        at: last.finished_at,
        id: last.id.clone(),
    })
}

/// One backup of the organisation.
pub async fn backup(db: &Db, org_id: &str, id: &str) -> Result<Option<BackupRecord>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {BACKUP_COLUMNS} FROM backups WHERE org_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

/// The backup a job is about: the one a backup job made, or the one a restore job
/// restores; `None` while a backup job has made none.
pub async fn backup_of_job(db: &Db, org_id: &str, job_id: &str) -> Result<Option<BackupRecord>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {BACKUP_COLUMNS} FROM backups WHERE org_id = $1 AND (job_id = $2 \
         OR id = (SELECT backup_id FROM jobs WHERE org_id = $1 AND id = $2)) LIMIT 1"
    ))
    .bind(org_id)
    .bind(job_id)
    .fetch_optional(db.pool())
    .await?)
}

/// A job, as its page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// `job_…`.
    pub id: String,
    /// `backup` or `restore`.
    pub kind: String,
    /// Where it is in its life.
    pub state: JobState,
    /// The database it dumps, or restores into.
    pub database_id: String,
    /// The destination it writes to or reads from.
    pub destination_id: String,
    /// The agent that runs it.
    pub agent_id: String,
    /// The schedule that made it, if one did.
    pub schedule_id: Option<String>,
    /// The attempt running or last run.
    pub attempt: i64,
    /// How many attempts it has.
    pub max_attempts: i64,
    /// When it was queued.
    pub created_at: i64,
    /// When its agent last claimed it.
    pub started_at: Option<i64>,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// Bytes moved so far, from the agent's heartbeats.
    pub progress_bytes: i64,
    /// The phase the agent last reported.
    pub phase: String,
    /// Why it failed, in the words the agent or the control plane recorded.
    pub error: Option<String>,
}

crate::rows::from_row!(JobRecord {
    id,
    kind,
    state,
    database_id,
    destination_id,
    agent_id,
    schedule_id,
    attempt,
    max_attempts,
    created_at,
    started_at,
    finished_at,
    progress_bytes,
    phase,
    error,
});

/// A drill is stored as a restore with `drill = 1` (migration 26); it is listed as one.
const JOB_COLUMNS: &str = "id, CASE WHEN drill = 1 THEN 'drill' ELSE kind END AS kind, state, \
    database_id, destination_id, agent_id, schedule_id, \
    attempt, max_attempts, created_at, started_at, finished_at, progress_bytes, phase, error";

/// Which jobs a page lists.
#[derive(Debug, Clone, Default)]
pub struct JobFilter<'a> {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only this database's.
    pub database_id: Option<&'a str>,
    /// Where the page starts.
    pub after: Option<&'a After>,
}

/// A page of the organisation's jobs, newest first.
pub async fn jobs(db: &Db, org_id: &str, filter: &JobFilter<'_>) -> Result<Vec<JobRecord>> {
    let (at, id) = After::bounds(filter.after);
    Ok(sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE org_id = $1 \
         AND ($2 IS NULL OR state = $2) AND ($3 IS NULL OR database_id = $3) \
         AND (created_at < $4 OR (created_at = $4 AND id > $5)) \
         ORDER BY created_at DESC, id LIMIT $6"
    ))
    .bind(org_id)
    .bind(filter.state)
    .bind(filter.database_id)
    .bind(at)
    .bind(id)
    .bind(PAGE_SIZE as i64)
    .fetch_all(db.pool())
    .await?)
}

/// One job of the organisation.
pub async fn job(db: &Db, org_id: &str, id: &str) -> Result<Option<JobRecord>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {JOB_COLUMNS} FROM jobs WHERE org_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}

#[cfg(test)]
mod tests {
    use super::After;

    #[test]
    fn page_tokens_round_trip_and_refuse_anything_else() {
        let after = After {
            at: 1_800_000_000,
            id: "bkp_0a1b".into(),
        };
        assert_eq!(After::parse(&after.token()), Some(after));
        for bad in [
            "",
            "x",
            "1:",
            ":bkp_1",
            "one:bkp_1",
            "1:bkp 1",
            "1:bkp_1'--",
        ] {
            assert_eq!(After::parse(bad), None, "{bad:?}");
        }
    }
}
