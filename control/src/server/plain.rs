//! Plain HTTP/1.1 for the one listener that has no TLS: `/metrics`, bound to loopback
//! unless a bearer token guards it (see `metrics`). Same header timeout and maximum
//! connection age as the TLS listeners.

use super::{HEADER_TIMEOUT, MAX_CONNECTION_AGE};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::future::Future;
use tokio::net::TcpListener;
use tower_service::Service;

/// Serves `app` over plain HTTP on `listener` until `shutdown` completes.
pub async fn serve_plain(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => return,
            pair = super::accept(&listener) => pair,
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let mut app = app.clone();
                async move { app.call(request).await }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), service);
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = tokio::time::sleep(MAX_CONNECTION_AGE) => {
                    connection.as_mut().graceful_shutdown();
                    connection.as_mut().await
                }
            };
            if let Err(e) = served {
                tracing::debug!(client = %peer, "metrics connection ended with an error: {e}");
            }
        });
    }
}
