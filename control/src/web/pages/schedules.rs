//! Flow 6, schedules and retention: the list, and a form (database, destination, cron,
//! time zone, GFS counts) whose "Preview" shows the next runs before anything is saved;
//! with the pieces a schedule's own page (`schedule`) shares.
//!
//! The same domain calls and roles as `/api/v1/orgs/{org}/schedules…`: any member reads;
//! operators and up add, change and pause schedules and run them now
//! (`backups::schedules::create` and `update`, `backups::scheduler::run_now`, audited).

use super::org::{self, Member, OrgPage};
use crate::accounts::roles::Role;
use crate::backups::databases::{self, DatabaseInfo};
use crate::backups::destinations::{self, DestinationInfo};
use crate::backups::schedules::{self, NewSchedule, ScheduleInfo};
use crate::error::Error;
use crate::http::AppState;
use crate::web::forms::{field, Field};
use crate::web::layout::{self, answer, csrf_field, error_message, notice, page};
use crate::web::session::Visitor;
use crate::web::when;
use axum::extract::State;
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
    pub(super) database_id: String,
    #[serde(default)]
    pub(super) destination_id: String,
    #[serde(default)]
    pub(super) cron: String,
    #[serde(default)]
    pub(super) time_zone: String,
    #[serde(default)]
    pub(super) keep_last: String,
    #[serde(default)]
    pub(super) keep_daily: String,
    #[serde(default)]
    pub(super) keep_weekly: String,
    #[serde(default)]
    pub(super) keep_monthly: String,
    #[serde(default)]
    pub(super) keep_yearly: String,
    /// `yes` when the "runs on schedule" box is ticked (a schedule's own form).
    #[serde(default)]
    pub(super) enabled: String,
    /// `preview` or `save`.
    #[serde(default)]
    pub(super) action: String,
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
    pub(super) fn rules(&self) -> Result<Rules, Error> {
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

    pub(super) fn zone(&self) -> &str {
        match self.time_zone.trim() {
            "" => "UTC",
            zone => zone,
        }
    }

    /// Whether any count was given (a schedule page previews its own rules otherwise).
    pub(super) fn has_counts(&self) -> bool {
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
pub(super) fn next_runs(schedule: &Schedule, now: i64) -> Markup {
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

pub(super) fn retention_summary(s: &ScheduleInfo) -> String {
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
pub(super) struct Objects {
    pub(super) databases: Vec<DatabaseInfo>,
    pub(super) destinations: Vec<DestinationInfo>,
}

impl Objects {
    pub(super) async fn load(state: &AppState, member: &Member) -> Result<Self, Response> {
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

    pub(super) fn database(&self, id: &str) -> &str {
        named(&self.databases, id, |d| (&d.id, &d.name))
    }

    pub(super) fn destination(&self, id: &str) -> &str {
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

pub(super) fn count_fields(form: &ScheduleForm) -> Markup {
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
