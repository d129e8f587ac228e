//! Enrolment, certificate renewal and the agent's settings.

use super::{
    DEFAULT_CRL_INTERVAL_SECS, DEFAULT_HEARTBEAT_SECS, DEFAULT_POLL_INTERVAL_SECS,
    DEFAULT_RENEW_AT_FRACTION,
};
use crate::secret::{expose, SecretString};
use serde::{Deserialize, Serialize};

/// `POST /agent/v1/enroll`: a one-time token and a CSR for a key made on the host.
#[derive(Debug, Serialize, Deserialize)]
pub struct EnrolRequest {
    /// The one-time enrolment token (`dbce_…`).
    #[serde(serialize_with = "expose::string")]
    pub token: SecretString,
    /// The CSR (PEM); the control plane chooses the certificate's contents.
    pub csr: String,
    /// The agent's name (its host name unless given).
    pub name: String,
    /// The organisation the agent expects to join; the token's must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

/// The answer to [`EnrolRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolAnswer {
    /// The organisation the agent joined.
    pub org_id: String,
    /// The agent's id.
    pub agent_id: String,
    /// Its certificate and the organisation's intermediate (PEM).
    pub certificate_chain: String,
    /// The deployment root CA (PEM).
    pub root_ca: String,
    /// When the certificate expires (Unix seconds).
    pub not_after: i64,
}

/// `POST /agent/v1/certificate/renew`: a CSR for a fresh key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewRequest {
    /// The CSR (PEM).
    pub csr: String,
}

/// The answer to [`RenewRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewAnswer {
    /// The new certificate and the organisation's intermediate (PEM).
    pub certificate_chain: String,
    /// When it expires (Unix seconds).
    pub not_after: i64,
}

fn poll_interval() -> u64 {
    DEFAULT_POLL_INTERVAL_SECS
}

fn crl_interval() -> u64 {
    DEFAULT_CRL_INTERVAL_SECS
}

fn heartbeat() -> u64 {
    DEFAULT_HEARTBEAT_SECS
}

fn renew_at_fraction() -> f64 {
    DEFAULT_RENEW_AT_FRACTION
}

/// `GET /agent/v1/config`: who the agent is to the control plane and how it works.
/// A setting an older control plane does not send takes its default from
/// [`super`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigAnswer {
    /// The organisation of the agent's certificate (the agent checks it is its own).
    pub org_id: String,
    /// The agent id of its certificate (checked likewise).
    pub agent_id: String,
    /// The organisation's age recipient (jobs carry theirs in [`super::JobCredentials`];
    /// this one is logged when the agent connects).
    pub recipient: String,
    /// How long the control plane holds a job long poll: the agent waits that long, and
    /// some, for the answer.
    #[serde(default = "poll_interval")]
    pub poll_interval_secs: u64,
    /// How often the agent fetches its CRL.
    #[serde(default = "crl_interval")]
    pub crl_interval_secs: u64,
    /// How often a running job sends a heartbeat.
    #[serde(default = "heartbeat")]
    pub heartbeat_secs: u64,
    /// At which fraction of its certificate's lifetime the agent renews it (0 < f < 1).
    #[serde(default = "renew_at_fraction")]
    pub renew_at_fraction: f64,
    /// The signed pg_dump registry jobs fetch their tools from, if any.
    #[serde(default)]
    pub registry: Option<RegistrySettings>,
}

/// A signed registry of pg_dump/pg_restore builds. Both fields default to empty, so
/// that settings the agent cannot use fail the jobs that need them, with the reason,
/// rather than the agent's connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrySettings {
    /// Its https:// URL.
    #[serde(default)]
    pub url: String,
    /// Its pinned root v1 public keys (minisign format).
    #[serde(default)]
    pub root_keys: Vec<String>,
}
