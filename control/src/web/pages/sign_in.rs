//! Signing in and out. The form posts e-mail, password and, for an account with a
//! second factor, a code from the authenticator app or a recovery code; all go to
//! `accounts::sessions::sign_in` exactly as `POST /api/v1/session` sends them (the
//! same throttle, the same audit rows). On success the answer sets the API's session
//! cookie and sends the person on (to change a one-time password first, if they have
//! one).

use crate::accounts::sessions::{self, Credentials};
use crate::error::Code;
use crate::http::auth;
use crate::http::AppState;
use crate::server::ClientAddr;
use crate::web::forms::{field, Field};
use crate::web::layout::{self, answer, error_message, notice, page};
use crate::web::session::{session_token, Visitor};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use dbcrate_core::secret::SecretString;
use maud::{html, Markup};
use serde::Deserialize;

/// What the sign-in page may be told by the page before it.
#[derive(Debug, Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    signed_out: Option<String>,
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    email: String,
    password: SecretString,
    #[serde(default)]
    code: Option<SecretString>,
}

/// The form, with `email` filled in again and a message above it.
fn sign_in_page(email: Option<&str>, message: Option<Markup>, code_needed: bool) -> Markup {
    let mut email_field = Field::new("E-mail address", "email", "email", "username");
    email_field.value = email;
    email_field.autofocus = !code_needed;
    let mut code = Field::new(
        "Code from your authenticator app, or a recovery code",
        "code",
        "text",
        "one-time-code",
    );
    code.required = code_needed;
    code.autofocus = code_needed;
    code.hint = Some(
        "Only for accounts with a second factor: the 6-digit code the app shows now, or one \
         of the recovery codes you kept (each works once).",
    );
    page(
        "Sign in",
        None,
        html! {
            @if let Some(message) = message { (message) }
            form method="post" action="/sign-in" {
                (field(email_field))
                (field(Field::new("Password", "password", "password", "current-password")))
                (field(code))
                div.actions { button type="submit" { "Sign in" } }
            }
            p.hint {
                "First sign-in: use the one-time password that "
                code { "dbcrate-control init" }
                " printed; you will choose your own next."
            }
        },
    )
}

/// `GET /sign-in`: the form, or the dashboard for someone signed in already.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Response {
    if let Some(token) = session_token(&headers) {
        if sessions::authenticate(&state.db, &token, state.now())
            .await
            .is_ok()
        {
            return Redirect::to("/").into_response();
        }
    }
    let message = query
        .signed_out
        .map(|_| notice("You are signed out. Sign in again to continue."));
    answer(StatusCode::OK, sign_in_page(None, message, false))
}

/// `POST /sign-in`.
pub async fn submit(
    State(state): State<AppState>,
    Extension(ClientAddr(addr)): Extension<ClientAddr>,
    Form(form): Form<SignInForm>,
) -> Response {
    let code = form.code.filter(|c| !c.expose_secret().trim().is_empty());
    let credentials = Credentials {
        email: &form.email,
        password: &form.password,
        second_factor: code.as_ref(),
    };
    let now = state.now();
    match sessions::sign_in(
        &state.db,
        &state.keys,
        &credentials,
        &addr.ip().to_string(),
        now,
    )
    .await
    {
        Ok(signed_in) => (
            [(header::SET_COOKIE, auth::session_cookie(&signed_in.token))],
            Redirect::to("/"),
        )
            .into_response(),
        Err(e) => {
            let code_needed = matches!(
                e.code,
                Code::SecondFactorRequired | Code::SecondFactorInvalid
            );
            let (status, message) = layout::explain(&e);
            let message = match e.code {
                Code::Throttled => "Too many failed attempts: signing in is paused for this \
                    account or from this address. Try again in 15 minutes."
                    .to_string(),
                Code::SecondFactorRequired => "This account has a second factor: enter your \
                    password again with the code from your authenticator app, or a recovery \
                    code."
                    .to_string(),
                _ => message,
            };
            let email = form.email.trim();
            answer(
                status,
                sign_in_page(
                    (!email.is_empty()).then_some(email),
                    Some(error_message(&message)),
                    code_needed,
                ),
            )
        }
    }
}

/// `POST /sign-out`: the session is revoked (audited as `auth.sign_out`) and the
/// cookie cleared.
pub async fn sign_out(State(state): State<AppState>, visitor: Visitor) -> Response {
    if let Err(e) = sessions::sign_out(&state.db, &visitor.session, state.now()).await {
        return layout::failure(&e);
    }
    (
        [(header::SET_COOKIE, auth::cleared_cookie())],
        Redirect::to("/sign-in?signed_out=1"),
    )
        .into_response()
}
