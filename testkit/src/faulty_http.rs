//! A reverse proxy in front of an HTTP server (the S3 store) that misbehaves on purpose:
//! it delays every request, and answers some with an S3 error instead of forwarding
//! them — every Nth with `503 SlowDown`, every Mth with `500 InternalError` — for tests
//! of storage that is slow or failing. A request already failed once (same method and
//! URI: a client's retry) is forwarded, unless every request fails (`Some(1)`), so
//! that with uploads in parallel a retry never meets the next planned error by chance. Requests it forwards go through unchanged (the
//! Host header included, so SigV4 signatures made for the proxy's address still hold).

use crate::{KitError, Result};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How the proxy misbehaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Added before every answer.
    pub delay: Duration,
    /// Every Nth request (counting from 1) is answered `503 SlowDown`.
    pub slow_down_every: Option<u64>,
    /// Every Mth request is answered `500 InternalError`.
    pub internal_error_every: Option<u64>,
}

/// A running proxy; it stops when dropped.
pub struct FaultyHttp {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    requests: Arc<AtomicU64>,
    faulted: Arc<AtomicU64>,
    _runtime: tokio::runtime::Runtime,
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

fn s3_error(status: u16, code: &str) -> Response<ProxyBody> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>\
         <Message>injected by the test proxy</Message></Error>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(
            Full::new(Bytes::from(xml))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("a valid response")
}

struct Proxy {
    target: String,
    faults: Faults,
    client: Client<HttpConnector, Incoming>,
    requests: Arc<AtomicU64>,
    faulted: Arc<AtomicU64>,
    failed_once: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Proxy {
    /// Whether request number `n` gets the error planned `every` requests: a first try
    /// only, unless every request is to fail.
    fn fails(&self, every: Option<u64>, n: u64, request: &Request<Incoming>) -> bool {
        let Some(every) = every.filter(|e| *e > 0 && n.is_multiple_of(*e)) else {
            return false;
        };
        if every == 1 {
            return true;
        }
        let id = format!("{} {}", request.method(), request.uri());
        let mut failed = self.failed_once.lock().unwrap_or_else(|e| e.into_inner());
        failed.insert(id)
    }

    async fn answer(self: Arc<Self>, mut request: Request<Incoming>) -> Response<ProxyBody> {
        let n = self.requests.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(self.faults.delay).await;
        if self.fails(self.faults.slow_down_every, n, &request) {
            self.faulted.fetch_add(1, Ordering::SeqCst);
            return s3_error(503, "SlowDown");
        }
        if self.fails(self.faults.internal_error_every, n, &request) {
            self.faulted.fetch_add(1, Ordering::SeqCst);
            return s3_error(500, "InternalError");
        }
        let path = request
            .uri()
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string());
        match format!("{}{path}", self.target).parse() {
            Ok(uri) => *request.uri_mut() = uri,
            Err(_) => return s3_error(400, "InvalidURI"),
        }
        match self.client.request(request).await {
            Ok(response) => response.map(|body| body.boxed()),
            Err(_) => s3_error(502, "BadGateway"),
        }
    }
}

impl FaultyHttp {
    /// Starts a proxy on a free loopback port in front of `target` (`http://host:port`).
    pub fn start(target: &str, faults: Faults) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| KitError::new(format!("a runtime for the proxy: {e}")))?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .map_err(|e| KitError::new(format!("binding the proxy: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| KitError::new(e.to_string()))?
            .port();
        let (requests, faulted) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let proxy = Arc::new(Proxy {
            target: target.trim_end_matches('/').to_string(),
            faults,
            client: Client::builder(TokioExecutor::new()).build_http(),
            requests: requests.clone(),
            faulted: faulted.clone(),
            failed_once: Default::default(),
        });
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let proxy = proxy.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let proxy = proxy.clone();
                        async move { Ok::<_, std::convert::Infallible>(proxy.answer(request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            requests,
            faulted,
            _runtime: runtime,
        })
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// Requests answered with an injected error so far.
    pub fn faulted(&self) -> u64 {
        self.faulted.load(Ordering::SeqCst)
    }
}
