//! `/api/v1/orgs/{org}/api-tokens…`: tokens for automation. Listing needs admin;
//! creating and revoking need a person with admin or owner (a token cannot mint
//! tokens).

use super::auth::{org_access, Caller};
use super::error::{ApiError, ApiResult};
use super::extract::{Body, Path};
use super::AppState;
use crate::accounts::api_tokens::{self, TokenInfo};
use crate::error::is_id;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

fn describe(t: &TokenInfo) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "role": t.role,
        "created_by": t.created_by,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "revoked_at": t.revoked_at,
        "last_used_at": t.last_used_at,
    })
}

/// The organisation's tokens (never their values).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Value>> {
    org_access(&state, caller, &org_id, "admin").await?;
    let items: Vec<Value> = api_tokens::list(&state.db, &org_id)
        .await?
        .iter()
        .map(describe)
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// `POST /api/v1/orgs/{org}/api-tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRequest {
    name: String,
    role: String,
    #[serde(default)]
    expires_in_days: Option<i64>,
}

/// Creates a token; its value is in this answer only.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<CreateRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let access = org_access(&state, caller, &org_id, "admin").await?;
    access.person()?;
    let (info, token) = api_tokens::create(
        &state.db,
        &org_id,
        api_tokens::NewToken {
            name: &request.name,
            role: &request.role,
            lifetime_days: request.expires_in_days,
        },
        &access.actor,
        access.role,
        state.now(),
    )
    .await?;
    let mut body = describe(&info);
    body["token"] = json!(token.expose_secret());
    Ok((StatusCode::CREATED, Json(body)))
}

/// Revokes a token.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, token_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let access = org_access(&state, caller, &org_id, "admin").await?;
    access.person()?;
    if !is_id(&token_id, "tok") {
        return Err(ApiError::not_found());
    }
    api_tokens::revoke(&state.db, &org_id, &token_id, &access.actor, state.now()).await?;
    Ok(Json(json!({ "revoked": token_id })))
}
