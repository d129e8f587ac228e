//! `/api/v1/account/…`: the signed-in person's own password and second factor.

use super::auth::{AnyPerson, Person};
use super::error::ApiResult;
use super::error_doc::{BodyErrors, ErrorBody, SignedInErrors};
use super::extract::{Body, SecretField};
use super::AppState;
use crate::accounts::{second_factor, users};
use crate::error::Error;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/account/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(value_type = String, format = Password)]
    current_password: SecretField,
    /// At least 12 characters.
    #[schema(value_type = String, format = Password)]
    new_password: SecretField,
}

/// What `POST /api/v1/account/password` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordChanged {
    /// Always true.
    changed: bool,
}

/// Changes the person's password (also the way out of a one-time password); their
/// other sessions end.
#[utoipa::path(
    post,
    path = "/api/v1/account/password",
    operation_id = "change_password",
    tag = "account",
    summary = "Change one's own password (ends one's other sessions)",
    description = "Who: a person, also one with a one-time password to change.",
    request_body = ChangePasswordRequest,
    security(("session" = [])),
    responses(
        (status = 200, description = "Changed", body = PasswordChanged),
        SignedInErrors,
        BodyErrors,
        (status = 401, description = "wrong_credentials: the current password is wrong; not_signed_in", body = ErrorBody),
        (status = 422, description = "invalid_input: the password policy (12+ characters); invalid_body", body = ErrorBody),
        (status = 429, description = "throttled: too many wrong passwords; wait", body = ErrorBody),
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    AnyPerson(session): AnyPerson,
    Body(request): Body<ChangePasswordRequest>,
) -> ApiResult<Json<PasswordChanged>> {
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
    Ok(Json(PasswordChanged { changed: true }))
}

/// `POST /api/v1/account/second-factor`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    #[schema(value_type = String, format = Password)]
    password: SecretField,
}

/// What `POST /api/v1/account/second-factor` answers (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingSecondFactor {
    /// What to do next.
    next: &'static str,
    /// The `otpauth://` URI, for a QR code.
    otpauth_uri: String,
    /// The TOTP seed, base32.
    secret: String,
}

/// Starts second-factor enrolment: the seed and `otpauth://` URI, shown once. The
/// password is asked again: whoever holds a stolen session must not be able to plant
/// their own authenticator on the account.
#[utoipa::path(
    post,
    path = "/api/v1/account/second-factor",
    operation_id = "begin_second_factor",
    tag = "account",
    summary = "Start TOTP enrolment (with the password again): the seed and otpauth:// URI, shown once",
    description = "Who: a person.",
    request_body = PasswordRequest,
    security(("session" = [])),
    responses(
        (status = 200, description = "Pending enrolment", body = PendingSecondFactor),
        SignedInErrors,
        BodyErrors,
        (status = 401, description = "wrong_credentials: the password is wrong; not_signed_in", body = ErrorBody),
        (status = 409, description = "conflict: a second factor is enrolled already", body = ErrorBody),
        (status = 429, description = "throttled: too many wrong passwords; wait", body = ErrorBody),
    )
)]
pub async fn begin_second_factor(
    State(state): State<AppState>,
    Person(session): Person,
    Body(request): Body<PasswordRequest>,
) -> ApiResult<Json<PendingSecondFactor>> {
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
    Ok(Json(PendingSecondFactor {
        next: "POST /api/v1/account/second-factor/confirm with a code from the app",
        otpauth_uri: enrolment.otpauth_uri.expose_secret().to_string(),
        secret: enrolment.secret.expose_secret().to_string(),
    }))
}

/// `POST /api/v1/account/second-factor/confirm` and `…/disable`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// A TOTP code (or, to disable, a recovery code).
    #[schema(value_type = String, format = Password)]
    code: SecretField,
    #[schema(value_type = String, format = Password)]
    password: SecretField,
}

/// What `POST /api/v1/account/second-factor/confirm` answers: the recovery codes, shown
/// once.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorEnabled {
    /// Always true.
    enabled: bool,
    /// Ten one-use codes for when the app is lost.
    recovery_codes: Vec<String>,
}

/// What `POST /api/v1/account/second-factor/disable` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecondFactorDisabled {
    /// Always false.
    enabled: bool,
}

/// Confirms enrolment with a code from the app (and the password again); answers the
/// recovery codes, once. Confirming is not a step-up: exporting the recovery key still
/// needs a separate second-factor check.
#[utoipa::path(
    post,
    path = "/api/v1/account/second-factor/confirm",
    operation_id = "confirm_second_factor",
    tag = "account",
    summary = "Confirm enrolment with a code from the app and the password; answers 10 recovery codes, shown once (not a step-up)",
    description = "Who: a person.",
    request_body = CodeRequest,
    security(("session" = [])),
    responses(
        (status = 200, description = "Enabled", body = SecondFactorEnabled),
        SignedInErrors,
        BodyErrors,
        (status = 401, description = "second_factor_invalid or wrong_credentials; not_signed_in", body = ErrorBody),
        (status = 429, description = "throttled: too many wrong passwords or codes; wait", body = ErrorBody),
    )
)]
pub async fn confirm_second_factor(
    State(state): State<AppState>,
    Person(session): Person,
    Body(request): Body<CodeRequest>,
) -> ApiResult<Json<SecondFactorEnabled>> {
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
    let recovery_codes = codes
        .iter()
        .map(|c| c.expose_secret().to_string())
        .collect();
    Ok(Json(SecondFactorEnabled {
        enabled: true,
        recovery_codes,
    }))
}

/// Turns the second factor off; needs the password and a current code.
#[utoipa::path(
    post,
    path = "/api/v1/account/second-factor/disable",
    operation_id = "disable_second_factor",
    tag = "account",
    summary = "Turn the second factor off (the password and a current code or a recovery code)",
    description = "Who: a person.",
    request_body = CodeRequest,
    security(("session" = [])),
    responses(
        (status = 200, description = "Disabled", body = SecondFactorDisabled),
        SignedInErrors,
        BodyErrors,
        (status = 401, description = "wrong_credentials or second_factor_invalid; not_signed_in", body = ErrorBody),
        (status = 409, description = "conflict: no second factor is enrolled", body = ErrorBody),
        (status = 429, description = "throttled: too many wrong passwords or codes; wait", body = ErrorBody),
    )
)]
pub async fn disable_second_factor(
    State(state): State<AppState>,
    Person(session): Person,
    Body(request): Body<CodeRequest>,
) -> ApiResult<Json<SecondFactorDisabled>> {
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
    Ok(Json(SecondFactorDisabled { enabled: false }))
}
