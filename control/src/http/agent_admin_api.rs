//! `/api/v1/orgs/{org}/…` for agents: enrolment tokens (operators and up), the agent
//! list (any member), revocation (admins and owners). Tokens for automation may do
//! these too, within their role.

use super::auth::{org_access, Caller};
use super::error::ApiResult;
use super::error_doc::{BodyErrors, OrgErrors};
use super::extract::{Body, Path};
use super::AppState;
use crate::accounts::roles::Role;
use crate::agents;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/orgs/{org}/enrolment-tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// What the agent will be called (its host, say).
    name: String,
    /// 60 to 604800 seconds; an hour unless given.
    #[serde(default)]
    expires_in_secs: Option<i64>,
}

/// What `POST /api/v1/orgs/{org}/enrolment-tokens` answers: the token, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrolmentToken {
    /// When it stops working (Unix seconds).
    expires_at: i64,
    /// `enr_…`.
    id: String,
    /// What to do next.
    next: &'static str,
    /// The token (`dbce_…`), in this answer only.
    token: String,
}

/// An agent as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct Agent {
    /// When its newest certificate expires.
    #[schema(required = true)]
    certificate_not_after: Option<i64>,
    /// When it enrolled.
    created_at: i64,
    /// `agt_…`.
    id: String,
    /// When it last called the agent listener (Unix seconds), if ever; noted at most
    /// every 30 seconds.
    #[schema(required = true)]
    last_seen_at: Option<i64>,
    name: String,
    /// Whether it is live and was seen within the last two minutes.
    online: bool,
    /// The pg_dump of its newest recorded backup.
    #[schema(required = true)]
    pg_dump_version: Option<String>,
    /// When it was revoked, if it was.
    #[schema(required = true)]
    revoked_at: Option<i64>,
    /// The agent version it last reported (`User-Agent: dbcrate-agent/…`).
    #[schema(required = true)]
    version: Option<String>,
}

/// What `GET /api/v1/orgs/{org}/agents` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    items: Vec<Agent>,
}

/// What `POST /api/v1/orgs/{org}/agents/{agent}/revoke` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentRevoked {
    /// The agent's id.
    revoked: String,
    /// The serial numbers of the certificates now in the CRL (hex).
    serials: Vec<String>,
}

/// Creates a one-time enrolment token (shown once).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/enrolment-tokens",
    operation_id = "create_enrolment_token",
    tag = "agents",
    summary = "Create a one-time agent enrolment token (dbce_…, shown once; an hour unless given)",
    description = "Who: operator or higher (a person or an API token).",
    params(("org" = String, Path, description = "The organisation, org_…")),
    request_body = TokenRequest,
    responses(
        (status = 201, description = "Created", body = EnrolmentToken),
        OrgErrors,
        BodyErrors,
    )
)]
pub async fn create_enrolment_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<TokenRequest>,
) -> ApiResult<(StatusCode, Json<EnrolmentToken>)> {
    let access = org_access(&state, caller, &org_id, Role::Operator).await?;
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
        Json(EnrolmentToken {
            expires_at: created.expires_at,
            id: created.id,
            next: "dbcrate-agent enroll --control-url URL --token TOKEN on the database host",
            token: created.token.expose_secret().to_string(),
        }),
    ))
}

/// The organisation's agents.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/agents",
    operation_id = "list_agents",
    tag = "agents",
    summary = "The organisation's agents",
    description = "Who: viewer or higher.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    responses(
        (status = 200, description = "Agents", body = AgentList),
        OrgErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<AgentList>> {
    org_access(&state, caller, &org_id, Role::Viewer).await?;
    let now = state.now();
    let items = agents::list(&state.db, &org_id)
        .await?
        .into_iter()
        .map(|a| Agent {
            certificate_not_after: a.certificate_not_after,
            created_at: a.created_at,
            id: a.id,
            name: a.name,
            revoked_at: a.revoked_at,
            last_seen_at: a.last_seen_at,
            online: a.revoked_at.is_none() && agents::presence::is_online(a.last_seen_at, now),
            version: a.version,
            pg_dump_version: a.pg_dump_version,
        })
        .collect();
    Ok(Json(AgentList { items }))
}

/// Revokes an agent: its certificates are refused from the next connection on.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/agents/{agent}/revoke",
    operation_id = "revoke_agent",
    tag = "agents",
    summary = "Revoke an agent: its certificates go into the organisation's signed CRL and are refused from the next connection",
    description = "Who: admin or higher (a person or an API token).",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        ("agent" = String, Path, description = "The agent, agt_…"),
    ),
    responses(
        (status = 200, description = "Revoked", body = AgentRevoked),
        OrgErrors,
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, agent_id)): Path<(String, String)>,
) -> ApiResult<Json<AgentRevoked>> {
    let access = org_access(&state, caller, &org_id, Role::Admin).await?;
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
    Ok(Json(AgentRevoked {
        revoked: agent_id,
        serials,
    }))
}
