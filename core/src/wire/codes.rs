//! The stable codes of [`super::ErrorAnswer`] refusals an agent acts on: it decides on
//! the code, never on the words of the message, which are written for people.

/// The client certificate is outside its validity window (the same condition the TLS
/// layer answers with the `certificate_expired` alert).
pub const CLIENT_CERTIFICATE_EXPIRED: &str = "client_certificate_expired";

/// This agent, or its certificate, has been revoked: it must stop. Agents recognise it
/// as well as [`AGENT_REVOKED_MESSAGE`], so a control plane can answer a revocation
/// with its own code without breaking agents old or new.
pub const AGENT_REVOKED: &str = "agent_revoked";

/// The whole message a control plane answers a revoked agent with today, under codes it
/// also uses for other certificate trouble (`client_certificate_required` on most
/// routes, `not_signed_in` from renewal): all that tells a revocation apart there.
/// Compared whole, never searched for words.
pub const AGENT_REVOKED_MESSAGE: &str = "this agent has been revoked";
