//! Flow 7, jobs: the organisation's jobs, newest first, filtered by state and database,
//! a page at a time (`backups::history`); and a job's page — what it does, its attempts,
//! the bytes moved and the phase from the agent's heartbeats, and the error text when it
//! failed. While a job is queued or running its page reloads itself every few seconds
//! (a `<meta http-equiv="refresh">`, no script), so progress shows without JavaScript.

use super::org::{self, Member, OrgPage};
use crate::backups::history::{self, After, BackupRecord, JobFilter, JobRecord, PAGE_SIZE};
use crate::backups::jobs::JobState;
use crate::http::AppState;
use crate::web::layout::{self, answer, error_message, notice, page};
use crate::web::units::{bytes, duration};
use crate::web::when;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use dbcrate_core::wire::JobKind;
use maud::{html, Markup};
use serde::Deserialize;

/// How often a running job's page reloads itself, in seconds.
pub const REFRESH_SECS: u32 = 3;

/// A job's state in words (and a class that only repeats them in colour).
pub fn state_text(state: JobState) -> (&'static str, &'static str) {
    match state {
        JobState::Queued => ("Queued", "status-warn"),
        JobState::Running => ("Running", "status-warn"),
        JobState::Succeeded => ("Succeeded", "status-ok"),
        JobState::Failed => ("Failed", "status-bad"),
    }
}

/// The list's filters and page.
#[derive(Debug, Default, Deserialize)]
pub struct JobQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    database: String,
    #[serde(default)]
    after: String,
}

fn filters(member: &Member, query: &JobQuery, databases: &[(String, String)]) -> Markup {
    html! {
        form.filters method="get" action=(member.path("jobs")) {
            div.field {
                label for="state" { "State" }
                select id="state" name="state" {
                    option value="" { "any" }
                    @for state in JobState::ALL {
                        option value=(state.as_str()) selected[query.state == state.as_str()] { (state.as_str()) }
                    }
                }
            }
            div.field {
                label for="database" { "Database" }
                select id="database" name="database" {
                    option value="" { "any" }
                    @for (id, name) in databases {
                        option value=(id) selected[&query.database == id] { (name) }
                    }
                }
            }
            div.actions { button type="submit" { "Show" } }
        }
    }
}

/// The organisation's databases as (id, name), for filters and names.
pub async fn database_names(
    state: &AppState,
    member: &Member,
) -> Result<Vec<(String, String)>, Response> {
    let list = crate::backups::databases::list(&state.db, &member.org_id)
        .await
        .map_err(|e| layout::failure(&e))?;
    Ok(list.into_iter().map(|d| (d.id, d.name)).collect())
}

/// The name of the database `id` among `names`.
pub fn name_of<'a>(names: &'a [(String, String)], id: &str) -> &'a str {
    names
        .iter()
        .find(|(i, _)| i == id)
        .map_or("unknown", |(_, n)| n.as_str())
}

/// `GET /orgs/{org}/jobs`.
pub async fn list(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Query(query): Query<JobQuery>,
) -> Response {
    let names = match database_names(&state, &member).await {
        Ok(names) => names,
        Err(failed) => return failed,
    };
    let after = After::parse(&query.after);
    let filter = JobFilter {
        state: query.state.parse().ok(),
        database_id: Some(query.database.as_str()).filter(|d| !d.is_empty()),
        after: after.as_ref(),
    };
    let jobs = match history::jobs(&state.db, &member.org_id, &filter).await {
        Ok(jobs) => jobs,
        Err(e) => return layout::failure(&e),
    };
    let now = state.now();
    let older = (jobs.len() == PAGE_SIZE).then(|| {
        let last = &jobs[jobs.len() - 1];
        let after = After {
            at: last.created_at,
            id: last.id.clone(),
        };
        member.path(&format!(
            "jobs?state={}&database={}&after={}",
            query.state,
            query.database,
            after.token()
        ))
    });
    let body = html! {
        (org::org_nav(&member, "jobs"))
        (filters(&member, &query, &names))
        @if jobs.is_empty() { p { "No jobs match." } }
        @else {
            table.stack {
                caption.hint { "Jobs, newest first." }
                thead { tr {
                    th scope="col" { "Job" } th scope="col" { "Kind" } th scope="col" { "Database" }
                    th scope="col" { "State" } th scope="col" { "Queued" } th scope="col" { "Moved" }
                } }
                tbody {
                    @for job in &jobs {
                        @let (text, class) = state_text(job.state);
                        tr {
                            th scope="row" { a href=(member.path(&format!("jobs/{}", job.id))) { (job.id) } }
                            td data-label="Kind" { (job.kind) }
                            td data-label="Database" { (name_of(&names, &job.database_id)) }
                            td data-label="State" { span class=(class) { (text) } }
                            td data-label="Queued" { (when::time(job.created_at, now)) }
                            td data-label="Moved" { (bytes(job.progress_bytes)) }
                        }
                    }
                }
            }
        }
        @if let Some(older) = older { p { a href=(older) { "Older jobs" } } }
    };
    answer(StatusCode::OK, page("Jobs", Some(org::nav(&visitor)), body))
}

fn job_facts(job: &JobRecord, names: &[(String, String)], now: i64) -> Markup {
    let (text, class) = state_text(job.state);
    html! {
        dl.facts {
            dt { "State" } dd { span class=(class) { (text) } }
            dt { "Kind" } dd { (job.kind) }
            dt { "Database" } dd { (name_of(names, &job.database_id)) }
            dt { "Attempt" } dd { (job.attempt) " of " (job.max_attempts) }
            dt { "Queued" } dd { (when::time(job.created_at, now)) }
            @if let Some(at) = job.started_at { dt { "Started" } dd { (when::time(at, now)) } }
            @if let Some(at) = job.finished_at { dt { "Finished" } dd { (when::time(at, now)) } }
            dt { "Phase" } dd { (job.phase) }
            // A job too short for a heartbeat moved bytes all the same: no "0 B" then.
            @if job.progress_bytes > 0 || !job.state.is_final() {
                dt { "Moved" } dd { (bytes(job.progress_bytes)) }
            }
        }
    }
}

/// The backup the job made (a backup job) or restores (a restore job), so its page
/// names the object by size and SHA-256 — what a person compares with the storage.
fn backup_facts(job: &JobRecord, backup: &BackupRecord, now: i64) -> Markup {
    let heading = match JobKind::from_name(&job.kind) {
        JobKind::Restore => "The backup it restores",
        JobKind::Drill => "The backup it restores into a throwaway database (a drill)",
        _ => "The backup it made",
    };
    html! {
        h2 { (heading) }
        dl.facts {
            dt { "Backup" } dd { code { (backup.id) } }
            dt { "Finished" } dd { (when::time(backup.finished_at, now)) }
            dt { "Size" } dd { (bytes(backup.size)) }
            dt { "Took" } dd { (duration(backup.duration_ms)) }
            dt { "PostgreSQL" } dd { (backup.pg_server_version) }
            dt { "SHA-256" } dd { code.hash { (backup.sha256) } }
        }
    }
}

/// `GET /orgs/{org}/jobs/{job}`.
pub async fn show(
    State(state): State<AppState>,
    OrgPage { visitor, member }: OrgPage,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    let job = match history::job(&state.db, &member.org_id, &id).await {
        Ok(Some(job)) => job,
        Ok(None) => return layout::not_found(),
        Err(e) => return layout::failure(&e),
    };
    let names = match database_names(&state, &member).await {
        Ok(names) => names,
        Err(failed) => return failed,
    };
    let backup = match history::backup_of_job(&state.db, &member.org_id, &job.id).await {
        Ok(backup) => backup,
        Err(e) => return layout::failure(&e),
    };
    let live = !job.state.is_final();
    let body = html! {
        (org::org_nav(&member, "jobs"))
        @if live {
            (notice(&format!("This page reloads every {REFRESH_SECS} seconds while the job runs.")))
        }
        (job_facts(&job, &names, state.now()))
        @if let Some(backup) = &backup { (backup_facts(&job, backup, state.now())) }
        @if let Some(error) = &job.error {
            (error_message(error))
        }
    };
    let mut response = answer(
        StatusCode::OK,
        page(&format!("Job {}", job.id), Some(org::nav(&visitor)), body),
    );
    if live {
        // The `Refresh` header does what `<meta http-equiv="refresh">` does, without
        // markup in the page's head.
        if let Ok(value) = axum::http::HeaderValue::from_str(&REFRESH_SECS.to_string()) {
            response.headers_mut().insert("refresh", value);
        }
    }
    response
}
