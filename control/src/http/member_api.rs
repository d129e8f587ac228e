//! `/api/v1/orgs/{org}/members…`: who belongs, adding people, role changes, removal and
//! password resets. Reading needs any role; changes need a person with admin or owner
//! (the rules about owners live in `members`).

use super::auth::{org_access, Access, Caller};
use super::error::{ApiError, ApiResult};
use super::extract::{Body, Path};
use super::AppState;
use crate::error::is_id;
use crate::members;
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// Members with e-mail and role.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Value>> {
    org_access(&state, caller, &org_id, "viewer").await?;
    let items: Vec<Value> = members::list(&state.db, &org_id)
        .await?
        .into_iter()
        .map(|m| json!({ "user_id": m.user_id, "email": m.email, "role": m.role }))
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// `POST /api/v1/orgs/{org}/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    email: String,
    role: String,
}

/// Adds a person (creating the account, with a one-time password shown once, if new).
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<AddRequest>,
) -> ApiResult<(axum::http::StatusCode, Json<Value>)> {
    let access = org_access(&state, caller, &org_id, "admin").await?;
    access.person()?;
    let added = members::add(
        &state.db,
        &org_id,
        &request.email,
        &request.role,
        &access.as_actor(),
        &state.now_rfc3339(),
    )
    .await?;
    let mut body = json!({ "user_id": added.user_id, "role": request.role });
    if let Some(password) = &added.one_time_password {
        body["one_time_password"] = json!(password.expose_secret());
    }
    Ok((axum::http::StatusCode::CREATED, Json(body)))
}

/// `PATCH /api/v1/orgs/{org}/members/{user}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    role: String,
}

/// Authorises a change to member `user_id` of `org_id`: a person with admin or owner,
/// and a well-formed user id (a malformed one is "not found").
async fn member_change(
    state: &AppState,
    caller: Caller,
    org_id: &str,
    user_id: &str,
) -> ApiResult<Access> {
    let access = org_access(state, caller, org_id, "admin").await?;
    access.person()?;
    if !is_id(user_id, "usr") {
        return Err(ApiError::not_found());
    }
    Ok(access)
}

/// Changes a member's role.
pub async fn change_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, user_id)): Path<(String, String)>,
    Body(request): Body<RoleRequest>,
) -> ApiResult<Json<Value>> {
    let access = member_change(&state, caller, &org_id, &user_id).await?;
    members::change_role(
        &state.db,
        &org_id,
        &user_id,
        &request.role,
        &access.as_actor(),
        &state.now_rfc3339(),
    )
    .await?;
    Ok(Json(json!({ "user_id": user_id, "role": request.role })))
}

/// Removes a member from the organisation (the account stays).
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, user_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let access = member_change(&state, caller, &org_id, &user_id).await?;
    members::remove(
        &state.db,
        &org_id,
        &user_id,
        &access.as_actor(),
        &state.now_rfc3339(),
    )
    .await?;
    Ok(Json(json!({ "removed": user_id })))
}

/// Sets a one-time password for a member (shown once) and ends their sessions.
pub async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, user_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let access = member_change(&state, caller, &org_id, &user_id).await?;
    let password = members::reset_password(
        &state.db,
        &org_id,
        &user_id,
        &access.as_actor(),
        &state.now_rfc3339(),
    )
    .await?;
    Ok(Json(json!({
        "user_id": user_id,
        "one_time_password": password.expose_secret(),
    })))
}
