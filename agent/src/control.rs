//! The agent's link to the control plane: enrolment, its identity on disk, mutual TLS,
//! certificate renewal and the CRL check.
//!
//! Outbound only: the agent opens HTTPS connections to the control plane's agent
//! listener and never a listening socket. Its identity is a private key made on this
//! host (it never leaves it) and a short-lived certificate from the organisation's CA,
//! stored under `<data-dir>/identity/` with modes the agent insists on.

pub mod enroll;
pub mod identity;
pub mod jobs;
pub mod keys;
pub mod link;
mod refusal;
pub mod revocation;
pub mod roots;
pub mod run;
pub mod tls;
