//! Flow 8, the audit log: the organisation's rows newest first, filtered by actor,
//! action and time, 100 a page; exports of every matching row as JSON lines and CSV
//! (links to the API's own export, `GET /api/v1/orgs/{org}/audit?format=…`, which the
//! session cookie authorises for reading); and, on its own page (it reads every row, so
//! a page of rows stays fast), the chain's verification status and head
//! — the newest row's sequence number and hash, to keep somewhere else (a hash chain
//! cut short still verifies; a head saved earlier catches that, see
//! `dbcrate-control audit verify --heads`).
//!
//! Admins and owners, as the API (`audit::query`, `audit::verify`).

use super::org::{self, Member, OrgPage};
use crate::accounts::roles::Role;
use crate::audit::heads::Head;
use crate::audit::query::{self, Filter, Order, DEFAULT_PAGE};
use crate::audit::{self, AuditAction, AuditRow};
use crate::http::AppState;
use crate::web::forms::percent;
use crate::web::layout::{self, answer, error_message, notice, page};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

/// The filters, as the form sends them (dates as `YYYY-MM-DD`, whole UTC days).
#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: String,
}

/// `YYYY-MM-DD` as the start of that UTC day, `days_later` days on.
fn day_start(date: &str, days_later: i64) -> Option<String> {
    let start = dbcrate_core::time::parse_rfc3339(&format!("{date}T00:00:00Z"))?;
    Some(dbcrate_core::time::rfc3339(start + days_later * 86_400))
}

impl AuditQuery {
    /// The domain's filter: `to` includes its whole day.
    fn filter(&self) -> Result<Filter, String> {
        let day = |text: &str, later: i64, name: &str| -> Result<Option<String>, String> {
            if text.is_empty() {
                return Ok(None);
            }
            day_start(text, later)
                .map(Some)
                .ok_or_else(|| format!("{name} must be a date like 2026-12-04"))
        };
        let text = |t: &str| Some(t.trim().to_string()).filter(|t| !t.is_empty());
        Ok(Filter {
            from: day(&self.from, 0, "from")?,
            to: day(&self.to, 1, "to")?,
            action: text(&self.action),
            actor: text(&self.actor),
            before: self.before.parse().ok(),
            order: Order::NewestFirst,
            ..Filter::default()
        })
    }

    /// The filters again, for the next-page link.
    fn params(&self) -> String {
        format!(
            "action={}&actor={}&from={}&to={}",
            percent(&self.action),
            percent(&self.actor),
            percent(&self.from),
            percent(&self.to)
        )
    }
}

fn filters(member: &Member, q: &AuditQuery) -> Markup {
    html! {
        form.filters method="get" action=(member.path("audit")) {
            div.field {
                label for="action" { "Action" }
                select id="action" name="action" {
                    option value="" { "any" }
                    @for action in AuditAction::ALL {
                        option value=(action.as_str()) selected[q.action == action.as_str()] { (action.as_str()) }
                    }
                }
            }
            div.field {
                label for="actor" { "Actor" }
                input id="actor" name="actor" type="text" autocomplete="off" value=(q.actor)
                    placeholder="user:usr_…";
            }
            div.field {
                label for="from" { "From (UTC day)" }
                input id="from" name="from" type="date" value=(q.from);
            }
            div.field {
                label for="to" { "To (UTC day)" }
                input id="to" name="to" type="date" value=(q.to);
            }
            div.actions { button type="submit" { "Show" } }
        }
    }
}

fn rows_table(rows: &[AuditRow]) -> Markup {
    html! {
        table.stack {
            caption.hint { "Audit rows, newest first." }
            thead { tr {
                th scope="col" { "#" } th scope="col" { "When (UTC)" } th scope="col" { "Actor" }
                th scope="col" { "Action" } th scope="col" { "Target" } th scope="col" { "Details" }
            } }
            tbody {
                @for row in rows {
                    tr {
                        th scope="row" { (row.seq) }
                        td data-label="When (UTC)" { (row.at) }
                        td data-label="Actor" { code { (row.actor) } }
                        td data-label="Action" { (row.action) }
                        td data-label="Target" { code { (row.target) } }
                        td data-label="Details" { code.details { (row.details) } }
                    }
                }
            }
        }
    }
}

/// The chain's state: verified (how many rows, the head) or where it breaks.
async fn chain_status(state: &AppState, member: &Member) -> Result<Markup, Response> {
    let failed = |e: sqlx::Error| layout::failure(&crate::error::Error::from(e));
    let verified = audit::verify(&state.db, &member.org_id)
        .await
        .map_err(failed)?;
    let all = audit::rows(&state.db, &member.org_id)
        .await
        .map_err(failed)?;
    Ok(match verified {
        Ok(count) => html! {
            (notice(&format!("The chain verifies: all {count} rows are intact and in order.")))
            @if let Some(head) = Head::of(&all) {
                p { "Its head — keep this line somewhere else to prove later that no row was cut off the end:" }
                pre.command { code { (head.line()) } }
            }
        },
        Err(broken) => html! {
            (error_message(&format!(
                "The chain does not verify at row {}: {}. Rows may have been changed or removed.",
                broken.seq, broken.reason
            )))
        },
    })
}

/// `GET /orgs/{org}/audit/chain`: the whole chain verified, and its head.
pub async fn chain(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
) -> Response {
    if let Some(refused) = member.refused_below(Role::Admin) {
        return refused;
    }
    let status = match chain_status(&state, &member).await {
        Ok(status) => status,
        Err(failed) => return failed,
    };
    let body = html! {
        (org::org_nav(&member, "audit"))
        (status)
        p { a href=(member.path("audit")) { "Back to the rows" } }
    };
    answer(
        StatusCode::OK,
        page("The audit chain", Some(org::nav(&visitor)), body),
    )
}

/// `GET /orgs/{org}/audit`.
pub async fn show(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Query(q): Query<AuditQuery>,
) -> Response {
    if let Some(refused) = member.refused_below(Role::Admin) {
        return refused;
    }
    let filtered = q.filter().map_err(crate::error::Error::invalid);
    let rows = match filtered {
        Ok(filter) => match filter.validate() {
            Ok(()) => query::page(&state.db, &member.org_id, &filter, DEFAULT_PAGE).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let (code, rows, refused) = match rows {
        Ok(rows) => (StatusCode::OK, rows, None),
        Err(e) => {
            let (code, message) = layout::explain(&e);
            (code, Vec::new(), Some(message))
        }
    };
    let params = q.params();
    let api = format!("/api/v1/orgs/{}/audit", member.org_id);
    let older = (rows.len() as i64 == DEFAULT_PAGE)
        .then(|| {
            rows.last()
                .map(|r| member.path(&format!("audit?{params}&before={}", r.seq)))
        })
        .flatten();
    let body = html! {
        (org::org_nav(&member, "audit"))
        p {
            "Every row is chained to the one before by a keyed hash. "
            a href=(member.path("audit/chain")) { "Verify the chain" }
            " (reads every row, so it takes longer than a page)."
        }
        (filters(&member, &q))
        @if let Some(message) = &refused { (error_message(message)) }
        p {
            "Export every matching row: "
            a href=(format!("{api}?format=jsonl&{}", api_params(&q))) download="audit.jsonl" { "JSON lines" }
            " · "
            a href=(format!("{api}?format=csv&{}", api_params(&q))) download="audit.csv" { "CSV" }
        }
        @if rows.is_empty() && refused.is_none() { p { "No rows match." } }
        @else if !rows.is_empty() { (rows_table(&rows)) }
        @if let Some(older) = older { p { a href=(older) { "Older rows" } } }
    };
    answer(code, page("Audit log", Some(org::nav(&visitor)), body))
}

/// The filters as the API's query string wants them (its own names and time form).
fn api_params(q: &AuditQuery) -> String {
    let Ok(filter) = q.filter() else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (name, value) in [
        ("from", &filter.from),
        ("to", &filter.to),
        ("action", &filter.action),
        ("actor", &filter.actor),
    ] {
        if let Some(value) = value {
            parts.push(format!("{name}={}", percent(value)));
        }
    }
    parts.join("&")
}

#[cfg(test)]
mod tests {
    use super::AuditQuery;

    #[test]
    fn days_become_the_domains_times_and_to_includes_its_day() {
        let q = AuditQuery {
            from: "2026-12-01".into(),
            to: "2026-12-04".into(),
            ..Default::default()
        };
        let f = q.filter().unwrap();
        assert_eq!(f.from.as_deref(), Some("2026-12-01T00:00:00Z"));
        assert_eq!(f.to.as_deref(), Some("2026-12-05T00:00:00Z"));
        let bad = AuditQuery {
            from: "12/01/2026".into(),
            ..Default::default()
        };
        assert!(bad.filter().unwrap_err().contains("from must be a date"));
    }
}
