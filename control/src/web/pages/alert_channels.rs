//! Adding an alert channel (admins and owners): a webhook or a Slack-compatible webhook
//! (its URL, sealed at once), or e-mail (the SMTP server, TLS mode, account, sender and
//! recipients; the password sealed). A refused form comes back filled, the URL and the
//! password excepted. A webhook's signing key is shown once, on the answer that made
//! it. `alerts::channels::create`, audited, as the API.

use super::org::{self, Member, OrgPage};
use crate::accounts::roles::Role;
use crate::alerts::channels::{self, EmailSettings, NewChannel, Target};
use crate::error::Error;
use crate::http::AppState;
use crate::web::forms::{field, percent, Field};
use crate::web::layout::{self, answer, csrf_field, error_message, notice, page};
use crate::web::session::Visitor;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use dbcrate_core::secret::SecretString;
use maud::{html, Markup};
use serde::Deserialize;

/// Which kind the form is for.
#[derive(Debug, Deserialize)]
pub struct KindQuery {
    #[serde(default)]
    kind: String,
}

/// The form, for every kind (fields of other kinds stay empty).
#[derive(Debug, Default, Deserialize)]
pub struct ChannelForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: Option<SecretString>,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    security: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: Option<SecretString>,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    ca_pem: String,
}

fn kind_label(kind: &str) -> Option<&'static str> {
    match kind {
        "webhook" => Some("a webhook"),
        "slack" => Some("a Slack-compatible webhook"),
        "email" => Some("e-mail"),
        _ => None,
    }
}

fn text_field<'a>(label: &'a str, name: &'a str, value: &'a str, hint: Option<&'a str>) -> Markup {
    let mut f = Field::new(label, name, "text", "off");
    f.value = Some(value);
    f.hint = hint;
    field(f)
}

fn kind_fields(kind: &str, form: &ChannelForm) -> Markup {
    if kind != "email" {
        let mut url = Field::new("URL", "url", "password", "off");
        url.hint = Some(
            "https://… (http:// only to a loopback address). It carries a token: it is sealed \
             at once and never shown again.",
        );
        return field(url);
    }
    let security = if form.security.is_empty() {
        "starttls"
    } else {
        form.security.as_str()
    };
    let port = if form.port.is_empty() {
        "587"
    } else {
        form.port.as_str()
    };
    let mut password = Field::new("Password", "password", "password", "new-password");
    password.required = false;
    password.hint =
        Some("Sealed at once, never shown again. Leave empty when the server needs no account.");
    html! {
        (text_field("SMTP server", "host", &form.host, Some("Its certificate must name it.")))
        (text_field("Port", "port", port, Some("587 with STARTTLS, 465 with TLS from the start.")))
        div.field {
            label for="security" { "TLS" }
            select id="security" name="security" {
                option value="starttls" selected[security == "starttls"] { "STARTTLS (required before anything is sent)" }
                option value="implicit" selected[security == "implicit"] { "TLS from the first byte" }
            }
        }
        (text_field("Account", "username", &form.username, Some("Leave empty when the server needs no account.")))
        (field(password))
        (text_field("From", "from", &form.from, None))
        (text_field("To", "to", &form.to, Some("Up to 20 addresses, separated by commas.")))
        div.field {
            label for="ca_pem" { "Private CA (optional)" }
            p.hint id="ca_pem-hint" { "A PEM certificate to trust besides the system's, for a relay with a private CA." }
            textarea id="ca_pem" name="ca_pem" rows="4" aria-describedby="ca_pem-hint" { (form.ca_pem) }
        }
    }
}

fn form_page(
    member: &Member,
    visitor: &Visitor,
    kind: &str,
    form: &ChannelForm,
    message: Option<Markup>,
) -> Markup {
    let label = kind_label(kind).unwrap_or("a channel");
    let mut name = Field::new("Name", "name", "text", "off");
    name.value = Some(&form.name);
    name.autofocus = true;
    page(
        &format!("Add {label}"),
        Some(org::nav(visitor)),
        html! {
            (org::org_nav(member, "alerts"))
            @if let Some(message) = message { (message) }
            form method="post" action=(member.path(&format!("alerts/channels/new?kind={kind}"))) {
                (csrf_field(&visitor.csrf))
                (field(name))
                (kind_fields(kind, form))
                div.actions {
                    button type="submit" { "Add" }
                    a href=(member.path("alerts")) { "Cancel" }
                }
            }
        },
    )
}

fn refused(member: &Member, kind: &str) -> Option<Response> {
    if let Some(refused) = member.refused_below(Role::Admin) {
        return Some(refused);
    }
    kind_label(kind).is_none().then(layout::not_found)
}

/// `GET /orgs/{org}/alerts/channels/new?kind=webhook|slack|email`.
pub async fn new_form(
    OrgPage { visitor, member }: OrgPage,
    Query(query): Query<KindQuery>,
) -> Response {
    if let Some(refused) = refused(&member, &query.kind) {
        return refused;
    }
    let form = ChannelForm::default();
    answer(
        StatusCode::OK,
        form_page(&member, &visitor, &query.kind, &form, None),
    )
}

impl ChannelForm {
    fn email(&self) -> Result<EmailSettings, Error> {
        let port = self
            .port
            .trim()
            .parse::<u16>()
            .map_err(|_| Error::invalid("the port must be a number, 1-65535"))?;
        let optional = |t: &str| Some(t.trim().to_string()).filter(|t| !t.is_empty());
        Ok(EmailSettings {
            host: self.host.trim().to_string(),
            port,
            security: self.security.clone(),
            username: optional(&self.username),
            from: self.from.trim().to_string(),
            to: self
                .to
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(String::from)
                .collect(),
            ca_pem: optional(&self.ca_pem),
        })
    }
}

/// `POST /orgs/{org}/alerts/channels/new?kind=…`.
pub async fn create(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Query(query): Query<KindQuery>,
    Form(form): Form<ChannelForm>,
) -> Response {
    let kind = query.kind.as_str();
    if let Some(refused) = refused(&member, kind) {
        return refused;
    }
    let empty = SecretString::new(String::new());
    let url = form.url.as_ref().unwrap_or(&empty);
    let password = form
        .password
        .as_ref()
        .filter(|p| !p.expose_secret().is_empty());
    let target = match kind {
        "webhook" => Ok(Target::Webhook(url)),
        "slack" => Ok(Target::Slack(url)),
        _ => form.email().map(|email| Target::Email(email, password)),
    };
    let created = match target {
        Ok(target) => {
            let new = NewChannel {
                name: &form.name,
                target,
            };
            channels::create(
                &state.db,
                &state.keys,
                &member.org_id,
                &new,
                &member.actor,
                state.now(),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match created {
        Ok((channel, Some(key))) => answer(
            StatusCode::CREATED,
            page(
                &format!("Signing key for {}", channel.name),
                Some(org::nav(&visitor)),
                html! {
                    (org::org_nav(&member, "alerts"))
                    (notice("The signing key is shown once: copy it to the receiver now."))
                    pre.command { code.secret-once { (key.expose_secret()) } }
                    p {
                        "Each delivery carries X-Dbcrate-Timestamp and X-Dbcrate-Signature: v1= and \
                         the hex HMAC-SHA256 of the timestamp, a dot and the body under this key. \
                         Refuse a delivery whose signature does not match or whose timestamp is \
                         more than five minutes off."
                    }
                    p { a href=(member.path("alerts")) { "Back to the alerts" } }
                },
            ),
        ),
        Ok((channel, None)) => {
            let name = percent(&channel.name);
            Redirect::to(&member.path(&format!("alerts?added={name}"))).into_response()
        }
        Err(e) => {
            let (status, message) = layout::explain(&e);
            answer(
                status,
                form_page(
                    &member,
                    &visitor,
                    kind,
                    &form,
                    Some(error_message(&message)),
                ),
            )
        }
    }
}
