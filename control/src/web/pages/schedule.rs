//! Flow 6, one schedule's page: its next runs, what retention does to its backups now —
//! each kept or deleted, and why, from the same planner retention runs — "Run now", and
//! for operators and up a form that previews and saves other timing and counts or
//! pauses it (`backups::schedules::update`, audited); viewers may only preview other
//! counts. The list and the add form are in `schedules`.

use super::org::{self, Member, OrgPage};
use super::schedule_checks;
use super::schedules::{count_fields, next_runs, retention_summary, Objects, ScheduleForm};
use crate::accounts::roles::Role;
use crate::backups::retention::preview;
use crate::backups::schedules::{self, ScheduleInfo};
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
use dbcrate_core::schedule::Schedule;
use maud::{html, Markup};
use serde::Deserialize;

/// What a schedule page may be told by the page before it.
#[derive(Debug, Deserialize)]
pub struct ScheduleQuery {
    #[serde(default)]
    added: Option<String>,
    #[serde(default)]
    queued: Option<String>,
    #[serde(default)]
    changed: Option<String>,
}

fn plan_rows(plan: &dbcrate_core::retention::Plan, now: i64) -> Markup {
    html! {
        @if plan.recent_failures > 0 {
            (notice(&format!("The last {} backup attempt(s) failed: retention deletes nothing until a backup succeeds again.", plan.recent_failures)))
        }
        @if plan.decisions.is_empty() {
            p { "No backups yet." }
        } @else {
            table.stack {
                caption.hint { "Its backups, newest first, and what retention does with each." }
                thead { tr { th scope="col" { "Finished" } th scope="col" { "Retention" } th scope="col" { "Why" } } }
                tbody {
                    @for d in &plan.decisions {
                        tr {
                            th scope="row" { (when::time(d.finished_at, now)) br; code.id { (d.id) } }
                            td data-label="Retention" {
                                @if d.keep { span.status-ok { "kept" } } @else { span.status-bad { "deleted" } }
                            }
                            td data-label="Why" {
                                @if d.keep {
                                    (d.reasons.iter().map(preview::words).collect::<Vec<_>>().join("; "))
                                } @else { "no rule keeps it" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The form that changes a schedule (operators and up), filled with `form`: timing,
/// counts, whether it runs; "Preview" shows the next runs and what the counts would keep,
/// "Save" changes it (`backups::schedules::update`).
fn change_form(member: &Member, visitor: &Visitor, id: &str, form: &ScheduleForm) -> Markup {
    let mut cron = Field::new("When (cron)", "cron", "text", "off");
    cron.value = Some(&form.cron);
    cron.hint = Some("Five fields — minute hour day month weekday — or @daily, @hourly.");
    let mut zone = Field::new("Time zone", "time_zone", "text", "off");
    zone.value = Some(form.zone());
    html! {
        h2 { "Change this schedule" }
        form method="post" action=(member.path(&format!("schedules/{id}"))) {
            (csrf_field(&visitor.csrf))
            (field(cron))
            (field(zone))
            (count_fields(form))
            div.field.check {
                input type="checkbox" id="enabled" name="enabled" value="yes"
                    aria-describedby="enabled-hint" checked[form.enabled == "yes"];
                label for="enabled" { "Runs on schedule" }
            }
            p.hint id="enabled-hint" {
                "Untick to pause it: a paused schedule makes no backups and its retention \
                 deletes nothing; resumed, it runs from then on."
            }
            div.actions {
                button type="submit" name="action" value="preview" { "Preview" }
                button type="submit" name="action" value="save" { "Save" }
            }
        }
    }
}

/// The form filled with what `schedule` is now.
fn form_of(schedule: &ScheduleInfo) -> ScheduleForm {
    let rules = schedule.rules();
    ScheduleForm {
        cron: schedule.cron.clone(),
        time_zone: schedule.time_zone.clone(),
        keep_last: rules.keep_last.to_string(),
        keep_daily: rules.keep_daily.to_string(),
        keep_weekly: rules.keep_weekly.to_string(),
        keep_monthly: rules.keep_monthly.to_string(),
        keep_yearly: rules.keep_yearly.to_string(),
        enabled: if schedule.enabled { "yes" } else { "" }.to_string(),
        ..ScheduleForm::default()
    }
}

/// What a schedule page shows besides the schedule itself.
struct Shown {
    /// Settings being tried (a preview), or `None` for the schedule's own.
    trial: Option<ScheduleForm>,
    /// A message at the top.
    message: Option<Markup>,
    status: StatusCode,
}

/// The schedule `id` of the member's organisation, or the page that says why not.
async fn find_schedule(
    state: &AppState,
    member: &Member,
    id: &str,
) -> Result<ScheduleInfo, Response> {
    let found = schedules::list(&state.db, &member.org_id, state.now()).await;
    match found.map(|list| list.into_iter().find(|s| s.id == id)) {
        Ok(Some(schedule)) => Ok(schedule),
        Ok(None) => Err(layout::not_found()),
        Err(e) => Err(layout::failure(&e)),
    }
}

/// A schedule's page: its facts, next runs and retention's plan (under the trial's
/// settings when there is one), "Run now", and the change form or the counts to try.
async fn schedule_page(
    state: &AppState,
    (member, visitor): (&Member, &Visitor),
    schedule: &ScheduleInfo,
    shown: Shown,
) -> Response {
    let now = state.now();
    let objects = match Objects::load(state, member).await {
        Ok(objects) => objects,
        Err(failed) => return failed,
    };
    let (form, trying) = match shown.trial {
        Some(trial) => (trial, true),
        None => (form_of(schedule), false),
    };
    let drills =
        match crate::backups::drills::settings(&state.db, &member.org_id, &schedule.id).await {
            Ok(drills) => drills,
            Err(e) => return layout::failure(&e),
        };
    let rules = form.rules().unwrap_or_else(|_| schedule.rules());
    let plan = match preview::preview(&state.db, schedule, &rules, now).await {
        Ok(plan) => plan,
        Err(e) => return layout::failure(&e),
    };
    let timing = Schedule::parse(&form.cron, form.zone())
        .or_else(|_| Schedule::parse(&schedule.cron, &schedule.time_zone))
        .ok();
    let title = format!(
        "{} to {}",
        objects.database(&schedule.database_id),
        objects.destination(&schedule.destination_id)
    );
    let body = html! {
        (org::org_nav(member, "schedules"))
        @if let Some(message) = &shown.message { (message) }
        dl.facts {
            dt { "Schedule" } dd { code { (schedule.id) } }
            dt { "When" } dd { code { (schedule.cron) } " in " (schedule.time_zone) }
            dt { "State" } dd {
                @if schedule.enabled { "Runs on schedule" }
                @else { span.status-warn { "Paused" } ": makes no backups, deletes nothing" }
            }
            dt { "Retention" } dd { (retention_summary(schedule)) }
        }
        @if member.role >= Role::Operator {
            form method="post" action=(member.path(&format!("schedules/{}/run", schedule.id))) {
                (csrf_field(&visitor.csrf))
                div.actions { button type="submit" { "Run now" } }
            }
        }
        @if trying { (notice("A preview: nothing is changed until you press Save.")) }
        h2 { @if trying { "It would run next at" } @else { "Next runs" } }
        @if !schedule.enabled && !trying { p { "None while it is paused." } }
        @else if let Some(timing) = &timing { (next_runs(timing, now)) }
        h2 { @if trying { "What these counts would keep" } @else { "What retention keeps" } }
        (plan_rows(&plan, now))
        @if member.role >= Role::Operator {
            (change_form(member, visitor, &schedule.id, &form))
        } @else {
            h2 { "Try other counts" }
            form method="get" action=(member.path(&format!("schedules/{}", schedule.id))) {
                (count_fields(&form))
                div.actions { button type="submit" { "Preview" } }
            }
        }
        (schedule_checks::section((member, visitor), schedule, drills.as_ref(), &objects.databases))
    };
    answer(shown.status, page(&title, Some(org::nav(visitor)), body))
}

/// `GET /orgs/{org}/schedules/{schedule}`: next runs, retention's plan for its backups
/// (under its counts, or under counts given in the query to try them), "Run now", and
/// for operators and up the form that changes it.
pub async fn show(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Path((_, id)): Path<(String, String)>,
    Query(query): Query<ScheduleQuery>,
    Query(trial): Query<ScheduleForm>,
) -> Response {
    let schedule = match find_schedule(&state, &member, &id).await {
        Ok(schedule) => schedule,
        Err(failed) => return failed,
    };
    let mut message = None;
    if query.added.is_some() {
        message = Some(notice("The schedule is saved."));
    }
    if query.changed.is_some() {
        message = Some(notice("The schedule is changed."));
    }
    if let Some(job) = &query.queued {
        message = Some(notice(&format!("A backup is queued now: job {job}.")));
    }
    let trial = match trial.rules() {
        Ok(_) if trial.has_counts() => Some(ScheduleForm {
            cron: schedule.cron.clone(),
            time_zone: schedule.time_zone.clone(),
            ..trial
        }),
        Ok(_) => None,
        Err(e) => {
            message = Some(error_message(&e.message));
            None
        }
    };
    let shown = Shown {
        trial,
        message,
        status: StatusCode::OK,
    };
    schedule_page(&state, (&member, &visitor), &schedule, shown).await
}

/// `POST /orgs/{org}/schedules/{schedule}`: "Preview" shows the changed settings' next
/// runs and retention plan; "Save" changes the schedule (`backups::schedules::update`,
/// audited). A refused change keeps the form filled.
pub async fn change(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Path((_, id)): Path<(String, String)>,
    Form(form): Form<ScheduleForm>,
) -> Response {
    if let Some(refused) = member.refused_below(Role::Operator) {
        return refused;
    }
    let schedule = match find_schedule(&state, &member, &id).await {
        Ok(schedule) => schedule,
        Err(failed) => return failed,
    };
    let checked = form.rules().and_then(|rules| {
        Schedule::parse(&form.cron, form.zone())
            .map(|_| rules)
            .map_err(|e| Error::invalid(e.to_string()))
    });
    let outcome = match checked {
        Ok(rules) if form.action == "save" => {
            let change = schedules::ScheduleChange {
                cron: &form.cron,
                time_zone: form.zone(),
                retention: rules,
                enabled: form.enabled == "yes",
            };
            schedules::update(
                &state.db,
                &member.org_id,
                &id,
                &change,
                &member.actor,
                state.now(),
            )
            .await
            .map(Some)
        }
        Ok(_) => Ok(None),
        Err(e) => Err(e),
    };
    let shown = match outcome {
        Ok(Some(Some(_))) => {
            return Redirect::to(&member.path(&format!("schedules/{id}?changed=1"))).into_response()
        }
        Ok(Some(None)) => return layout::not_found(),
        Ok(None) => Shown {
            trial: Some(form),
            message: None,
            status: StatusCode::OK,
        },
        Err(e) => {
            let (status, message) = layout::explain(&e);
            Shown {
                trial: Some(form),
                message: Some(error_message(&message)),
                status,
            }
        }
    };
    schedule_page(&state, (&member, &visitor), &schedule, shown).await
}

/// `POST /orgs/{org}/schedules/{schedule}/run`: one backup job now
/// (`backups::scheduler::run_now`, audited), back to the schedule's page.
pub async fn run_now(
    State(state): State<AppState>,
    OrgPage { member, .. }: OrgPage,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = member.refused_below(Role::Operator) {
        return refused;
    }
    let queued = crate::backups::scheduler::run_now(
        &state.db,
        &member.org_id,
        &id,
        &member.actor,
        state.now(),
    )
    .await;
    match queued {
        Ok(job) => {
            Redirect::to(&member.path(&format!("schedules/{id}?queued={job}"))).into_response()
        }
        Err(e) => layout::failure(&e),
    }
}
