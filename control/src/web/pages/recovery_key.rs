//! Flow 9, the recovery key: what the organisation's private key is, who holds it and
//! what losing it means, in plain words; and its download as the `AGE-SECRET-KEY-1…`
//! identity file stock `age` reads. Owners only, signed in as a person, with a second
//! factor checked in the last five minutes — the form asks for a code from the
//! authenticator app when it was longer ago (`accounts::sessions::step_up`, throttled),
//! and for the passphrase when the key is customer-sealed. The export is
//! `orgs::export_recovery_key_with`, as `POST /api/v1/orgs/{org}/recovery-key`, and is
//! audited.

use super::org::{self, Member, OrgPage};
use crate::accounts::roles::Role;
use crate::accounts::{second_factor, sessions};
use crate::error::Error;
use crate::http::AppState;
use crate::orgs::{self, KeyMode};
use crate::secrets::customer_seal::Passphrase;
use crate::web::forms::{field, Field};
use crate::web::layout::{self, answer, csrf_field, error_message, page};
use crate::web::session::Visitor;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use dbcrate_core::secret::SecretString;
use maud::{html, Markup};
use serde::Deserialize;

/// The download form.
#[derive(Debug, Default, Deserialize)]
pub struct ExportForm {
    #[serde(default)]
    code: Option<SecretString>,
    #[serde(default)]
    passphrase: Option<SecretString>,
}

/// What the page needs to know about the person and the key.
struct Standing {
    member: Member,
    has_second_factor: bool,
    stepped_up: bool,
    sealed: bool,
}

async fn standing(
    state: &AppState,
    visitor: &Visitor,
    member: Member,
) -> Result<Standing, Response> {
    if let Some(refused) = member.refused_below(Role::Owner) {
        return Err(refused);
    }
    let failed = |e: Error| layout::failure(&e);
    let has_second_factor = second_factor::is_enabled(&state.db, &visitor.session.user_id)
        .await
        .map_err(failed)?;
    let sealed = orgs::key_mode(&state.db, &member.org_id)
        .await
        .map_err(failed)?
        == KeyMode::CustomerSealed;
    Ok(Standing {
        member,
        has_second_factor,
        stepped_up: visitor.session.recently_stepped_up(state.now()),
        sealed,
    })
}

fn custody(s: &Standing) -> Markup {
    html! {
        p {
            "Every backup of " strong { (s.member.org_name) } " is encrypted to one public key. \
             Its private key — this file — is what decrypts them. With it, your bucket and the \
             stock tools (age, zstd, pg_restore) you can restore any backup without dbcrate, \
             even if this control plane is gone."
        }
        p {
            "Keep it offline and away from the backups themselves: a password manager, or \
             printed and locked away. Anyone who has it and your storage can read every \
             backup. If it is lost and this control plane is lost too, the backups cannot be \
             decrypted by anyone — there is no other copy and no way around it."
        }
        p {
            @if s.sealed {
                "This control plane holds the key sealed with your organisation's passphrase: \
                 it cannot open it without you."
            } @else {
                "This control plane also holds the key, encrypted under its master key, to run \
                 managed restores."
            }
            " Each download is recorded in the audit log."
        }
    }
}

fn export_form(s: &Standing, visitor: &Visitor) -> Markup {
    if !s.has_second_factor {
        return html! {
            (error_message("Downloading the recovery key needs a second factor, and your account has none."))
            p { a href="/account/second-factor" { "Set up an authenticator app" } }
        };
    }
    let mut code = Field::new(
        "Code from your authenticator app",
        "code",
        "text",
        "one-time-code",
    );
    code.hint = Some("Asked again because your last one was more than five minutes ago.");
    let mut passphrase = Field::new(
        "The organisation's passphrase",
        "passphrase",
        "password",
        "off",
    );
    passphrase.hint = Some("The key is sealed with it.");
    html! {
        form method="post" action=(s.member.path("recovery-key")) {
            (csrf_field(&visitor.csrf))
            @if !s.stepped_up { (field(code)) }
            @if s.sealed { (field(passphrase)) }
            div.actions { button type="submit" { "Download the recovery key" } }
        }
    }
}

fn key_page(s: &Standing, visitor: &Visitor, message: Option<Markup>) -> Markup {
    page(
        "Recovery key",
        Some(org::nav(visitor)),
        html! {
            (org::org_nav(&s.member, "recovery-key"))
            @if let Some(message) = message { (message) }
            (custody(s))
            (export_form(s, visitor))
        },
    )
}

/// `GET /orgs/{org}/recovery-key`.
pub async fn show(State(state): State<AppState>, OrgPage { visitor, member }: OrgPage) -> Response {
    match standing(&state, &visitor, member).await {
        Ok(s) => answer(StatusCode::OK, key_page(&s, &visitor, None)),
        Err(refused) => refused,
    }
}

/// `POST /orgs/{org}/recovery-key`: the second factor checked again when it is due,
/// then the identity file as a download.
pub async fn download(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Form(form): Form<ExportForm>,
) -> Response {
    let s = match standing(&state, &visitor, member).await {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let exported = async {
        if !s.stepped_up {
            let code = form
                .code
                .as_ref()
                .filter(|c| !c.expose_secret().trim().is_empty())
                .ok_or_else(|| Error::invalid("type the code from your authenticator app"))?;
            sessions::step_up(&state.db, &state.keys, &visitor.session, code, state.now()).await?;
        }
        let passphrase = form
            .passphrase
            .filter(|p| !p.expose_secret().is_empty())
            .map(Passphrase::new)
            .transpose()?;
        orgs::export_recovery_key_with(
            &state.db,
            &state.keys,
            &s.member.org_id,
            passphrase.as_ref(),
            &s.member.actor,
            &state.now_rfc3339(),
        )
        .await
    }
    .await;
    match exported {
        Ok(key) => (
            [
                (
                    header::CONTENT_TYPE,
                    "text/plain; charset=utf-8".to_string(),
                ),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"dbcrate-{}.key\"", s.member.org_id),
                ),
            ],
            key.expose_secret().to_string(),
        )
            .into_response(),
        Err(e) => {
            let (status, message) = layout::explain(&e);
            answer(
                status,
                key_page(&s, &visitor, Some(error_message(&message))),
            )
        }
    }
}
