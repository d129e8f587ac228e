//! `/api/v1/orgs/{org}/…` for agents: enrolment tokens (operators and up), the agent
//! list (any member), revocation (admins and owners). Tokens for automation may do
//! these too, within their role.

use super::auth::{org_access, Caller};
use super::error::ApiResult;
use super::extract::{Body, Path};
use super::AppState;
use crate::agents;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// `POST /api/v1/orgs/{org}/enrolment-tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    name: String,
    #[serde(default)]
    expires_in_secs: Option<i64>,
}

/// Creates a one-time enrolment token (shown once).
pub async fn create_enrolment_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<TokenRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let access = org_access(&state, caller, &org_id, "operator").await?;
    let created = agents::create_token(
        &state.db,
        &org_id,
        &request.name,
        request.expires_in_secs,
        &access.actor,
        state.now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": created.id,
            "token": created.token.expose_secret(),
            "expires_at": created.expires_at,
            "next": "dbcrate-agent enroll --control-url URL --token TOKEN on the database host",
        })),
    ))
}

/// The organisation's agents.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Value>> {
    org_access(&state, caller, &org_id, "viewer").await?;
    let items = agents::list(&state.db, &org_id).await?;
    Ok(Json(json!({ "items": items })))
}

/// Revokes an agent: its certificates are refused from the next connection on.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, agent_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let access = org_access(&state, caller, &org_id, "admin").await?;
    let serials = agents::revoke(
        &state.db,
        &state.keys,
        &org_id,
        &agent_id,
        &access.actor,
        state.now(),
    )
    .await?;
    state.reload_agent_tls().await;
    Ok(Json(json!({ "revoked": agent_id, "serials": serials })))
}
