//! Where a job is in its life: queued, running, then succeeded or failed (a failed
//! attempt with attempts left goes back to queued).

use std::fmt;
use std::str::FromStr;

/// A job's state, stored in `jobs.state` and reported to the agent at completion. The
/// tests fix each variant's text against the schema's CHECK constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for its agent to claim it (again, after a failed attempt).
    Queued,
    /// Claimed by its agent, under a lease the agent's heartbeats renew.
    Running,
    /// Done; a backup job's backup is recorded.
    Succeeded,
    /// Out of attempts.
    Failed,
}

impl JobState {
    /// Every state, in the order a job passes through them.
    pub const ALL: [JobState; 4] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
    ];

    /// The state as stored and reported.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl JobState {
    /// Whether the job has ended (succeeded, or failed with no attempt left): its page
    /// stops reloading and its numbers no longer change.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that names no job state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for JobState {
    type Err = UnknownState;

    fn from_str(text: &str) -> Result<Self, UnknownState> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| UnknownState(text.to_string()))
    }
}

crate::rows::text_column!(JobState);

#[cfg(test)]
mod tests {
    use super::JobState;

    /// The stored text of every state (also what a completion report answers).
    const TEXT: [(JobState, &str); 4] = [
        (JobState::Queued, "queued"),
        (JobState::Running, "running"),
        (JobState::Succeeded, "succeeded"),
        (JobState::Failed, "failed"),
    ];

    #[test]
    fn each_state_has_its_stored_text() {
        assert_eq!(JobState::ALL.len(), TEXT.len());
        for (state, text) in TEXT {
            assert_eq!(state.as_str(), text);
            assert_eq!(text.parse::<JobState>(), Ok(state));
        }
        assert!("done".parse::<JobState>().is_err());
    }

    #[test]
    fn the_schema_allows_exactly_these_states() {
        let schema = include_str!("../../../migrations/common/0009_jobs.sql");
        let listed: Vec<String> = JobState::ALL.iter().map(|s| format!("'{s}'")).collect();
        let check = format!("CHECK (state IN ({}))", listed.join(", "));
        assert!(schema.contains(&check), "{check} not in the schema");
    }
}
