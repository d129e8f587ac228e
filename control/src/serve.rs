//! The HTTPS server loop: accept, TLS handshake (with a deadline), HTTP/1.1, one task
//! per connection.
//!
//! Handshakes run in the connection's own task, so a slow or silent client holds up
//! nobody else. Each request is tagged with the client's address (for sign-in
//! throttling) before it reaches the router.

use crate::http::ClientAddr;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_service::Service;

/// How long a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Where each new connection's TLS configuration comes from: fixed for the API, rebuilt
/// when CRLs change for the agent listener.
pub trait TlsConfigs: Send + Sync + 'static {
    /// The configuration for the next handshake.
    fn current(&self) -> Arc<rustls::ServerConfig>;
}

impl TlsConfigs for Arc<rustls::ServerConfig> {
    fn current(&self) -> Arc<rustls::ServerConfig> {
        self.clone()
    }
}

/// The certificates a client presented (verified by the TLS layer), on each request of
/// a connection that had any.
#[derive(Debug, Clone)]
pub struct PeerCertificates(pub Arc<Vec<rustls::pki_types::CertificateDer<'static>>>);

/// Serves `app` over TLS on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    tls: impl TlsConfigs,
    app: Router,
    shutdown: impl Future<Output = ()>,
) {
    let tls = Arc::new(tls);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.current());
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::debug!(client = %peer, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(client = %peer, "TLS handshake timed out");
                    return;
                }
            };
            let peer_certs = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|certs| PeerCertificates(Arc::new(certs.to_vec())));
            let service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ClientAddr(peer));
                    if let Some(certs) = &peer_certs {
                        request.extensions_mut().insert(certs.clone());
                    }
                    let mut app = app.clone();
                    async move { app.call(request).await }
                });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tls), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(client = %peer, "connection ended with an error: {e}");
            }
        });
    }
}
