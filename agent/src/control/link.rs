//! HTTPS requests to the control plane's agent listener, with capped answers, a
//! timeout, and errors that say whether the control plane refused this agent's
//! certificate as revoked (a TLS alert it cannot fake without its key). Requests and
//! answers are the types of [`dbcrate_core::wire`], which the control plane uses too.

use super::refusal::refusal;
use crate::error::{Error, ErrorKind, Reason, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The most an answer may hold.
const MAX_ANSWER: usize = 1024 * 1024;
/// How long a request may take.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How long an unused connection is kept for the next call.
const IDLE_CONNECTION: Duration = Duration::from_secs(20);
/// Who calls: the control plane shows the version in its agent list
/// ([`dbcrate_core::wire::AGENT_USER_AGENT_PREFIX`] then this build's version).
const USER_AGENT: &str = concat!("dbcrate-agent/", env!("CARGO_PKG_VERSION"));

/// How long a long poll the control plane holds for up to `held` may take: that, and
/// time for the answer.
pub fn long_poll_timeout(held: Duration) -> Duration {
    TIMEOUT.max(held.saturating_add(Duration::from_secs(30)))
}

/// A client for one control plane.
#[derive(Debug, Clone)]
pub struct Link {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
}

/// Finds a TLS alert about our certificate in an error's source chain.
fn certificate_alert(
    error: &(dyn std::error::Error + 'static),
) -> Option<rustls::AlertDescription> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(err) = current {
        let tls = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::AlertReceived(alert)) = tls {
            return Some(*alert);
        }
        current = err.source();
    }
    None
}

/// A failed exchange as an error: a TLS alert refusing this agent's certificate is an
/// identity failure (with its [`Reason`] when the alert names one), anything else a
/// control-plane failure. `error` stays the error's source.
fn transport<E: std::error::Error + Send + Sync + 'static>(what: &str, error: E) -> Error {
    use rustls::AlertDescription as A;
    let refused = match certificate_alert(&error) {
        Some(A::CertificateRevoked) => Error::because(
            Reason::Revoked,
            format!(
                "{what}: the control plane refused this agent's certificate as revoked; the \
                 agent stops. Re-enrol this host if that was a mistake"
            ),
        ),
        Some(A::CertificateExpired) => Error::because(
            Reason::Expired,
            format!(
                "{what}: the control plane refused this agent's certificate as expired; \
                 re-enrol with `dbcrate-agent enroll`"
            ),
        ),
        Some(A::BadCertificate | A::UnknownCA | A::CertificateUnknown | A::AccessDenied) => {
            Error::identity(format!(
                "{what}: the control plane refused this agent's certificate ({error}); re-enrol \
                 with `dbcrate-agent enroll`"
            ))
        }
        _ => Error::new(
            ErrorKind::Control,
            format!("{what}: {}", chain_text(&error)),
        ),
    };
    refused.with_source(error)
}

/// An error and its causes, in one line.
fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut current = error.source();
    while let Some(err) = current {
        parts.push(err.to_string());
        current = err.source();
    }
    parts.join(": ")
}

impl Link {
    /// A client for `base` (https://…) using `tls`.
    pub fn new(base: &str, tls: Arc<rustls::ClientConfig>) -> Result<Self> {
        if !base.starts_with("https://") {
            return Err(Error::invalid_input(format!(
                "--control-url {base:?} must start with https://"
            )));
        }
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_only()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new())
                // One connection kept alive between calls: a handshake per call cost the
                // control plane a signature and a chain check every few seconds per
                // agent. Revocation still takes effect on the very next call: the
                // control plane checks the certificate against its records on every
                // request (answering `agent_revoked`), and ends connections at their
                // maximum age. Idle connections are dropped before the control plane's
                // 30 s idle limit, so a call never starts on one it is closing.
                .pool_max_idle_per_host(1)
                .pool_idle_timeout(IDLE_CONNECTION)
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .build(connector),
            base: base.trim_end_matches('/').to_string(),
        })
    }

    async fn request(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        let what = format!("{method} {path}");
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(hyper::header::USER_AGENT, USER_AGENT);
        let body = match body {
            Some(json) => {
                request = request.header("content-type", "application/json");
                Full::new(Bytes::from(json))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request
            .body(body)
            .map_err(|e| Error::invalid_input(format!("{what}: {e}")))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| transport(&what, e))?;
            let status = response.status();
            let mut body = response.into_body();
            let mut out = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| transport(&what, e))?;
                if let Ok(data) = frame.into_data() {
                    out.extend_from_slice(&data);
                    if out.len() > MAX_ANSWER {
                        return Err(Error::new(
                            ErrorKind::Control,
                            format!("{what}: the answer is too large"),
                        ));
                    }
                }
            }
            Ok((status, out))
        };
        let (status, out) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Control,
                    format!("{what}: no answer within {timeout:?}"),
                )
            })??;
        if status == StatusCode::OK {
            return Ok(out);
        }
        Err(refusal(&what, status, &out))
    }

    /// GET a wire answer.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.get_within(path, TIMEOUT).await
    }

    /// GET a wire answer the control plane may hold up to `timeout` (a long poll).
    pub async fn get_within<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<T> {
        let bytes = self
            .request(hyper::Method::GET, path, None, timeout)
            .await?;
        answer(&format!("GET {path}"), &bytes)
    }

    /// GET raw bytes (the CRL; a job's credentials, which the caller parses and wipes).
    pub async fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        self.request(hyper::Method::GET, path, None, TIMEOUT).await
    }

    /// POST a wire request, answer a wire answer.
    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let json = serde_json::to_vec(body)
            .map_err(|e| Error::invalid_input(format!("POST {path}: {e}")))?;
        let bytes = self
            .request(hyper::Method::POST, path, Some(json), TIMEOUT)
            .await?;
        answer(&format!("POST {path}"), &bytes)
    }
}

/// A wire answer from its JSON.
fn answer<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::new(
            ErrorKind::Control,
            format!("{what}: not the answer this agent expects: {e}"),
        )
        .with_source(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::AlertDescription as A;
    use std::error::Error as _;

    /// A TLS alert as hyper hands it over: a rustls error inside an I/O error.
    fn alert(alert: A) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(alert),
        )
    }

    #[test]
    fn the_user_agent_names_the_agent_and_its_version_as_the_wire_says() {
        let version = USER_AGENT
            .strip_prefix(dbcrate_core::wire::AGENT_USER_AGENT_PREFIX)
            .unwrap();
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn a_revoked_or_expired_alert_sets_the_reason_and_keeps_the_cause() {
        let e = transport("GET /agent/v1/config", alert(A::CertificateRevoked));
        assert_eq!(e.reason(), Some(Reason::Revoked));
        assert!(
            e.to_string()
                .contains("refused this agent's certificate as revoked"),
            "{e}"
        );
        assert!(e.source().is_some_and(|s| s.is::<std::io::Error>()));
        let e = transport("GET /agent/v1/config", alert(A::CertificateExpired));
        assert_eq!(e.reason(), Some(Reason::Expired));
        assert_eq!(e.kind(), ErrorKind::Identity);
    }

    #[test]
    fn other_refusals_and_failures_carry_no_reason_whatever_their_words() {
        let e = transport("GET /agent/v1/config", alert(A::BadCertificate));
        assert_eq!((e.kind(), e.reason()), (ErrorKind::Identity, None));
        // Words are not alerts: a failure that only says "revoked" or "expired".
        for words in ["certificate revoked", "certificate expired"] {
            let e = transport("GET /agent/v1/config", std::io::Error::other(words));
            assert_eq!((e.kind(), e.reason()), (ErrorKind::Control, None), "{e}");
        }
    }

    #[test]
    fn a_long_poll_may_take_its_hold_and_time_for_the_answer() {
        assert_eq!(long_poll_timeout(Duration::from_secs(1)), TIMEOUT);
        assert_eq!(long_poll_timeout(Duration::from_secs(30)), TIMEOUT);
        assert_eq!(
            long_poll_timeout(Duration::from_secs(3600)),
            Duration::from_secs(3630)
        );
    }
}
