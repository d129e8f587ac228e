//! Who is calling, and what they may do in an organisation.
//!
//! Two kinds of caller: a person with a session cookie, or a program with an API token
//! (`Authorization: Bearer dbct_…`). Browsers send cookies by themselves, so every
//! state-changing request that authenticates by cookie must also carry the session's
//! CSRF token in `X-CSRF-Token` (the cookie is also `SameSite=Strict`; the header is the
//! defence that does not depend on the browser). Bearer tokens are never sent
//! automatically, so they need no CSRF token.
//!
//! Authorisation for `/orgs/{org}/…` routes goes through [`org_access`]: no membership
//! (or a token of another organisation) is answered exactly like a missing
//! organisation, 404; a member whose role is too low gets 403.

use super::error::{ApiError, ApiResult};
use super::AppState;
use crate::accounts::api_tokens::{self, TokenCaller};
use crate::accounts::members;
use crate::accounts::roles;
use crate::accounts::roles::Role;
use crate::accounts::sessions::{self, Session};
use crate::error::{is_id, Code, Error};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method};
use dbcrate_core::secret::{same_bytes, SecretString};

/// The session cookie's name. `__Host-` makes browsers insist on Secure, Path=/ and no
/// Domain, so no other host can plant or read it.
pub const SESSION_COOKIE: &str = "__Host-dbcrate_session";
/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(token: &SecretString) -> String {
    format!(
        "{SESSION_COOKIE}={}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        token.expose_secret(),
        sessions::ABSOLUTE_LIFETIME_SECS
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// A signed-in caller.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A person, by session cookie.
    Person(Session),
    /// A program, by API token.
    Token(TokenCaller),
}

impl Caller {
    /// The name recorded in audit rows.
    pub fn actor(&self) -> String {
        match self {
            Self::Person(s) => format!("user:{}", s.user_id),
            Self::Token(t) => format!("api_token:{}", t.id),
        }
    }
}

fn bearer(parts: &Parts) -> Option<SecretString> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?.trim();
    Some(SecretString::new(token.to_string()))
}

/// The session token in a request's cookie, if any (the API and the dashboard read the
/// same cookie).
pub fn session_token(headers: &HeaderMap) -> Option<SecretString> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| SecretString::new(value.to_string()))
}

fn check_csrf(parts: &Parts, token: &SecretString) -> ApiResult<()> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let expected = sessions::csrf_token(token);
    let given = parts
        .headers
        .get(CSRF_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if same_bytes(given, expected.as_bytes()) {
        return Ok(());
    }
    Err(Error::new(
        Code::CsrfTokenInvalid,
        "state-changing requests need the session's CSRF token in the X-CSRF-Token header",
    )
    .into())
}

/// Authenticates without the one-time-password rule (for the routes a person with a
/// one-time password may still use).
async fn authenticate(parts: &Parts, state: &AppState) -> ApiResult<Caller> {
    let now = state.now();
    if let Some(token) = bearer(parts) {
        let caller = api_tokens::authenticate(&state.db, &token, now).await?;
        return Ok(Caller::Token(caller));
    }
    let Some(token) = session_token(&parts.headers) else {
        return Err(Error::new(
            Code::NotSignedIn,
            "sign in first (POST /api/v1/session), or send an API token",
        )
        .into());
    };
    let session = sessions::authenticate(&state.db, &token, now).await?;
    check_csrf(parts, &token)?;
    Ok(Caller::Person(session))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let caller = authenticate(parts, state).await?;
        if let Caller::Person(session) = &caller {
            if session.must_change_password {
                return Err(Error::new(
                    Code::PasswordChangeRequired,
                    "change the one-time password first (POST /api/v1/account/password)",
                )
                .into());
            }
        }
        Ok(caller)
    }
}

/// A person (not a token), who may still have a one-time password to change.
#[derive(Debug, Clone)]
pub struct AnyPerson(pub Session);

impl FromRequestParts<AppState> for AnyPerson {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        match authenticate(parts, state).await? {
            Caller::Person(session) => Ok(Self(session)),
            Caller::Token(_) => Err(person_needed()),
        }
    }
}

/// A person (not a token) whose password is set.
#[derive(Debug, Clone)]
pub struct Person(pub Session);

impl FromRequestParts<AppState> for Person {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Person(session) => Ok(Self(session)),
            Caller::Token(_) => Err(person_needed()),
        }
    }
}

fn person_needed() -> ApiError {
    Error::new(
        Code::Forbidden,
        "this needs a person signed in with a session, not an API token",
    )
    .into()
}

/// A caller's standing in one organisation.
#[derive(Debug, Clone)]
pub struct Access {
    /// The organisation.
    pub org_id: String,
    /// The caller's role there.
    pub role: Role,
    /// The audit actor.
    pub actor: String,
    /// The person's user id (none for tokens).
    pub user_id: Option<String>,
    /// The caller.
    pub caller: Caller,
}

impl Access {
    /// The actor as the members module wants it.
    pub fn as_actor(&self) -> roles::Actor<'_> {
        roles::Actor {
            name: &self.actor,
            user_id: self.user_id.as_deref(),
            role: self.role,
        }
    }

    /// The session, when a person calls; tokens are refused.
    pub fn person(&self) -> ApiResult<&Session> {
        match &self.caller {
            Caller::Person(s) => Ok(s),
            Caller::Token(_) => Err(person_needed()),
        }
    }
}

/// Checks that `caller` belongs to `org_id` with at least `min_role`. Not a member (or
/// a malformed id) is 404; a member below `min_role` is 403.
pub async fn org_access(
    state: &AppState,
    caller: Caller,
    org_id: &str,
    min_role: Role,
) -> ApiResult<Access> {
    known_id(org_id, "org")?;
    let (role, user_id) = match &caller {
        Caller::Token(t) if t.org_id == org_id => (t.role, None),
        Caller::Token(_) => return Err(ApiError::not_found()),
        Caller::Person(s) => match members::role_of(&state.db, org_id, &s.user_id).await? {
            Some(role) => (role, Some(s.user_id.clone())),
            None => return Err(ApiError::not_found()),
        },
    };
    if role < min_role {
        return Err(Error::new(
            Code::Forbidden,
            format!("this needs the {min_role} role or higher; you are {role}"),
        )
        .into());
    }
    Ok(Access {
        org_id: org_id.to_string(),
        role,
        actor: caller.actor(),
        user_id,
        caller,
    })
}

/// [`org_access`] for a person only, for what a token may not do (mint tokens, invite,
/// change members).
pub async fn person_access(
    state: &AppState,
    caller: Caller,
    org_id: &str,
    min_role: Role,
) -> ApiResult<Access> {
    let access = org_access(state, caller, org_id, min_role).await?;
    access.person()?;
    Ok(access)
}

/// Checks that `id` from a path has the shape of an id with `prefix`: a malformed one is
/// answered like a missing object, without a database query.
pub fn known_id(id: &str, prefix: &str) -> ApiResult<()> {
    if is_id(id, prefix) {
        Ok(())
    } else {
        Err(ApiError::not_found())
    }
}
