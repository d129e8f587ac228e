//! A real HTTP/1.1 receiver on loopback for the alert tests (the API's and the
//! dashboard's): records every request; `/fail…` answers 500, anything else 204.

use std::sync::{Arc, Mutex};

/// What the receiver got: path, headers (lower-case names) and body, in order.
pub type Received = Arc<Mutex<Vec<(String, Vec<(String, String)>, Vec<u8>)>>>;

/// Starts the receiver on the current runtime; answers its port.
pub async fn receiver(received: Received) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let received = received.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let headers = parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
                .collect();
            let path = parts.uri.path().to_string();
            let fail = path.starts_with("/fail");
            received
                .lock()
                .unwrap()
                .push((path, headers, body.to_vec()));
            if fail {
                axum::http::StatusCode::INTERNAL_SERVER_ERROR
            } else {
                axum::http::StatusCode::NO_CONTENT
            }
        }
    });
    tokio::spawn(dbcrate_control::server::serve_plain(
        listener,
        app,
        std::future::pending(),
    ));
    port
}
