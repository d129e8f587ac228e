//! A whole control plane inside the current process, on loopback ports with a
//! self-signed certificate: what integration tests (here and in the agent) and demos
//! start, through exactly the code `serve` runs.

use crate::backups::jobs::wakeups::JobWakeups;
use crate::config::AgentSettings;
use crate::db::Db;
use crate::envelope::MasterKeys;
use crate::error::Result;
use crate::http::{agent_router, AppState};
use crate::server::agent_tls::{AgentTls, AgentTlsHandle};
use crate::server::tls::{self, TlsSource};
use std::path::Path;
use std::sync::Arc;

/// A running in-process control plane; it stops when dropped.
#[derive(Debug)]
pub struct LocalControlPlane {
    /// `https://127.0.0.1:PORT` of the API.
    pub api_url: String,
    /// `https://127.0.0.1:PORT` of the agent listener.
    pub agent_url: String,
    /// The server certificate (PEM), for clients to pin.
    pub cert_pem: String,
    /// Its SHA-256 fingerprint.
    pub fingerprint: String,
    /// The shared state (database, keys, agent TLS).
    pub state: AppState,
    _stop: tokio::sync::watch::Sender<()>,
}

async fn bind() -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| crate::error::Error::internal(format!("binding a loopback port: {e}")))
}

impl LocalControlPlane {
    /// Runs the scheduler loop (fire due schedules, expire leases) every `every`, for
    /// tests and demos that want schedules to fire by themselves.
    pub fn run_scheduler(&self, every: std::time::Duration) -> tokio::task::JoinHandle<()> {
        crate::housekeeping::spawn_loop(
            self.state.db.clone(),
            self.state.keys.clone(),
            self.state.reach.clone(),
            every,
        )
    }
}

/// Starts the API and the agent listener on free loopback ports, with TLS material
/// generated in `tls_dir`. The database must be migrated.
pub async fn start(
    db: Db,
    keys: Arc<MasterKeys>,
    tls_dir: &Path,
    agents: AgentSettings,
    reach: dbcrate_storage::reach::ReachPolicy,
) -> Result<LocalControlPlane> {
    let source = TlsSource {
        cert_file: tls_dir.join("cert.pem"),
        key_file: tls_dir.join("key.pem"),
        generate_if_missing: true,
        hostnames: vec![],
    };
    let material = tls::load(&source)?;
    let cert_pem = std::fs::read_to_string(&source.cert_file)
        .map_err(|e| crate::error::Error::internal(format!("reading the certificate: {e}")))?;
    let agent_tls = AgentTls::new(db.clone(), keys.clone(), &source).await?;
    let (api, agent) = (bind().await?, bind().await?);
    let port = |l: &tokio::net::TcpListener| l.local_addr().map(|a| a.port()).unwrap_or(0);
    let (api_url, agent_url) = (
        format!("https://127.0.0.1:{}", port(&api)),
        format!("https://127.0.0.1:{}", port(&agent)),
    );
    let state = AppState {
        db,
        keys,
        agents: AgentSettings {
            public_url: Some(agent_url.clone()),
            server_fingerprint: Some(material.fingerprint.clone()),
            ..agents
        },
        agent_tls: Some(agent_tls.clone()),
        reach: Arc::new(reach),
        job_wakeups: JobWakeups::new(),
    };
    state.job_wakeups.spawn_watcher(state.db.clone());
    let (stop, stopped) = tokio::sync::watch::channel(());
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    tokio::spawn(crate::server::serve_with_limits(
        agent,
        AgentTlsHandle(agent_tls),
        agent_router(state.clone()),
        state.agents.connection_limits(),
        until_stopped(stopped.clone()),
    ));
    tokio::spawn(crate::server::serve(
        api,
        material.config,
        crate::web::app(state.clone()),
        until_stopped(stopped),
    ));
    Ok(LocalControlPlane {
        api_url,
        agent_url,
        cert_pem,
        fingerprint: material.fingerprint,
        state,
        _stop: stop,
    })
}

/// Enrols a new agent of `org_id` the way `dbcrate-agent enroll` does (a fresh key, a
/// CSR, a one-time token), but through the library and with a one-hour certificate: for
/// tests and demos that need an agent without a host. Returns the enrolment and the
/// agent's key.
pub async fn enrol_agent(
    db: &crate::db::Db,
    keys: &MasterKeys,
    org_id: &str,
    now: i64,
) -> Result<(crate::agents::Enrolled, rcgen::KeyPair)> {
    use crate::error::Error;
    let token = crate::agents::create_token(db, org_id, "local", None, "system:local", now).await?;
    let key = rcgen::KeyPair::generate()
        .map_err(|e| Error::internal(format!("generating an agent key: {e}")))?;
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(|e| Error::internal(format!("making a CSR: {e}")))?;
    let request = crate::agents::EnrolRequest {
        token: &token.token,
        csr_pem: &csr,
        name: "local",
        org_id: None,
    };
    let enrolled = crate::agents::enrol(db, keys, &request, 3600, now).await?;
    Ok((enrolled, key))
}

/// The reach policy of a control plane whose storage runs on this machine (tests, the
/// demo): loopback addresses, and directory destinations under `directory_root`.
pub fn loopback_reach(directory_root: &Path) -> Result<dbcrate_storage::reach::ReachPolicy> {
    use dbcrate_storage::reach::{Network, ReachPolicy};
    let loopback = ["127.0.0.0/8", "::1/128"]
        .iter()
        .map(|n| Network::parse(n))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| crate::error::Error::internal(e.to_string()))?;
    ReachPolicy::new(loopback, &[directory_root.to_path_buf()])
        .map_err(|e| crate::error::Error::internal(e.to_string()))
}
