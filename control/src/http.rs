//! The HTTPS JSON API under `/api/v1`: routes, shared state, and the headers every
//! answer carries.
//!
//! Every route is listed in [`router`] or [`agent_router`], and documented by the
//! `#[utoipa::path]` on its handler and the types it takes and answers: [`openapi`]
//! generates the document served at `/api/v1/openapi.json` from them (checked in as
//! `control/openapi.json`). The API tests keep the routes, the document, the checked-in
//! copy and every real answer in step. Handlers authorise through
//! `auth` (membership and role; 404 for other organisations' objects), parse input
//! through `extract` (stable error codes, unknown fields refused, bodies capped at
//! [`MAX_BODY_BYTES`]) and answer errors through `error` (internals only in the log).

mod account_api;
mod agent_admin_api;
pub mod agent_api;
mod alert_api;
mod audit_api;
pub mod auth;
mod backup_api;
mod database_api;
mod drill_api;
pub mod error;
pub mod error_doc;
mod extract;
mod invitation_api;
mod member_api;
pub mod openapi;
mod org_api;
mod schedule_api;
mod session_api;
mod token_api;
mod wire_doc;

use crate::db::Db;
use crate::envelope::MasterKeys;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use std::sync::Arc;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The checked-in copy of the OpenAPI document, for readers of the repository. What is
/// served is [`openapi::document`], generated from the code; a test keeps them equal
/// (regenerate with `DBCRATE_WRITE_OPENAPI=1 cargo nextest run -p dbcrate-control --test
/// api openapi`).
pub const OPENAPI: &str = include_str!("../openapi.json");

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The master keys (for sealing and unwrapping secrets).
    pub keys: Arc<MasterKeys>,
    /// Agent settings.
    pub agents: crate::config::AgentSettings,
    /// The agent listener's TLS, rebuilt when CRLs change (none when no agent listener
    /// runs in this process).
    pub agent_tls: Option<Arc<crate::server::agent_tls::AgentTls>>,
    /// Where the control plane may reach for tenants (see [`dbcrate_storage::reach`]).
    pub reach: Arc<dbcrate_storage::reach::ReachPolicy>,
    /// The agents' waiting long polls, woken when a job is queued for them (its
    /// watcher runs beside the listener, see [`crate::backups::jobs::wakeups`]).
    pub job_wakeups: Arc<crate::backups::jobs::wakeups::JobWakeups>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppState")
    }
}

impl AppState {
    /// The current time, in Unix seconds.
    pub fn now(&self) -> i64 {
        dbcrate_core::time::unix_now()
    }

    /// Rebuilds the agent listener's TLS after a revocation or a new organisation CA;
    /// a failure is logged (the periodic refresh retries).
    pub async fn reload_agent_tls(&self) {
        if let Some(tls) = &self.agent_tls {
            if let Err(e) = tls.reload().await {
                tracing::error!("reloading the agent CRLs failed: {}", e.message);
            }
        }
    }

    /// The current time as stored in audit rows.
    pub fn now_rfc3339(&self) -> String {
        dbcrate_core::time::UtcDateTime::from_unix(self.now()).rfc3339()
    }
}

/// Headers on every answer, the API's and the dashboard's (which adds its own, see
/// `web::headers`): nothing is cached (answers may hold one-time secrets), content types
/// are not sniffed, and browsers stay on HTTPS.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
    response
}

async fn log_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    log_as("request", request, next).await
}

/// Runs `request` and writes one log line about it, with `message`: method, the
/// matched route template (never the raw URI, which may hold ids or query values),
/// status and duration. The API's and the dashboard's logs have the same fields.
pub async fn log_as(
    message: &str,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("(no route)", |p| p.as_str())
        .to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        http.method = %method,
        http.route = %route,
        http.status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "{message}"
    );
    response
}

async fn no_such_route() -> error::ApiError {
    error::ApiError::new(
        StatusCode::NOT_FOUND,
        error_doc::HttpCode::NoSuchRoute,
        "there is no such API route; see /api/v1/openapi.json",
    )
}

/// The OpenAPI document of both listeners.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi_document",
    tag = "meta",
    summary = "This document",
    description = "Who: anyone. Generated from the control plane's code.",
    security(()),
    responses((status = 200, description = "The OpenAPI document", body = Object))
)]
async fn openapi_document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document(),
    )
        .into_response()
}

/// Every route agents call (served on the agent listener, with mutual TLS).
pub fn agent_router(state: AppState) -> Router {
    Router::new()
        .route("/agent/v1/enroll", post(agent_api::enroll))
        .route("/agent/v1/certificate/renew", post(agent_api::renew))
        .route("/agent/v1/config", get(agent_api::config))
        .route("/agent/v1/crl", get(agent_api::crl))
        .route("/agent/v1/jobs/next", get(agent_api::next_job))
        .route(
            "/agent/v1/jobs/{job}/credentials",
            get(agent_api::job_credentials),
        )
        .route(
            "/agent/v1/jobs/{job}/progress",
            post(agent_api::job_progress),
        )
        .route(
            "/agent/v1/jobs/{job}/complete",
            post(agent_api::job_complete),
        )
        .fallback(no_such_route)
        .layer(axum::middleware::from_fn(read_body_first))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(log_request))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Reads an agent request's whole body (at most [`MAX_BODY_BYTES`]) before any extractor
/// decides. An answer given while the client is still sending its body — a refused
/// certificate, say — makes the server close the connection with bytes unread, which
/// resets it, and the reset can destroy the answer before the client reads it: the agent
/// would see "connection reset" instead of the refusal it must act on. A body over the
/// bound is answered as the JSON extractor answers one (413 `body_too_large`).
async fn read_body_first(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => {
            let request = axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes));
            next.run(request).await
        }
        Err(_) => error::ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            error_doc::HttpCode::BodyTooLarge,
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
        .into_response(),
    }
}

/// Every route of the API.
pub fn router(state: AppState) -> Router {
    // Made now rather than at the first request, so a document that cannot be made
    // stops the start.
    let _ = openapi::document();
    Router::new()
        .merge(account_routes())
        .merge(organisation_routes())
        .merge(backup_routes())
        .merge(alert_routes())
        .fallback(no_such_route)
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                error_doc::HttpCode::MethodNotAllowed,
                "this route does not take that method; see /api/v1/openapi.json",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(log_request))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// The document, the session, the caller's own account, and accepting an invitation.
fn account_routes() -> Router<AppState> {
    use account_api as account;
    use invitation_api as invitation;
    use session_api as session;
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_document))
        .route(
            "/api/v1/session",
            post(session::sign_in)
                .get(session::current)
                .delete(session::sign_out),
        )
        .route("/api/v1/session/second-factor", post(session::step_up))
        .route("/api/v1/account/password", post(account::change_password))
        .route(
            "/api/v1/account/second-factor",
            post(account::begin_second_factor),
        )
        .route(
            "/api/v1/account/second-factor/confirm",
            post(account::confirm_second_factor),
        )
        .route(
            "/api/v1/account/second-factor/disable",
            post(account::disable_second_factor),
        )
        .route("/api/v1/invitations/accept", post(invitation::accept))
        .route(
            "/api/v1/invitations/create-account",
            post(invitation::create_account),
        )
}

/// An organisation and who may act in it: members, invitations, API tokens, audit.
fn organisation_routes() -> Router<AppState> {
    use audit_api as audit;
    use invitation_api as invitation;
    use member_api as member;
    use org_api as org;
    use token_api as token;
    Router::new()
        .route("/api/v1/orgs", get(org::list))
        .route("/api/v1/orgs/{org}", get(org::show))
        .route(
            "/api/v1/orgs/{org}/recovery-key",
            post(org::export_recovery_key),
        )
        .route(
            "/api/v1/orgs/{org}/customer-seal",
            post(org::enable_customer_seal),
        )
        .route(
            "/api/v1/orgs/{org}/customer-seal/disable",
            post(org::disable_customer_seal),
        )
        .route(
            "/api/v1/orgs/{org}/members",
            get(member::list).post(member::add),
        )
        .route(
            "/api/v1/orgs/{org}/members/{user}",
            axum::routing::patch(member::change_role).delete(member::remove),
        )
        .route(
            "/api/v1/orgs/{org}/members/{user}/password-reset",
            post(member::reset_password),
        )
        .route("/api/v1/orgs/{org}/invitations", get(invitation::list))
        .route(
            "/api/v1/orgs/{org}/invitations/{invitation}",
            axum::routing::delete(invitation::revoke),
        )
        .route(
            "/api/v1/orgs/{org}/api-tokens",
            get(token::list).post(token::create),
        )
        .route(
            "/api/v1/orgs/{org}/api-tokens/{token}",
            axum::routing::delete(token::revoke),
        )
        .route("/api/v1/orgs/{org}/audit", get(audit::query))
}

/// Where an organisation's alerts go, what they were and what was sent.
fn alert_routes() -> Router<AppState> {
    use alert_api as alert;
    Router::new()
        .route(
            "/api/v1/orgs/{org}/alert-channels",
            get(alert::list_channels).post(alert::create_channel),
        )
        .route(
            "/api/v1/orgs/{org}/alert-channels/{channel}",
            delete(alert::delete_channel),
        )
        .route(
            "/api/v1/orgs/{org}/alert-channels/{channel}/test",
            post(alert::test_channel),
        )
        .route("/api/v1/orgs/{org}/alerts", get(alert::list_alerts))
        .route(
            "/api/v1/orgs/{org}/alert-deliveries",
            get(alert::list_deliveries),
        )
}

/// What an organisation backs up and with which agents: agents, databases, schedules,
/// destinations, backups, restores.
fn backup_routes() -> Router<AppState> {
    use agent_admin_api as agent_admin;
    use backup_api as backup;
    use database_api as database;
    use schedule_api as schedule;
    Router::new()
        .route(
            "/api/v1/orgs/{org}/enrolment-tokens",
            post(agent_admin::create_enrolment_token),
        )
        .route("/api/v1/orgs/{org}/agents", get(agent_admin::list))
        .route(
            "/api/v1/orgs/{org}/agents/{agent}/revoke",
            post(agent_admin::revoke),
        )
        .route(
            "/api/v1/orgs/{org}/databases",
            get(database::list_databases).post(database::create_database),
        )
        .route(
            "/api/v1/orgs/{org}/databases/{database}",
            get(database::show_database).put(database::update_database),
        )
        .route(
            "/api/v1/orgs/{org}/schedules",
            get(schedule::list_schedules).post(schedule::create_schedule),
        )
        .route(
            "/api/v1/orgs/{org}/schedules/{schedule}",
            put(schedule::update_schedule),
        )
        .route(
            "/api/v1/orgs/{org}/destinations",
            get(backup::list_destinations).post(backup::create_destination),
        )
        .route(
            "/api/v1/orgs/{org}/schedules/{schedule}/run",
            post(schedule::run_schedule_now),
        )
        .route(
            "/api/v1/orgs/{org}/schedules/{schedule}/grace",
            put(schedule::set_schedule_grace),
        )
        .route(
            "/api/v1/orgs/{org}/schedules/{schedule}/drills",
            put(drill_api::set_schedule_drills).delete(drill_api::stop_schedule_drills),
        )
        .route("/api/v1/orgs/{org}/drills", get(drill_api::list_drills))
        .route("/api/v1/orgs/{org}/backups", get(backup::list_backups))
        .route("/api/v1/orgs/{org}/restores", post(backup::create_restore))
}
