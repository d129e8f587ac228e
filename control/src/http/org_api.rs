//! `/api/v1/orgs…`: the organisations a caller belongs to, the owner's recovery-key
//! export, and switching the organisation's key to customer-sealed mode and back.

use super::auth::{org_access, Access, Caller};
use super::error::{ApiError, ApiResult};
use super::error_doc::{
    BodyErrors, ErrorBody, HttpCode, OrgErrors, SignedInErrors, SteppedUpOwnerErrors,
};
use super::extract::{Body, Path, SecretField};
use super::AppState;
use crate::accounts::roles::Role;
use crate::error::{Code, Error};
use crate::orgs::{self, KeyMode};
use crate::secrets::customer_seal::Passphrase;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

/// An organisation as the caller sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Org {
    /// `org_…`.
    id: String,
    /// `managed` (the control plane holds the key under its master key) or
    /// `customer_sealed` (only with the customer's passphrase).
    key_mode: String,
    name: String,
    /// The age recipient every backup is encrypted to.
    recipient: String,
    /// The caller's role: `owner`, `admin`, `operator` or `viewer`.
    role: String,
}

/// What `GET /api/v1/orgs` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrgList {
    items: Vec<Org>,
}

/// The caller's organisations with their role in each.
#[utoipa::path(
    get,
    path = "/api/v1/orgs",
    operation_id = "list_orgs",
    tag = "orgs",
    summary = "The caller's organisations and role in each",
    description = "Who: a person, or an API token (its own organisation).",
    responses(
        (status = 200, description = "Organisations", body = OrgList),
        SignedInErrors,
    )
)]
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<OrgList>> {
    let rows = match &caller {
        Caller::Person(s) => {
            sqlx::query(
                "SELECT o.id, o.name, o.recipient, m.role, o.key_mode FROM memberships m \
             JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.name",
            )
            .bind(&s.user_id)
            .fetch_all(state.db.pool())
            .await
        }
        Caller::Token(t) => {
            sqlx::query("SELECT id, name, recipient, $2 AS role, key_mode FROM orgs WHERE id = $1")
                .bind(&t.org_id)
                .bind(t.role)
                .fetch_all(state.db.pool())
                .await
        }
    }
    .map_err(Error::from)?;
    let items = rows
        .iter()
        .map(|r| -> Result<Org, sqlx::Error> {
            Ok(Org {
                id: r.try_get::<String, _>("id")?,
                name: r.try_get::<String, _>("name")?,
                recipient: r.try_get::<String, _>("recipient")?,
                role: r.try_get::<String, _>("role")?,
                key_mode: r.try_get::<String, _>("key_mode")?,
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::from)?;
    Ok(Json(OrgList { items }))
}

/// One organisation (any member).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}",
    operation_id = "show_org",
    tag = "orgs",
    summary = "One organisation: id, name, age recipient, the caller's role, key mode",
    description = "Who: viewer or higher.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    responses(
        (status = 200, description = "The organisation", body = Org),
        OrgErrors,
    )
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Org>> {
    let access = org_access(&state, caller, &org_id, Role::Viewer).await?;
    let org = orgs::get(&state.db, &org_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mode = orgs::key_mode(&state.db, &org_id).await?;
    Ok(Json(Org {
        id: org.id,
        key_mode: mode.as_str().to_string(),
        name: org.name,
        recipient: org.recipient,
        role: access.role.to_string(),
    }))
}

/// An owner, signed in as a person, with a second factor checked in the last few
/// minutes (`POST /api/v1/session/second-factor`); `what` names the operation.
async fn stepped_up_owner(
    state: &AppState,
    caller: Caller,
    org_id: &str,
    what: &str,
) -> ApiResult<Access> {
    let access = org_access(state, caller, org_id, Role::Owner).await?;
    let session = access.person()?;
    if !session.recently_stepped_up(state.now()) {
        return Err(Error::new(
            Code::RecentSecondFactorRequired,
            format!(
                "{what} needs a second factor checked in the last 5 minutes: \
                 POST /api/v1/session/second-factor first (enrol one if you have none)"
            ),
        )
        .into());
    }
    Ok(access)
}

/// What the recovery-key export may be given (the body is optional).
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// The customer passphrase, for a customer-sealed organisation key.
    #[schema(value_type = Option<String>, format = Password)]
    passphrase: Option<SecretField>,
}

/// A customer passphrase from a request.
pub(super) fn passphrase_of(field: Option<SecretField>) -> ApiResult<Option<Passphrase>> {
    Ok(field.map(|f| Passphrase::new(f.0)).transpose()?)
}

/// The organisation's private key as an age identity file, for the owner's offline
/// recovery copy: owners only, signed in as a person, with a second factor checked in
/// the last few minutes (`POST /api/v1/session/second-factor`). A customer-sealed key
/// also needs `{"passphrase": …}` in the (otherwise optional) JSON body.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/recovery-key",
    operation_id = "export_recovery_key",
    tag = "orgs",
    summary = "Export the organisation's private key as an AGE-SECRET-KEY-1 identity file (audited)",
    description = "Who: an owner, as a person, with a second factor checked in the last 5 \
        minutes. The body is optional: empty, or {\"passphrase\": …} for a customer-sealed key.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    request_body(content = Option<ExportRequest>, description = "Empty, or the customer passphrase"),
    security(("session" = [])),
    responses(
        (status = 200, description = "The identity file", body = String, content_type = "text/plain",
            headers(("content-disposition" = String, description = "attachment; filename=\"dbcrate-ORG.key\""))),
        SteppedUpOwnerErrors,
        (status = 409, description = "customer_passphrase_required: the key is customer-sealed; send {\"passphrase\": …}", body = ErrorBody),
        (status = 422, description = "customer_passphrase_invalid: not the organisation's passphrase (audited); invalid_body", body = ErrorBody),
        (status = 429, description = "throttled: too many wrong passphrases; wait 15 minutes", body = ErrorBody),
    )
)]
pub async fn export_recovery_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let access = stepped_up_owner(&state, caller, &org_id, "exporting the recovery key").await?;
    let request: ExportRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ExportRequest::default()
    } else {
        // The parser's words are not repeated: they could quote what was typed.
        serde_json::from_slice(&body).map_err(|_| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                HttpCode::InvalidBody,
                "the body must be empty or a JSON object {\"passphrase\": \"…\"}",
            )
        })?
    };
    let passphrase = passphrase_of(request.passphrase)?;
    let key = orgs::export_recovery_key_with(
        &state.db,
        &state.keys,
        &org_id,
        passphrase.as_ref(),
        &access.actor,
        &state.now_rfc3339(),
    )
    .await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"dbcrate-{org_id}.key\""),
            ),
        ],
        key.expose_secret().to_string(),
    )
        .into_response())
}

/// The customer passphrase switching customer-sealed mode on or off.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerSealRequest {
    /// At least 16 characters to switch on; the same passphrase to switch off.
    #[schema(value_type = String, format = Password)]
    passphrase: SecretField,
}

/// What switching customer sealing on or off answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyModeChanged {
    /// The organisation key's mode now: `customer_sealed` or `managed`.
    key_mode: &'static str,
}

/// Switches the organisation's key to customer-sealed mode: owners only, as a person,
/// with a recent second factor. From then on managed restores and recovery-key exports
/// need the passphrase, and nothing the control plane holds opens the key without it.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/customer-seal",
    operation_id = "enable_customer_seal",
    tag = "orgs",
    summary = "Customer-seal the organisation key under a passphrase only the customer holds",
    description = "Who: an owner, as a person, with a second factor checked in the last 5 \
        minutes. The private key is sealed (Argon2id + XChaCha20-Poly1305) and the plain \
        envelope copy deleted, so the database and master key no longer open it. Managed \
        restores and recovery-key exports then need the passphrase; unattended restores are \
        not possible. Audited as org.key.customer_seal.enable.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    request_body = CustomerSealRequest,
    security(("session" = [])),
    responses(
        (status = 200, description = "Sealed", body = KeyModeChanged),
        SteppedUpOwnerErrors,
        BodyErrors,
        (status = 409, description = "conflict: customer-sealed already", body = ErrorBody),
        (status = 422, description = "invalid_input: a passphrase shorter than 16 characters or longer than 1024 bytes; invalid_body", body = ErrorBody),
    )
)]
pub async fn enable_customer_seal(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<CustomerSealRequest>,
) -> ApiResult<Json<KeyModeChanged>> {
    switch_key_mode(&state, caller, &org_id, request, KeyMode::CustomerSealed).await
}

/// Switches a customer-sealed organisation key back to managed mode, given its
/// passphrase: owners only, as a person, with a recent second factor.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/customer-seal/disable",
    operation_id = "disable_customer_seal",
    tag = "orgs",
    summary = "End customer sealing: the organisation key goes back under the master key alone",
    description = "Who: an owner, as a person, with a second factor checked in the last 5 \
        minutes. Audited as org.key.customer_seal.disable.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    request_body = CustomerSealRequest,
    security(("session" = [])),
    responses(
        (status = 200, description = "Managed again", body = KeyModeChanged),
        SteppedUpOwnerErrors,
        BodyErrors,
        (status = 409, description = "conflict: not customer-sealed", body = ErrorBody),
        (status = 422, description = "customer_passphrase_invalid: not the organisation's passphrase (audited); invalid_body", body = ErrorBody),
        (status = 429, description = "throttled: too many wrong passphrases; wait 15 minutes", body = ErrorBody),
    )
)]
pub async fn disable_customer_seal(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<CustomerSealRequest>,
) -> ApiResult<Json<KeyModeChanged>> {
    switch_key_mode(&state, caller, &org_id, request, KeyMode::Managed).await
}

/// Puts the organisation key into mode `to` with the customer's passphrase: both ways
/// need a stepped-up owner, and only the domain call differs.
async fn switch_key_mode(
    state: &AppState,
    caller: Caller,
    org_id: &str,
    request: CustomerSealRequest,
    to: KeyMode,
) -> ApiResult<Json<KeyModeChanged>> {
    let what = match to {
        KeyMode::CustomerSealed => "customer-sealing the organisation key",
        KeyMode::Managed => "ending customer sealing of the organisation key",
    };
    let access = stepped_up_owner(state, caller, org_id, what).await?;
    let passphrase = Passphrase::new(request.passphrase.0)?;
    let (db, keys, actor, now) = (&state.db, &state.keys, &access.actor, state.now_rfc3339());
    match to {
        KeyMode::CustomerSealed => {
            orgs::enable_customer_seal(db, keys, org_id, &passphrase, actor, &now).await?
        }
        KeyMode::Managed => {
            orgs::disable_customer_seal(db, keys, org_id, &passphrase, actor, &now).await?
        }
    }
    Ok(Json(KeyModeChanged {
        key_mode: to.as_str(),
    }))
}
