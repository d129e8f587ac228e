//! `/agent/v1/*`: what agents call, on the agent listener (mutual TLS). Enrolment is
//! the one route without a client certificate; every other route takes the agent's
//! organisation and id from its verified certificate only. Every request and answer is
//! a type of [`dbcrate_core::wire`], which the agent uses too.

use super::error::{ApiError, ApiResult};
use super::error_doc::{AgentErrors, BodyErrors, ErrorBody};
use super::extract::{Body, Path};
use super::wire_doc;
use super::AppState;
use crate::agents::{self, EnrolRequest};
use crate::backups::jobs::{self, wakeups};
use crate::error::{Code, Error};
use crate::pki::crl;
use crate::pki::identity::{self, AgentIdentity};
use crate::server::PeerCertificates;
use axum::extract::{FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use dbcrate_core::wire;

fn certificate_required(message: impl Into<String>) -> ApiError {
    Error::new(Code::ClientCertificateRequired, message).into()
}

/// The identity in the client certificate the TLS layer verified, refused unless the
/// certificate is valid now. The handshake checked its validity when the connection
/// opened; a kept-alive connection outlives that, so every request checks again. This
/// is the only way from a request to an [`AgentIdentity`] (both extractors below use
/// it), so no agent route can skip the check.
fn verified_identity(parts: &Parts, now: i64) -> ApiResult<AgentIdentity> {
    let certs = parts.extensions.get::<PeerCertificates>().ok_or_else(|| {
        certificate_required(
            "this route needs the agent's client certificate (mutual TLS); enrol first",
        )
    })?;
    let leaf = certs
        .0
        .first()
        .ok_or_else(|| certificate_required("no client certificate was presented"))?;
    let identity = identity::from_certificate(leaf).map_err(|e| certificate_required(e.message))?;
    identity.check_valid_at(now)?;
    Ok(identity)
}

/// A caller with a verified, currently valid, live (not revoked) agent certificate.
#[derive(Debug, Clone)]
pub struct Agent(pub AgentIdentity);

impl FromRequestParts<AppState> for Agent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let identity = verified_identity(parts, state.now())?;
        agents::check_live(&state.db, &identity)
            .await
            .map_err(|e| match e.code {
                // A certificate this control plane does not know.
                Code::NotSignedIn => certificate_required(e.message),
                // agent_revoked, or an outage (internal).
                _ => e.into(),
            })?;
        note_seen(parts, state, &identity).await;
        Ok(Self(identity))
    }
}

/// Notes a live agent's call and the version its `User-Agent` names
/// ([`agents::presence`]). Bookkeeping only: a failed write is logged and the call goes
/// on, so a busy database never fails an agent's job for it.
async fn note_seen(parts: &Parts, state: &AppState, identity: &AgentIdentity) {
    let version = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|h| agents::presence::version_from_user_agent(h.as_bytes()));
    let noted = agents::presence::seen(&state.db, &identity.agent_id, version, state.now());
    if let Err(e) = noted.await {
        tracing::warn!(agent = %identity.agent_id, "noting the agent as seen failed: {}", e.message);
    }
}

/// A caller whose certificate the TLS layer verified and that is valid now, revoked or
/// not: enough to be handed its organisation's CRL. (A replica whose CRLs lag a
/// revocation still lets the revoked agent in; the CRL it then fetches tells it to
/// stop.)
#[derive(Debug, Clone)]
pub struct AnyAgent(pub AgentIdentity);

impl FromRequestParts<AppState> for AnyAgent {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        Ok(Self(verified_identity(parts, state.now())?))
    }
}

/// Token + CSR → certificate chain (`POST /agent/v1/enroll`). Like every agent
/// message, the request ignores fields this version does not know: agents are
/// upgraded on their own schedule.
#[utoipa::path(
    post,
    path = "/agent/v1/enroll",
    operation_id = "agent_enroll",
    tag = "agent",
    summary = "Agent listener: enrol with a one-time token and a CSR; answers the certificate chain and the deployment root",
    description = "Who: anyone with an enrolment token (no client certificate yet).",
    request_body = wire_doc::EnrolRequest,
    security(()),
    responses(
        (status = 200, description = "Enrolled", body = wire_doc::EnrolAnswer),
        BodyErrors,
        (status = 401, description = "not_signed_in: the token is unknown, used, expired or of another organisation", body = ErrorBody),
        (status = 422, description = "invalid_input: a bad CSR (garbage, oversized, CA:true, a signature that does not verify); invalid_body", body = ErrorBody),
    )
)]
pub async fn enroll(
    State(state): State<AppState>,
    Body(body): Body<wire::EnrolRequest>,
) -> ApiResult<Json<wire::EnrolAnswer>> {
    let request = EnrolRequest {
        token: &body.token,
        csr_pem: &body.csr,
        name: &body.name,
        org_id: body.org_id.as_deref(),
    };
    let enrolled = agents::enrol(
        &state.db,
        &state.keys,
        &request,
        state.agents.cert_lifetime_secs,
        state.now(),
    )
    .await?;
    state.reload_agent_tls().await;
    Ok(Json(wire::EnrolAnswer {
        org_id: enrolled.org_id,
        agent_id: enrolled.agent_id,
        certificate_chain: enrolled.chain_pem,
        root_ca: enrolled.root_pem,
        not_after: enrolled.not_after,
    }))
}

/// A fresh certificate for a new key, for a live agent
/// (`POST /agent/v1/certificate/renew`).
#[utoipa::path(
    post,
    path = "/agent/v1/certificate/renew",
    operation_id = "agent_renew",
    tag = "agent",
    summary = "Agent listener: a fresh certificate for a new key (CSR)",
    description = "Who: a live agent (client certificate).",
    request_body = wire_doc::RenewRequest,
    security(("agentCertificate" = [])),
    responses(
        (status = 200, description = "Renewed", body = wire_doc::RenewAnswer),
        AgentErrors,
        BodyErrors,
    )
)]
pub async fn renew(
    State(state): State<AppState>,
    Agent(agent): Agent,
    Body(body): Body<wire::RenewRequest>,
) -> ApiResult<Json<wire::RenewAnswer>> {
    let issued = agents::renew(
        &state.db,
        &state.keys,
        &agent,
        &body.csr,
        state.agents.cert_lifetime_secs,
        state.now(),
    )
    .await?;
    Ok(Json(wire::RenewAnswer {
        certificate_chain: issued.chain_pem,
        not_after: issued.not_after,
    }))
}

/// A setting in seconds as sent (settings are at least one second).
fn secs(value: i64) -> u64 {
    value.max(1) as u64
}

/// What the agent needs to work: who it is, the organisation's recipient, its
/// intervals, when to renew, and the registry.
#[utoipa::path(
    get,
    path = "/agent/v1/config",
    operation_id = "agent_config",
    tag = "agent",
    summary = "Agent listener: the organisation's recipient, the agent's intervals and the registry",
    description = "Who: a live agent (client certificate).",
    security(("agentCertificate" = [])),
    responses(
        (status = 200, description = "The agent's settings", body = wire_doc::ConfigAnswer),
        AgentErrors,
    )
)]
pub async fn config(
    State(state): State<AppState>,
    Agent(agent): Agent,
) -> ApiResult<Json<wire::ConfigAnswer>> {
    let org = crate::orgs::get(&state.db, &agent.org_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let settings = &state.agents;
    Ok(Json(wire::ConfigAnswer {
        org_id: agent.org_id,
        agent_id: agent.agent_id,
        recipient: org.recipient,
        poll_interval_secs: secs(settings.poll_interval_secs),
        crl_interval_secs: secs(settings.crl_interval_secs),
        heartbeat_secs: secs(settings.heartbeat_secs),
        renew_at_fraction: settings.renew_at_fraction,
        registry: settings
            .registry_url
            .as_ref()
            .map(|url| wire::RegistrySettings {
                url: url.clone(),
                root_keys: settings.registry_root_keys.clone(),
            }),
    }))
}

/// The agent's organisation's signed CRL (DER).
#[utoipa::path(
    get,
    path = "/agent/v1/crl",
    operation_id = "agent_crl",
    tag = "agent",
    summary = "Agent listener: the organisation's signed CRL (DER)",
    description = "Who: an agent with a currently valid certificate, revoked or not (the CRL \
        tells a revoked one to stop).",
    security(("agentCertificate" = [])),
    responses(
        (status = 200, description = "The CRL", body = wire_doc::Crl, content_type = "application/pkix-crl"),
        AgentErrors,
    )
)]
pub async fn crl(State(state): State<AppState>, AnyAgent(agent): AnyAgent) -> ApiResult<Response> {
    let der = crl::current(&state.db, &state.keys, &agent.org_id, state.now()).await?;
    Ok(([(header::CONTENT_TYPE, wire::CRL_CONTENT_TYPE)], der).into_response())
}

/// The agent's next job: waits up to the poll interval for one (long poll), then answers
/// `{"job": null}`. The wait ends when the certificate expires, so no job is handed to
/// an expired certificate.
#[utoipa::path(
    get,
    path = "/agent/v1/jobs/next",
    operation_id = "agent_next_job",
    tag = "agent",
    summary = "Agent listener: claim the next job (a long poll up to the poll interval; {\"job\": null} when none)",
    description = "Who: a live agent (client certificate).",
    security(("agentCertificate" = [])),
    responses(
        (status = 200, description = "A job, or null", body = wire_doc::NextJobAnswer),
        AgentErrors,
    )
)]
pub async fn next_job(
    State(state): State<AppState>,
    Agent(agent): Agent,
) -> ApiResult<Json<wire::NextJobAnswer>> {
    let valid_for = std::time::Duration::from_secs((agent.not_after - state.now()).max(0) as u64);
    let interval = std::time::Duration::from_secs(secs(state.agents.poll_interval_secs));
    let random = crate::error::random_bytes::<2>().map_or(u16::MAX, |b| u16::from_le_bytes(*b));
    let wait = wakeups::hold(interval, random).min(valid_for);
    let deadline = tokio::time::Instant::now() + wait;
    // Registered before the first look, so a job queued meanwhile wakes this poll.
    let waiter = state.job_wakeups.wait_for(&agent.agent_id);
    loop {
        if let Some(job) = jobs::claim_next(&state.db, &agent, state.now()).await? {
            return Ok(Json(wire::NextJobAnswer { job: Some(job) }));
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(Json(wire::NextJobAnswer { job: None }));
        }
        // Woken by the watcher when a job is queued for this agent (see
        // `wakeups`), else at the deadline.
        let _ = tokio::time::timeout_at(deadline, waiter.notify().notified()).await;
    }
}

/// The job's credentials, once.
#[utoipa::path(
    get,
    path = "/agent/v1/jobs/{job}/credentials",
    operation_id = "agent_job_credentials",
    tag = "agent",
    summary = "Agent listener: the running job's credentials (database password, destination credentials, recipients; a restore's file key), answered once per attempt",
    description = "Who: the agent the job is assigned to, while it runs. Audited.",
    params(("job" = String, Path, description = "The job, job_…")),
    security(("agentCertificate" = [])),
    responses(
        (status = 200, description = "The credentials", body = wire_doc::JobCredentials),
        AgentErrors,
        (status = 404, description = "not_found: not this agent's running job", body = ErrorBody),
        (status = 409, description = "conflict: handed out already for this attempt", body = ErrorBody),
    )
)]
pub async fn job_credentials(
    State(state): State<AppState>,
    Agent(agent): Agent,
    Path(job_id): Path<String>,
) -> ApiResult<Json<wire::JobCredentials>> {
    let credentials = crate::backups::handout::credentials(
        &state.db,
        &state.keys,
        &state.reach,
        &agent,
        &job_id,
        state.now(),
    )
    .await?;
    Ok(Json(credentials))
}

/// A heartbeat (`POST /agent/v1/jobs/{job}/progress`). Unlike the API's bodies, agent
/// reports ignore fields this version does not know: agents are upgraded on their own
/// schedule, and a newer agent's report must not be refused (an orphaned backup, a
/// redone job) because it says more.
#[utoipa::path(
    post,
    path = "/agent/v1/jobs/{job}/progress",
    operation_id = "agent_job_progress",
    tag = "agent",
    summary = "Agent listener: a heartbeat (bytes, phase); renews the job's lease",
    description = "Who: the agent the job is assigned to.",
    params(("job" = String, Path, description = "The job, job_…")),
    request_body = wire_doc::ProgressReport,
    security(("agentCertificate" = [])),
    responses(
        (status = 200, description = "Lease renewed", body = wire_doc::ProgressAnswer),
        AgentErrors,
        BodyErrors,
        (status = 404, description = "not_found: not this agent's running job", body = ErrorBody),
    )
)]
pub async fn job_progress(
    State(state): State<AppState>,
    Agent(agent): Agent,
    Path(job_id): Path<String>,
    Body(body): Body<wire::ProgressReport>,
) -> ApiResult<Json<wire::ProgressAnswer>> {
    jobs::heartbeat(
        &state.db,
        &agent,
        &job_id,
        body.bytes,
        &body.phase,
        state.now(),
    )
    .await?;
    Ok(Json(wire::ProgressAnswer {
        lease_secs: jobs::LEASE_SECS,
    }))
}

/// The final report (`POST /agent/v1/jobs/{job}/complete`; unknown fields ignored, as
/// for heartbeats).
#[utoipa::path(
    post,
    path = "/agent/v1/jobs/{job}/complete",
    operation_id = "agent_job_complete",
    tag = "agent",
    summary = "Agent listener: the job's final report; a successful backup is recorded",
    description = "Who: the agent the job is assigned to.",
    params(("job" = String, Path, description = "The job, job_…")),
    request_body = wire_doc::Completion,
    security(("agentCertificate" = [])),
    responses(
        (status = 200, description = "Recorded", body = wire_doc::CompletionAnswer),
        AgentErrors,
        BodyErrors,
        (status = 404, description = "not_found: not this agent's running job, or a stale attempt", body = ErrorBody),
        (status = 422, description = "invalid_input: an object key other than the one fixed at claim; invalid_body", body = ErrorBody),
    )
)]
pub async fn job_complete(
    State(state): State<AppState>,
    Agent(agent): Agent,
    Path(job_id): Path<String>,
    Body(report): Body<wire::Completion>,
) -> ApiResult<Json<wire::CompletionAnswer>> {
    let state_after = jobs::complete(&state.db, &agent, &job_id, &report, state.now()).await?;
    Ok(Json(wire::CompletionAnswer {
        state: state_after.to_string(),
    }))
}
