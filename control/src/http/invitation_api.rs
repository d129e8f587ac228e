//! Invitations: listing and revoking them (`/api/v1/orgs/{org}/invitations…`, admins and
//! owners), and accepting one (`/api/v1/invitations/…`, the invited person). Inviting is
//! `POST /api/v1/orgs/{org}/members` (`member_api`).

use super::auth::{org_access, Caller, Person};
use super::error::{ApiError, ApiResult};
use super::extract::{Body, Path, SecretField};
use super::AppState;
use crate::accounts::invitations::{self, Accepted, Invitation};
use crate::error::is_id;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// An invitation as the API shows it (never its token, never who accepted it).
pub fn describe(invitation: &Invitation, now: i64) -> Value {
    json!({
        "id": invitation.id,
        "email": invitation.email,
        "role": invitation.role,
        "invited_by": invitation.invited_by,
        "created_at": invitation.created_at,
        "expires_at": invitation.expires_at,
        "status": invitation.status(now),
        "accepted_at": invitation.accepted_at,
        "revoked_at": invitation.revoked_at,
    })
}

/// The organisation's invitations, newest first.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Value>> {
    org_access(&state, caller, &org_id, "admin").await?;
    let now = state.now();
    let items: Vec<Value> = invitations::list(&state.db, &org_id)
        .await?
        .iter()
        .map(|i| describe(i, now))
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// Revokes an invitation: its token stops working.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, invitation_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let access = org_access(&state, caller, &org_id, "admin").await?;
    access.person()?;
    if !is_id(&invitation_id, "inv") {
        return Err(ApiError::not_found());
    }
    invitations::revoke(
        &state.db,
        &org_id,
        &invitation_id,
        &access.as_actor(),
        state.now(),
    )
    .await?;
    Ok(Json(json!({ "revoked": invitation_id })))
}

fn joined(accepted: &Accepted) -> Value {
    json!({
        "invitation_id": accepted.invitation_id,
        "org_id": accepted.org_id,
        "role": accepted.role,
        "user_id": accepted.user_id,
    })
}

/// `POST /api/v1/invitations/accept`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    token: SecretField,
}

/// Accepts an invitation as the signed-in person, whose address it must be for.
pub async fn accept(
    State(state): State<AppState>,
    Person(session): Person,
    Body(request): Body<AcceptRequest>,
) -> ApiResult<Json<Value>> {
    let accepted =
        invitations::accept(&state.db, &request.token.0, &session.user_id, state.now()).await?;
    Ok(Json(joined(&accepted)))
}

/// `POST /api/v1/invitations/create-account`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    token: SecretField,
    new_password: SecretField,
}

/// Accepts an invitation for an address without an account: creates it with the
/// person's own password. Needs no session (the token is the credential); the person
/// signs in afterwards.
pub async fn create_account(
    State(state): State<AppState>,
    Body(request): Body<CreateAccountRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let accepted = invitations::create_account(
        &state.db,
        &request.token.0,
        &request.new_password.0,
        state.now(),
    )
    .await?;
    let mut body = joined(&accepted);
    body["next"] = json!("sign in with POST /api/v1/session");
    Ok((StatusCode::CREATED, Json(body)))
}
