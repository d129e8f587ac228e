//! Agent identity: a deployment root CA, one intermediate CA per organisation, and
//! short-lived agent certificates (docs/architecture.md, "The wire between agent and
//! control plane").
//!
//! CA keys are envelope-encrypted secrets like any other; every use unwraps one and so
//! writes an audit row. Certificates are made from our own parameters only: a CSR
//! contributes its public key (and proves possession of the private key by its
//! signature); the subject, names, validity, serial and constraints are the control
//! plane's. The agent's organisation and id are read back from the verified certificate,
//! never from a request field.

pub mod ca;
pub mod crl;
pub mod identity;
pub mod issue;

use crate::error::{Error, Result};
use time::OffsetDateTime;

/// A certificate time from Unix seconds.
pub fn at(unix: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|_| Error::internal(format!("{unix} is not a usable certificate time")))
}

fn rcgen_error(what: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |e| Error::internal(format!("{what}: {e}"))
}
