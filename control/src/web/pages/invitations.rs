//! Accepting an invitation in the browser: the person pastes the token their inviter
//! gave them. Signed in, they join as that account (`accounts::invitations::accept`,
//! refused for an account with another address); signed out, they choose a password,
//! which creates their account and joins (`accounts::invitations::create_account`,
//! refused when the address has an account: they sign in first). The same domain
//! calls, checks and audit rows as `POST /api/v1/invitations/accept` and
//! `…/create-account`. The token is a secret: it is never put back into a form.

use crate::accounts::invitations::{self, Accepted};
use crate::error::Code;
use crate::http::AppState;
use crate::orgs;
use crate::web::forms::{field, Field};
use crate::web::layout::{self, answer, csrf_field, error_message, notice, page, Area, Nav};
use crate::web::session::{session_token, Person, Visitor};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use dbcrate_core::secret::SecretString;
use maud::{html, Markup};
use serde::Deserialize;

/// Where invitations are accepted; the inviter's page names it.
pub const ACCEPT_PATH: &str = "/invitations/accept";

/// The form: the token, and for a new account its password twice.
#[derive(Debug, Deserialize)]
pub struct AcceptForm {
    token: SecretString,
    #[serde(default)]
    new_password: Option<SecretString>,
    #[serde(default)]
    repeat_password: Option<SecretString>,
}

fn token_field() -> Markup {
    let mut token = Field::new("Invitation token", "token", "password", "off");
    token.hint = Some("The dbci_… token your inviter gave you. It works once.");
    token.autofocus = true;
    field(token)
}

/// The page for someone signed in: they join as themselves.
fn signed_in_page(visitor: &Visitor, message: Option<Markup>) -> Markup {
    let nav = Nav {
        email: &visitor.email,
        csrf: &visitor.csrf,
        current: Some(Area::Organisations),
        menu: true,
    };
    page(
        "Accept an invitation",
        Some(nav),
        html! {
            @if let Some(message) = message { (message) }
            p {
                "You join as " strong { (visitor.email) } ". An invitation for another \
                 address is refused: sign out and accept it as that person."
            }
            form method="post" action=(ACCEPT_PATH) {
                (csrf_field(&visitor.csrf))
                (token_field())
                div.actions { button type="submit" { "Accept and join" } }
            }
        },
    )
}

/// The page for someone signed out: a new account with a password of their own.
fn signed_out_page(message: Option<Markup>) -> Markup {
    let mut new_password = Field::new(
        "Choose a password",
        "new_password",
        "password",
        "new-password",
    );
    new_password.hint = Some("At least 12 characters; a passphrase of several words is best.");
    page(
        "Accept an invitation",
        None,
        html! {
            @if let Some(message) = message { (message) }
            p {
                "Already have an account with the invited address? "
                a href="/sign-in" { "Sign in" }
                " first, then open this page again from your organisations page."
            }
            form method="post" action=(ACCEPT_PATH) {
                (token_field())
                (field(new_password))
                (field(Field::new("Repeat the password", "repeat_password", "password", "new-password")))
                div.actions { button type="submit" { "Create my account and join" } }
            }
        },
    )
}

/// Who is asking.
enum Asker {
    /// A signed-in person with a password of their own.
    SignedIn(Visitor),
    /// Nobody signed in.
    SignedOut,
    /// An answer to give instead: a session that must change its one-time password
    /// first, or one that has ended.
    Sent(Response),
}

fn who(headers: &HeaderMap, person: Result<Person, Response>) -> Asker {
    match person {
        Ok(Person(visitor)) => Asker::SignedIn(visitor),
        Err(_) if session_token(headers).is_none() => Asker::SignedOut,
        Err(elsewhere) => Asker::Sent(elsewhere),
    }
}

/// `GET /invitations/accept`.
pub async fn show(headers: HeaderMap, person: Result<Person, Response>) -> Response {
    match who(&headers, person) {
        Asker::SignedIn(visitor) => answer(StatusCode::OK, signed_in_page(&visitor, None)),
        Asker::SignedOut => answer(StatusCode::OK, signed_out_page(None)),
        Asker::Sent(elsewhere) => elsewhere,
    }
}

/// What joining looks like: the organisation, the role, and the way in.
async fn joined(state: &AppState, accepted: &Accepted, nav: Option<Nav<'_>>) -> Response {
    let org = match orgs::get(&state.db, &accepted.org_id).await {
        Ok(Some(org)) => org.name,
        Ok(None) => return layout::not_found(),
        Err(e) => return layout::failure(&e),
    };
    let signed_in = nav.is_some();
    answer(
        StatusCode::OK,
        page(
            &format!("You joined {org}"),
            nav,
            html! {
                (notice(&format!("You are now {} of {org}.", with_article(&accepted.role.to_string()))))
                @if signed_in {
                    p { a href=(format!("/orgs/{}", accepted.org_id)) { "Open " (org) } }
                } @else {
                    p { "Your account is created. " a href="/sign-in" { "Sign in" } " with your e-mail address and the password you chose." }
                }
            },
        ),
    )
}

fn with_article(role: &str) -> String {
    let article = if role.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {role}")
}

/// `POST /invitations/accept`.
pub async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    person: Result<Person, Response>,
    Form(form): Form<AcceptForm>,
) -> Response {
    let now = state.now();
    let visitor = match who(&headers, person) {
        Asker::SignedIn(visitor) => visitor,
        Asker::SignedOut => return create_account(&state, form, now).await,
        Asker::Sent(elsewhere) => return elsewhere,
    };
    match invitations::accept(&state.db, &form.token, &visitor.session.user_id, now).await {
        Ok(accepted) => {
            let nav = Nav {
                email: &visitor.email,
                csrf: &visitor.csrf,
                current: Some(Area::Organisations),
                menu: true,
            };
            joined(&state, &accepted, Some(nav)).await
        }
        Err(e) => {
            let (status, message) = layout::explain(&e);
            answer(
                status,
                signed_in_page(&visitor, Some(error_message(&message))),
            )
        }
    }
}

async fn create_account(state: &AppState, form: AcceptForm, now: i64) -> Response {
    let refused =
        |status, message: &str| answer(status, signed_out_page(Some(error_message(message))));
    let (Some(new), Some(repeat)) = (&form.new_password, &form.repeat_password) else {
        return refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Choose a password and repeat it: your account is created with it.",
        );
    };
    if new.expose_secret() != repeat.expose_secret() {
        return refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "The two passwords differ: type the same password twice. Nothing was changed.",
        );
    }
    match invitations::create_account(&state.db, &form.token, new, now).await {
        Ok(accepted) => joined(state, &accepted, None).await,
        // The domain's words point API clients to the API; a person is pointed here.
        Err(e) if e.code == Code::Conflict => refused(
            StatusCode::CONFLICT,
            "An account with the invited address exists already: sign in as it, then open \
             this page again to accept. Nothing was changed.",
        ),
        Err(e) => {
            let (status, message) = layout::explain(&e);
            refused(status, &message)
        }
    }
}
