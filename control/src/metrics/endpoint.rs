//! The HTTP side of `/metrics`: a router with that one route, behind a bearer token
//! when one is configured (compared in constant time; a wrong or missing one is a 401
//! that says nothing else).

use super::collect::render;
use crate::db::Db;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use dbcrate_core::secret::{same_bytes, SecretString};
use std::sync::Arc;

/// Who may scrape: anyone who reaches the listener, or holders of a bearer token.
#[derive(Debug, Clone, Default)]
pub struct MetricsAccess {
    /// The token scrapers must send (`Authorization: Bearer …`), if any.
    pub token: Option<Arc<SecretString>>,
}

#[derive(Clone)]
struct Scrape {
    db: Db,
    access: MetricsAccess,
}

/// `GET /metrics` (any other path is a 404).
pub fn router(db: Db, access: MetricsAccess) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(Scrape { db, access })
}

/// Whether `headers` carry the expected bearer token.
fn authorised(access: &MetricsAccess, headers: &HeaderMap) -> bool {
    let Some(expected) = &access.token else {
        return true;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    same_bytes(given, expected.expose_secret().as_bytes())
}

async fn metrics(State(scrape): State<Scrape>, headers: HeaderMap) -> Response {
    if !authorised(&scrape.access, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token is required (the one in DBCRATE_METRICS_TOKEN_FILE)\n",
        )
            .into_response();
    }
    match render(&scrape.db, dbcrate_core::time::unix_now()).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => {
            tracing::error!("rendering /metrics failed: {}", e.message);
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the metrics could not be read; the control plane's log says why\n",
            )
                .into_response()
        }
    }
}
