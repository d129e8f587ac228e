//! `/api/v1/session`: sign in (sets the session cookie), who am I, step up with a
//! second factor, sign out.

use super::auth::{self, AnyPerson};
use super::error::ApiResult;
use super::extract::{Body, SecretField};
use super::AppState;
use crate::accounts::second_factor;
use crate::accounts::sessions::{self, Credentials};
use crate::server::ClientAddr;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

/// `POST /api/v1/session`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    email: String,
    password: SecretField,
    #[serde(default)]
    second_factor: Option<SecretField>,
}

async fn describe(state: &AppState, user_id: &str) -> ApiResult<Value> {
    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_one(state.db.pool())
        .await
        .map_err(crate::error::Error::from)?;
    Ok(json!({
        "user_id": user_id,
        "email": email,
        "second_factor": second_factor::is_enabled(&state.db, user_id).await?,
        "recovery_codes_left": second_factor::recovery_codes_left(&state.db, user_id).await?,
    }))
}

/// Signs in; the answer sets the session cookie and carries the CSRF token.
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
    let mut body = describe(&state, &signed_in.user_id).await?;
    body["csrf_token"] = json!(sessions::csrf_token(&signed_in.token));
    body["must_change_password"] = json!(must_change != 0);
    Ok((
        [(header::SET_COOKIE, auth::session_cookie(&signed_in.token))],
        Json(body),
    )
        .into_response())
}

/// The signed-in person.
pub async fn current(
    State(state): State<AppState>,
    AnyPerson(session): AnyPerson,
) -> ApiResult<Json<Value>> {
    let mut body = describe(&state, &session.user_id).await?;
    body["must_change_password"] = json!(session.must_change_password);
    body["second_factor_at"] = json!(session.second_factor_at);
    Ok(Json(body))
}

/// `POST /api/v1/session/second-factor`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepUpRequest {
    code: SecretField,
}

/// Checks a second-factor code now, for operations that need a recent one.
pub async fn step_up(
    State(state): State<AppState>,
    super::auth::Person(session): super::auth::Person,
    Body(request): Body<StepUpRequest>,
) -> ApiResult<Json<Value>> {
    let now = state.now();
    sessions::step_up(&state.db, &state.keys, &session, &request.code.0, now).await?;
    Ok(Json(json!({
        "second_factor_at": now,
        "valid_until": now + sessions::STEP_UP_WINDOW_SECS,
    })))
}

/// Signs out: the session is revoked and the cookie cleared.
pub async fn sign_out(
    State(state): State<AppState>,
    AnyPerson(session): AnyPerson,
) -> ApiResult<Response> {
    sessions::sign_out(&state.db, &session, state.now()).await?;
    Ok((
        [(header::SET_COOKIE, auth::cleared_cookie())],
        Json(json!({ "signed_out": true })),
    )
        .into_response())
}
