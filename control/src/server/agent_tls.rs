//! The agent listener's TLS: the API's certificate, client certificates verified
//! against the deployment root with every organisation's CRL, no session resumption.
//!
//! The configuration is rebuilt from the database when a revocation or a new
//! organisation CA changes the CRLs, and every [`REFRESH`] in any case (so a replica
//! picks up another replica's revocations, and CRLs are re-signed before they expire);
//! each new connection takes the newest. Resumption is off because a resumed session
//! skips the client-certificate verifier, and with it the CRL.

use crate::db::Db;
use crate::envelope::MasterKeys;
use crate::error::{Error, Result};
use crate::pki::{ca, crl};
use crate::server::TlsConfigs;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often the configuration is rebuilt without a local change.
pub const REFRESH: Duration = Duration::from_secs(30);

/// The agent listener's current TLS configuration.
pub struct AgentTls {
    db: Db,
    keys: Arc<MasterKeys>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for AgentTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentTls")
    }
}

fn now() -> i64 {
    dbcrate_core::time::unix_now()
}

impl AgentTls {
    /// Builds the first configuration (creating the deployment root CA if needed) from
    /// the server's certificate chain and key files.
    pub async fn new(
        db: Db,
        keys: Arc<MasterKeys>,
        source: &crate::server::tls::TlsSource,
    ) -> Result<Arc<Self>> {
        let server_chain = CertificateDer::pem_file_iter(&source.cert_file)
            .and_then(|iter| iter.collect::<std::result::Result<Vec<_>, _>>())
            .map_err(|e| Error::internal(format!("reading {}: {e}", source.cert_file.display())))?;
        let server_key = PrivateKeyDer::from_pem_file(&source.key_file)
            .map_err(|e| Error::internal(format!("reading {}: {e}", source.key_file.display())))?;
        let config = build(&db, &keys, &server_chain, &server_key).await?;
        Ok(Arc::new(Self {
            db,
            keys,
            server_chain,
            server_key,
            current: RwLock::new(config),
        }))
    }

    /// Rebuilds the configuration from the database now.
    pub async fn reload(&self) -> Result<()> {
        let config = build(&self.db, &self.keys, &self.server_chain, &self.server_key).await?;
        match self.current.write() {
            Ok(mut current) => *current = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        Ok(())
    }

    /// Rebuilds every [`REFRESH`] until the process ends; failures are logged and the
    /// previous configuration stays.
    pub fn spawn_refresher(self: &Arc<Self>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH).await;
                if let Err(e) = this.reload().await {
                    tracing::error!("reloading the agent CRLs failed: {}", e.message);
                }
            }
        });
    }
}

/// Holds the agent TLS configuration for the server loop.
#[derive(Debug, Clone)]
pub struct AgentTlsHandle(pub Arc<AgentTls>);

impl TlsConfigs for AgentTlsHandle {
    fn current(&self) -> Arc<rustls::ServerConfig> {
        match self.0.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

async fn build(
    db: &Db,
    keys: &MasterKeys,
    server_chain: &[CertificateDer<'static>],
    server_key: &PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>> {
    let now = now();
    let root_pem = ca::root_cert_pem(db, keys, now).await?;
    let root = CertificateDer::from_pem_slice(root_pem.as_bytes())
        .map_err(|e| Error::internal(format!("the stored root CA: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(root)
        .map_err(|e| Error::internal(format!("the stored root CA: {e}")))?;
    let crls: Vec<CertificateRevocationListDer<'static>> = crl::all_current(db, keys, now)
        .await?
        .into_iter()
        .map(CertificateRevocationListDer::from)
        .collect();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .with_crls(crls)
        .only_check_end_entity_revocation()
        .enforce_revocation_expiration()
        // Enrolment has no certificate yet; every other route demands one.
        .allow_unauthenticated()
        .build()
        .map_err(|e| Error::internal(format!("the agent client verifier: {e}")))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(server_chain.to_vec(), server_key.clone_key())
        .map_err(|e| Error::internal(format!("the TLS key does not fit the certificate: {e}")))?;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
