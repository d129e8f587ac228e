//! One POST of a delivery to its channel's URL. The host is resolved through the
//! control plane's reach policy (the one destinations obey), so a webhook URL cannot
//! make the control plane call an address the operator did not allow — a private
//! network, the metadata service — and the address checked is the address connected
//! to. HTTPS with the system's roots; plain HTTP only to loopback (checked when the
//! channel is saved). Nothing from the URL's path or query (where tokens live) goes into
//! an error.

use axum::body::Body;
use dbcrate_storage::reach::ReachPolicy;
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// How long one delivery may take, connection and answer included.
pub const POST_TIMEOUT: Duration = Duration::from_secs(15);

/// POSTs `body` (JSON) with `headers` to `url`; answers the status, or why it failed
/// (naming the host only).
pub async fn post(
    reach: &ReachPolicy,
    url: &str,
    headers: &[(&'static str, String)],
    body: String,
) -> Result<u16, String> {
    match tokio::time::timeout(POST_TIMEOUT, send(reach, url, headers, body)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("no answer within {} s", POST_TIMEOUT.as_secs())),
    }
}

async fn send(
    reach: &ReachPolicy,
    url: &str,
    headers: &[(&'static str, String)],
    body: String,
) -> Result<u16, String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| "the URL does not parse".to_string())?;
    let host = uri.host().ok_or("the URL has no host")?.to_string();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let addrs = reach
        .resolve(&host, port)
        .await
        .map_err(|e| format!("{host}: {}", e.message()))?;
    let tcp = tokio::net::TcpStream::connect(addrs.as_slice())
        .await
        .map_err(|e| format!("{host}:{port}: cannot connect ({e})"))?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = hyper::Request::post(path)
        .header(
            hyper::header::HOST,
            uri.authority().map_or(host.as_str(), |a| a.as_str()),
        )
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(
            hyper::header::USER_AGENT,
            concat!("dbcrate-control/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(Body::from(body))
        .map_err(|e| format!("building the request: {e}"))?;
    if https {
        let name = rustls::pki_types::ServerName::try_from(host.clone())
            .map_err(|_| format!("{host} is not a valid TLS server name"))?;
        let tls = tokio_rustls::TlsConnector::from(super::tls::client_config(None)?)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("{host}: TLS handshake failed ({e})"))?;
        exchange(tls, request, &host).await
    } else {
        exchange(tcp, request, &host).await
    }
}

async fn exchange<IO>(io: IO, request: hyper::Request<Body>, host: &str) -> Result<u16, String>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("{host}: {e}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| format!("{host}: {e}"))?;
    Ok(answer.status().as_u16())
}
