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
    /// When the certificate expires (Unix seconds).
    pub not_after: i64,
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
        not_after: cert.validity().not_after.timestamp(),
    })
}
