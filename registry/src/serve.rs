//! `dbcrate-registry serve`: a static, read-only HTTPS server for a registry tree.
//!
//! The tree is all the trust there is (signatures and hashes); this server only hands
//! out files, so any static host or bucket can serve the same tree instead. It answers
//! GET and HEAD for regular files under the tree, refuses `..` and hidden files, and
//! speaks HTTP/1.1 over rustls with ring, like the rest of dbcrate.

use crate::{Error, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A TLS configuration from a PEM certificate chain and a PEM private key.
pub fn tls_config(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerConfig> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::new(format!("the TLS certificate file is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::new("the TLS certificate file holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|_| Error::new("the TLS key file holds no PEM private key"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::new(format!("the TLS certificate and key do not fit: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The file under `root` that `uri_path` names, if it is a safe relative path.
fn resolve(root: &Path, uri_path: &str) -> Option<PathBuf> {
    let rel = uri_path.strip_prefix('/')?;
    let mut path = root.to_path_buf();
    for part in rel.split('/') {
        if part.is_empty() || part.starts_with('.') || part.contains(['\\', '\0', '%']) {
            return None;
        }
        path.push(part);
    }
    Some(path)
}

async fn handle(root: Arc<PathBuf>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: Bytes| {
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = status;
        r
    };
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, Bytes::new());
    }
    let Some(path) = resolve(&root, req.uri().path()) else {
        return reply(StatusCode::NOT_FOUND, Bytes::new());
    };
    // Artifacts are tens of MB; reading one whole is fine for a reference server.
    match tokio::fs::metadata(&path).await {
        Ok(m) if m.is_file() => {}
        _ => return reply(StatusCode::NOT_FOUND, Bytes::new()),
    }
    match tokio::fs::read(&path).await {
        Ok(bytes) if req.method() == Method::GET => reply(StatusCode::OK, Bytes::from(bytes)),
        Ok(bytes) => {
            let mut r = reply(StatusCode::OK, Bytes::new());
            r.headers_mut()
                .insert(hyper::header::CONTENT_LENGTH, bytes.len().into());
            r
        }
        Err(_) => reply(StatusCode::NOT_FOUND, Bytes::new()),
    }
}

/// Serves `root` on `listener` until the task is dropped.
pub async fn serve(root: PathBuf, listener: TcpListener, tls: ServerConfig) -> Result<()> {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let root = Arc::new(root);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let root = root.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            let service = hyper::service::service_fn(move |req| {
                let root = root.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(root, req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::resolve;
    use std::path::Path;

    #[test]
    fn only_plain_relative_paths_resolve() {
        let root = Path::new("/srv/reg");
        assert_eq!(
            resolve(root, "/root/1.root.json").unwrap(),
            Path::new("/srv/reg/root/1.root.json")
        );
        for bad in [
            "/../etc/passwd",
            "/root/../x",
            "//x",
            "/.hidden",
            "/a%2e%2e",
            "x",
        ] {
            assert!(resolve(root, bad).is_none(), "{bad}");
        }
    }
}
