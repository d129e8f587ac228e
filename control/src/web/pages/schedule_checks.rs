//! A schedule's checks on its own page: how long a run's backup may take before the
//! database is late (its grace), and its restore drills (after every Nth backup, on
//! which database's server, with which check query). Operators and up change them
//! (`backups::schedules::set_grace`, `backups::drills::set`, both audited); others see
//! them.

use super::org::{Member, OrgPage};
use crate::accounts::roles::Role;
use crate::backups::databases::DatabaseInfo;
use crate::backups::drills::{self, DrillSettings};
use crate::backups::schedules::{self, ScheduleInfo, MAX_GRACE_MINUTES, MIN_GRACE_MINUTES};
use crate::http::AppState;
use crate::web::layout::{self, csrf_field};
use crate::web::session::Visitor;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde::Deserialize;

/// The section: the grace and the drills, as facts or (operators) as forms.
pub(super) fn section(
    (member, visitor): (&Member, &Visitor),
    schedule: &ScheduleInfo,
    settings: Option<&DrillSettings>,
    databases: &[DatabaseInfo],
) -> Markup {
    let path = |what: &str| member.path(&format!("schedules/{}/{what}", schedule.id));
    let name_of = |id: &str| {
        databases
            .iter()
            .find(|d| d.id == id)
            .map_or(id.to_string(), |d| d.name.clone())
    };
    html! {
        h2 { "Late after" }
        p { "A database is late — on the overview, and as a backup_overdue alert — when a run's backup has not finished this long after it was due." }
        @if member.role >= Role::Operator {
            form method="post" action=(path("grace")) {
                (csrf_field(&visitor.csrf))
                div.field {
                    label for="grace_minutes" { "Minutes" }
                    input id="grace_minutes" name="minutes" type="number" min=(MIN_GRACE_MINUTES)
                        max=(MAX_GRACE_MINUTES) value=(schedule.grace_minutes) required;
                }
                div.actions { button type="submit" { "Save the grace" } }
            }
        } @else {
            p { (schedule.grace_minutes) " minutes." }
        }
        h2 { "Restore drills" }
        @match settings {
            Some(s) => p {
                "After every " (s.every) " backup(s), the backup is restored into a throwaway database on the server of "
                strong { (name_of(&s.database_id)) } ", checked and dropped"
                @if let Some(q) = &s.check_query { "; the check: " code { (q) } }
                "."
            },
            None => p { "None: backups of this schedule are not restored to prove them." },
        }
        @if member.role >= Role::Operator {
            form method="post" action=(path("drills")) {
                (csrf_field(&visitor.csrf))
                div.field {
                    label for="drill_every" { "After every N backups (empty: no drills)" }
                    input id="drill_every" name="every" type="number" min="1" max=(drills::MAX_EVERY)
                        value=[settings.map(|s| s.every)];
                }
                div.field {
                    label for="drill_database" { "On the server of" }
                    p.hint id="drill_database-hint" { "The agent of this database creates dbcrate_drill_… next to it (its role needs CREATEDB) and never touches the database itself." }
                    select id="drill_database" name="database_id" aria-describedby="drill_database-hint" {
                        @for d in databases {
                            option value=(d.id) selected[settings.is_some_and(|s| s.database_id == d.id)] { (d.name) }
                        }
                    }
                }
                div.field {
                    label for="drill_check" { "Check query (optional)" }
                    p.hint id="drill_check-hint" { "Run read-only in the restored database; it must return true." }
                    textarea id="drill_check" name="check_query" rows="2" aria-describedby="drill_check-hint" spellcheck="false" {
                        (settings.and_then(|s| s.check_query.as_deref()).unwrap_or(""))
                    }
                }
                div.actions { button type="submit" { "Save the drills" } }
            }
        }
    }
}

/// The grace form.
#[derive(Debug, Deserialize)]
pub struct GraceForm {
    #[serde(default)]
    minutes: String,
}

/// `POST /orgs/{org}/schedules/{schedule}/grace`.
pub async fn set_grace(
    State(state): State<AppState>,
    OrgPage { member, .. }: OrgPage,
    Path((_, id)): Path<(String, String)>,
    Form(form): Form<GraceForm>,
) -> Response {
    if let Some(refused) = member.refused_below(Role::Operator) {
        return refused;
    }
    let Ok(minutes) = form.minutes.trim().parse::<i64>() else {
        return layout::failure(&crate::error::Error::invalid(
            "the grace is a number of minutes",
        ));
    };
    let set = schedules::set_grace(
        &state.db,
        &member.org_id,
        &id,
        minutes,
        &member.actor,
        state.now(),
    );
    back(&member, &id, set.await)
}

/// The drills form: `every` empty turns them off.
#[derive(Debug, Deserialize)]
pub struct DrillsForm {
    #[serde(default)]
    every: String,
    #[serde(default)]
    database_id: String,
    #[serde(default)]
    check_query: String,
}

/// `POST /orgs/{org}/schedules/{schedule}/drills`.
pub async fn set_drills(
    State(state): State<AppState>,
    OrgPage { member, .. }: OrgPage,
    Path((_, id)): Path<(String, String)>,
    Form(form): Form<DrillsForm>,
) -> Response {
    if let Some(refused) = member.refused_below(Role::Operator) {
        return refused;
    }
    let every = form.every.trim();
    let settings = if every.is_empty() {
        None
    } else {
        let Ok(every) = every.parse::<i64>() else {
            return layout::failure(&crate::error::Error::invalid(
                "after every N backups: N is a number",
            ));
        };
        let query = form.check_query.trim();
        Some(DrillSettings {
            every,
            database_id: form.database_id,
            check_query: (!query.is_empty()).then(|| query.to_string()),
        })
    };
    let (db, actor, now) = (&state.db, &member.actor, state.now());
    let set = drills::set(db, &member.org_id, &id, settings.as_ref(), actor, now);
    back(&member, &id, set.await)
}

/// Back to the schedule's page, or the reason it was refused.
fn back(member: &Member, id: &str, outcome: crate::error::Result<bool>) -> Response {
    match outcome {
        Ok(true) => {
            Redirect::to(&member.path(&format!("schedules/{id}?changed=1"))).into_response()
        }
        Ok(false) => layout::not_found(),
        Err(e) => layout::failure(&e),
    }
}
