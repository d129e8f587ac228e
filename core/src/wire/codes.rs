//! The stable codes of [`super::ErrorAnswer`] refusals an agent acts on: it decides on
//! the code, never on the words of the message, which are written for people.

/// The client certificate is outside its validity window (the same condition the TLS
/// layer answers with the `certificate_expired` alert).
pub const CLIENT_CERTIFICATE_EXPIRED: &str = "client_certificate_expired";

/// This agent, or its certificate, has been revoked: it must stop.
pub const AGENT_REVOKED: &str = "agent_revoked";

/// The message a control plane sends with [`AGENT_REVOKED`]. Agents released before
/// that code existed received it under `client_certificate_required` or
/// `not_signed_in` and looked for it in the text; keeping it word for word keeps them
/// stopping when revoked. Agents decide on the code only.
pub const AGENT_REVOKED_MESSAGE: &str = "this agent has been revoked";
