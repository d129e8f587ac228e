//! Flow 6, schedules and retention: the list; a form (database, destination, cron, time
//! zone, GFS counts) whose "Preview" shows the next runs before anything is saved; a
//! schedule's page with its next runs, what retention does to its backups now — each
//! kept or deleted, and why, from the same planner retention runs — "Run now", and a
//! form that previews and saves other timing and counts or pauses it (viewers may only
//! preview other counts).
//!
//! The same domain calls and roles as `/api/v1/orgs/{org}/schedules…`: any member reads;
//! operators and up add, change and pause schedules and run them now
//! (`backups::schedules::create` and `update`, `backups::scheduler::run_now`, audited).

use super::org::{self, Member, OrgPage};
use crate::accounts::roles::Role;
use crate::backups::databases::{self, DatabaseInfo};
use crate::backups::destinations::{self, DestinationInfo};
use crate::backups::retention::preview;
use crate::backups::schedules::{self, NewSchedule, ScheduleInfo};
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
use dbcrate_core::retention::{LocalCalendar, Rules};
use dbcrate_core::schedule::Schedule;
use maud::{html, Markup};
use serde::Deserialize;

/// How many upcoming runs a preview lists.
const NEXT_RUNS: usize = 5;

/// The GFS counts, as forms and tables name them: field, label.
const COUNTS: [(&str, &str); 5] = [
    ("keep_last", "Last"),
    ("keep_daily", "Daily"),
    ("keep_weekly", "Weekly"),
    ("keep_monthly", "Monthly"),
    ("keep_yearly", "Yearly"),
];

/// The add form, and the counts a schedule page previews.
#[derive(Debug, Default, Deserialize)]
pub struct ScheduleForm {
    #[serde(default)]
    database_id: String,
    #[serde(default)]
    destination_id: String,
    #[serde(default)]
    cron: String,
    #[serde(default)]
    time_zone: String,
    #[serde(default)]
    keep_last: String,
    #[serde(default)]
    keep_daily: String,
    #[serde(default)]
    keep_weekly: String,
    #[serde(default)]
    keep_monthly: String,
    #[serde(default)]
    keep_yearly: String,
    /// `yes` when the "runs on schedule" box is ticked (a schedule's own form).
    #[serde(default)]
    enabled: String,
    /// `preview` or `save`.
    #[serde(default)]
    action: String,
}

impl ScheduleForm {
    fn count(&self, name: &str) -> &str {
        match name {
            "keep_last" => &self.keep_last,
            "keep_daily" => &self.keep_daily,
            "keep_weekly" => &self.keep_weekly,
            "keep_monthly" => &self.keep_monthly,
            _ => &self.keep_yearly,
        }
    }

    /// The counts typed (an empty field is 0).
    fn rules(&self) -> Result<Rules, Error> {
        let parse = |name: &str| {
            let text = self.count(name).trim();
            if text.is_empty() {
                return Ok(0);
            }
            text.parse::<u32>().map_err(|_| {
                Error::invalid(format!(
                    "{name} must be a whole number, 0-{}",
                    schedules::MAX_KEEP
                ))
            })
        };
        Ok(Rules {
            keep_last: parse("keep_last")?,
            keep_daily: parse("keep_daily")?,
            keep_weekly: parse("keep_weekly")?,
            keep_monthly: parse("keep_monthly")?,
            keep_yearly: parse("keep_yearly")?,
        })
    }

    fn zone(&self) -> &str {
        match self.time_zone.trim() {
            "" => "UTC",
            zone => zone,
        }
    }

    /// Whether any count was given (a schedule page previews its own rules otherwise).
    fn has_counts(&self) -> bool {
        COUNTS
            .iter()
            .any(|(name, _)| !self.count(name).trim().is_empty())
    }
}

/// A time in the schedule's zone, with UTC and how far ahead.
fn local_time(schedule: &Schedule, at: i64, now: i64) -> Markup {
    let t = schedule.calendar().local(at);
    html! {
        time datetime=(dbcrate_core::time::rfc3339(at)) {
            (format!("{:04}-{:02}-{:02} {:02}:{:02}", t.year, t.month, t.day, t.hour, t.minute))
            " " (schedule.zone())
        }
        " (" (when::utc(at)) ", " (when::relative(at, now)) ")"
    }
}

/// The next runs of `schedule` after `now`.
fn next_runs(schedule: &Schedule, now: i64) -> Markup {
    let mut runs = Vec::new();
    let mut after = now;
    while runs.len() < NEXT_RUNS {
        let Some(next) = schedule.next_after(after) else {
            break;
        };
        runs.push(next);
        after = next;
    }
    html! {
        @if runs.is_empty() { p { "It never runs." } }
        @else {
            ol.runs { @for at in runs { li { (local_time(schedule, at, now)) } } }
        }
    }
}

fn retention_summary(s: &ScheduleInfo) -> String {
    let parts: Vec<String> = [
        (s.keep_last, "last"),
        (s.keep_daily, "daily"),
        (s.keep_weekly, "weekly"),
        (s.keep_monthly, "monthly"),
        (s.keep_yearly, "yearly"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        "keep everything".into()
    } else {
        format!("keep {}", parts.join(", "))
    }
}

fn named<'a, T>(items: &'a [T], id: &str, of: impl Fn(&T) -> (&str, &str)) -> &'a str
where
    T: 'a,
{
    items
        .iter()
        .map(&of)
        .find(|(item_id, _)| *item_id == id)
        .map_or("unknown", |(_, name)| name)
}

/// The organisation's databases and destinations, for names and choices.
struct Objects {
    databases: Vec<DatabaseInfo>,
    destinations: Vec<DestinationInfo>,
}

impl Objects {
    async fn load(state: &AppState, member: &Member) -> Result<Self, Response> {
        let failed = |e: Error| layout::failure(&e);
        Ok(Self {
            databases: databases::list(&state.db, &member.org_id)
                .await
                .map_err(failed)?,
            destinations: destinations::list(&state.db, &member.org_id)
                .await
                .map_err(failed)?,
        })
    }

    fn database(&self, id: &str) -> &str {
        named(&self.databases, id, |d| (&d.id, &d.name))
    }

    fn destination(&self, id: &str) -> &str {
        named(&self.destinations, id, |d| (&d.id, &d.name))
    }
}

fn select(label: &str, name: &str, options: &[(&str, &str)], chosen: &str) -> Markup {
    html! {
        div.field {
            label for=(name) { (label) }
            select id=(name) name=(name) required {
                @for (value, text) in options {
                    option value=(value) selected[*value == chosen] { (text) }
                }
            }
        }
    }
}

fn count_fields(form: &ScheduleForm) -> Markup {
    html! {
        fieldset.counts {
            legend { "Retention: how many backups to keep (all 0 keeps everything)" }
            @for (name, label) in COUNTS {
                div.field {
                    label for=(name) { (label) }
                    input id=(name) name=(name) type="text" inputmode="numeric" autocomplete="off"
                        value=(form.count(name));
                }
            }
            p.hint {
                "Last keeps the newest N; daily, weekly, monthly and yearly keep the newest backup \
                 of each of the N most recent days, weeks, months and years (in the schedule's \
                 time zone). The newest backup is never deleted, and nothing is while recent \
                 backups fail."
            }
        }
    }
}

fn add_form(member: &Member, visitor: &Visitor, objects: &Objects, form: &ScheduleForm) -> Markup {
    if objects.databases.is_empty() || objects.destinations.is_empty() {
        return html! {
            p {
                "A schedule backs up a database to a destination: add "
                a href=(member.path("databases")) { "a database" } " and "
                a href=(member.path("destinations")) { "a destination" } " first."
            }
        };
    }
    let dbs: Vec<(&str, &str)> = objects
        .databases
        .iter()
        .map(|d| (d.id.as_str(), d.name.as_str()))
        .collect();
    let dsts: Vec<(&str, &str)> = objects
        .destinations
        .iter()
        .map(|d| (d.id.as_str(), d.name.as_str()))
        .collect();
    let mut cron = Field::new("When (cron)", "cron", "text", "off");
    cron.value = Some(&form.cron);
    cron.hint = Some("Five fields — minute hour day month weekday — e.g. 30 2 * * * for 02:30 every day; or @daily, @hourly.");
    let mut zone = Field::new("Time zone", "time_zone", "text", "off");
    zone.value = Some(form.zone());
    zone.hint = Some("An IANA name such as Europe/Berlin; the times above are read in it.");
    html! {
        form method="post" action=(member.path("schedules")) {
            (csrf_field(&visitor.csrf))
            (select("Database", "database_id", &dbs, &form.database_id))
            (select("Destination", "destination_id", &dsts, &form.destination_id))
            (field(cron))
            (field(zone))
            (count_fields(form))
            div.actions {
                button type="submit" name="action" value="preview" { "Preview" }
                button type="submit" name="action" value="save" { "Save" }
            }
        }
    }
}

fn schedule_rows(member: &Member, list: &[ScheduleInfo], objects: &Objects, now: i64) -> Markup {
    html! {
        table.stack {
            caption.hint { "What is backed up where, and when." }
            thead {
                tr {
                    th scope="col" { "Schedule" }
                    th scope="col" { "Database" }
                    th scope="col" { "Destination" }
                    th scope="col" { "When" }
                    th scope="col" { "Next run" }
                    th scope="col" { "Retention" }
                }
            }
            tbody {
                @for s in list {
                    tr {
                        th scope="row" { a href=(member.path(&format!("schedules/{}", s.id))) { (s.id) } }
                        td data-label="Database" { (objects.database(&s.database_id)) }
                        td data-label="Destination" { (objects.destination(&s.destination_id)) }
                        td data-label="When" { code { (s.cron) } " " (s.time_zone) }
                        td data-label="Next run" {
                            @if !s.enabled { "paused" }
                            @else { @match s.next_run_at { Some(at) => (when::time(at, now)), None => "never" } }
                        }
                        td data-label="Retention" { (retention_summary(s)) }
                    }
                }
            }
        }
    }
}

fn list_page(
    member: &Member,
    visitor: &Visitor,
    (list, objects): (&[ScheduleInfo], &Objects),
    form: &ScheduleForm,
    message: Option<Markup>,
    now: i64,
) -> Markup {
    page(
        "Schedules",
        Some(org::nav(visitor)),
        html! {
            (org::org_nav(member, "schedules"))
            @if let Some(message) = &message { (message) }
            @if list.is_empty() { p { "Nothing is scheduled yet." } }
            @else { (schedule_rows(member, list, objects, now)) }
            @if member.role >= Role::Operator {
                h2 { "Add a schedule" }
                (add_form(member, visitor, objects, form))
            }
        },
    )
}

/// `GET /orgs/{org}/schedules`.
pub async fn list(State(state): State<AppState>, OrgPage { visitor, member }: OrgPage) -> Response {
    let now = state.now();
    let objects = match Objects::load(&state, &member).await {
        Ok(objects) => objects,
        Err(failed) => return failed,
    };
    let list = match schedules::list(&state.db, &member.org_id, now).await {
        Ok(list) => list,
        Err(e) => return layout::failure(&e),
    };
    let form = ScheduleForm::default();
    answer(
        StatusCode::OK,
        list_page(&member, &visitor, (&list, &objects), &form, None, now),
    )
}

/// `POST /orgs/{org}/schedules`: "Preview" shows the next runs; "Save" creates it
/// (`backups::schedules::create`) and goes to its page.
pub async fn create(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Form(form): Form<ScheduleForm>,
) -> Response {
    if let Some(refused) = member.refused_below(Role::Operator) {
        return refused;
    }
    let now = state.now();
    let outcome: Result<Option<String>, Error> = async {
        let rules = form.rules()?;
        let parsed =
            Schedule::parse(&form.cron, form.zone()).map_err(|e| Error::invalid(e.to_string()))?;
        if form.action != "save" {
            return Ok(None);
        }
        let new = NewSchedule {
            database_id: &form.database_id,
            destination_id: &form.destination_id,
            cron: parsed.cron(),
            time_zone: parsed.zone(),
            retention: rules,
        };
        let created =
            schedules::create(&state.db, &member.org_id, &new, &member.actor, now).await?;
        Ok(Some(created.id))
    }
    .await;
    let (status, message) = match outcome {
        Ok(Some(id)) => {
            return Redirect::to(&member.path(&format!("schedules/{id}?added=1"))).into_response()
        }
        Ok(None) => {
            let parsed = Schedule::parse(&form.cron, form.zone()).ok();
            let preview = html! {
                (notice("Preview only: nothing is saved until you press Save."))
                h2 { "It would run next at" }
                @if let Some(parsed) = &parsed { (next_runs(parsed, now)) }
            };
            (StatusCode::OK, preview)
        }
        Err(e) => {
            let (status, message) = layout::explain(&e);
            (status, error_message(&message))
        }
    };
    let objects = match Objects::load(&state, &member).await {
        Ok(objects) => objects,
        Err(failed) => return failed,
    };
    let list = match schedules::list(&state.db, &member.org_id, now).await {
        Ok(list) => list,
        Err(e) => return layout::failure(&e),
    };
    let body = list_page(
        &member,
        &visitor,
        (&list, &objects),
        &form,
        Some(message),
        now,
    );
    answer(status, body)
}

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
