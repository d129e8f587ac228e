//! The person's own account: changing the password (forced after a one-time
//! password), and enrolling an authenticator app (TOTP) with a QR code, which ends
//! with the recovery codes shown once.
//!
//! Each step calls what the JSON API's `/api/v1/account/…` routes call, with the same
//! re-checks: the password again before a new seed is made (a stolen session must not
//! plant its own authenticator) and again with the confirming code.

use crate::accounts::{second_factor, users};
use crate::error::Error;
use crate::http::AppState;
use crate::web::forms::{field, Field};
use crate::web::layout::{self, answer, csrf_field, error_message, notice, page, Area, Nav};
use crate::web::qr;
use crate::web::session::{Person, Visitor};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use dbcrate_core::secret::SecretString;
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;
use zeroize::Zeroizing;

fn nav(visitor: &Visitor) -> Nav<'_> {
    Nav {
        email: &visitor.email,
        csrf: &visitor.csrf,
        current: Some(Area::Account),
        menu: !visitor.session.must_change_password,
    }
}

fn password_page(visitor: &Visitor, message: Option<Markup>) -> Markup {
    let mut current = Field::new(
        "Current password",
        "current_password",
        "password",
        "current-password",
    );
    current.autofocus = true;
    if visitor.session.must_change_password {
        current.label = "One-time password";
        current.hint = Some("The password you signed in with.");
    }
    let mut new = Field::new("New password", "new_password", "password", "new-password");
    new.hint = Some(
        "At least 12 characters; a few random words make a good one. Your other sessions \
         end when it changes.",
    );
    let repeat = Field::new(
        "New password again",
        "repeat_password",
        "password",
        "new-password",
    );
    page(
        if visitor.session.must_change_password {
            "Choose your password"
        } else {
            "Change your password"
        },
        Some(nav(visitor)),
        html! {
            @if visitor.session.must_change_password {
                (notice("You signed in with a one-time password. Choose your own password \
                         before anything else."))
            }
            @if let Some(message) = message { (message) }
            form method="post" action="/account/password" {
                (csrf_field(&visitor.csrf))
                (field(current))
                (field(new))
                (field(repeat))
                div.actions { button type="submit" { "Change password" } }
            }
        },
    )
}

/// `GET /account/password`.
pub async fn password_form(visitor: Visitor) -> Response {
    answer(StatusCode::OK, password_page(&visitor, None))
}

/// The password form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    current_password: SecretString,
    new_password: SecretString,
    repeat_password: SecretString,
}

/// `POST /account/password`: `accounts::users::change_password` (audited as
/// `user.password_change`; the person's other sessions end).
pub async fn change_password(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(form): Form<PasswordForm>,
) -> Response {
    if form.new_password.expose_secret() != form.repeat_password.expose_secret() {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            password_page(
                &visitor,
                Some(error_message(
                    "The two new passwords differ: type the same one twice.",
                )),
            ),
        );
    }
    let changed = users::change_password(
        &state.db,
        &state.keys,
        &visitor.session.user_id,
        &form.current_password,
        &form.new_password,
        &visitor.session.token_hash,
        state.now(),
    )
    .await;
    if let Err(e) = changed {
        let (status, message) = layout::explain(&e);
        return answer(
            status,
            password_page(&visitor, Some(error_message(&message))),
        );
    }
    Redirect::to("/account/second-factor?done=password").into_response()
}

/// Notices the second-factor page may show after a redirect.
#[derive(Debug, Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

fn start_form(visitor: &Visitor) -> Markup {
    let mut password = Field::new("Your password", "password", "password", "current-password");
    password.hint = Some("Asked again so that nobody else can add an app to your account.");
    html! {
        form method="post" action="/account/second-factor" {
            (csrf_field(&visitor.csrf))
            (field(password))
            div.actions { button type="submit" { "Start setting up" } }
        }
    }
}

fn start_page(visitor: &Visitor, message: Option<Markup>, done: Option<&str>) -> Markup {
    page(
        "Set up a second factor",
        Some(nav(visitor)),
        html! {
            @if done == Some("password") { (notice("Your password is changed.")) }
            @if let Some(message) = message { (message) }
            p {
                "With a second factor, signing in needs a 6-digit code from an authenticator \
                 app on your phone as well as your password. You will also get recovery codes \
                 for when the phone is lost."
            }
            (start_form(visitor))
            @if done == Some("password") {
                p { a href="/" { "Not now: go to the dashboard" } }
            }
        },
    )
}

/// `GET /account/second-factor`: the factor's state, or the start of enrolment.
pub async fn second_factor(
    State(state): State<AppState>,
    Person(visitor): Person,
    Query(query): Query<DoneQuery>,
) -> Response {
    let user_id = &visitor.session.user_id;
    let enabled = match second_factor::is_enabled(&state.db, user_id).await {
        Ok(on) => on,
        Err(e) => return layout::failure(&e),
    };
    if !enabled {
        return answer(
            StatusCode::OK,
            start_page(&visitor, None, query.done.as_deref()),
        );
    }
    let left = match second_factor::recovery_codes_left(&state.db, user_id).await {
        Ok(n) => n,
        Err(e) => return layout::failure(&e),
    };
    answer(
        StatusCode::OK,
        page(
            "Your account",
            Some(nav(&visitor)),
            html! {
                @if query.done.as_deref() == Some("password") {
                    (notice("Your password is changed."))
                }
                dl.facts {
                    dt { "E-mail address" } dd { (visitor.email) }
                    dt { "Second factor" } dd { "On: authenticator app (TOTP)" }
                    dt { "Recovery codes left" } dd { (left) " of " (second_factor::RECOVERY_CODE_COUNT) }
                }
                p { a href="/account/password" { "Change your password" } }
            },
        ),
    )
}

/// The form with only the password.
#[derive(Debug, Deserialize)]
pub struct PasswordOnly {
    password: SecretString,
}

/// Groups a base32 seed in fours, for typing.
fn grouped(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

fn confirm_form(visitor: &Visitor) -> Markup {
    let mut code = Field::new("Code from the app", "code", "text", "one-time-code");
    code.hint = Some("The 6 digits the app shows now.");
    let password = Field::new("Your password", "password", "password", "current-password");
    html! {
        form method="post" action="/account/second-factor/confirm" {
            (csrf_field(&visitor.csrf))
            (field(code))
            (field(password))
            div.actions { button type="submit" { "Turn on" } }
        }
    }
}

/// `POST /account/second-factor`: a new seed (`accounts::second_factor::begin`), shown
/// once as a QR code and as text.
pub async fn begin_second_factor(
    State(state): State<AppState>,
    Person(visitor): Person,
    Form(form): Form<PasswordOnly>,
) -> Response {
    let now = state.now();
    let user_id = &visitor.session.user_id;
    let begun: Result<_, Error> = async {
        users::confirm_password(&state.db, &state.keys, user_id, &form.password, now).await?;
        second_factor::begin(&state.db, &state.keys, user_id, &visitor.email, now).await
    }
    .await;
    let enrolment = match begun {
        Ok(enrolment) => enrolment,
        Err(e) => {
            let (status, message) = layout::explain(&e);
            return answer(
                status,
                start_page(&visitor, Some(error_message(&message)), None),
            );
        }
    };
    let svg = match qr::svg(&enrolment.otpauth_uri) {
        Ok(svg) => svg,
        Err(e) => return layout::failure(&e),
    };
    let secret = Zeroizing::new(grouped(enrolment.secret.expose_secret()));
    answer(
        StatusCode::OK,
        page(
            "Scan the code with your authenticator app",
            Some(nav(&visitor)),
            html! {
                ol {
                    li {
                        p { "Scan this QR code with an authenticator app (for example one that supports TOTP)." }
                        div.qr role="img" aria-label="QR code holding your new second-factor key" {
                            (PreEscaped(svg.as_str()))
                        }
                    }
                    li {
                        p { "Or type this key into the app:" }
                        code.secret { (secret.as_str()) }
                    }
                    li {
                        p { "Enter the code the app shows, with your password, to turn it on." }
                        (confirm_form(&visitor))
                    }
                }
                p.hint { "This key is shown only on this page. If you leave, start again." }
            },
        ),
    )
}

/// The confirming form.
#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    code: SecretString,
    password: SecretString,
}

/// `POST /account/second-factor/confirm`: `accounts::second_factor::confirm` (audited as
/// `user.second_factor.enrol`); the recovery codes are shown once, on this answer only.
pub async fn confirm_second_factor(
    State(state): State<AppState>,
    Person(visitor): Person,
    Form(form): Form<ConfirmForm>,
) -> Response {
    let now = state.now();
    let user_id = &visitor.session.user_id;
    let confirmed = async {
        users::confirm_password(&state.db, &state.keys, user_id, &form.password, now).await?;
        second_factor::confirm(
            &state.db,
            &state.keys,
            user_id,
            form.code.expose_secret().trim(),
            now,
        )
        .await
    }
    .await;
    let codes = match confirmed {
        Ok(codes) => codes,
        Err(e) => {
            let (status, message) = layout::explain(&e);
            return answer(
                status,
                page(
                    "Turn on the second factor",
                    Some(nav(&visitor)),
                    html! {
                        (error_message(&message))
                        (confirm_form(&visitor))
                        h2 { "Start again" }
                        p { "If the app has no entry for this account, make a new key." }
                        (start_form(&visitor))
                    },
                ),
            );
        }
    };
    answer(
        StatusCode::OK,
        page(
            "Save your recovery codes",
            Some(nav(&visitor)),
            html! {
                (notice("The second factor is on. From now on, signing in needs a code from the app."))
                p {
                    "If you lose the phone, each of these codes signs you in once instead of a \
                     code from the app. They are shown only now: write them down or keep them \
                     in a password manager."
                }
                ol.codes {
                    @for code in &codes { li { code { (code.expose_secret()) } } }
                }
                div.actions { a.button href="/" { "I have saved them: continue" } }
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::grouped;

    #[test]
    fn a_seed_is_grouped_in_fours() {
        assert_eq!(grouped("ABCDEFGHIJ"), "ABCD EFGH IJ");
        assert_eq!(grouped(""), "");
    }
}
