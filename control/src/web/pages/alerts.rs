//! The organisation's alerts: what is wrong now and what was, the channels they go to
//! (by host: a URL or password is never shown), and the delivery log. Admins and owners
//! send a test notification and remove a channel after a confirmation naming it; adding
//! one is `alert_channels`. The same domain calls as `/api/v1/orgs/{org}/alert…`.

use super::org::{self, Member, OrgPage};
use crate::accounts::roles::Role;
use crate::alerts::channels::{self, ChannelInfo};
use crate::alerts::delivery;
use crate::alerts::log::{self, AlertRecord, DeliveryRecord};
use crate::http::AppState;
use crate::web::forms::percent;
use crate::web::layout::{self, answer, csrf_field, error_message, notice, page};
use crate::web::session::Visitor;
use crate::web::when;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde::Deserialize;

/// How many alerts and deliveries the page lists.
const SHOWN: i64 = 50;

/// What the page may be told by the one before it.
#[derive(Debug, Default, Deserialize)]
pub struct AlertsQuery {
    #[serde(default)]
    added: Option<String>,
    #[serde(default)]
    removed: Option<String>,
    #[serde(default)]
    tested: Option<String>,
}

/// An alert kind in words.
pub fn kind_text(kind: &str) -> &'static str {
    match kind {
        "backup_overdue" => "Backup overdue",
        "agent_offline" => "Agent offline",
        "job_failed" => "Job failed",
        "certificate_not_renewing" => "Certificate not renewing",
        "retention_delete_failed" => "Retention cannot delete",
        "audit_chain_broken" => "Audit chain broken",
        "destination_probe_failed" => "Destination probe failed",
        _ => "Alert",
    }
}

fn alert_rows(list: &[AlertRecord], now: i64) -> Markup {
    html! {
        table.stack {
            caption.hint { "Newest first. An open alert is told again on a back-off until it clears." }
            thead { tr {
                th scope="col" { "Alert" } th scope="col" { "State" } th scope="col" { "What" } th scope="col" { "Since" }
            } }
            tbody {
                @for a in list {
                    tr {
                        th scope="row" { (kind_text(&a.kind)) }
                        td data-label="State" {
                            @match (a.cleared_at, a.kind.as_str()) {
                                (None, _) => span.status-bad { "Open" },
                                (Some(_), "job_failed") => "Told",
                                (Some(at), _) => { span.status-ok { "Cleared" } " " (when::time(at, now)) },
                            }
                        }
                        td data-label="What" { (a.summary) }
                        td data-label="Since" { (when::time(a.opened_at, now)) }
                    }
                }
            }
        }
    }
}

fn channel_rows(member: &Member, visitor: &Visitor, list: &[ChannelInfo]) -> Markup {
    let admin = member.role >= Role::Admin;
    html! {
        table.stack {
            caption.hint { "Where alerts go. URLs and passwords are sealed and never shown." }
            thead { tr {
                th scope="col" { "Channel" } th scope="col" { "Kind" } th scope="col" { "To" }
                @if admin { th scope="col" { "Actions" } }
            } }
            tbody {
                @for c in list {
                    tr {
                        th scope="row" { (c.name) }
                        td data-label="Kind" { (c.kind) }
                        td data-label="To" { (c.host) }
                        @if admin {
                            td data-label="Actions" {
                                form.inline method="post" action=(member.path(&format!("alerts/channels/{}/test", c.id))) {
                                    (csrf_field(&visitor.csrf))
                                    button type="submit" { "Send a test to " (c.name) }
                                }
                                " "
                                a href=(member.path(&format!("alerts/channels/{}/remove", c.id))) { "Remove " (c.name) "…" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn delivery_rows(list: &[DeliveryRecord], now: i64) -> Markup {
    html! {
        table.stack {
            caption.hint { "Each delivery, newest first: a failed attempt is retried after 30 s, doubling, eight times." }
            thead { tr {
                th scope="col" { "Queued" } th scope="col" { "Channel" } th scope="col" { "Event" }
                th scope="col" { "State" } th scope="col" { "Attempts" } th scope="col" { "Last error" }
            } }
            tbody {
                @for d in list {
                    tr {
                        th scope="row" { (when::time(d.created_at, now)) }
                        td data-label="Channel" { (d.channel_name) }
                        td data-label="Event" { (d.event) }
                        td data-label="State" {
                            @match d.state.as_str() {
                                "delivered" => span.status-ok { "Delivered" },
                                "failed" => span.status-bad { "Failed" },
                                _ => span.status-warn { "Pending" },
                            }
                        }
                        td data-label="Attempts" { (d.attempts) }
                        td data-label="Last error" { (d.last_error.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

/// The notice for the page after a test: how its first attempt went.
async fn tested_notice(state: &AppState, member: &Member, id: &str) -> Option<Markup> {
    let sent = log::delivery(&state.db, &member.org_id, id).await.ok()??;
    Some(match sent.state.as_str() {
        "delivered" => notice(&format!(
            "The test notification was delivered to {}.",
            sent.channel_name
        )),
        _ => error_message(&format!(
            "The test notification to {} failed: {}. It is retried on the usual back-off.",
            sent.channel_name,
            sent.last_error.as_deref().unwrap_or("no reason recorded")
        )),
    })
}

/// `GET /orgs/{org}/alerts`.
pub async fn show(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Query(query): Query<AlertsQuery>,
) -> Response {
    let now = state.now();
    let loaded = async {
        Ok::<_, crate::error::Error>((
            log::alerts(&state.db, &member.org_id, SHOWN).await?,
            channels::list(&state.db, &member.org_id).await?,
            log::deliveries(&state.db, &member.org_id, SHOWN).await?,
        ))
    }
    .await;
    let (alerts, channel_list, deliveries) = match loaded {
        Ok(all) => all,
        Err(e) => return layout::failure(&e),
    };
    let mut message = None;
    if let Some(name) = &query.added {
        message = Some(notice(&format!("The channel {name} is added.")));
    }
    if let Some(name) = &query.removed {
        message = Some(notice(&format!("The channel {name} is removed.")));
    }
    if let Some(id) = &query.tested {
        message = tested_notice(&state, &member, id).await;
    }
    let open = alerts.iter().filter(|a| a.cleared_at.is_none()).count();
    let body = html! {
        (org::org_nav(&member, "alerts"))
        @if let Some(message) = &message { (message) }
        h2 { "Alerts" }
        @if open == 0 { p { "Nothing is wrong right now." } }
        @else { (error_message(&format!("{open} open alert(s)."))) }
        @if !alerts.is_empty() { (alert_rows(&alerts, now)) }
        h2 { "Channels" }
        @if channel_list.is_empty() {
            p { "No channel yet: alerts are kept here and in the API, but nobody is told." }
        } @else {
            (channel_rows(&member, &visitor, &channel_list))
        }
        @if member.role >= Role::Admin {
            h2 { "Add a channel" }
            ul {
                li { a href=(member.path("alerts/channels/new?kind=webhook")) { "Add a webhook" } }
                li { a href=(member.path("alerts/channels/new?kind=slack")) { "Add a Slack-compatible webhook" } }
                li { a href=(member.path("alerts/channels/new?kind=email")) { "Add e-mail" } }
            }
        }
        h2 { "Deliveries" }
        @if deliveries.is_empty() { p { "Nothing was sent yet." } }
        @else { (delivery_rows(&deliveries, now)) }
    };
    answer(
        StatusCode::OK,
        page("Alerts", Some(org::nav(&visitor)), body),
    )
}

/// `POST /orgs/{org}/alerts/channels/{channel}/test`: a test notification, sent now.
pub async fn test(
    State(state): State<AppState>,
    OrgPage { member, .. }: OrgPage,
    Path((_, channel)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = member.refused_below(Role::Admin) {
        return refused;
    }
    let now = state.now();
    let id = match delivery::queue_test(&state.db, &member.org_id, &channel, now).await {
        Ok(Some(id)) => id,
        Ok(None) => return layout::not_found(),
        Err(e) => return layout::failure(&e),
    };
    let sent = delivery::send_now(
        &state.db,
        &state.keys,
        &state.reach,
        &member.org_id,
        &id,
        now,
    );
    if let Err(e) = sent.await {
        return layout::failure(&e);
    }
    Redirect::to(&member.path(&format!("alerts?tested={id}"))).into_response()
}

/// The channel `id` of the member's organisation for an admin or owner to change, or the
/// page that says why not (a lower role, no such channel).
async fn channel_to_change(
    state: &AppState,
    member: &Member,
    id: &str,
) -> Result<ChannelInfo, Response> {
    if let Some(refused) = member.refused_below(Role::Admin) {
        return Err(refused);
    }
    match channels::list(&state.db, &member.org_id).await {
        Ok(list) => list
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(layout::not_found),
        Err(e) => Err(layout::failure(&e)),
    }
}

/// `GET /orgs/{org}/alerts/channels/{channel}/remove`: the confirmation, naming it.
pub async fn confirm_remove(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let channel = match channel_to_change(&state, &member, &id).await {
        Ok(channel) => channel,
        Err(answer) => return answer,
    };
    let body = html! {
        (org::org_nav(&member, "alerts"))
        p { "Alerts will no longer go to " (channel.name) " (" (channel.kind) ", " (channel.host) "). Its sealed URL or password is deleted; its deliveries stay in the log, and those not yet sent are dropped." }
        form method="post" action=(member.path(&format!("alerts/channels/{}/remove", channel.id))) {
            (csrf_field(&visitor.csrf))
            div.actions {
                button.danger type="submit" { "Remove " (channel.name) }
                a href=(member.path("alerts")) { "Cancel" }
            }
        }
    };
    answer(
        StatusCode::OK,
        page(
            &format!("Remove {}?", channel.name),
            Some(org::nav(&visitor)),
            body,
        ),
    )
}

/// `POST /orgs/{org}/alerts/channels/{channel}/remove`: `alerts::channels::delete`.
pub async fn remove(
    State(state): State<AppState>,
    OrgPage { member, .. }: OrgPage,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let channel = match channel_to_change(&state, &member, &id).await {
        Ok(channel) => channel,
        Err(answer) => return answer,
    };
    match channels::delete(&state.db, &member.org_id, &id, &member.actor, state.now()).await {
        Ok(true) => {
            let name = percent(&channel.name);
            Redirect::to(&member.path(&format!("alerts?removed={name}"))).into_response()
        }
        Ok(false) => layout::not_found(),
        Err(e) => layout::failure(&e),
    }
}
