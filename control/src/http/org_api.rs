//! `/api/v1/orgs…`: the organisations a caller belongs to, the owner's recovery-key
//! export, and switching the organisation's key to customer-sealed mode and back.

use super::auth::{org_access, Access, Caller};
use super::error::{ApiError, ApiResult};
use super::extract::{Body, Path, SecretField};
use super::AppState;
use crate::error::{Code, Error};
use crate::orgs;
use crate::secrets::customer_seal::Passphrase;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sqlx::Row;

/// The caller's organisations with their role in each.
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
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
        .map(|r| -> Result<Value, sqlx::Error> {
            Ok(json!({
                "id": r.try_get::<String, _>("id")?,
                "name": r.try_get::<String, _>("name")?,
                "recipient": r.try_get::<String, _>("recipient")?,
                "role": r.try_get::<String, _>("role")?,
                "key_mode": r.try_get::<String, _>("key_mode")?,
            }))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::from)?;
    Ok(Json(json!({ "items": items })))
}

/// One organisation (any member).
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let access = org_access(&state, caller, &org_id, "viewer").await?;
    let org = orgs::get(&state.db, &org_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mode = orgs::key_mode(&state.db, &org_id).await?;
    Ok(Json(json!({
        "id": org.id,
        "name": org.name,
        "recipient": org.recipient,
        "role": access.role,
        "key_mode": mode.as_str(),
    })))
}

/// An owner, signed in as a person, with a second factor checked in the last few
/// minutes (`POST /api/v1/session/second-factor`); `what` names the operation.
async fn stepped_up_owner(
    state: &AppState,
    caller: Caller,
    org_id: &str,
    what: &str,
) -> ApiResult<Access> {
    let access = org_access(state, caller, org_id, "owner").await?;
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
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// The customer passphrase, for a customer-sealed organisation key.
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
                "invalid_body",
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
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerSealRequest {
    /// At least 16 characters to switch on; the same passphrase to switch off.
    passphrase: SecretField,
}

/// Switches the organisation's key to customer-sealed mode: owners only, as a person,
/// with a recent second factor. From then on managed restores and recovery-key exports
/// need the passphrase, and nothing the control plane holds opens the key without it.
pub async fn enable_customer_seal(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<CustomerSealRequest>,
) -> ApiResult<Json<Value>> {
    let access = stepped_up_owner(
        &state,
        caller,
        &org_id,
        "customer-sealing the organisation key",
    )
    .await?;
    let passphrase = Passphrase::new(request.passphrase.0)?;
    orgs::enable_customer_seal(
        &state.db,
        &state.keys,
        &org_id,
        &passphrase,
        &access.actor,
        &state.now_rfc3339(),
    )
    .await?;
    Ok(Json(
        json!({ "key_mode": orgs::KeyMode::CustomerSealed.as_str() }),
    ))
}

/// Switches a customer-sealed organisation key back to managed mode, given its
/// passphrase: owners only, as a person, with a recent second factor.
pub async fn disable_customer_seal(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<CustomerSealRequest>,
) -> ApiResult<Json<Value>> {
    let access = stepped_up_owner(
        &state,
        caller,
        &org_id,
        "ending customer sealing of the organisation key",
    )
    .await?;
    let passphrase = Passphrase::new(request.passphrase.0)?;
    orgs::disable_customer_seal(
        &state.db,
        &state.keys,
        &org_id,
        &passphrase,
        &access.actor,
        &state.now_rfc3339(),
    )
    .await?;
    Ok(Json(json!({ "key_mode": orgs::KeyMode::Managed.as_str() })))
}
