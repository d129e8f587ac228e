//! The headers every dashboard answer carries, and its request log line.
//!
//! - `Content-Security-Policy`: nothing loads unless listed; scripts and styles only
//!   from this origin (no `unsafe-inline`, no `unsafe-eval`: an injected `<script>` or
//!   `style=` does nothing), images from here or `data:` (the QR code may be one),
//!   forms post only here, no framing (clickjacking), no `<base>` rewriting.
//! - `Strict-Transport-Security`: browsers stay on HTTPS.
//! - `Referrer-Policy: no-referrer`: URLs never leak to other sites.
//! - `X-Content-Type-Options: nosniff`: a response is only what its type says.
//! - `Cache-Control: no-store`: pages may show a secret once (a new TOTP seed, recovery
//!   codes); no copy stays in a cache or the back-forward history.
//! - `Cross-Origin-Opener-Policy` and `Cross-Origin-Resource-Policy: same-origin`: no
//!   other site keeps a handle on a dashboard window or embeds its answers.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::Response;

/// The dashboard's Content-Security-Policy.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// Adds the security headers to an answer (see the module documentation): the API's
/// own, then those only pages need.
pub async fn dashboard_headers(response: Response) -> Response {
    let mut response = crate::http::security_headers(response).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// One log line per request, as the API writes (see `http::log_as`).
pub async fn log_request(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    crate::http::log_as("dashboard request", request, next).await
}
