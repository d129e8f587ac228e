//! Who is looking at a page: the session cookie the API sets (`__Host-…`, HttpOnly,
//! Secure, SameSite=Strict), checked by `accounts::sessions::authenticate` like every
//! API call. A page for signed-in people sends anyone else to the sign-in page; a person
//! who still has the one-time password from `init` (or a reset) is sent to change it
//! first, as the API refuses them everything else.

use crate::accounts::sessions::{self, Session};
pub use crate::http::auth::session_token;
use crate::http::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};

/// Where people sign in.
pub const SIGN_IN_PATH: &str = "/sign-in";
/// Where a one-time password is changed.
pub const PASSWORD_PATH: &str = "/account/password";

/// A signed-in person, who may still have to change a one-time password.
#[derive(Debug, Clone)]
pub struct Visitor {
    /// Their live session.
    pub session: Session,
    /// The CSRF token every form of theirs carries.
    pub csrf: String,
    /// Their e-mail address, for the page header.
    pub email: String,
}

async fn visitor(parts: &Parts, state: &AppState) -> Result<Visitor, Response> {
    let to_sign_in = || Redirect::to(SIGN_IN_PATH).into_response();
    let Some(token) = session_token(&parts.headers) else {
        return Err(to_sign_in());
    };
    let session = match sessions::authenticate(&state.db, &token, state.now()).await {
        Ok(session) => session,
        Err(e) if e.code == crate::error::Code::NotSignedIn => return Err(to_sign_in()),
        Err(e) => return Err(super::layout::failure(&e)),
    };
    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(&session.user_id)
        .fetch_one(state.db.pool())
        .await
        .map_err(|e| super::layout::failure(&crate::error::Error::from(e)))?;
    Ok(Visitor {
        csrf: sessions::csrf_token(&token),
        session,
        email,
    })
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        visitor(parts, state).await
    }
}

/// A signed-in person whose password is their own (no one-time password left).
#[derive(Debug, Clone)]
pub struct Person(pub Visitor);

impl FromRequestParts<AppState> for Person {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let visitor = visitor(parts, state).await?;
        if visitor.session.must_change_password {
            return Err(Redirect::to(PASSWORD_PATH).into_response());
        }
        Ok(Self(visitor))
    }
}
