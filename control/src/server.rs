//! The HTTPS server loop: accept, TLS handshake (with a deadline), HTTP/1.1, one task
//! per connection.
//!
//! Handshakes run in the connection's own task, so a slow or silent client holds up
//! nobody else. Each request is tagged with the client's address (for sign-in
//! throttling) before it reaches the router.
//!
//! Every connection is bounded ([`ConnectionLimits`]): it is closed when it sits idle
//! longer than the header timeout, and shut down gracefully at its maximum age (a
//! request in flight is answered first). The client certificate is verified at the
//! handshake only, so on the agent listener the age bound keeps a connection from
//! outliving that check for long; the agent routes also check the certificate's
//! validity on every request (`http::agent_api`).

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_service::Service;

pub mod agent_tls;
mod plain;
pub mod tls;

pub use plain::serve_plain;

/// The client's address, put on each request by the server loop (sign-in throttling
/// keys on it).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// How long a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client has to send a request's headers, and how long a kept-alive
/// connection may sit idle between requests.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may live by default.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(600);

/// Bounds on each connection of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client has to send a request's headers; also the idle timeout, since
    /// the timer starts as soon as the previous answer is written.
    pub header_timeout: Duration,
    /// How long after its handshake a connection is shut down: gracefully, so a request
    /// in flight is answered first and an idle connection closes at once.
    pub max_age: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: HEADER_TIMEOUT,
            max_age: MAX_CONNECTION_AGE,
        }
    }
}

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

/// Serves `app` over TLS on `listener` until `shutdown` completes, with the default
/// [`ConnectionLimits`].
pub async fn serve(
    listener: TcpListener,
    tls: impl TlsConfigs,
    app: Router,
    shutdown: impl Future<Output = ()>,
) {
    serve_with_limits(listener, tls, app, ConnectionLimits::default(), shutdown).await;
}

/// The next connection on `listener`. Out of file descriptors and the like: wait a
/// moment and keep serving (cancel-safe: a shutdown may drop it at any await).
async fn accept(listener: &TcpListener) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(pair) => return pair,
            Err(e) => {
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Serves `app` over TLS on `listener` until `shutdown` completes, each connection
/// bounded by `limits`.
pub async fn serve_with_limits(
    listener: TcpListener,
    tls: impl TlsConfigs,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let tls = Arc::new(tls);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => return,
            pair = accept(&listener) => pair,
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
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(tls), service);
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = tokio::time::sleep(limits.max_age) => {
                    tracing::debug!(client = %peer, "closing a connection at its maximum age");
                    connection.as_mut().graceful_shutdown();
                    connection.as_mut().await
                }
            };
            if let Err(e) = served {
                tracing::debug!(client = %peer, "connection ended with an error: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use hyper::client::conn::http1::SendRequest;
    use std::time::Instant;

    /// A listener serving `/quick` and `/slow` (1.5 s) with `limits`, and a client
    /// configuration trusting its self-signed certificate.
    async fn start(limits: ConnectionLimits) -> (u16, Arc<rustls::ClientConfig>) {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let pair = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = pair.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(pair.signing_key.serialize_der().into());
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let app = Router::new()
            .route("/quick", get(|| async { "quick" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                    "slow"
                }),
            );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(serve_with_limits(
            listener,
            Arc::new(server),
            app,
            limits,
            std::future::pending(),
        ));
        (port, Arc::new(client))
    }

    /// A server with `limits` and one kept-alive connection to it; the task ends when
    /// the server closes the connection.
    async fn connect(
        limits: ConnectionLimits,
    ) -> (SendRequest<String>, tokio::task::JoinHandle<()>) {
        let (port, client) = start(limits).await;
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(client)
            .connect(name, tcp)
            .await
            .unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        let driven = tokio::spawn(async move {
            let _ = connection.await;
        });
        (sender, driven)
    }

    /// Waits up to `secs` for the server to close the connection `driven` drives.
    async fn closed_within(driven: tokio::task::JoinHandle<()>, secs: u64, otherwise: &str) {
        tokio::time::timeout(Duration::from_secs(secs), driven)
            .await
            .expect(otherwise)
            .unwrap();
    }

    /// Limits that close a connection when it is one second old.
    fn max_age_one_second() -> ConnectionLimits {
        ConnectionLimits {
            max_age: Duration::from_secs(1),
            ..ConnectionLimits::default()
        }
    }

    async fn fetch(sender: &mut SendRequest<String>, path: &str) -> (u16, String) {
        sender.ready().await.unwrap();
        let request = hyper::Request::get(path)
            .header("host", "localhost")
            .body(String::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(axum::body::Body::new(response.into_body()), 1024)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_request_in_flight_at_the_maximum_age_is_answered_then_the_connection_closes() {
        let (mut sender, driven) = connect(max_age_one_second()).await;
        let opened = Instant::now();
        assert_eq!(fetch(&mut sender, "/quick").await, (200, "quick".into()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Still in flight when the connection turns one second old.
        assert_eq!(fetch(&mut sender, "/slow").await, (200, "slow".into()));
        closed_within(
            driven,
            2,
            "the connection stayed open after its maximum age",
        )
        .await;
        assert!(opened.elapsed() >= Duration::from_millis(1800));
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_at_its_maximum_age() {
        let (mut sender, driven) = connect(max_age_one_second()).await;
        let opened = Instant::now();
        assert_eq!(fetch(&mut sender, "/quick").await, (200, "quick".into()));
        closed_within(
            driven,
            3,
            "the connection stayed open after its maximum age",
        )
        .await;
        let lived = opened.elapsed();
        assert!(lived >= Duration::from_millis(900), "{lived:?}");
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_after_the_header_timeout() {
        let limits = ConnectionLimits {
            header_timeout: Duration::from_secs(1),
            max_age: Duration::from_secs(60),
        };
        let (mut sender, driven) = connect(limits).await;
        assert_eq!(fetch(&mut sender, "/quick").await, (200, "quick".into()));
        let answered = Instant::now();
        let otherwise = "an idle connection stayed open past the idle timeout";
        closed_within(driven, 3, otherwise).await;
        let idle = answered.elapsed();
        assert!(idle >= Duration::from_millis(900), "{idle:?}");
    }
}
