//! Checking this agent's certificate against its organisation's CRL.
//!
//! The CRL is verified the way the TLS layer would: webpki walks the agent's own chain
//! (certificate → organisation CA → the deployment root stored at enrolment) and checks
//! the CRL's signature against the issuing CA, its freshness, and whether it lists our
//! serial. A CRL that does not verify (altered, signed by another CA, expired, garbage)
//! is refused and changes nothing; one that verifies and lists us stops the agent.

use crate::error::{Error, ErrorKind, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use std::time::Duration;
use webpki::{
    BorrowedCertRevocationList, CertRevocationList, ExpirationPolicy, KeyUsage,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};

/// What a verified CRL says about us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not listed.
    Good,
    /// Listed: this agent must stop.
    Revoked,
}

fn certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::identity(format!("the stored {what}: {e}")))
}

/// Checks `crl_der` for our certificate (`chain_pem`: certificate then organisation CA)
/// under the deployment root `root_pem`, at `now` (Unix seconds).
pub fn check(chain_pem: &str, root_pem: &str, crl_der: &[u8], now: i64) -> Result<Verdict> {
    let chain = certs(chain_pem, "certificate")?;
    let roots = certs(root_pem, "deployment root")?;
    let (Some(leaf), Some(root)) = (chain.first(), roots.first()) else {
        return Err(Error::identity(
            "the stored identity has no certificate or no root",
        ));
    };
    let refused = |e: webpki::Error| {
        Error::new(
            ErrorKind::Integrity,
            format!("refusing the CRL the control plane sent: it does not verify ({e:?}); nothing changes"),
        )
    };
    let crl = BorrowedCertRevocationList::from_der(crl_der).map_err(refused)?;
    let crl = CertRevocationList::from(crl);
    let crls = [&crl];
    let options = RevocationOptionsBuilder::new(&crls)
        .map_err(|_| Error::identity("no CRL to check"))?
        .with_depth(RevocationCheckDepth::EndEntity)
        .with_status_policy(UnknownStatusPolicy::Deny)
        .with_expiration_policy(ExpirationPolicy::Enforce)
        .build();
    let anchor = webpki::anchor_from_trusted_cert(root)
        .map_err(|e| Error::identity(format!("the stored deployment root: {e:?}")))?;
    let leaf = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| Error::identity(format!("the stored certificate: {e:?}")))?;
    let algorithms = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(now.max(0) as u64));
    match leaf.verify_for_usage(
        algorithms,
        &[anchor],
        &chain[1..],
        time,
        KeyUsage::client_auth(),
        Some(options),
        None,
    ) {
        Ok(_) => Ok(Verdict::Good),
        Err(webpki::Error::CertRevoked) => Ok(Verdict::Revoked),
        Err(webpki::Error::CertExpired { .. }) => Err(Error::identity(
            "this agent's certificate has expired: re-enrol with `dbcrate-agent enroll`",
        )),
        Err(e) => Err(refused(e)),
    }
}
