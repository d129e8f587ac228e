//! `/api/v1/session`: sign in (sets the session cookie), who am I, step up with a
//! second factor, sign out.

use super::auth::{self, AnyPerson};
use super::error::ApiResult;
use super::error_doc::{BodyErrors, ErrorBody, SignedInErrors};
use super::extract::{Body, SecretField};
use super::AppState;
use crate::accounts::second_factor;
use crate::accounts::sessions::{self, Credentials};
use crate::server::ClientAddr;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/session`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretField,
    /// A TOTP or recovery code, for an account with a second factor.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    second_factor: Option<SecretField>,
}

// Fields are in alphabetical order here and in every answer of `/api/v1`: that is the
// order the `json!` answers they replaced had (a `serde_json::Map` sorts its keys), and
// the bytes of an answer are part of its contract (the API tests check the order).
/// What `POST /api/v1/session` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn {
    /// The session's CSRF token, for `X-CSRF-Token` on state-changing requests.
    csrf_token: String,
    email: String,
    /// A one-time password must be changed before anything else.
    must_change_password: bool,
    recovery_codes_left: i64,
    /// Whether a second factor is enrolled.
    second_factor: bool,
    user_id: String,
}

/// What `GET /api/v1/session` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    email: String,
    must_change_password: bool,
    recovery_codes_left: i64,
    /// Whether a second factor is enrolled.
    second_factor: bool,
    /// When this session last passed a second-factor check (Unix seconds).
    #[schema(required = true)]
    second_factor_at: Option<i64>,
    user_id: String,
}

/// What both answers say about the person.
struct Person {
    email: String,
    second_factor: bool,
    recovery_codes_left: i64,
}

async fn describe(state: &AppState, user_id: &str) -> ApiResult<Person> {
    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(state.db.pool())
        .await
        .map_err(crate::error::Error::from)?;
    Ok(Person {
        email,
        second_factor: second_factor::is_enabled(&state.db, user_id).await?,
        recovery_codes_left: second_factor::recovery_codes_left(&state.db, user_id).await?,
    })
}

/// Signs in; the answer sets the session cookie and carries the CSRF token.
#[utoipa::path(
    post,
    path = "/api/v1/session",
    operation_id = "sign_in",
    tag = "session",
    summary = "Sign in: sets the session cookie (__Host-dbcrate_session) and answers the CSRF token",
    description = "Who: anyone.",
    request_body = SignInRequest,
    security(()),
    responses(
        (status = 200, description = "Signed in", body = SignedIn,
            headers(("set-cookie" = String, description = "the session cookie"))),
        BodyErrors,
        (status = 401, description = "wrong_credentials, second_factor_required, second_factor_invalid", body = ErrorBody),
        (status = 429, description = "throttled: too many failures for the account or the address; wait", body = ErrorBody),
    )
)]
pub async fn sign_in(
    State(state): State<AppState>,
    Extension(ClientAddr(addr)): Extension<ClientAddr>,
    Body(request): Body<SignInRequest>,
) -> ApiResult<Response> {
    let now = state.now();
    let credentials = Credentials {
        email: &request.email,
        password: &request.password.0,
        second_factor: request.second_factor.as_ref().map(|c| &c.0),
    };
    let signed_in = sessions::sign_in(
        &state.db,
        &state.keys,
        &credentials,
        &addr.ip().to_string(),
        now,
    )
    .await?;
    let must_change: i64 =
        sqlx::query_scalar("SELECT must_change_password FROM users WHERE id = $1")
            .bind(&signed_in.user_id)
            .fetch_one(state.db.pool())
            .await
            .map_err(crate::error::Error::from)?;
    let person = describe(&state, &signed_in.user_id).await?;
    let body = SignedIn {
        csrf_token: sessions::csrf_token(&signed_in.token),
        email: person.email,
        must_change_password: must_change != 0,
        recovery_codes_left: person.recovery_codes_left,
        second_factor: person.second_factor,
        user_id: signed_in.user_id.clone(),
    };
    Ok((
        [(header::SET_COOKIE, auth::session_cookie(&signed_in.token))],
        Json(body),
    )
        .into_response())
}

/// The signed-in person.
#[utoipa::path(
    get,
    path = "/api/v1/session",
    operation_id = "current_session",
    tag = "session",
    summary = "The signed-in person",
    description = "Who: a person, also one with a one-time password to change.",
    security(("session" = [])),
    responses(
        (status = 200, description = "The person", body = Me),
        SignedInErrors,
    )
)]
pub async fn current(
    State(state): State<AppState>,
    AnyPerson(session): AnyPerson,
) -> ApiResult<Json<Me>> {
    let person = describe(&state, &session.user_id).await?;
    Ok(Json(Me {
        email: person.email,
        must_change_password: session.must_change_password,
        recovery_codes_left: person.recovery_codes_left,
        second_factor: person.second_factor,
        second_factor_at: session.second_factor_at,
        user_id: session.user_id,
    }))
}

/// `POST /api/v1/session/second-factor`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepUpRequest {
    /// A TOTP or recovery code.
    #[schema(value_type = String, format = Password)]
    code: SecretField,
}

/// What `POST /api/v1/session/second-factor` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SteppedUp {
    /// Now (Unix seconds).
    second_factor_at: i64,
    /// Until when operations that need a recent second factor are allowed.
    valid_until: i64,
}

/// Checks a second-factor code now, for operations that need a recent one.
#[utoipa::path(
    post,
    path = "/api/v1/session/second-factor",
    operation_id = "step_up",
    tag = "session",
    summary = "Check a second-factor code now (step-up), for operations that need one in the last 5 minutes",
    description = "Who: a person.",
    request_body = StepUpRequest,
    security(("session" = [])),
    responses(
        (status = 200, description = "Checked", body = SteppedUp),
        SignedInErrors,
        BodyErrors,
        (status = 401, description = "second_factor_invalid; not_signed_in", body = ErrorBody),
        (status = 429, description = "throttled: too many wrong codes; wait", body = ErrorBody),
    )
)]
pub async fn step_up(
    State(state): State<AppState>,
    super::auth::Person(session): super::auth::Person,
    Body(request): Body<StepUpRequest>,
) -> ApiResult<Json<SteppedUp>> {
    let now = state.now();
    sessions::step_up(&state.db, &state.keys, &session, &request.code.0, now).await?;
    Ok(Json(SteppedUp {
        second_factor_at: now,
        valid_until: now + sessions::STEP_UP_WINDOW_SECS,
    }))
}

/// What `DELETE /api/v1/session` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedOut {
    /// Always true.
    signed_out: bool,
}

/// Signs out: the session is revoked and the cookie cleared.
#[utoipa::path(
    delete,
    path = "/api/v1/session",
    operation_id = "sign_out",
    tag = "session",
    summary = "Sign out: revokes the session and clears the cookie",
    description = "Who: a person.",
    security(("session" = [])),
    responses(
        (status = 200, description = "Signed out", body = SignedOut,
            headers(("set-cookie" = String, description = "the cleared cookie"))),
        SignedInErrors,
    )
)]
pub async fn sign_out(
    State(state): State<AppState>,
    AnyPerson(session): AnyPerson,
) -> ApiResult<Response> {
    sessions::sign_out(&state.db, &session, state.now()).await?;
    Ok((
        [(header::SET_COOKIE, auth::cleared_cookie())],
        Json(SignedOut { signed_out: true }),
    )
        .into_response())
}
