//! TLS to the control plane: its certificate pinned (by CA file or SHA-256
//! fingerprint), the agent's certificate presented, no session resumption.
//!
//! Resumption is off on the agent's side too: every connection is a full handshake in
//! which the control plane checks the certificate against its current CRLs.

use super::identity::{Identity, ServerPin};
use crate::error::{Error, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Normalises a fingerprint to upper-case hex pairs separated by colons; `None` when it
/// is not 32 bytes of hex.
pub fn normalise_fingerprint(text: &str) -> Option<String> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    let bytes = dbcrate_core::hex::decode_array::<32>(&hex)?;
    Some(
        bytes
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// Accepts exactly the server certificate with the pinned SHA-256 fingerprint (and
/// checks the handshake signature with its key), whatever its issuer or names: the pin
/// is stronger than a CA for a self-signed control plane.
#[derive(Debug)]
struct FingerprintVerifier {
    fingerprint: String,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for FingerprintVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let seen = normalise_fingerprint(&dbcrate_core::hex::encode(&Sha256::digest(end_entity)));
        if seen.as_deref() == Some(self.fingerprint.as_str()) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the control plane's certificate has fingerprint {}, not the pinned {}",
                seen.unwrap_or_default(),
                self.fingerprint
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn bad_pin(e: impl std::fmt::Display) -> Error {
    Error::invalid_input(format!("the control plane's CA certificate: {e}"))
}

fn builder(
    pin: &ServerPin,
) -> Result<rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let base = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::identity(format!("TLS setup: {e}")))?;
    Ok(match pin {
        ServerPin::CaPem(pem) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots.add(cert.map_err(bad_pin)?).map_err(bad_pin)?;
            }
            if roots.is_empty() {
                return Err(bad_pin("no PEM certificate in it"));
            }
            base.with_root_certificates(roots)
        }
        ServerPin::Fingerprint(fingerprint) => {
            base.dangerous()
                .with_custom_certificate_verifier(Arc::new(FingerprintVerifier {
                    fingerprint: fingerprint.clone(),
                    provider,
                }))
        }
    })
}

/// (ALPN is left to the HTTP connector, which sets http/1.1.)
fn finish(mut config: rustls::ClientConfig) -> Arc<rustls::ClientConfig> {
    config.resumption = rustls::client::Resumption::disabled();
    Arc::new(config)
}

/// For enrolment: the control plane pinned, no client certificate yet.
pub fn enrolment_config(pin: &ServerPin) -> Result<Arc<rustls::ClientConfig>> {
    Ok(finish(builder(pin)?.with_no_client_auth()))
}

/// For everything else: the control plane pinned, this agent's certificate presented.
pub fn agent_config(identity: &Identity) -> Result<Arc<rustls::ClientConfig>> {
    let chain = CertificateDer::pem_slice_iter(identity.chain_pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::identity(format!("the stored certificate: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.expose_secret().as_bytes())
        .map_err(|e| Error::identity(format!("the stored key: {e}")))?;
    let config = builder(&identity.link.server)?
        .with_client_auth_cert(chain, key)
        .map_err(|e| {
            Error::identity(format!("the stored key does not fit the certificate: {e}"))
        })?;
    Ok(finish(config))
}
