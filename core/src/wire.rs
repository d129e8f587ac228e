//! The wire between agent and control plane: every request and answer of `/agent/v1/*`
//! as plain serde types, shared by both binaries. The control plane deserialises what
//! agents send and serialises its answers with these types; the agent does the
//! reverse. Neither builds these messages by hand or reads them by string paths.
//!
//! | Call | Request | Answer |
//! |---|---|---|
//! | `POST` [`paths::ENROLL`] | [`EnrolRequest`] | [`EnrolAnswer`] |
//! | `POST` [`paths::RENEW`] | [`RenewRequest`] | [`RenewAnswer`] |
//! | `GET` [`paths::CONFIG`] | — | [`ConfigAnswer`] |
//! | `GET` [`paths::CRL`] | — | DER bytes ([`CRL_CONTENT_TYPE`]), not JSON |
//! | `GET` [`paths::NEXT_JOB`] | — | [`NextJobAnswer`] (long poll) |
//! | `GET` [`paths::credentials`] | — | [`JobCredentials`] (once per attempt) |
//! | `POST` [`paths::progress`] | [`ProgressReport`] | [`ProgressAnswer`] |
//! | `POST` [`paths::complete`] | [`Completion`] | [`CompletionAnswer`] |
//!
//! A refusal on any route answers [`ErrorAnswer`] with a non-200 status.
//!
//! **Versioning.** Agents and control planes are upgraded on their own schedules, so no
//! type here refuses fields it does not know, and a field added later must have a serde
//! default so that an older peer's payload still parses (the tests keep payloads as
//! today's control plane and agent send them).
//!
//! **Secrets** (the database password, destination credentials, a restore's file key,
//! the enrolment token) deserialise straight into [`crate::secret`] types, which redact
//! their `Debug` and zeroize on drop; they are serialised only through
//! [`crate::secret::expose`], field by field.
//!
//! **Defaults** (intervals, the renewal fraction) live here once: the control plane's
//! settings start from them, and the agent uses them until the control plane says
//! otherwise (or when an older one does not say).

pub mod codes;
mod credentials;
mod enrol;
mod jobs;
#[cfg(test)]
mod tests;

pub use credentials::{
    DatabaseConnection, Destination, DestinationCredentials, DrillPart, GlobalsPart,
    JobCredentials, RestorePart,
};
pub use enrol::{
    ConfigAnswer, EnrolAnswer, EnrolRequest, RegistrySettings, RenewAnswer, RenewRequest,
};
pub use jobs::{
    Completion, CompletionAnswer, DrillReport, Job, JobKind, NextJobAnswer, ProgressAnswer,
    ProgressReport, RowCounts, StoredObject, MAX_COUNTED_TABLES,
};

use serde::{Deserialize, Serialize};

/// How long a job long poll waits on the control plane for work, at most.
pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 30;
/// How often an agent fetches its organisation's CRL.
pub const DEFAULT_CRL_INTERVAL_SECS: u64 = 300;
/// How often a running job sends a heartbeat (well inside the control plane's lease).
pub const DEFAULT_HEARTBEAT_SECS: u64 = 20;
/// At which fraction of its certificate's lifetime an agent renews it.
pub const DEFAULT_RENEW_AT_FRACTION: f64 = 0.8;

/// What an agent's `User-Agent` starts with; its version follows
/// (`dbcrate-agent/0.1.0`), which the control plane shows in its agent list.
pub const AGENT_USER_AGENT_PREFIX: &str = "dbcrate-agent/";

/// The content type of [`paths::CRL`]'s answer: the organisation's signed CRL, DER.
pub const CRL_CONTENT_TYPE: &str = "application/pkix-crl";

/// The routes of the agent listener, as the agent calls them.
pub mod paths {
    /// Token + CSR → certificate chain (the one route without a client certificate).
    pub const ENROLL: &str = "/agent/v1/enroll";
    /// A fresh certificate for a new key.
    pub const RENEW: &str = "/agent/v1/certificate/renew";
    /// The agent's settings.
    pub const CONFIG: &str = "/agent/v1/config";
    /// The organisation's signed CRL.
    pub const CRL: &str = "/agent/v1/crl";
    /// The long poll for the next job.
    pub const NEXT_JOB: &str = "/agent/v1/jobs/next";

    /// A running job's credentials.
    pub fn credentials(job_id: &str) -> String {
        format!("/agent/v1/jobs/{job_id}/credentials")
    }

    /// A running job's heartbeat.
    pub fn progress(job_id: &str) -> String {
        format!("/agent/v1/jobs/{job_id}/progress")
    }

    /// A job's final report.
    pub fn complete(job_id: &str) -> String {
        format!("/agent/v1/jobs/{job_id}/complete")
    }
}

/// What every refusal answers: `{"error": {"code", "message"}}` (the control plane may
/// add `details`, ignored here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    /// The refusal.
    pub error: ErrorDetail,
}

/// A refusal's stable code and its message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A stable code (`not_found`, `client_certificate_required`, …; those an agent
    /// acts on are in [`codes`]).
    #[serde(default)]
    pub code: String,
    /// What went wrong, for people.
    #[serde(default)]
    pub message: String,
}
