//! Flow 4, the organisation's databases: the list (where each is reached, as whom, the
//! agent that reaches it, whether a password is stored), adding one, and editing one.
//!
//! The same domain calls and roles as `/api/v1/orgs/{org}/databases`: any member reads;
//! admins and owners add and edit (`backups::databases::create` and `update`, audited).
//! A stored password is never sent back to the browser: the edit form's password field
//! is empty, and leaving it empty keeps the stored one. A refused form comes back
//! filled, the password excepted.

use super::org::{self, Member, OrgPage};
use crate::accounts::roles::Role;
use crate::agents::{self, AgentInfo};
use crate::backups::databases::{
    self, DatabaseEdit, DatabaseInfo, NewDatabase, PasswordChange, TLS_MODES,
};
use crate::error::Error;
use crate::http::AppState;
use crate::web::forms::{field, Field};
use crate::web::layout::{self, answer, csrf_field, error_message, notice, page};
use crate::web::session::Visitor;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use dbcrate_core::secret::SecretString;
use maud::{html, Markup};
use serde::Deserialize;

/// What libpq's sslmode values mean, for the form.
fn tls_mode_text(mode: &str) -> &'static str {
    match mode {
        "disable" => "disable: no TLS",
        "prefer" => "prefer: TLS when the server offers it",
        "require" => "require: TLS, certificate not checked",
        "verify-ca" => "verify-ca: TLS, certificate from a trusted CA",
        _ => "verify-full: TLS, certificate and host name checked",
    }
}

/// What the list may be told by the page before it.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    added: Option<String>,
    #[serde(default)]
    saved: Option<String>,
}

/// The add and edit forms' fields (the name only when adding).
#[derive(Debug, Default, Deserialize)]
pub struct DatabaseForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    host: String,
    #[serde(default)]
    port: String,
    #[serde(default)]
    dbname: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    tls_mode: String,
    #[serde(default)]
    agent_id: String,
    #[serde(default)]
    password: Option<SecretString>,
    /// Edit only: the server wants no password any more.
    #[serde(default)]
    remove_password: Option<String>,
}

impl DatabaseForm {
    fn of(d: &DatabaseInfo) -> Self {
        Self {
            name: d.name.clone(),
            host: d.host.clone(),
            port: d.port.to_string(),
            dbname: d.dbname.clone(),
            username: d.username.clone(),
            tls_mode: d.tls_mode.clone(),
            agent_id: d.agent_id.clone(),
            ..Self::default()
        }
    }

    fn port(&self) -> Result<i64, Error> {
        self.port
            .trim()
            .parse()
            .map_err(|_| Error::invalid("port must be a number, 1-65535 (5432 is the usual one)"))
    }

    /// The password typed, if any (an empty field is none).
    fn typed_password(&self) -> Option<&SecretString> {
        self.password
            .as_ref()
            .filter(|p| !p.expose_secret().is_empty())
    }
}

/// Which form: adding, or editing a database that may have a stored password.
#[derive(Debug, Clone, Copy)]
enum Purpose<'a> {
    Add,
    Edit(&'a DatabaseInfo),
}

fn text_field<'a>(label: &'a str, name: &'a str, value: &'a str, hint: &'a str) -> Markup {
    let mut f = Field::new(label, name, "text", "off");
    f.value = Some(value);
    f.hint = Some(hint);
    field(f)
}

fn agent_choice(live: &[&AgentInfo], chosen: &str) -> Markup {
    html! {
        div.field {
            label for="agent_id" { "The agent that reaches it" }
            p.hint id="agent_id-hint" { "pg_dump runs on this agent's host." }
            select id="agent_id" name="agent_id" aria-describedby="agent_id-hint" required {
                @for agent in live {
                    option value=(agent.id) selected[agent.id == chosen] {
                        (agent.name) " (" (agent.id) ")"
                    }
                }
            }
        }
    }
}

fn tls_choice(chosen: &str) -> Markup {
    let chosen = if chosen.is_empty() { "prefer" } else { chosen };
    html! {
        div.field {
            label for="tls_mode" { "TLS to the database" }
            select id="tls_mode" name="tls_mode" {
                @for mode in TLS_MODES {
                    option value=(mode) selected[mode == chosen] { (tls_mode_text(mode)) }
                }
            }
        }
    }
}

fn password_fields(purpose: Purpose<'_>, form: &DatabaseForm) -> Markup {
    let mut password = Field::new("Password", "password", "password", "off");
    password.required = false;
    match purpose {
        Purpose::Add => {
            password.hint = Some("Sealed on the server; never shown again, here or anywhere.");
            html! { (field(password)) }
        }
        Purpose::Edit(d) => {
            password.label = "New password";
            password.hint = Some(if d.has_password {
                "A password is stored. Leave this empty to keep it; it is never shown."
            } else {
                "No password is stored. Type one to store it (sealed)."
            });
            html! {
                (field(password))
                @if d.has_password {
                    div.field.check {
                        input type="checkbox" id="remove_password" name="remove_password" value="yes"
                            checked[form.remove_password.is_some()];
                        label for="remove_password" { "Remove the stored password (the server wants none)" }
                    }
                }
            }
        }
    }
}

fn database_form(
    member: &Member,
    visitor: &Visitor,
    purpose: Purpose<'_>,
    form: &DatabaseForm,
    agent_list: &[AgentInfo],
) -> Markup {
    let live: Vec<&AgentInfo> = agent_list
        .iter()
        .filter(|a| a.revoked_at.is_none())
        .collect();
    if live.is_empty() {
        return html! {
            p {
                "A database is backed up by an agent on a host that reaches it, and this \
                 organisation has no agent yet. "
                a href=(member.path("agents")) { "Enrol an agent first" } "."
            }
        };
    }
    let (action, button) = match purpose {
        Purpose::Add => (member.path("databases"), "Add database"),
        Purpose::Edit(d) => (
            member.path(&format!("databases/{}/edit", d.id)),
            "Save changes",
        ),
    };
    let port = if form.port.is_empty() {
        "5432"
    } else {
        form.port.as_str()
    };
    html! {
        form method="post" action=(action) {
            (csrf_field(&visitor.csrf))
            @if let Purpose::Add = purpose {
                (text_field("Name", "name", &form.name, "How it is listed; also the folder its backups go into, so it cannot change later."))
            }
            (text_field("Host", "host", &form.host, "Host name or address, as the agent reaches it."))
            (text_field("Port", "port", port, "5432 unless the server says otherwise."))
            (text_field("Database on the server", "dbname", &form.dbname, "What pg_dump dumps."))
            (text_field("User", "username", &form.username, "The role pg_dump connects as; it needs to read everything."))
            (tls_choice(&form.tls_mode))
            (password_fields(purpose, form))
            (agent_choice(&live, &form.agent_id))
            div.actions {
                button type="submit" { (button) }
                @if let Purpose::Edit(_) = purpose {
                    a href=(member.path("databases")) { "Cancel" }
                }
            }
        }
    }
}

fn database_rows(member: &Member, list: &[DatabaseInfo], agent_list: &[AgentInfo]) -> Markup {
    let may_edit = member.role >= Role::Admin;
    let agent_name = |id: &str| {
        agent_list
            .iter()
            .find(|a| a.id == id)
            .map_or("unknown", |a| a.name.as_str())
    };
    html! {
        table.stack {
            caption.hint { "The databases of " (member.org_name) ", by name." }
            thead {
                tr {
                    th scope="col" { "Database" }
                    th scope="col" { "Reached at" }
                    th scope="col" { "User" }
                    th scope="col" { "TLS" }
                    th scope="col" { "Password" }
                    th scope="col" { "Agent" }
                    @if may_edit { th scope="col" { "Action" } }
                }
            }
            tbody {
                @for d in list {
                    tr {
                        th scope="row" { (d.name) br; code.id { (d.id) } }
                        td data-label="Reached at" { (d.host) ":" (d.port) "/" (d.dbname) }
                        td data-label="User" { (d.username) }
                        td data-label="TLS" { (d.tls_mode) }
                        td data-label="Password" { @if d.has_password { "stored (sealed)" } @else { "none" } }
                        td data-label="Agent" { (agent_name(&d.agent_id)) }
                        @if may_edit {
                            td data-label="Action" {
                                a href=(member.path(&format!("databases/{}/edit", d.id))) {
                                    "Edit" span.visually-hidden { " " (d.name) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The list page, with a message and the add form (for admins) as given.
fn list_page(
    member: &Member,
    visitor: &Visitor,
    (list, agent_list): (&[DatabaseInfo], &[AgentInfo]),
    message: Option<Markup>,
    form: &DatabaseForm,
) -> Markup {
    page(
        "Databases",
        Some(org::nav(visitor)),
        html! {
            (org::org_nav(member, "databases"))
            @if let Some(message) = &message { (message) }
            @if list.is_empty() {
                p { "No database is backed up yet." }
            } @else {
                (database_rows(member, list, agent_list))
            }
            @if member.role >= Role::Admin {
                h2 { "Add a database" }
                (database_form(member, visitor, Purpose::Add, form, agent_list))
            }
        },
    )
}

async fn lists(
    state: &AppState,
    member: &Member,
) -> Result<(Vec<DatabaseInfo>, Vec<AgentInfo>), Response> {
    let failed = |e: Error| layout::failure(&e);
    let list = databases::list(&state.db, &member.org_id)
        .await
        .map_err(failed)?;
    let agent_list = agents::list(&state.db, &member.org_id)
        .await
        .map_err(failed)?;
    Ok((list, agent_list))
}

/// `GET /orgs/{org}/databases`.
pub async fn list(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Query(query): Query<ListQuery>,
) -> Response {
    let (list, agent_list) = match lists(&state, &member).await {
        Ok(lists) => lists,
        Err(failed) => return failed,
    };
    let named = |id: &Option<String>| {
        list.iter()
            .find(|d| Some(&d.id) == id.as_ref())
            .map(|d| d.name.clone())
    };
    let message = match (named(&query.added), named(&query.saved)) {
        (Some(name), _) => Some(notice(&format!("{name} is added."))),
        (_, Some(name)) => Some(notice(&format!("{name} is saved."))),
        _ => None,
    };
    let body = list_page(
        &member,
        &visitor,
        (&list, &agent_list),
        message,
        &DatabaseForm::default(),
    );
    answer(StatusCode::OK, body)
}

/// `POST /orgs/{org}/databases`: `backups::databases::create`, then the list.
pub async fn create(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Form(form): Form<DatabaseForm>,
) -> Response {
    if let Some(refused) = member.refused_below(Role::Admin) {
        return refused;
    }
    let created = match form.port() {
        Ok(port) => {
            let new = NewDatabase {
                name: form.name.trim(),
                host: form.host.trim(),
                port,
                dbname: form.dbname.trim(),
                username: form.username.trim(),
                tls_mode: &form.tls_mode,
                password: form.typed_password(),
                agent_id: &form.agent_id,
            };
            databases::create(
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
        Ok(d) => Redirect::to(&member.path(&format!("databases?added={}", d.id))).into_response(),
        Err(e) => {
            let (status, message) = layout::explain(&e);
            let (list, agent_list) = match lists(&state, &member).await {
                Ok(lists) => lists,
                Err(failed) => return failed,
            };
            let lists = (list.as_slice(), agent_list.as_slice());
            let body = list_page(
                &member,
                &visitor,
                lists,
                Some(error_message(&message)),
                &form,
            );
            answer(status, body)
        }
    }
}

fn edit_page(
    member: &Member,
    visitor: &Visitor,
    database: &DatabaseInfo,
    agent_list: &[AgentInfo],
    (message, form): (Option<Markup>, &DatabaseForm),
) -> Markup {
    page(
        &format!("Edit {}", database.name),
        Some(org::nav(visitor)),
        html! {
            (org::org_nav(member, "databases"))
            @if let Some(message) = &message { (message) }
            p.hint { "Its name, " strong { (database.name) } ", is the folder its backups go into and stays." }
            (database_form(member, visitor, Purpose::Edit(database), form, agent_list))
        },
    )
}

/// The database of the path, for the member's organisation, or the 404 page.
async fn database_of(
    state: &AppState,
    member: &Member,
    id: &str,
) -> Result<(DatabaseInfo, Vec<AgentInfo>), Response> {
    let (list, agent_list) = lists(state, member).await?;
    let database = list
        .into_iter()
        .find(|d| d.id == id)
        .ok_or_else(layout::not_found)?;
    Ok((database, agent_list))
}

/// `GET /orgs/{org}/databases/{database}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = member.refused_below(Role::Admin) {
        return refused;
    }
    let (database, agent_list) = match database_of(&state, &member, &id).await {
        Ok(found) => found,
        Err(missing) => return missing,
    };
    let form = DatabaseForm::of(&database);
    let body = edit_page(&member, &visitor, &database, &agent_list, (None, &form));
    answer(StatusCode::OK, body)
}

/// What the edit form asks for the password.
fn password_change(form: &DatabaseForm) -> Result<PasswordChange<'_>, Error> {
    match (form.typed_password(), form.remove_password.is_some()) {
        (Some(_), true) => Err(Error::invalid(
            "either type a new password or tick \"remove the stored password\", not both",
        )),
        (Some(password), false) => Ok(PasswordChange::Set(password)),
        (None, true) => Ok(PasswordChange::Remove),
        (None, false) => Ok(PasswordChange::Keep),
    }
}

/// `POST /orgs/{org}/databases/{database}/edit`: `backups::databases::update`, then
/// the list.
pub async fn edit(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Path((_, id)): Path<(String, String)>,
    Form(form): Form<DatabaseForm>,
) -> Response {
    if let Some(refused) = member.refused_below(Role::Admin) {
        return refused;
    }
    let (database, agent_list) = match database_of(&state, &member, &id).await {
        Ok(found) => found,
        Err(missing) => return missing,
    };
    let edited = async {
        let edit = DatabaseEdit {
            host: form.host.trim(),
            port: form.port()?,
            dbname: form.dbname.trim(),
            username: form.username.trim(),
            tls_mode: &form.tls_mode,
            agent_id: &form.agent_id,
            password: password_change(&form)?,
        };
        databases::update(
            &state.db,
            &state.keys,
            &member.org_id,
            &id,
            &edit,
            &member.actor,
            state.now(),
        )
        .await
    }
    .await;
    match edited {
        Ok(d) => Redirect::to(&member.path(&format!("databases?saved={}", d.id))).into_response(),
        Err(e) => {
            let (status, message) = layout::explain(&e);
            let message = Some(error_message(&message));
            let body = edit_page(&member, &visitor, &database, &agent_list, (message, &form));
            answer(status, body)
        }
    }
}
