//! `/api/v1/orgs…`: the organisations a caller belongs to, and the owner's
//! recovery-key export.

use super::auth::{org_access, Caller};
use super::error::{ApiError, ApiResult};
use super::extract::Path;
use super::AppState;
use crate::error::{Code, Error};
use crate::orgs;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sqlx::Row;

/// The caller's organisations with their role in each.
pub async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let rows = match &caller {
        Caller::Person(s) => {
            sqlx::query(
                "SELECT o.id, o.name, o.recipient, m.role FROM memberships m \
             JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.name",
            )
            .bind(&s.user_id)
            .fetch_all(state.db.pool())
            .await
        }
        Caller::Token(t) => {
            sqlx::query("SELECT id, name, recipient, $2 FROM orgs WHERE id = $1")
                .bind(&t.org_id)
                .bind(&t.role)
                .fetch_all(state.db.pool())
                .await
        }
    }
    .map_err(Error::from)?;
    let items = rows
        .iter()
        .map(|r| -> Result<Value, sqlx::Error> {
            Ok(json!({
                "id": r.try_get::<String, _>(0)?,
                "name": r.try_get::<String, _>(1)?,
                "recipient": r.try_get::<String, _>(2)?,
                "role": r.try_get::<String, _>(3)?,
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
    Ok(Json(json!({
        "id": org.id,
        "name": org.name,
        "recipient": org.recipient,
        "role": access.role,
    })))
}

/// The organisation's private key as an age identity file, for the owner's offline
/// recovery copy: owners only, signed in as a person, with a second factor checked in
/// the last few minutes (`POST /api/v1/session/second-factor`).
pub async fn export_recovery_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Response> {
    let access = org_access(&state, caller, &org_id, "owner").await?;
    let session = access.person()?;
    if !session.recently_stepped_up(state.now()) {
        return Err(Error::new(
            Code::RecentSecondFactorRequired,
            "exporting the recovery key needs a second factor checked in the last 5 minutes: \
             POST /api/v1/session/second-factor first (enrol one if you have none)",
        )
        .into());
    }
    let key = orgs::export_recovery_key(
        &state.db,
        &state.keys,
        &org_id,
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
