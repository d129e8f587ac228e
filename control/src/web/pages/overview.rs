//! Flow 2, the overview: the organisation's health at a glance. Per database the time
//! since its last successful backup against its schedule — "late" (in words, not only
//! colour) once a scheduled run has not produced a backup within an hour, i.e. the
//! recovery point objective is breached — with charts of its recent backups' sizes and
//! durations; jobs that failed in the last week; agents online, offline and never
//! connected, and certificates near their end; what each destination holds.
//! (`backups::overview`, `agents::list`.) Any member.

use super::org::{self, OrgPage};
use crate::agents::{self, presence};
use crate::backups::overview::{self, DatabaseHealth};
use crate::http::AppState;
use crate::web::chart::sparkline;
use crate::web::layout::{self, answer, notice, page};
use crate::web::units::{bytes, duration};
use crate::web::when;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};

/// A certificate this close to its end is flagged (agents renew at four fifths of it).
const EXPIRY_WARNING_SECS: i64 = 3 * 3600;

fn recovery_point(d: &DatabaseHealth, now: i64) -> Markup {
    html! {
        @match (d.late_since, d.last_success) {
            (Some(due), _) => { span.status-bad { "Late" } " — a backup was due " (when::time(due, now)) },
            (None, Some(_)) if d.scheduled => { span.status-ok { "On schedule" } },
            (None, _) if !d.scheduled => { span.status-warn { "Not scheduled" } },
            _ => { span.status-warn { "Waiting for its first backup" } },
        }
        br;
        "Last backup: "
        @match d.last_success { Some(at) => (when::time(at, now)), None => "never" }
        @if let Some(drill) = &d.last_drill {
            br;
            "Last restore drill: "
            @if drill.passed != 0 {
                span.status-ok { "restored" } " in " (duration(drill.restore_ms))
            } @else {
                span.status-bad { "failed" }
            }
            " (" (when::time(drill.finished_at, now)) ")"
        }
    }
}

fn charts(d: &DatabaseHealth) -> Markup {
    if d.recent.is_empty() {
        return html! { "no backups yet" };
    }
    let sizes: Vec<f64> = d.recent.iter().map(|(_, size, _)| *size as f64).collect();
    let times: Vec<f64> = d
        .recent
        .iter()
        .filter_map(|(_, _, ms)| ms.map(|m| m as f64 / 1000.0))
        .collect();
    let (low, high) = d.recent.iter().fold((i64::MAX, 0), |(lo, hi), (_, s, _)| {
        (lo.min(*s), hi.max(*s))
    });
    let size_words = format!(
        "Size of the last {} backups: from {} to {}, newest {}",
        d.recent.len(),
        bytes(low),
        bytes(high),
        bytes(d.recent.last().map_or(0, |p| p.1))
    );
    let time_words = match times.last() {
        Some(last) => format!(
            "Duration of the last {} backups: longest {:.1} s, newest {last:.1} s",
            times.len(),
            times.iter().copied().fold(0.0_f64, f64::max)
        ),
        None => "Durations not reported".into(),
    };
    html! {
        figure.chart {
            (sparkline(&sizes, &size_words))
            figcaption { (size_words) }
        }
        @if !times.is_empty() {
            figure.chart {
                (sparkline(&times, &time_words))
                figcaption { (time_words) }
            }
        }
    }
}

/// `GET /orgs/{org}`.
pub async fn show(State(state): State<AppState>, OrgPage { visitor, member }: OrgPage) -> Response {
    let now = state.now();
    let loaded = async {
        Ok::<_, crate::error::Error>((
            overview::databases(&state.db, &member.org_id, now).await?,
            overview::failures(&state.db, &member.org_id, now).await?,
            overview::stored(&state.db, &member.org_id).await?,
            agents::list(&state.db, &member.org_id).await?,
        ))
    }
    .await;
    let (databases, failures, stored, agent_list) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return layout::failure(&e),
    };
    let live: Vec<_> = agent_list
        .iter()
        .filter(|a| a.revoked_at.is_none())
        .collect();
    let online = live
        .iter()
        .filter(|a| presence::is_online(a.last_seen_at, now))
        .count();
    let never = live.iter().filter(|a| a.last_seen_at.is_none()).count();
    let expiring: Vec<_> = live
        .iter()
        .filter(|a| {
            a.certificate_not_after
                .is_some_and(|end| end - now <= EXPIRY_WARNING_SECS)
        })
        .collect();
    let late = databases.iter().filter(|d| d.late_since.is_some()).count();
    let body = html! {
        (org::org_nav(&member, ""))
        @if late > 0 {
            (layout::error_message(&format!("{late} database(s) late: a scheduled backup has not happened.")))
        } @else if !databases.is_empty() {
            (notice("Every scheduled database is on schedule."))
        }
        h2 { "Databases" }
        @if databases.is_empty() {
            p { "No database yet. " a href=(member.path("databases")) { "Add one" } "." }
        } @else {
            table.stack {
                caption.hint { "Each database's recovery point, its measured time to restore (its newest drill) and its recent backups." }
                thead { tr { th scope="col" { "Database" } th scope="col" { "Recovery point" } th scope="col" { "Recent backups" } } }
                tbody {
                    @for d in &databases {
                        tr {
                            th scope="row" { (d.name) }
                            td data-label="Recovery point" { (recovery_point(d, now)) }
                            td data-label="Recent backups" { (charts(d)) }
                        }
                    }
                }
            }
        }
        h2 { "Failed jobs (last 7 days)" }
        @if failures.is_empty() { p { "None." } }
        @else {
            ul {
                @for f in &failures {
                    li {
                        a href=(member.path(&format!("jobs/{}", f.id))) { (f.kind) " of " (f.database) }
                        " failed " (when::time(f.finished_at, now))
                        @if let Some(error) = &f.error { ": " (error) }
                    }
                }
            }
        }
        h2 { "Agents" }
        p {
            (online) " online, " (live.len() - online - never) " offline, " (never) " never connected"
            " (" a href=(member.path("agents")) { "agents" } ")."
        }
        @if !expiring.is_empty() {
            ul {
                @for a in &expiring {
                    li {
                        strong { "Certificate ending: " } (a.name) " — "
                        (when::time(a.certificate_not_after.unwrap_or(now), now))
                        ", not renewed yet"
                    }
                }
            }
        }
        h2 { "Stored" }
        @if stored.is_empty() { p { "No destination yet." } }
        @else {
            ul {
                @for s in &stored {
                    li { strong { (s.name) } ": " (s.backups) " backups, " (bytes(s.bytes)) }
                }
            }
        }
    };
    answer(
        StatusCode::OK,
        page(&member.org_name, Some(org::nav(&visitor)), body),
    )
}
