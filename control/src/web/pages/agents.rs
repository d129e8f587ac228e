//! Flow 3, the organisation's agents: the list (status in words, version, last seen,
//! certificate expiry, the pg_dump of the newest backup); a one-time enrolment token,
//! shown once with the exact `dbcrate-agent enroll` command to paste on the database
//! host; and revocation, behind a confirmation page that names the agent.
//!
//! The same domain calls and roles as `/api/v1/orgs/{org}/enrolment-tokens`, `…/agents`
//! and `…/agents/{agent}/revoke`: any member reads, operators and up create tokens,
//! admins and owners revoke; every step is audited by those calls.

use super::org::{self, Member, OrgPage};
use crate::accounts::roles::Role;
use crate::agents::{self, presence, AgentInfo};
use crate::error::Error;
use crate::http::AppState;
use crate::web::forms::{field, Field};
use crate::web::layout::{self, answer, csrf_field, error_message, notice, page};
use crate::web::session::Visitor;
use crate::web::when;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

/// How long a new token may work, as the form offers it: seconds, label.
const LIFETIMES: [(i64, &str); 3] = [(3600, "1 hour"), (86_400, "1 day"), (7 * 86_400, "7 days")];

/// A certificate this close to its end and not renewed is flagged (agents renew at 80 %
/// of its lifetime, a day by default).
const EXPIRY_WARNING_SECS: i64 = 3 * 3600;

/// What the list may be told by the page before it.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    revoked: Option<String>,
}

/// The enrolment-token form.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    expires_in_secs: Option<i64>,
}

/// An agent's state in words, so that it does not rest on colour.
fn status(agent: &AgentInfo, now: i64) -> (&'static str, &'static str) {
    if agent.revoked_at.is_some() {
        ("Revoked", "status-off")
    } else if presence::is_online(agent.last_seen_at, now) {
        ("Online", "status-ok")
    } else if agent.last_seen_at.is_none() {
        ("Never connected", "status-warn")
    } else {
        ("Offline", "status-bad")
    }
}

fn certificate(agent: &AgentInfo, now: i64) -> Markup {
    match agent.certificate_not_after {
        None => html! { "none" },
        Some(_) if agent.revoked_at.is_some() => html! { "revoked" },
        Some(end) if end <= now => html! { strong { "Expired " } (when::time(end, now)) },
        Some(end) if end - now <= EXPIRY_WARNING_SECS => {
            html! { strong { "Expires soon: " } (when::time(end, now)) }
        }
        Some(end) => when::time(end, now),
    }
}

fn agent_rows(member: &Member, list: &[AgentInfo], now: i64) -> Markup {
    let may_revoke = member.role >= Role::Admin;
    html! {
        table.stack {
            caption.hint { "The agents of " (member.org_name) ", oldest first." }
            thead {
                tr {
                    th scope="col" { "Agent" }
                    th scope="col" { "Status" }
                    th scope="col" { "Last seen" }
                    th scope="col" { "Version" }
                    th scope="col" { "Certificate expires" }
                    th scope="col" { "pg_dump (newest backup)" }
                    @if may_revoke { th scope="col" { "Action" } }
                }
            }
            tbody {
                @for agent in list {
                    @let (state, class) = status(agent, now);
                    tr {
                        th scope="row" { (agent.name) br; code.id { (agent.id) } }
                        td data-label="Status" { span class=(class) { (state) } }
                        td data-label="Last seen" {
                            @match agent.last_seen_at {
                                Some(seen) => (when::time(seen, now)),
                                None => "never",
                            }
                        }
                        td data-label="Version" { (agent.version.as_deref().unwrap_or("unknown")) }
                        td data-label="Certificate expires" { (certificate(agent, now)) }
                        td data-label="pg_dump (newest backup)" {
                            (agent.pg_dump_version.as_deref().unwrap_or("no backup yet"))
                        }
                        @if may_revoke {
                            td data-label="Action" {
                                @if agent.revoked_at.is_none() {
                                    a href=(member.path(&format!("agents/{}/revoke", agent.id))) {
                                        "Revoke" span.visually-hidden { " " (agent.name) } "…"
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn token_form(member: &Member, visitor: &Visitor, name: &str) -> Markup {
    let mut name_field = Field::new("The agent's name", "name", "text", "off");
    name_field.hint = Some("Its host, say db1.example.com: how it is listed here.");
    name_field.value = Some(name);
    html! {
        h2 { "Add an agent" }
        p {
            "An agent enrols once with a one-time token. Create one here; the next page shows \
             the command to run on the database host."
        }
        form method="post" action=(member.path("agents/enrolment-tokens")) {
            (csrf_field(&visitor.csrf))
            (field(name_field))
            div.field {
                label for="expires_in_secs" { "The token works for" }
                select id="expires_in_secs" name="expires_in_secs" {
                    @for (secs, label) in LIFETIMES {
                        option value=(secs) selected[secs == agents::DEFAULT_TOKEN_LIFETIME_SECS] { (label) }
                    }
                }
            }
            div.actions { button type="submit" { "Create enrolment token" } }
        }
    }
}

fn list_page(
    member: &Member,
    visitor: &Visitor,
    list: &[AgentInfo],
    message: Option<Markup>,
    now: i64,
) -> Markup {
    page(
        "Agents",
        Some(org::nav(visitor)),
        html! {
            (org::org_nav(member, "agents"))
            @if let Some(message) = &message { (message) }
            @if list.is_empty() {
                p { "No agent has enrolled yet." }
            } @else {
                (agent_rows(member, list, now))
                p.hint {
                    "Online: it called within the last two minutes (an idle agent calls every \
                     half minute). Certificates renew by themselves at four fifths of their life."
                }
            }
            @if member.role >= Role::Operator {
                (token_form(member, visitor, ""))
            }
        },
    )
}

async fn listed(state: &AppState, member: &Member) -> Result<Vec<AgentInfo>, Response> {
    agents::list(&state.db, &member.org_id)
        .await
        .map_err(|e| layout::failure(&e))
}

/// `GET /orgs/{org}/agents`.
pub async fn list(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Query(query): Query<ListQuery>,
) -> Response {
    let list = match listed(&state, &member).await {
        Ok(list) => list,
        Err(failed) => return failed,
    };
    let revoked = query
        .revoked
        .and_then(|id| list.iter().find(|a| a.id == id && a.revoked_at.is_some()))
        .map(|a| {
            notice(&format!(
                "{} is revoked: the control plane refuses it from its next connection.",
                a.name
            ))
        });
    let now = state.now();
    answer(
        StatusCode::OK,
        list_page(&member, &visitor, &list, revoked, now),
    )
}

/// Single-quotes `text` for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r#"'\''"#))
}

/// The command that enrols the agent, as the operator pastes it on the database host.
/// The token travels in the environment, not as a flag (`ps` shows flags).
fn enrol_command(state: &AppState, member: &Member, name: &str, token: &str) -> String {
    let url = (state.agents.public_url.as_deref()).unwrap_or("https://CONTROL-PLANE:8444");
    let trust = match &state.agents.server_fingerprint {
        Some(fingerprint) => format!("--server-fingerprint {fingerprint}"),
        None => "--ca-file /path/to/control-plane-cert.pem".to_string(),
    };
    format!(
        "DBCRATE_ENROLMENT_TOKEN={} dbcrate-agent enroll \\\n  --control-url {url} \\\n  {trust} \\\n  --org {} --name {}",
        shell_quote(token),
        member.org_id,
        shell_quote(name),
    )
}

/// `POST /orgs/{org}/agents/enrolment-tokens`: `agents::create_token` (audited), then
/// the token and the command, on this answer only.
pub async fn create_token(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Form(form): Form<TokenForm>,
) -> Response {
    if let Some(refused) = member.refused_below(Role::Operator) {
        return refused;
    }
    let now = state.now();
    let created = agents::create_token(
        &state.db,
        &member.org_id,
        &form.name,
        form.expires_in_secs,
        &member.actor,
        now,
    )
    .await;
    let created = match created {
        Ok(created) => created,
        Err(e) => return refused_form(&state, &member, &visitor, &form.name, &e).await,
    };
    let name = form.name.trim();
    let command = enrol_command(&state, &member, name, created.token.expose_secret());
    answer(
        StatusCode::CREATED,
        page(
            &format!("Enrolment token for {name}"),
            Some(org::nav(&visitor)),
            html! {
                (org::org_nav(&member, "agents"))
                (notice("This token is shown once. It works once, until it is used or expires."))
                p { "It expires " (when::time(created.expires_at, now)) "." }
                h2 { "On the database host, run" }
                pre.command { code { (command) } }
                p {
                    "Then start the agent with " code { "dbcrate-agent run" } ". It appears in the \
                     list once it has enrolled, and shows as online while it runs."
                }
                p { a href=(member.path("agents")) { "Back to the agents" } }
            },
        ),
    )
}

/// The list again, with the form filled and why it was refused.
async fn refused_form(
    state: &AppState,
    member: &Member,
    visitor: &Visitor,
    name: &str,
    e: &Error,
) -> Response {
    let (status, message) = layout::explain(e);
    let list = match listed(state, member).await {
        Ok(list) => list,
        Err(failed) => return failed,
    };
    let now = state.now();
    let page = page(
        "Agents",
        Some(org::nav(visitor)),
        html! {
            (org::org_nav(member, "agents"))
            (agent_rows(member, &list, now))
            (error_message(&message))
            (token_form(member, visitor, name))
        },
    );
    answer(status, page)
}

/// The agent `agent_id` of the member's organisation, or the 404 page.
async fn agent_of(
    state: &AppState,
    member: &Member,
    agent_id: &str,
) -> Result<AgentInfo, Response> {
    listed(state, member)
        .await?
        .into_iter()
        .find(|a| a.id == agent_id)
        .ok_or_else(layout::not_found)
}

/// `GET /orgs/{org}/agents/{agent}/revoke`: what revoking means, and the button that
/// names the agent.
pub async fn confirm_revoke(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Path((_, agent_id)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = member.refused_below(Role::Admin) {
        return refused;
    }
    let agent = match agent_of(&state, &member, &agent_id).await {
        Ok(agent) => agent,
        Err(missing) => return missing,
    };
    let body = if agent.revoked_at.is_some() {
        html! {
            (notice(&format!("{} is revoked already.", agent.name)))
            p { a href=(member.path("agents")) { "Back to the agents" } }
        }
    } else {
        html! {
            (org::org_nav(&member, "agents"))
            p {
                "Revoking " strong { (agent.name) } " (" code { (agent.id) } ") puts its \
                 certificates into the organisation's signed revocation list: the control plane \
                 refuses it from its next connection, and a running job of it fails."
            }
            p {
                "Its backups stay where they are and still restore. To use the host again, \
                 enrol it anew with a new token. Revoking cannot be undone."
            }
            form method="post" action=(member.path(&format!("agents/{}/revoke", agent.id))) {
                (csrf_field(&visitor.csrf))
                div.actions {
                    button.danger type="submit" { "Revoke " (agent.name) }
                    a href=(member.path("agents")) { "Cancel" }
                }
            }
        }
    };
    answer(
        StatusCode::OK,
        page(
            &format!("Revoke {}?", agent.name),
            Some(org::nav(&visitor)),
            body,
        ),
    )
}

/// `POST /orgs/{org}/agents/{agent}/revoke`: `agents::revoke` (audited), the agent
/// listener's CRLs reloaded at once, back to the list.
pub async fn revoke(
    State(state): State<AppState>,
    OrgPage { member, .. }: OrgPage,
    Path((_, agent_id)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = member.refused_below(Role::Admin) {
        return refused;
    }
    let revoked = agents::revoke(
        &state.db,
        &state.keys,
        &member.org_id,
        &agent_id,
        &member.actor,
        state.now(),
    )
    .await;
    if let Err(e) = revoked {
        return layout::failure(&e);
    }
    state.reload_agent_tls().await;
    Redirect::to(&member.path(&format!("agents?revoked={agent_id}"))).into_response()
}

#[cfg(test)]
mod tests {
    use super::shell_quote;

    #[test]
    fn names_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("db1.example.com"), "'db1.example.com'");
        assert_eq!(shell_quote("it's $(rm -rf /)"), r#"'it'\''s $(rm -rf /)'"#);
    }
}
