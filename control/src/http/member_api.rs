//! `/api/v1/orgs/{org}/members…`: who belongs, inviting people, role changes, removal
//! and password resets. Reading needs any role; changes need a person with admin or owner
//! (the rules about owners live in `members`).

use super::auth::{org_access, Access, Caller};
use super::error::{ApiError, ApiResult};
use super::extract::{Body, Path};
use super::AppState;
use crate::accounts::{invitations, members};
use crate::error::is_id;
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
    #[serde(default)]
    expires_in_days: Option<i64>,
}

/// Invites a person: the answer is the invitation with its token, shown once, and is
/// the same whether or not the address has an account (see `invitations`).
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<AddRequest>,
) -> ApiResult<(axum::http::StatusCode, Json<Value>)> {
    let access = org_access(&state, caller, &org_id, "admin").await?;
    access.person()?;
    let now = state.now();
    let (invitation, token) = invitations::create(
        &state.db,
        &org_id,
        invitations::NewInvitation {
            email: &request.email,
            role: &request.role,
            lifetime_days: request.expires_in_days,
        },
        &access.as_actor(),
        now,
    )
    .await?;
    let mut body = super::invitation_api::describe(&invitation, now);
    body["token"] = json!(token.expose_secret());
    body["next"] = json!(
        "give the token to the person: signed in with an account for this address they \
         accept it with POST /api/v1/invitations/accept; without one, POST \
         /api/v1/invitations/create-account sets their password"
    );
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
