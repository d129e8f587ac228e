//! Agent certificates from CSRs: the CSR gives the public key and proves possession
//! of the private key; everything else is ours.
//!
//! Refused with a clear error: a CSR that is not PEM/DER, too large, badly signed, or
//! that asks for a CA certificate or for extensions we do not know. Names or key
//! usages a CSR asks for are ignored: the certificate gets the agent's URI, ClientAuth
//! only, CA:false, a random serial and the configured lifetime.

use super::ca::SigningCa;
use super::identity::agent_uri;
use super::{at, rcgen_error};
use crate::error::{random_bytes, Error, Result};
use rcgen::{
    CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateSigningRequestDer;

/// The largest CSR accepted (a P-256 or Ed25519 CSR is well under 1 KiB; RSA 4096 about
/// 2 KiB).
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// A checked CSR.
#[derive(Debug)]
pub struct Csr(CertificateSigningRequestParams);

/// Parses and checks a PEM CSR.
pub fn parse_csr(pem: &str) -> Result<Csr> {
    if pem.len() > MAX_CSR_BYTES {
        return Err(Error::invalid(format!(
            "the CSR is larger than {MAX_CSR_BYTES} bytes; send a CSR for one P-256 key"
        )));
    }
    let der = CertificateSigningRequestDer::from_pem_slice(pem.as_bytes()).map_err(|_| {
        Error::invalid(
            "the CSR is not a PEM \"CERTIFICATE REQUEST\"; dbcrate-agent enroll makes one",
        )
    })?;
    let params = CertificateSigningRequestParams::from_der(&der).map_err(|e| match e {
        rcgen::Error::InvalidCertificationRequestSignature => {
            Error::invalid("the CSR's signature does not verify: it must be signed by its own key")
        }
        rcgen::Error::UnsupportedExtension => {
            Error::invalid("the CSR asks for extensions the control plane does not grant")
        }
        other => Error::invalid(format!("the CSR cannot be read: {other}")),
    })?;
    if matches!(params.params.is_ca, IsCa::Ca(_)) {
        return Err(Error::invalid(
            "the CSR asks for a CA certificate; agents get end-entity certificates only",
        ));
    }
    Ok(Csr(params))
}

/// A signed agent certificate.
#[derive(Debug)]
pub struct Issued {
    /// Its serial, hex.
    pub serial: String,
    /// Valid from (Unix seconds).
    pub not_before: i64,
    /// Valid until (Unix seconds).
    pub not_after: i64,
    /// The certificate then the organisation CA, PEM.
    pub chain_pem: String,
}

/// Signs a certificate for agent `agent_id` of `org_id` with the CSR's public key.
pub fn sign(
    ca: &SigningCa,
    csr: &Csr,
    org_id: &str,
    agent_id: &str,
    now: i64,
    lifetime_secs: i64,
) -> Result<Issued> {
    let mut serial = *random_bytes::<16>()?;
    // Positive and without a leading zero, so its DER bytes are these bytes.
    serial[0] = (serial[0] & 0x7f) | 0x01;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, org_id);
    dn.push(DnType::CommonName, agent_id);
    params.distinguished_name = dn;
    let uri = agent_uri(org_id, agent_id);
    params.subject_alt_names = vec![SanType::URI(
        uri.as_str()
            .try_into()
            .map_err(rcgen_error("the agent URI"))?,
    )];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    // A minute of slack for clocks that run a little behind.
    let not_before = now - 60;
    let not_after = now + lifetime_secs;
    params.not_before = at(not_before)?;
    params.not_after = at(not_after)?;
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&csr.0.public_key, ca.issuer())
        .map_err(rcgen_error("signing the agent certificate"))?;
    Ok(Issued {
        serial: dbcrate_core::hex::encode(&serial),
        not_before,
        not_after,
        chain_pem: format!("{}{}", cert.pem(), ca.cert_pem),
    })
}
