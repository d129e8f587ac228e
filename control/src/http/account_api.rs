//! `/api/v1/account/…`: the signed-in person's own password and second factor.

use super::auth::{AnyPerson, Person};
use super::error::ApiResult;
use super::extract::{Body, SecretField};
use super::AppState;
use crate::error::Error;
use crate::{second_factor, users};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

/// `POST /api/v1/account/password`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    current_password: SecretField,
    new_password: SecretField,
}

/// Changes the person's password (also the way out of a one-time password); their
/// other sessions end.
pub async fn change_password(
    State(state): State<AppState>,
    AnyPerson(session): AnyPerson,
    Body(request): Body<ChangePasswordRequest>,
) -> ApiResult<Json<Value>> {
    users::change_password(
        &state.db,
        &session.user_id,
        &request.current_password.0,
        &request.new_password.0,
        &session.token_hash,
        state.now(),
    )
    .await?;
    Ok(Json(json!({ "changed": true })))
}

/// Starts second-factor enrolment: the seed and `otpauth://` URI, shown once.
pub async fn begin_second_factor(
    State(state): State<AppState>,
    Person(session): Person,
) -> ApiResult<Json<Value>> {
    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(&session.user_id)
        .fetch_one(state.db.pool())
        .await
        .map_err(Error::from)?;
    let enrolment = second_factor::begin(
        &state.db,
        &state.keys,
        &session.user_id,
        &email,
        state.now(),
    )
    .await?;
    Ok(Json(json!({
        "secret": enrolment.secret.expose_secret(),
        "otpauth_uri": enrolment.otpauth_uri.expose_secret(),
        "next": "POST /api/v1/account/second-factor/confirm with a code from the app",
    })))
}

/// `POST /api/v1/account/second-factor/confirm` and `…/disable`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    code: SecretField,
    #[serde(default)]
    password: Option<SecretField>,
}

/// Confirms enrolment with a code from the app; answers the recovery codes, once.
pub async fn confirm_second_factor(
    State(state): State<AppState>,
    Person(session): Person,
    Body(request): Body<CodeRequest>,
) -> ApiResult<Json<Value>> {
    let now = state.now();
    let codes = second_factor::confirm(
        &state.db,
        &state.keys,
        &session.user_id,
        request.code.0.expose_secret(),
        now,
    )
    .await?;
    sqlx::query("UPDATE sessions SET second_factor_at = $1 WHERE token_hash = $2")
        .bind(now)
        .bind(&session.token_hash)
        .execute(state.db.pool())
        .await
        .map_err(Error::from)?;
    let codes: Vec<&str> = codes.iter().map(|c| c.expose_secret()).collect();
    Ok(Json(json!({ "enabled": true, "recovery_codes": codes })))
}

/// Turns the second factor off; needs the password and a current code.
pub async fn disable_second_factor(
    State(state): State<AppState>,
    Person(session): Person,
    Body(request): Body<CodeRequest>,
) -> ApiResult<Json<Value>> {
    let now = state.now();
    let Some(password) = request.password else {
        return Err(
            Error::invalid("give password as well as code to turn the second factor off").into(),
        );
    };
    users::confirm_password(&state.db, &session.user_id, &password.0, now).await?;
    if !second_factor::is_enabled(&state.db, &session.user_id).await? {
        return Err(Error::conflict("there is no second factor to turn off").into());
    }
    second_factor::check(
        &state.db,
        &state.keys,
        &session.user_id,
        &request.code.0,
        now,
    )
    .await?;
    second_factor::disable(&state.db, &session.user_id, now).await?;
    Ok(Json(json!({ "enabled": false })))
}
