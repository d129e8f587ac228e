//! The registry's HTTPS client: rustls with ring, system roots or a given CA, and
//! reads capped at a known length.
//!
//! Every read has a limit decided before the request: metadata files a small fixed
//! cap, artifacts the exact length the signed manifest lists. A server that sends more
//! is cut off with an error, so a malicious mirror cannot fill the disk or memory.
//! Every read also has a deadline from request to last byte, besides the idle timeout,
//! so a mirror dripping a byte now and then cannot hold the agent forever.

use crate::error::{Error, ErrorKind, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long the server may stay silent (connect, headers, or between body chunks).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The most fetching one metadata file (root, manifest, signature; at most a few MiB)
/// may take, from request to last byte.
pub const METADATA_DEADLINE: Duration = Duration::from_secs(60);
/// The most downloading one artifact may take, from request to last byte: generous
/// (tens of MiB at well under 1 Mbit/s), but finite.
pub const ARTIFACT_DEADLINE: Duration = Duration::from_secs(10 * 60);

/// An HTTPS client bound to one registry base URL.
#[derive(Debug, Clone)]
pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    base: String,
    metadata_deadline: Duration,
    artifact_deadline: Duration,
}

fn net(message: String) -> Error {
    Error::new(ErrorKind::Registry, message)
}

/// Runs `work` (everything for one file), failing with a clear error after `limit`.
async fn within<T>(
    url: &str,
    limit: Duration,
    what: &str,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(limit, work).await.map_err(|_| {
        net(format!(
            "GET {url}: not complete after {limit:?}, the most {what} may take; the registry \
             or the network is too slow (or a mirror is stalling on purpose): retry later, \
             or use a registry closer to this host"
        ))
    })?
}

impl Http {
    /// A client for `base` (an `https://` URL), trusting the system's roots, or only the
    /// certificates in `ca_file` when given.
    pub fn new(base: &str, ca_file: Option<&Path>) -> Result<Self> {
        if !base.starts_with("https://") {
            return Err(Error::invalid_input(format!(
                "--registry-url {base:?} must start with https://"
            )));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    Error::invalid_input(format!(
                        "cannot read --registry-ca {}: {e}",
                        path.display()
                    ))
                })?;
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| {
                        Error::invalid_input(format!("--registry-ca {}: {e}", path.display()))
                    })?;
                    roots.add(cert).map_err(|e| {
                        Error::invalid_input(format!("--registry-ca {}: {e}", path.display()))
                    })?;
                }
                if roots.is_empty() {
                    return Err(Error::invalid_input(format!(
                        "--registry-ca {} holds no PEM certificate",
                        path.display()
                    )));
                }
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| Error::invalid_input(format!("TLS setup: {e}")))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                builder.with_tls_config(config)
            }
            None => builder
                .with_provider_and_native_roots(provider)
                .map_err(|e| net(format!("cannot load the system's CA certificates: {e}")))?,
        };
        let connector = builder.https_only().enable_http1().build();
        let mut base = base.to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base,
            metadata_deadline: METADATA_DEADLINE,
            artifact_deadline: ARTIFACT_DEADLINE,
        })
    }

    /// The same client with other overall deadlines per metadata file and per artifact
    /// (defaults [`METADATA_DEADLINE`] and [`ARTIFACT_DEADLINE`]).
    pub fn with_deadlines(self, metadata: Duration, artifact: Duration) -> Self {
        Self {
            metadata_deadline: metadata,
            artifact_deadline: artifact,
            ..self
        }
    }

    /// The absolute URL of `path` (a registry-relative path, or an https URL).
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path.trim_start_matches('/'))
        }
    }

    /// Like [`Http::url`], but refuses a URL with another scheme (a signed manifest
    /// could still name `http://`; the agent downloads over HTTPS only).
    fn checked_url(&self, path: &str) -> Result<String> {
        if path.contains("://") && !path.starts_with("https://") {
            return Err(Error::integrity(format!(
                "registry: the manifest lists {path:?}; only https:// or registry-relative \
                 URLs are accepted"
            )));
        }
        Ok(self.url(path))
    }

    async fn get(&self, url: &str) -> Result<Option<hyper::Response<hyper::body::Incoming>>> {
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e| Error::invalid_input(format!("bad registry URL {url:?}: {e}")))?;
        let response = tokio::time::timeout(IDLE_TIMEOUT, self.client.get(uri))
            .await
            .map_err(|_| net(format!("GET {url}: no answer within {IDLE_TIMEOUT:?}")))?
            .map_err(|e| net(format!("GET {url}: {e:#}")).with_source(e))?;
        match response.status() {
            StatusCode::OK => Ok(Some(response)),
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(net(format!("GET {url}: HTTP {other}"))),
        }
    }

    /// Streams the body of `response` into `sink`, failing beyond `cap` bytes.
    async fn read_capped<F>(
        url: &str,
        response: hyper::Response<hyper::body::Incoming>,
        cap: u64,
        mut sink: F,
    ) -> Result<u64>
    where
        F: AsyncFnMut(&[u8]) -> Result<()>,
    {
        let mut body = response.into_body();
        let mut total: u64 = 0;
        loop {
            let frame = tokio::time::timeout(IDLE_TIMEOUT, body.frame())
                .await
                .map_err(|_| net(format!("GET {url}: stalled for {IDLE_TIMEOUT:?}")))?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| net(format!("GET {url}: {e}")).with_source(e))?;
            if let Ok(data) = frame.into_data() {
                total += data.len() as u64;
                if total > cap {
                    return Err(Error::integrity(format!(
                        "{url} is larger than the {cap} bytes the signed metadata allows; \
                         refusing it"
                    )));
                }
                sink(&data).await?;
            }
        }
        Ok(total)
    }

    /// A small file of at most `cap` bytes, or `None` when the server has none (404).
    pub async fn fetch(&self, path: &str, cap: u64) -> Result<Option<Vec<u8>>> {
        let url = self.checked_url(path)?;
        within(&url, self.metadata_deadline, "a metadata file", async {
            let Some(response) = self.get(&url).await? else {
                return Ok(None);
            };
            let mut out = Vec::new();
            Self::read_capped(&url, response, cap, async |chunk: &[u8]| {
                out.extend_from_slice(chunk);
                Ok(())
            })
            .await?;
            Ok(Some(out))
        })
        .await
    }

    /// Downloads exactly `length` bytes of `path` into `file`, calling `inspect` on each
    /// chunk (hashing). Fails on more or fewer bytes.
    pub async fn download(
        &self,
        path: &str,
        length: u64,
        file: &mut tokio::fs::File,
        inspect: &mut (dyn FnMut(&[u8]) + Send),
    ) -> Result<()> {
        let url = self.checked_url(path)?;
        let got = within(
            &url,
            self.artifact_deadline,
            "an artifact download",
            async {
                let response = self
                    .get(&url)
                    .await?
                    .ok_or_else(|| net(format!("{url}: not found on the registry (HTTP 404)")))?;
                Self::read_capped(&url, response, length, async |chunk: &[u8]| {
                    inspect(chunk);
                    file.write_all(chunk).await.map_err(|e| {
                        Error::new(ErrorKind::Registry, format!("writing the download: {e}"))
                    })
                })
                .await
            },
        )
        .await?;
        if got != length {
            return Err(Error::integrity(format!(
                "{url} ended after {got} bytes; the signed manifest lists {length}"
            )));
        }
        file.flush()
            .await
            .map_err(|e| Error::new(ErrorKind::Registry, format!("writing the download: {e}")))
    }
}
