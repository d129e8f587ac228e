//! The TLS client configuration alert deliveries use (webhooks and SMTP alike): the
//! system's roots, read once, plus a CA an e-mail channel names for a private relay.

use std::sync::{Arc, OnceLock};

/// The system's roots, loaded at the first delivery over TLS.
fn system_roots() -> &'static rustls::RootCertStore {
    static ROOTS: OnceLock<rustls::RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        roots
    })
}

/// A client configuration trusting the system's roots and, if given, the CA
/// certificates in `extra_ca` (PEM); an error says what is wrong with them.
pub fn client_config(extra_ca: Option<&str>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = system_roots().clone();
    if let Some(pem) = extra_ca {
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|_| "the CA certificate is not PEM".to_string())?;
            roots
                .add(cert)
                .map_err(|e| format!("the CA certificate cannot be used: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
