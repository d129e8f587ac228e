//! The API's TLS material: a configured certificate and key, or a self-signed pair made
//! once in the data directory so the embedded default works out of the box.
//!
//! The key file must not be readable by group or others (the generated one is 0600):
//! a key anyone on the host can read is refused at boot with the fix. The certificate's
//! SHA-256 fingerprint is printed at start, for clients (and agents) to pin.

use crate::error::{Error, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the certificate and key come from.
#[derive(Debug, Clone)]
pub struct TlsSource {
    /// The certificate chain (PEM), leaf first.
    pub cert_file: PathBuf,
    /// The private key (PEM).
    pub key_file: PathBuf,
    /// Whether to create a self-signed pair there when neither file exists.
    pub generate_if_missing: bool,
    /// Extra DNS names or IP addresses for a generated certificate (besides localhost).
    pub hostnames: Vec<String>,
}

/// Loaded TLS material.
#[derive(Debug)]
pub struct TlsMaterial {
    /// The server configuration (HTTP/1.1 over TLS 1.2/1.3).
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate, as colon-separated upper-case hex.
    pub fingerprint: String,
    /// Whether a self-signed certificate was created just now.
    pub generated: bool,
}

/// The SHA-256 fingerprint of a DER certificate, `AB:CD:…`.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn generate(source: &TlsSource) -> Result<()> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    names.extend(source.hostnames.iter().cloned());
    let key = rcgen::KeyPair::generate()
        .map_err(|e| Error::internal(format!("generating a TLS key: {e}")))?;
    let mut params = rcgen::CertificateParams::new(names)
        .map_err(|e| Error::internal(format!("a TLS host name is not valid: {e}")))?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "dbcrate control plane (self-signed)",
    );
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::internal(format!("self-signing the TLS certificate: {e}")))?;
    if let Some(dir) = source.key_file.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
    }
    let write = |path: &Path, text: &str, mode: u32| -> Result<()> {
        let fail = |e: std::io::Error| Error::internal(format!("writing {}: {e}", path.display()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(fail)?;
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)
    };
    let key_pem = zeroize::Zeroizing::new(key.serialize_pem());
    write(&source.key_file, &key_pem, 0o600)?;
    write(&source.cert_file, &cert.pem(), 0o644)
}

fn check_key_mode(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::internal(format!(
            "cannot read the TLS key {}: {e}; set DBCRATE_TLS_KEY_FILE to a readable key",
            path.display()
        ))
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::internal(format!(
            "the TLS key {} is readable by group or others (mode {mode:o}): run chmod 600 on it",
            path.display()
        )));
    }
    Ok(())
}

/// Loads the certificate and key (generating them first when allowed and absent).
pub fn load(source: &TlsSource) -> Result<TlsMaterial> {
    let cert_exists = source.cert_file.exists();
    let key_exists = source.key_file.exists();
    let generated = source.generate_if_missing && !cert_exists && !key_exists;
    if generated {
        generate(source)?;
    }
    check_key_mode(&source.key_file)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&source.cert_file)
        .and_then(|iter| iter.collect::<std::result::Result<_, _>>())
        .map_err(|e| {
            Error::internal(format!(
                "cannot read the TLS certificate {}: {e}; give a PEM certificate chain",
                source.cert_file.display()
            ))
        })?;
    let leaf = certs.first().ok_or_else(|| {
        Error::internal(format!(
            "{} holds no certificate; give a PEM certificate chain",
            source.cert_file.display()
        ))
    })?;
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_file(&source.key_file).map_err(|e| {
        Error::internal(format!(
            "cannot read the TLS key {}: {e}; give a PEM private key",
            source.key_file.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            Error::internal(format!(
                "the TLS key does not fit the certificate or is not usable: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        config: Arc::new(config),
        fingerprint,
        generated,
    })
}
