//! `/api/v1/account/…`: the signed-in person's own password and second factor.

use super::auth::{AnyPerson, Person};
use super::error::ApiResult;
use super::extract::{Body, SecretField};
use super::AppState;
use crate::accounts::{second_factor, users};
use crate::error::Error;
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
        &state.keys,
        &session.user_id,
        &request.current_password.0,
        &request.new_password.0,
        &session.token_hash,
        state.now(),
    )
    .await?;
    Ok(Json(json!({ "changed": true })))
}

/// `POST /api/v1/account/second-factor`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    password: SecretField,
}

/// Starts second-factor enrolment: the seed and `otpauth://` URI, shown once. The
/// password is asked again: whoever holds a stolen session must not be able to plant
/// their own authenticator on the account.
pub async fn begin_second_factor(
    State(state): State<AppState>,
    Person(session): Person,
    Body(request): Body<PasswordRequest>,
) -> ApiResult<Json<Value>> {
    users::confirm_password(
        &state.db,
        &state.keys,
        &session.user_id,
        &request.password.0,
        state.now(),
    )
    .await?;
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
    password: SecretField,
}

/// Confirms enrolment with a code from the app (and the password again); answers the
/// recovery codes, once. Confirming is not a step-up: exporting the recovery key still
/// needs a separate second-factor check.
pub async fn confirm_second_factor(
    State(state): State<AppState>,
    Person(session): Person,
    Body(request): Body<CodeRequest>,
) -> ApiResult<Json<Value>> {
    let now = state.now();
    users::confirm_password(
        &state.db,
        &state.keys,
        &session.user_id,
        &request.password.0,
        now,
    )
    .await?;
    let codes = second_factor::confirm(
        &state.db,
        &state.keys,
        &session.user_id,
        request.code.0.expose_secret(),
        now,
    )
    .await?;
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
    let password = request.password;
    users::confirm_password(&state.db, &state.keys, &session.user_id, &password.0, now).await?;
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
