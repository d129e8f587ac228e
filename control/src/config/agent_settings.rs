//! The settings the control plane hands to agents (config answer, certificate
//! lifetime, connection bounds), with the defaults both sides share from
//! [`dbcrate_core::wire`].

use dbcrate_core::wire;

/// Settings for agents.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// The signed pg_dump registry agents use (`DBCRATE_REGISTRY_URL`), if any.
    pub registry_url: Option<String>,
    /// Its pinned root v1 public keys (`DBCRATE_REGISTRY_ROOT_KEYS`, minisign format).
    pub registry_root_keys: Vec<String>,
    /// Lifetime of an agent certificate.
    pub cert_lifetime_secs: i64,
    /// How often agents fetch their CRL.
    pub crl_interval_secs: i64,
    /// How often agents poll for work.
    pub poll_interval_secs: i64,
    /// How often a running job sends a heartbeat: well inside the job lease
    /// ([`crate::backups::jobs::LEASE_SECS`]), so a few lost heartbeats do not fail a job.
    pub heartbeat_secs: i64,
    /// At which fraction of its certificate's lifetime an agent renews it.
    pub renew_at_fraction: f64,
    /// How long a connection to the agent listener may live
    /// (`DBCRATE_AGENT_MAX_CONNECTION_AGE_SECS`): the client certificate is verified
    /// at the handshake, so this bounds how long a connection outlives that check.
    pub max_connection_age_secs: i64,
    /// The URL agents reach the agent listener at (`DBCRATE_AGENT_PUBLIC_URL`, else the
    /// address it is bound to), for the enrolment command the dashboard shows.
    pub public_url: Option<String>,
    /// The SHA-256 fingerprint of the control plane's TLS certificate (`AB:CD:…`), for
    /// that command's `--server-fingerprint`.
    pub server_fingerprint: Option<String>,
}

impl AgentSettings {
    /// The bounds on each connection to the agent listener.
    pub fn connection_limits(&self) -> crate::server::ConnectionLimits {
        crate::server::ConnectionLimits {
            max_age: std::time::Duration::from_secs(self.max_connection_age_secs.max(1) as u64),
            ..crate::server::ConnectionLimits::default()
        }
    }
}

/// The defaults agents assume too ([`dbcrate_core::wire`]).
impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            registry_url: None,
            registry_root_keys: Vec::new(),
            cert_lifetime_secs: 24 * 3600,
            crl_interval_secs: wire::DEFAULT_CRL_INTERVAL_SECS as i64,
            poll_interval_secs: wire::DEFAULT_POLL_INTERVAL_SECS as i64,
            heartbeat_secs: wire::DEFAULT_HEARTBEAT_SECS as i64,
            renew_at_fraction: wire::DEFAULT_RENEW_AT_FRACTION,
            max_connection_age_secs: crate::server::MAX_CONNECTION_AGE.as_secs() as i64,
            public_url: None,
            server_fingerprint: None,
        }
    }
}
