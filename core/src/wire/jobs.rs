//! The job protocol: the long poll, heartbeats and the final report.

use serde::{Deserialize, Serialize};

/// `GET /agent/v1/jobs/next`: a claimed job, or `null` when none came within the poll
/// interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextJobAnswer {
    /// The job the agent now holds under a lease, if any.
    #[serde(default)]
    pub job: Option<Job>,
}

/// A job as an agent sees it when it claims it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// What to do.
    pub kind: JobKind,
    /// Which attempt this is, from 1 (named again in the report).
    pub attempt: i64,
    /// The database's name (the folder in the destination).
    pub database_name: String,
    /// Where the backup goes, relative to the destination's prefix (fixed at claim).
    pub object_key: String,
    /// A backup: also count every table's rows in the dump's snapshot, for the restore
    /// drills that check them (its schedule has drills).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub count_rows: bool,
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Dump the database to the destination.
    Backup,
    /// Restore a backup into the database (a managed restore).
    Restore,
    /// Restore a backup into a throwaway database on the database's server, check it
    /// and drop it (a restore drill).
    Drill,
    /// A kind a newer control plane knows and this build does not: the agent reports
    /// it failed rather than guess.
    #[serde(other)]
    Unknown,
}

impl JobKind {
    /// The kind stored as `name` (`Unknown` for any other name).
    pub fn from_name(name: &str) -> Self {
        match name {
            "backup" => Self::Backup,
            "restore" => Self::Restore,
            "drill" => Self::Drill,
            _ => Self::Unknown,
        }
    }

    /// The kind as it is stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::Restore => "restore",
            Self::Drill => "drill",
            Self::Unknown => "unknown",
        }
    }
}

/// `POST /agent/v1/jobs/{job}/progress`: a heartbeat, which renews the job's lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressReport {
    /// Bytes so far.
    pub bytes: i64,
    /// What the job is doing (`backing up`, `restoring`).
    pub phase: String,
}

/// The answer to [`ProgressReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressAnswer {
    /// How long the renewed lease lasts: the agent keeps its heartbeats well inside it.
    pub lease_secs: i64,
}

/// `POST /agent/v1/jobs/{job}/complete`: what an agent reports at the end of a job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// Whether the job succeeded (a backup: complete under its final name).
    pub succeeded: bool,
    /// The object key (relative to the destination prefix) of a successful backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_key: Option<String>,
    /// Ciphertext size.
    #[serde(default)]
    pub size: i64,
    /// The dump's size before compression and encryption, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dump_size: Option<i64>,
    /// How long the backup took on the agent, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    /// Ciphertext SHA-256 (hex).
    #[serde(default)]
    pub sha256: String,
    /// The server's version.
    #[serde(default)]
    pub pg_server_version: String,
    /// pg_dump's version.
    #[serde(default)]
    pub pg_dump_version: String,
    /// What went wrong, when it failed (no secret in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The attempt the agent claimed (a stale attempt's report is refused; agents
    /// before this field named none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<i64>,
    /// The cluster's roles and other globals, saved as a second object next to a
    /// successful backup; absent when they could not be read (the backup stands without
    /// them) or the agent predates them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub globals: Option<StoredObject>,
    /// A backup asked to count rows: every table's rows in the dump's snapshot, by
    /// qualified name (`schema.table`, quoted as SQL identifiers where needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_counts: Option<RowCounts>,
    /// A drill: what it measured and checked (also when it failed, as far as it got).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillReport>,
}

/// Rows per table, by qualified name.
pub type RowCounts = std::collections::BTreeMap<String, i64>;

/// The most tables a backup's row counts name: an agent counts none beyond it (the
/// drill then checks pg_restore and the query only), the control plane refuses more.
pub const MAX_COUNTED_TABLES: usize = 10_000;

/// What a restore drill measured and checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillReport {
    /// How long the restore took (applying the globals, pg_restore), when it finished:
    /// the database's measured time to restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_ms: Option<i64>,
    /// Tables whose row counts were compared with those recorded at backup time.
    #[serde(default)]
    pub tables_checked: i64,
    /// Whether the operator's check query returned true (`None`: there is none, or the
    /// drill did not get that far).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_query_passed: Option<bool>,
}

/// An object an agent stored: its key (relative to the destination's prefix), its
/// ciphertext size and SHA-256 (hex).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredObject {
    /// The object's key.
    pub object_key: String,
    /// Ciphertext size.
    pub size: i64,
    /// Ciphertext SHA-256 (hex).
    pub sha256: String,
}

impl Completion {
    /// A failed job's report.
    pub fn failed(error: String) -> Self {
        Self {
            error: Some(error),
            ..Self::default()
        }
    }
}

/// The answer to [`Completion`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionAnswer {
    /// The job's state after the report: `succeeded`, `queued` (to be retried) or
    /// `failed`.
    pub state: String,
}
