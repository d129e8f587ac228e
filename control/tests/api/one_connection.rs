//! Exactly one TLS connection to the agent listener, for tests about what is served on a
//! connection that outlives a check made at its handshake. A pooled HTTP client cannot
//! promise that: it opens a second connection whenever the first has not yet gone back
//! to its pool, and that race made such a test flaky.

use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use reqwest::StatusCode;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;

/// One kept-alive HTTP/1 connection presenting an agent's certificate.
pub struct OneConnection {
    sender: SendRequest<String>,
    host: String,
}

impl OneConnection {
    /// Connects to `base` (`https://127.0.0.1:port`) trusting only `server_cert_pem`,
    /// presenting `chain_pem` with the PKCS#8 `key_der`.
    pub async fn open(base: &str, server_cert_pem: &[u8], chain_pem: &str, key_der: &[u8]) -> Self {
        let host = base.trim_start_matches("https://").to_string();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(server_cert_pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(chain_pem.as_bytes())
                .map(Result::unwrap)
                .collect();
        let key = PrivateKeyDer::Pkcs8(key_der.to_vec().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .unwrap();
        let tcp = tokio::net::TcpStream::connect(&host).await.unwrap();
        let ip: std::net::SocketAddr = host.parse().unwrap();
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(ServerName::IpAddress(ip.ip().into()), tcp)
            .await
            .expect("the handshake of the one connection");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Self { sender, host }
    }

    /// Sends `method path` with a JSON `body` (empty when `None`) on this connection;
    /// an error means the connection was closed, never that another one was opened.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(StatusCode, Vec<u8>), hyper::Error> {
        self.sender.ready().await?;
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let response = self
            .sender
            .send_request(request.body(body).unwrap())
            .await?;
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
        let bytes = axum::body::to_bytes(axum::body::Body::new(response.into_body()), 1 << 20)
            .await
            .expect("the answer's body");
        Ok((status, bytes.to_vec()))
    }
}
