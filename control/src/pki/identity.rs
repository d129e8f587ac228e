//! How an agent's identity is written into its certificate and read back.
//!
//! The subject alternative name carries `urn:dbcrate:agent:<org id>:<agent id>`; the
//! control plane sets it, and reads it back only from a certificate the TLS layer has
//! verified against the deployment root and the organisations' CRLs.

use crate::error::{is_id, Code, Error, Result};

const URN_PREFIX: &str = "urn:dbcrate:agent:";

/// The URI that names an agent.
pub fn agent_uri(org_id: &str, agent_id: &str) -> String {
    format!("{URN_PREFIX}{org_id}:{agent_id}")
}

/// Who a verified client certificate belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    /// The organisation.
    pub org_id: String,
    /// The agent.
    pub agent_id: String,
    /// The certificate's serial (hex).
    pub serial: String,
    /// When the certificate becomes valid (Unix seconds).
    pub not_before: i64,
    /// When the certificate expires (Unix seconds).
    pub not_after: i64,
}

impl AgentIdentity {
    /// Refuses the certificate unless `now` is inside its validity window (`notBefore`
    /// ≤ now ≤ `notAfter`, as the TLS handshake checks it). The handshake checks it
    /// once, when a connection opens; this is the check for every request on it (and
    /// for renewal, so an expired certificate can never be traded for a fresh one).
    pub fn check_valid_at(&self, now: i64) -> Result<()> {
        let at = dbcrate_core::time::rfc3339;
        if now > self.not_after {
            return Err(Error::new(
                Code::ClientCertificateExpired,
                format!(
                    "this agent certificate expired at {}; open a new connection with a \
                     renewed certificate, or re-enrol the agent (`dbcrate-agent enroll`)",
                    at(self.not_after)
                ),
            ));
        }
        if now < self.not_before {
            return Err(Error::new(
                Code::ClientCertificateNotYetValid,
                format!(
                    "this agent certificate is not valid before {}; check the clocks of \
                     this host and the control plane",
                    at(self.not_before)
                ),
            ));
        }
        Ok(())
    }
}

fn refused(why: &str) -> Error {
    Error::new(
        Code::NotSignedIn,
        format!("the client certificate is not a dbcrate agent certificate: {why}"),
    )
}

/// Reads the identity out of a DER certificate (already verified by TLS).
pub fn from_certificate(der: &[u8]) -> Result<AgentIdentity> {
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| refused("unparseable"))?;
    let names = cert
        .subject_alternative_name()
        .map_err(|_| refused("bad subject alternative names"))?
        .ok_or_else(|| refused("no subject alternative name"))?;
    let uri = names
        .value
        .general_names
        .iter()
        .find_map(|n| match n {
            GeneralName::URI(uri) => uri.strip_prefix(URN_PREFIX),
            _ => None,
        })
        .ok_or_else(|| refused("no agent name"))?;
    let (org_id, agent_id) = uri
        .split_once(':')
        .ok_or_else(|| refused("malformed agent name"))?;
    if !is_id(org_id, "org") || !is_id(agent_id, "agt") {
        return Err(refused("malformed agent name"));
    }
    // Defence in depth: the issuing CA must be that organisation's (its subject names
    // the organisation), not merely some CA under the deployment root.
    let issuer_org = cert
        .issuer()
        .iter_organization()
        .next()
        .and_then(|o| o.as_str().ok());
    if issuer_org != Some(org_id) {
        return Err(refused("issued by another organisation's CA"));
    }
    Ok(AgentIdentity {
        org_id: org_id.to_string(),
        agent_id: agent_id.to_string(),
        serial: dbcrate_core::hex::encode(cert.raw_serial()),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_validity_window_is_checked_at_both_ends() {
        let identity = AgentIdentity {
            org_id: "org_1".into(),
            agent_id: "agt_1".into(),
            serial: "01".into(),
            not_before: 1_000,
            not_after: 2_000,
        };
        for now in [1_000, 1_500, 2_000] {
            assert!(identity.check_valid_at(now).is_ok(), "{now}");
        }
        let expired = identity.check_valid_at(2_001).unwrap_err();
        assert_eq!(expired.code, Code::ClientCertificateExpired);
        assert!(
            expired.message.contains("expired at 1970-01-01T00:33:20Z"),
            "{}",
            expired.message
        );
        let early = identity.check_valid_at(999).unwrap_err();
        assert_eq!(early.code, Code::ClientCertificateNotYetValid);
        assert!(
            early
                .message
                .contains("not valid before 1970-01-01T00:16:40Z"),
            "{}",
            early.message
        );
    }
}
