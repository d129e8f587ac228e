//! Invitations: listing and revoking them (`/api/v1/orgs/{org}/invitations…`, admins and
//! owners), and accepting one (`/api/v1/invitations/…`, the invited person). Inviting is
//! `POST /api/v1/orgs/{org}/members` (`member_api`).

use super::auth::{known_id, org_access, person_access, Caller, Person};
use super::error::ApiResult;
use super::error_doc::{BodyErrors, ErrorBody, OrgErrors, SignedInErrors};
use super::extract::{Body, Path, SecretField};
use super::AppState;
use crate::accounts::invitations::{self, Accepted};
use crate::accounts::roles::Role;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An invitation as the API shows it (never its token, never who accepted it).
#[derive(Debug, Serialize, ToSchema)]
pub struct Invitation {
    /// When it was accepted, if it was (Unix seconds).
    #[schema(required = true)]
    accepted_at: Option<i64>,
    created_at: i64,
    /// The invited address.
    email: String,
    expires_at: i64,
    /// `inv_…`.
    id: String,
    /// Who invited (`user:…`).
    invited_by: String,
    /// When it was revoked, if it was.
    #[schema(required = true)]
    revoked_at: Option<i64>,
    /// The role it gives.
    role: String,
    /// `pending`, `accepted`, `revoked` or `expired`.
    status: &'static str,
}

impl Invitation {
    /// The invitation `invitation` as shown at `now`.
    pub fn of(invitation: &invitations::Invitation, now: i64) -> Self {
        Self {
            accepted_at: invitation.accepted_at,
            created_at: invitation.created_at,
            email: invitation.email.clone(),
            expires_at: invitation.expires_at,
            id: invitation.id.clone(),
            invited_by: invitation.invited_by.clone(),
            revoked_at: invitation.revoked_at,
            role: invitation.role.to_string(),
            status: invitation.status(now),
        }
    }
}

/// What `GET /api/v1/orgs/{org}/invitations` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationList {
    items: Vec<Invitation>,
}

/// The organisation's invitations, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/invitations",
    operation_id = "list_invitations",
    tag = "members",
    summary = "The organisation's invitations, newest first, with their status (never their tokens)",
    description = "Who: admin or higher.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    responses(
        (status = 200, description = "Invitations", body = InvitationList),
        OrgErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<InvitationList>> {
    org_access(&state, caller, &org_id, Role::Admin).await?;
    let now = state.now();
    let items = invitations::list(&state.db, &org_id)
        .await?
        .iter()
        .map(|i| Invitation::of(i, now))
        .collect();
    Ok(Json(InvitationList { items }))
}

/// What `DELETE /api/v1/orgs/{org}/invitations/{invitation}` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationRevoked {
    /// The invitation's id.
    revoked: String,
}

/// Revokes an invitation: its token stops working.
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}/invitations/{invitation}",
    operation_id = "revoke_invitation",
    tag = "members",
    summary = "Revoke an invitation: its token stops working",
    description = "Who: admin or higher, as a person; invitations to be owner only by owners.",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        ("invitation" = String, Path, description = "The invitation, inv_…"),
    ),
    security(("session" = [])),
    responses(
        (status = 200, description = "Revoked", body = InvitationRevoked),
        OrgErrors,
        (status = 409, description = "conflict: accepted or revoked already", body = ErrorBody),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, invitation_id)): Path<(String, String)>,
) -> ApiResult<Json<InvitationRevoked>> {
    let access = person_access(&state, caller, &org_id, Role::Admin).await?;
    known_id(&invitation_id, "inv")?;
    invitations::revoke(
        &state.db,
        &org_id,
        &invitation_id,
        &access.as_actor(),
        state.now(),
    )
    .await?;
    Ok(Json(InvitationRevoked {
        revoked: invitation_id,
    }))
}

/// What accepting an invitation answers: the membership it made.
#[derive(Debug, Serialize, ToSchema)]
pub struct Joined {
    invitation_id: String,
    org_id: String,
    /// The role the member now holds.
    role: String,
    user_id: String,
}

impl Joined {
    fn of(accepted: Accepted) -> Self {
        Self {
            invitation_id: accepted.invitation_id,
            org_id: accepted.org_id,
            role: accepted.role.to_string(),
            user_id: accepted.user_id,
        }
    }
}

/// What `POST /api/v1/invitations/create-account` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountCreated {
    invitation_id: String,
    /// What to do next.
    next: &'static str,
    org_id: String,
    role: String,
    user_id: String,
}

/// `POST /api/v1/invitations/accept`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    /// The invitation token, `dbci_…`.
    #[schema(value_type = String, format = Password)]
    token: SecretField,
}

/// Accepts an invitation as the signed-in person, whose address it must be for.
#[utoipa::path(
    post,
    path = "/api/v1/invitations/accept",
    operation_id = "accept_invitation",
    tag = "members",
    summary = "Accept an invitation as the signed-in person, whose address it is for",
    description = "Who: a person whose e-mail address the invitation is for.",
    request_body = AcceptRequest,
    security(("session" = [])),
    responses(
        (status = 200, description = "Joined", body = Joined),
        SignedInErrors,
        BodyErrors,
        (status = 403, description = "forbidden: the invitation is for another address; password_change_required, csrf_token_invalid", body = ErrorBody),
        (status = 409, description = "conflict: the invitation was used, revoked or has expired, or a member already", body = ErrorBody),
        (status = 422, description = "invalid_input: the token is malformed or unknown; invalid_body", body = ErrorBody),
    )
)]
pub async fn accept(
    State(state): State<AppState>,
    Person(session): Person,
    Body(request): Body<AcceptRequest>,
) -> ApiResult<Json<Joined>> {
    let accepted =
        invitations::accept(&state.db, &request.token.0, &session.user_id, state.now()).await?;
    Ok(Json(Joined::of(accepted)))
}

/// `POST /api/v1/invitations/create-account`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountRequest {
    /// The invitation token, `dbci_…`.
    #[schema(value_type = String, format = Password)]
    token: SecretField,
    /// At least 12 characters.
    #[schema(value_type = String, format = Password)]
    new_password: SecretField,
}

/// Accepts an invitation for an address without an account: creates it with the
/// person's own password. Needs no session (the token is the credential); the person
/// signs in afterwards.
#[utoipa::path(
    post,
    path = "/api/v1/invitations/create-account",
    operation_id = "create_account",
    tag = "members",
    summary = "Accept an invitation for an address without an account: creates the account with the person's own password (then sign in)",
    description = "Who: anyone with an invitation token.",
    request_body = CreateAccountRequest,
    security(()),
    responses(
        (status = 201, description = "Account created and joined", body = AccountCreated),
        BodyErrors,
        (status = 409, description = "conflict: the invitation was used, revoked or has expired, or the address has an account (sign in and accept instead)", body = ErrorBody),
        (status = 422, description = "invalid_input: the token is malformed or unknown, or new_password breaks the password policy (12+ characters); invalid_body", body = ErrorBody),
    )
)]
pub async fn create_account(
    State(state): State<AppState>,
    Body(request): Body<CreateAccountRequest>,
) -> ApiResult<(StatusCode, Json<AccountCreated>)> {
    let accepted = invitations::create_account(
        &state.db,
        &request.token.0,
        &request.new_password.0,
        state.now(),
    )
    .await?;
    let body = AccountCreated {
        invitation_id: accepted.invitation_id,
        next: "sign in with POST /api/v1/session",
        org_id: accepted.org_id,
        role: accepted.role.to_string(),
        user_id: accepted.user_id,
    };
    Ok((StatusCode::CREATED, Json(body)))
}
