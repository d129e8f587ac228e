//! `/api/v1/orgs/{org}/members…`: who belongs, inviting people, role changes, removal
//! and password resets. Reading needs any role; changes need a person with admin or owner
//! (the rules about owners live in `members`).

use super::auth::{known_id, org_access, person_access, Access, Caller};
use super::error::ApiResult;
use super::error_doc::{BodyErrors, ErrorBody, OrgErrors};
use super::extract::{Body, Path};
use super::AppState;
use crate::accounts::roles::Role;
use crate::accounts::{invitations, members};
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A member as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Member {
    email: String,
    /// `owner`, `admin`, `operator` or `viewer`.
    role: String,
    user_id: String,
}

/// What `GET /api/v1/orgs/{org}/members` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberList {
    items: Vec<Member>,
}

/// Members with e-mail and role.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/members",
    operation_id = "list_members",
    tag = "members",
    summary = "Members with e-mail and role",
    description = "Who: viewer or higher.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    responses(
        (status = 200, description = "Members", body = MemberList),
        OrgErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<MemberList>> {
    org_access(&state, caller, &org_id, Role::Viewer).await?;
    let items = members::list(&state.db, &org_id)
        .await?
        .into_iter()
        .map(|m| Member {
            email: m.email,
            role: m.role.to_string(),
            user_id: m.user_id,
        })
        .collect();
    Ok(Json(MemberList { items }))
}

/// `POST /api/v1/orgs/{org}/members`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    email: String,
    /// `owner`, `admin`, `operator` or `viewer`, no higher than the inviter's.
    role: String,
    /// 1 to 30 days; 7 unless given.
    #[serde(default)]
    expires_in_days: Option<i64>,
}

/// What `POST /api/v1/orgs/{org}/members` answers: the invitation with its token, shown
/// once.
#[derive(Debug, Serialize, ToSchema)]
pub struct Invited {
    #[schema(required = true)]
    accepted_at: Option<i64>,
    created_at: i64,
    email: String,
    expires_at: i64,
    /// `inv_…`.
    id: String,
    invited_by: String,
    /// What to do next.
    next: &'static str,
    #[schema(required = true)]
    revoked_at: Option<i64>,
    role: String,
    /// `pending`.
    status: &'static str,
    /// The one-time token (`dbci_…`), in this answer only.
    token: String,
}

/// Invites a person: the answer is the invitation with its token, shown once, and is
/// the same whether or not the address has an account (see `invitations`).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/members",
    operation_id = "invite_member",
    tag = "members",
    summary = "Invite a person: an invitation with a one-time token (dbci_…, shown once) for them to accept",
    description = "Who: admin or higher, as a person; nobody invites above their own role. The \
        answer is the same whether or not the address has an account; nobody is a member \
        until they accept.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    request_body = AddRequest,
    security(("session" = [])),
    responses(
        (status = 201, description = "Invited", body = Invited),
        OrgErrors,
        BodyErrors,
        (status = 409, description = "conflict: a member here already, or a pending invitation here already", body = ErrorBody),
    )
)]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<AddRequest>,
) -> ApiResult<(axum::http::StatusCode, Json<Invited>)> {
    let access = person_access(&state, caller, &org_id, Role::Admin).await?;
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
    let body = Invited {
        accepted_at: invitation.accepted_at,
        created_at: invitation.created_at,
        email: invitation.email.clone(),
        expires_at: invitation.expires_at,
        id: invitation.id.clone(),
        invited_by: invitation.invited_by.clone(),
        next: "give the token to the person: signed in with an account for this address they \
         accept it with POST /api/v1/invitations/accept; without one, POST \
         /api/v1/invitations/create-account sets their password",
        revoked_at: invitation.revoked_at,
        role: invitation.role.to_string(),
        status: invitation.status(now),
        token: token.expose_secret().to_string(),
    };
    Ok((axum::http::StatusCode::CREATED, Json(body)))
}

/// `PATCH /api/v1/orgs/{org}/members/{user}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    /// `owner`, `admin`, `operator` or `viewer`.
    role: String,
}

/// What `PATCH /api/v1/orgs/{org}/members/{user}` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleChanged {
    role: String,
    user_id: String,
}

/// What `DELETE /api/v1/orgs/{org}/members/{user}` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberRemoved {
    /// The user id.
    removed: String,
}

/// What `POST /api/v1/orgs/{org}/members/{user}/password-reset` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordReset {
    /// Shown once; the member changes it at their next sign-in.
    one_time_password: String,
    user_id: String,
}

/// Authorises a change to member `user_id` of `org_id`: a person with admin or owner,
/// and a well-formed user id (a malformed one is "not found").
async fn member_change(
    state: &AppState,
    caller: Caller,
    org_id: &str,
    user_id: &str,
) -> ApiResult<Access> {
    let access = person_access(state, caller, org_id, Role::Admin).await?;
    known_id(user_id, "usr")?;
    Ok(access)
}

/// Changes a member's role.
#[utoipa::path(
    patch,
    path = "/api/v1/orgs/{org}/members/{user}",
    operation_id = "change_member_role",
    tag = "members",
    summary = "Change a member's role",
    description = "Who: admin or higher, as a person; only owners touch owners; the last owner stays.",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        ("user" = String, Path, description = "The member, usr_…"),
    ),
    request_body = RoleRequest,
    security(("session" = [])),
    responses(
        (status = 200, description = "Changed", body = RoleChanged),
        OrgErrors,
        BodyErrors,
        (status = 409, description = "conflict: the last owner", body = ErrorBody),
    )
)]
pub async fn change_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, user_id)): Path<(String, String)>,
    Body(request): Body<RoleRequest>,
) -> ApiResult<Json<RoleChanged>> {
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
    Ok(Json(RoleChanged {
        role: request.role,
        user_id,
    }))
}

/// Removes a member from the organisation (the account stays).
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}/members/{user}",
    operation_id = "remove_member",
    tag = "members",
    summary = "Remove a member (the account stays)",
    description = "Who: admin or higher, as a person; only owners touch owners; the last owner stays.",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        ("user" = String, Path, description = "The member, usr_…"),
    ),
    security(("session" = [])),
    responses(
        (status = 200, description = "Removed", body = MemberRemoved),
        OrgErrors,
        (status = 409, description = "conflict: the last owner", body = ErrorBody),
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, user_id)): Path<(String, String)>,
) -> ApiResult<Json<MemberRemoved>> {
    let access = member_change(&state, caller, &org_id, &user_id).await?;
    members::remove(
        &state.db,
        &org_id,
        &user_id,
        &access.as_actor(),
        &state.now_rfc3339(),
    )
    .await?;
    Ok(Json(MemberRemoved { removed: user_id }))
}

/// Sets a one-time password for a member (shown once) and ends their sessions.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/members/{user}/password-reset",
    operation_id = "reset_member_password",
    tag = "members",
    summary = "Give a member a one-time password (shown once) and end their sessions",
    description = "Who: admin or higher, as a person; not for one's own account, owners only \
        by owners, only people in no other organisation.",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        ("user" = String, Path, description = "The member, usr_…"),
    ),
    security(("session" = [])),
    responses(
        (status = 200, description = "Reset", body = PasswordReset),
        OrgErrors,
        (status = 409, description = "conflict: a member of other organisations", body = ErrorBody),
        (status = 422, description = "invalid_input: one's own account", body = ErrorBody),
    )
)]
pub async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, user_id)): Path<(String, String)>,
) -> ApiResult<Json<PasswordReset>> {
    let access = member_change(&state, caller, &org_id, &user_id).await?;
    let password = members::reset_password(
        &state.db,
        &org_id,
        &user_id,
        &access.as_actor(),
        &state.now_rfc3339(),
    )
    .await?;
    Ok(Json(PasswordReset {
        one_time_password: password.expose_secret().to_string(),
        user_id,
    }))
}
