//! Why a failure happened, for the few failures the agent decides on: it matches on
//! these, never on a message's words, which are written for people and may change (or
//! hold a path or a server's text that happens to contain the word).

use super::ErrorKind;

/// A reason the agent acts on, set where the condition is detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The control plane refused this agent's certificate as revoked (a TLS alert or its
    /// answer): `run` stops and runs no jobs.
    Revoked,
    /// This agent's certificate is past its validity (by the agent's clock, the CRL
    /// check's, or the control plane's): `run` stops; a person must re-enrol.
    Expired,
    /// A CRL that verifies but is older than the newest this agent accepted (a possible
    /// replay, or a control-plane database restored from an older backup): refused, and
    /// told with the way out.
    StaleCrl,
}

impl Reason {
    /// The class of failure a reason belongs to, so the two can never disagree.
    pub fn kind(self) -> ErrorKind {
        match self {
            Self::Revoked | Self::Expired => ErrorKind::Identity,
            Self::StaleCrl => ErrorKind::Integrity,
        }
    }
}
