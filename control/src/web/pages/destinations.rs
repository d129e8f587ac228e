//! Flow 5, the organisation's destinations: the list (where each is, whether keys are
//! stored), and a form per kind — an S3 bucket, an SFTP host, a directory — with two
//! buttons: "Test" runs the list / write / read / delete probe and shows each step's
//! outcome without saving anything; "Save" probes again and saves only when every step
//! passed (`backups::destinations::create`, audited, a README written there).
//!
//! Admins and owners add (as the API wants); any member reads. A refused or failed form
//! comes back filled, its secrets (the S3 secret key, the SSH private key) excepted:
//! they are never sent back to the browser.

use super::org::{self, Member, OrgPage};
use crate::accounts::roles::Role;
use crate::backups::destinations::{self, DestinationInfo, NewDestination};
use crate::error::Error;
use crate::http::AppState;
use crate::secrets::SecretJson;
use crate::web::forms::{field, Field};
use crate::web::layout::{self, answer, csrf_field, error_message, notice, page};
use crate::web::session::Visitor;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use dbcrate_core::secret::SecretString;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The kinds, as the add links and form titles name them: kind, what to add.
const KINDS: [(&str, &str); 3] = [
    ("s3", "an S3-compatible bucket"),
    ("sftp", "an SFTP host"),
    ("directory", "a directory"),
];

/// What the list may be told by the page before it.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    added: Option<String>,
}

/// Which kind of destination a form is for.
#[derive(Debug, Deserialize)]
pub struct KindQuery {
    #[serde(default)]
    kind: String,
}

/// Every kind's fields; a kind's form sends its own.
#[derive(Debug, Default, Deserialize)]
pub struct DestinationForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    bucket: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    path_style: Option<String>,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    secret_access_key: Option<SecretString>,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    host_key: String,
    #[serde(default)]
    private_key: Option<SecretString>,
    /// `test` or `save`: which button was pressed.
    #[serde(default)]
    action: String,
}

fn secret_text(secret: &Option<SecretString>) -> &str {
    secret.as_ref().map_or("", |s| s.expose_secret())
}

impl DestinationForm {
    /// The settings the domain takes for `kind` (empty optional fields left out).
    fn settings(&self, kind: &str) -> Result<Value, Error> {
        let mut map = Map::new();
        let mut put = |key: &str, value: &str| {
            if !value.trim().is_empty() {
                map.insert(key.into(), Value::String(value.trim().into()));
            }
        };
        match kind {
            "s3" => {
                put("endpoint", &self.endpoint);
                put("region", &self.region);
                put("bucket", &self.bucket);
                put("prefix", &self.prefix);
                map.insert("path_style".into(), Value::Bool(self.path_style.is_some()));
            }
            "sftp" => {
                put("host", &self.host);
                put("user", &self.user);
                put("path", &self.path);
                put("host_key", &self.host_key);
                let port = self.port.trim();
                let port: u16 = if port.is_empty() {
                    Ok(22)
                } else {
                    port.parse()
                }
                .map_err(|_| Error::invalid("port must be a number, 1-65535 (22 is SSH's)"))?;
                map.insert("port".into(), json!(port));
            }
            _ => put("path", &self.path),
        }
        Ok(Value::Object(map))
    }

    /// The credentials for `kind`, wiped when dropped.
    fn credentials(&self, kind: &str) -> Option<SecretJson> {
        match kind {
            "s3" => Some(SecretJson::new(json!({
                "access_key_id": self.access_key_id.trim(),
                "secret_access_key": secret_text(&self.secret_access_key),
            }))),
            "sftp" => Some(SecretJson::new(json!({
                "private_key": secret_text(&self.private_key),
            }))),
            _ => None,
        }
    }
}

fn kind_label(kind: &str) -> Option<&'static str> {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, label)| *label)
}

/// Where a destination is, in one line.
fn whereabouts(d: &DestinationInfo) -> String {
    let s = |key: &str| d.settings[key].as_str().unwrap_or_default().to_string();
    match d.kind.as_str() {
        "s3" => {
            let at = if s("endpoint").is_empty() {
                "AWS".to_string()
            } else {
                s("endpoint")
            };
            format!("{}/{} at {at}", s("bucket"), s("prefix"))
        }
        "sftp" => format!(
            "{}@{}:{}{}",
            s("user"),
            s("host"),
            d.settings["port"].as_u64().unwrap_or(22),
            s("path")
        ),
        _ => s("path"),
    }
}

fn input(label: &str, name: &str, value: &str, hint: Option<&str>, required: bool) -> Markup {
    let mut f = Field::new(label, name, "text", "off");
    f.value = Some(value);
    f.hint = hint;
    f.required = required;
    field(f)
}

fn secret_input(label: &str, name: &str, hint: &str) -> Markup {
    let mut f = Field::new(label, name, "password", "off");
    f.hint = Some(hint);
    field(f)
}

fn s3_fields(form: &DestinationForm) -> Markup {
    html! {
        (input("Endpoint", "endpoint", &form.endpoint, Some("https://… of an S3-compatible store; leave empty for AWS."), false))
        (input("Region", "region", &form.region, Some("us-east-1 unless the store says otherwise."), false))
        (input("Bucket", "bucket", &form.bucket, None, true))
        (input("Prefix", "prefix", &form.prefix, Some("A folder inside the bucket, e.g. acme/backups."), false))
        div.field.check {
            input type="checkbox" id="path_style" name="path_style" value="yes" checked[form.path_style.is_some()];
            label for="path_style" { "Path-style addressing (most self-hosted stores need it)" }
        }
        (input("Access key id", "access_key_id", &form.access_key_id, None, true))
        (secret_input("Secret access key", "secret_access_key", "Sealed on the server; never shown again. Type it again after a failed test."))
    }
}

fn sftp_fields(form: &DestinationForm) -> Markup {
    let port = if form.port.is_empty() {
        "22"
    } else {
        form.port.as_str()
    };
    html! {
        (input("Host", "host", &form.host, None, true))
        (input("Port", "port", port, None, true))
        (input("User", "user", &form.user, None, true))
        (input("Directory on the host", "path", &form.path, Some("An absolute path the user may write, e.g. /srv/backups."), true))
        (input("Host key", "host_key", &form.host_key, Some("The server's public key as a known_hosts line (ssh-keyscan prints it); nothing else is trusted."), true))
        div.field {
            label for="private_key" { "Private key" }
            p.hint id="private_key-hint" {
                "The OpenSSH private key the control plane and agents log in with. Sealed on the \
                 server; never shown again. Paste it again after a failed test."
            }
            textarea id="private_key" name="private_key" rows="6" required
                autocomplete="off" spellcheck="false" aria-describedby="private_key-hint" {}
        }
    }
}

fn destination_form(
    member: &Member,
    visitor: &Visitor,
    kind: &str,
    form: &DestinationForm,
) -> Markup {
    html! {
        form method="post" action=(member.path(&format!("destinations/new?kind={kind}"))) {
            (csrf_field(&visitor.csrf))
            (input("Name", "name", &form.name, Some("How it is listed, e.g. offsite-bucket."), true))
            @match kind {
                "s3" => (s3_fields(form)),
                "sftp" => (sftp_fields(form)),
                _ => (input("Directory", "path", &form.path, Some("An absolute path that both this control plane and the agents reach."), true)),
            }
            div.actions {
                button type="submit" name="action" value="test" { "Test" }
                button type="submit" name="action" value="save" { "Save" }
                a href=(member.path("destinations")) { "Cancel" }
            }
            p.hint { "Both run the same probe: list, write, read and delete a small object. Save stores it only if every step passed." }
        }
    }
}

/// Each probe step in words.
fn probe_steps(report: &Value) -> Markup {
    html! {
        ol.probe {
            @for step in report.as_array().into_iter().flatten() {
                @let outcome = step["outcome"].as_str().unwrap_or_default();
                li {
                    strong { (step["step"].as_str().unwrap_or_default()) ": " }
                    @match outcome {
                        "ok" => span.status-ok { "passed" },
                        "failed" => span.status-bad { "failed" },
                        _ => span.status-off { "not run" },
                    }
                    @if let Some(error) = step["error"].as_str() { " — " (error) }
                }
            }
        }
    }
}

fn rows(list: &[DestinationInfo]) -> Markup {
    html! {
        table.stack {
            caption.hint { "Where backups go, by name." }
            thead {
                tr {
                    th scope="col" { "Destination" }
                    th scope="col" { "Kind" }
                    th scope="col" { "Where" }
                    th scope="col" { "Keys" }
                }
            }
            tbody {
                @for d in list {
                    tr {
                        th scope="row" { (d.name) br; code.id { (d.id) } }
                        td data-label="Kind" { (d.kind) }
                        td data-label="Where" { (whereabouts(d)) }
                        td data-label="Keys" { @if d.has_credentials { "stored (sealed)" } @else { "none" } }
                    }
                }
            }
        }
    }
}

/// `GET /orgs/{org}/destinations`.
pub async fn list(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Query(query): Query<ListQuery>,
) -> Response {
    let list = match destinations::list(&state.db, &member.org_id).await {
        Ok(list) => list,
        Err(e) => return layout::failure(&e),
    };
    let added = list.iter().find(|d| Some(&d.id) == query.added.as_ref());
    let body = html! {
        (org::org_nav(&member, "destinations"))
        @if let Some(d) = added {
            (notice(&format!("{} is added: every probe step passed, and a README-dbcrate.txt there says how to restore without dbcrate.", d.name)))
        }
        @if list.is_empty() { p { "No destination yet: backups need somewhere to go." } }
        @else { (rows(&list)) }
        @if member.role >= Role::Admin {
            h2 { "Add a destination" }
            ul {
                @for (kind, label) in KINDS {
                    li { a href=(member.path(&format!("destinations/new?kind={kind}"))) { "Add " (label) } }
                }
            }
        }
    };
    answer(
        StatusCode::OK,
        page("Destinations", Some(org::nav(&visitor)), body),
    )
}

fn form_page(
    member: &Member,
    visitor: &Visitor,
    kind: &str,
    form: &DestinationForm,
    outcome: Option<Markup>,
) -> Markup {
    let label = kind_label(kind).unwrap_or("a destination");
    page(
        &format!("Add {label}"),
        Some(org::nav(visitor)),
        html! {
            (org::org_nav(member, "destinations"))
            @if let Some(outcome) = outcome { (outcome) }
            (destination_form(member, visitor, kind, form))
        },
    )
}

/// The page that refuses the member, unless they may add destinations (admins and
/// owners) and `kind` is one.
fn refused_adding(member: &Member, kind: &str) -> Option<Response> {
    if let Some(refused) = member.refused_below(Role::Admin) {
        return Some(refused);
    }
    kind_label(kind).is_none().then(layout::not_found)
}

/// `GET /orgs/{org}/destinations/new?kind=…`.
pub async fn new_form(
    State(_state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Query(query): Query<KindQuery>,
) -> Response {
    if let Some(refused) = refused_adding(&member, &query.kind) {
        return refused;
    }
    let form = DestinationForm::default();
    answer(
        StatusCode::OK,
        form_page(&member, &visitor, &query.kind, &form, None),
    )
}

/// `POST /orgs/{org}/destinations/new?kind=…`: "Test" probes and shows each step;
/// "Save" probes and saves only when every step passed, then goes to the list.
pub async fn submit(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Query(query): Query<KindQuery>,
    Form(form): Form<DestinationForm>,
) -> Response {
    let kind = query.kind.as_str();
    if let Some(refused) = refused_adding(&member, kind) {
        return refused;
    }
    let settings = match form.settings(kind) {
        Ok(settings) => settings,
        Err(e) => return refused_form(&member, &visitor, kind, &form, &e),
    };
    let credentials = form.credentials(kind);
    let credentials = credentials.as_ref().map(SecretJson::value);
    if form.action == "test" {
        // Not audited: nothing is stored; the probe object is removed again.
        tracing::info!(org = %member.org_id, kind, actor = %member.actor, "destination test probe");
        let report = destinations::test(&state.reach, kind, &settings, credentials).await;
        return match report {
            Ok(report) => {
                let passed = report.succeeded();
                let outcome = html! {
                    @if passed { (notice("The probe passed. Nothing is saved until you press Save.")) }
                    @else { (error_message("The probe failed; nothing was saved.")) }
                    (probe_steps(&destinations::report_json(&report)))
                };
                let status = if passed {
                    StatusCode::OK
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                };
                answer(
                    status,
                    form_page(&member, &visitor, kind, &form, Some(outcome)),
                )
            }
            Err(e) => refused_form(&member, &visitor, kind, &form, &e),
        };
    }
    let new = NewDestination {
        name: &form.name,
        kind,
        settings: &settings,
        credentials,
    };
    let now = state.now();
    let created = destinations::create(
        &state.db,
        &state.keys,
        &state.reach,
        &member.org_id,
        &new,
        &member.actor,
        now,
    )
    .await;
    match created {
        Ok(Ok((info, _))) => {
            Redirect::to(&member.path(&format!("destinations?added={}", info.id))).into_response()
        }
        Ok(Err(report)) => {
            let outcome = html! {
                (error_message("The probe failed; nothing was saved."))
                (probe_steps(&destinations::report_json(&report)))
            };
            let body = form_page(&member, &visitor, kind, &form, Some(outcome));
            answer(StatusCode::UNPROCESSABLE_ENTITY, body)
        }
        Err(e) => refused_form(&member, &visitor, kind, &form, &e),
    }
}

fn refused_form(
    member: &Member,
    visitor: &Visitor,
    kind: &str,
    form: &DestinationForm,
    e: &Error,
) -> Response {
    let (status, message) = layout::explain(e);
    let body = form_page(member, visitor, kind, form, Some(error_message(&message)));
    answer(status, body)
}
