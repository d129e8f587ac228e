//! A fresh key pair and a CSR for it. The control plane takes only the public key from
//! the CSR (and checks its signature as proof that we hold the private key).

use crate::error::{Error, Result};
use dbcrate_core::secret::SecretString;

/// A new ECDSA P-256 key (PEM, secret) and a CSR for it (PEM).
pub fn new_key_and_csr() -> Result<(SecretString, String)> {
    let key = rcgen::KeyPair::generate()
        .map_err(|e| Error::identity(format!("generating a key: {e}")))?;
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(|e| Error::identity(format!("making a certificate request: {e}")))?;
    Ok((SecretString::new(key.serialize_pem()), csr))
}
