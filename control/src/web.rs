//! The operator's dashboard: server-rendered HTML on the API's HTTPS listener, at `/`.
//!
//! Pages call the same domain functions the JSON API calls (`accounts::sessions`,
//! `accounts::users`, `accounts::second_factor`, …), so every check and every audit row
//! is the API's; the dashboard adds no second path. It is built to be safe in a
//! browser without relying on one:
//!
//! - every form works without JavaScript; every state-changing request carries the
//!   session's CSRF token (`accounts::sessions::csrf_token`) as a hidden form field,
//!   checked in constant time by one guard in front of every handler (`forms`), and a
//!   cross-origin `Origin` is refused before any handler runs;
//! - every answer carries a strict Content-Security-Policy (no inline script or style),
//!   HSTS, `Referrer-Policy: no-referrer`, `nosniff` and `no-store` (`headers`);
//! - one first-party stylesheet, compiled into the binary (`assets`); no CDN.
//!
//! The files: `layout` (the page frame and the navigation later pages extend), `forms`
//! (fields, messages, the CSRF guard), `session` (who is signed in), `headers`,
//! `assets` (the stylesheet, `/.well-known/security.txt`), `qr` (the TOTP QR code as
//! SVG), and `pages/` (one file per area). docs/dashboard.md describes the whole.

mod assets;
mod chart;
mod forms;
mod headers;
mod layout;
mod pages;
mod qr;
mod session;
mod units;
mod when;

use crate::http::{AppState, MAX_BODY_BYTES};
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

pub use headers::CONTENT_SECURITY_POLICY;

/// Every dashboard route (no fallback: [`app`] adds the API behind them).
pub fn router(state: AppState) -> Router {
    use pages::{
        account, agents, alert_channels, alerts, audit, backups, databases, destinations, home,
        invitations, jobs, members, overview, recovery_key, schedule, schedule_checks, schedules,
        sign_in,
    };
    Router::new()
        .route("/", get(home::show))
        .route("/sign-in", get(sign_in::show).post(sign_in::submit))
        .route("/sign-out", post(sign_in::sign_out))
        .route(
            "/account/password",
            get(account::password_form).post(account::change_password),
        )
        .route(
            "/account/second-factor",
            get(account::second_factor).post(account::begin_second_factor),
        )
        .route(
            "/account/second-factor/confirm",
            post(account::confirm_second_factor),
        )
        .route(
            invitations::ACCEPT_PATH,
            get(invitations::show).post(invitations::submit),
        )
        .route("/orgs/{org}", get(overview::show))
        .route("/orgs/{org}/agents", get(agents::list))
        .route(
            "/orgs/{org}/agents/enrolment-tokens",
            post(agents::create_token),
        )
        .route(
            "/orgs/{org}/agents/{agent}/revoke",
            get(agents::confirm_revoke).post(agents::revoke),
        )
        .route(
            "/orgs/{org}/databases",
            get(databases::list).post(databases::create),
        )
        .route(
            "/orgs/{org}/databases/{database}/edit",
            get(databases::edit_form).post(databases::edit),
        )
        .route("/orgs/{org}/destinations", get(destinations::list))
        .route(
            "/orgs/{org}/destinations/new",
            get(destinations::new_form).post(destinations::submit),
        )
        .route(
            "/orgs/{org}/schedules",
            get(schedules::list).post(schedules::create),
        )
        .route(
            "/orgs/{org}/schedules/{schedule}",
            get(schedule::show).post(schedule::change),
        )
        .route(
            "/orgs/{org}/schedules/{schedule}/run",
            post(schedule::run_now),
        )
        .route(
            "/orgs/{org}/schedules/{schedule}/grace",
            post(schedule_checks::set_grace),
        )
        .route(
            "/orgs/{org}/schedules/{schedule}/drills",
            post(schedule_checks::set_drills),
        )
        .route("/orgs/{org}/backups", get(backups::list))
        .route(
            "/orgs/{org}/backups/{backup}/restore",
            get(backups::restore_form).post(backups::restore),
        )
        .route("/orgs/{org}/jobs", get(jobs::list))
        .route("/orgs/{org}/jobs/{job}", get(jobs::show))
        .route("/orgs/{org}/alerts", get(alerts::show))
        .route(
            "/orgs/{org}/alerts/channels/new",
            get(alert_channels::new_form).post(alert_channels::create),
        )
        .route(
            "/orgs/{org}/alerts/channels/{channel}/test",
            post(alerts::test),
        )
        .route(
            "/orgs/{org}/alerts/channels/{channel}/remove",
            get(alerts::confirm_remove).post(alerts::remove),
        )
        .route("/orgs/{org}/audit", get(audit::show))
        .route("/orgs/{org}/audit/chain", get(audit::chain))
        .route(
            "/orgs/{org}/recovery-key",
            get(recovery_key::show).post(recovery_key::download),
        )
        .route(
            "/orgs/{org}/members",
            get(members::show).post(members::invite),
        )
        .route(
            "/orgs/{org}/members/{user}/role",
            post(members::change_role),
        )
        .route(
            "/orgs/{org}/members/{user}/{action}",
            get(members::confirm).post(members::act),
        )
        .route("/orgs/{org}/api-tokens", post(members::create_token))
        .route(
            "/orgs/{org}/api-tokens/{token}/revoke",
            post(members::revoke_token),
        )
        .route(assets::STYLESHEET_PATH, get(assets::stylesheet))
        .route("/.well-known/security.txt", get(assets::security_txt))
        .layer(axum::middleware::from_fn(forms::csrf_guard))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(headers::log_request))
        .layer(axum::middleware::map_response(headers::dashboard_headers))
        .with_state(state)
}

/// The whole HTTPS listener: the dashboard's routes, then the JSON API (unchanged) for
/// every path under `/api/` and `/agent/` (its own 404s and 405s stay JSON); any other
/// unknown path is the dashboard's "no such page".
pub fn app(state: AppState) -> Router {
    let api = crate::http::router(state.clone());
    router(state).fallback(move |request: axum::extract::Request| {
        let mut api = api.clone();
        async move {
            let path = request.uri().path();
            if path.starts_with("/api/") || path.starts_with("/agent/") {
                match tower_service::Service::call(&mut api, request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                }
            } else {
                headers::dashboard_headers(layout::not_found()).await
            }
        }
    })
}
