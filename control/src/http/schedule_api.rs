//! `/api/v1/orgs/{org}/schedules…`: when a database is backed up where, with which
//! retention; changing, pausing and running one now. Reading needs any role; the rest
//! operator or higher (API tokens within their role), as the dashboard.

use super::auth::{org_access, Caller};
use super::backup_api::JobQueued;
use super::error::{ApiError, ApiResult};
use super::error_doc::{BodyErrors, OrgErrors};
use super::extract::{Body, Path};
use super::AppState;
use crate::accounts::roles::Role;
use crate::backups::schedules::{self, NewSchedule, ScheduleChange, ScheduleInfo};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use dbcrate_core::retention::Rules;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A schedule as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Schedule {
    /// A cron expression (5 fields or `@daily`…), in `time_zone`.
    cron: String,
    database_id: String,
    destination_id: String,
    /// Whether it fires.
    enabled: bool,
    /// How long after a run its backup may take before the database is late (the
    /// `backup_overdue` alert), in minutes; 60 unless set.
    grace_minutes: i64,
    /// `sch_…`.
    id: String,
    /// Daily buckets kept.
    keep_daily: i64,
    /// The newest N kept.
    keep_last: i64,
    keep_monthly: i64,
    /// ISO-week buckets kept.
    keep_weekly: i64,
    keep_yearly: i64,
    /// When it fires next (Unix seconds), if ever.
    #[schema(required = true)]
    next_run_at: Option<i64>,
    /// An IANA time zone.
    time_zone: String,
}

impl From<ScheduleInfo> for Schedule {
    fn from(s: ScheduleInfo) -> Self {
        Self {
            cron: s.cron,
            database_id: s.database_id,
            destination_id: s.destination_id,
            enabled: s.enabled,
            id: s.id,
            keep_daily: s.keep_daily,
            keep_last: s.keep_last,
            keep_monthly: s.keep_monthly,
            keep_weekly: s.keep_weekly,
            keep_yearly: s.keep_yearly,
            next_run_at: s.next_run_at,
            time_zone: s.time_zone,
            grace_minutes: s.grace_minutes,
        }
    }
}

/// What `GET /api/v1/orgs/{org}/schedules` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleList {
    items: Vec<Schedule>,
}

/// `POST /api/v1/orgs/{org}/schedules`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    database_id: String,
    destination_id: String,
    /// A cron expression: 5 fields, or `@daily`, `@hourly`…
    cron: String,
    /// An IANA time zone; `UTC` unless given.
    #[serde(default = "default_zone")]
    time_zone: String,
    #[serde(default)]
    keep_last: u32,
    #[serde(default)]
    keep_daily: u32,
    #[serde(default)]
    keep_weekly: u32,
    #[serde(default)]
    keep_monthly: u32,
    #[serde(default)]
    keep_yearly: u32,
}

fn default_zone() -> String {
    "UTC".into()
}

/// Adds a schedule.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/schedules",
    operation_id = "create_schedule",
    tag = "backups",
    summary = "Add a schedule: cron (5 fields or @daily…) in an IANA time zone, with GFS retention counts",
    description = "Who: operator or higher (a person or an API token).",
    params(("org" = String, Path, description = "The organisation, org_…")),
    request_body = ScheduleRequest,
    responses(
        (status = 201, description = "Added", body = Schedule),
        OrgErrors,
        BodyErrors,
    )
)]
pub async fn create_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<ScheduleRequest>,
) -> ApiResult<(StatusCode, Json<Schedule>)> {
    let access = org_access(&state, caller, &org_id, Role::Operator).await?;
    let new = NewSchedule {
        database_id: &request.database_id,
        destination_id: &request.destination_id,
        cron: &request.cron,
        time_zone: &request.time_zone,
        retention: Rules {
            keep_last: request.keep_last,
            keep_daily: request.keep_daily,
            keep_weekly: request.keep_weekly,
            keep_monthly: request.keep_monthly,
            keep_yearly: request.keep_yearly,
        },
    };
    let created = schedules::create(&state.db, &org_id, &new, &access.actor, state.now()).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// The organisation's schedules with their next run.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/schedules",
    operation_id = "list_schedules",
    tag = "backups",
    summary = "The organisation's schedules with their next run",
    description = "Who: viewer or higher.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    responses(
        (status = 200, description = "Schedules", body = ScheduleList),
        OrgErrors,
    )
)]
pub async fn list_schedules(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<ScheduleList>> {
    org_access(&state, caller, &org_id, Role::Viewer).await?;
    let items = schedules::list(&state.db, &org_id, state.now()).await?;
    Ok(Json(ScheduleList {
        items: items.into_iter().map(Schedule::from).collect(),
    }))
}

/// `PUT /api/v1/orgs/{org}/schedules/{schedule}`: every setting but the database and
/// destination (another pair is another schedule), all given.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleChangeRequest {
    /// A cron expression: 5 fields, or `@daily`, `@hourly`…
    cron: String,
    /// An IANA time zone.
    time_zone: String,
    keep_last: u32,
    keep_daily: u32,
    keep_weekly: u32,
    keep_monthly: u32,
    keep_yearly: u32,
    /// `false` pauses it: no backups, and its retention deletes nothing.
    enabled: bool,
}

/// Changes a schedule.
#[utoipa::path(
    put,
    path = "/api/v1/orgs/{org}/schedules/{schedule}",
    operation_id = "update_schedule",
    tag = "backups",
    summary = "Change a schedule's cron, time zone and retention counts, or pause and resume it",
    description = "Who: operator or higher (a person or an API token). A new cron or zone, \
        and a resumed schedule, count from the change: no job for earlier slots. Audited as \
        schedule.update with the settings before and after.",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        ("schedule" = String, Path, description = "The schedule, sch_…"),
    ),
    request_body = ScheduleChangeRequest,
    responses(
        (status = 200, description = "Changed", body = Schedule),
        OrgErrors,
        BodyErrors,
    )
)]
pub async fn update_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, schedule_id)): Path<(String, String)>,
    Body(request): Body<ScheduleChangeRequest>,
) -> ApiResult<Json<Schedule>> {
    let access = org_access(&state, caller, &org_id, Role::Operator).await?;
    let change = ScheduleChange {
        cron: &request.cron,
        time_zone: &request.time_zone,
        retention: Rules {
            keep_last: request.keep_last,
            keep_daily: request.keep_daily,
            keep_weekly: request.keep_weekly,
            keep_monthly: request.keep_monthly,
            keep_yearly: request.keep_yearly,
        },
        enabled: request.enabled,
    };
    let now = state.now();
    let changed = schedules::update(
        &state.db,
        &org_id,
        &schedule_id,
        &change,
        &access.actor,
        now,
    )
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(Json(changed.into()))
}

/// "Run now": one backup job for the schedule, queued at once.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/schedules/{schedule}/run",
    operation_id = "run_schedule_now",
    tag = "backups",
    summary = "Run now: queue one backup job for the schedule at once",
    description = "Who: operator or higher (a person or an API token).",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        ("schedule" = String, Path, description = "The schedule, sch_…"),
    ),
    responses(
        (status = 202, description = "Queued", body = JobQueued),
        OrgErrors,
    )
)]
pub async fn run_schedule_now(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, schedule_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<JobQueued>)> {
    let access = org_access(&state, caller, &org_id, Role::Operator).await?;
    let job = crate::backups::scheduler::run_now(
        &state.db,
        &org_id,
        &schedule_id,
        &access.actor,
        state.now(),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(JobQueued { job })))
}

/// `PUT /api/v1/orgs/{org}/schedules/{schedule}/grace`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GraceRequest {
    /// Minutes a run's backup may take before the database is late (5 to 10080).
    minutes: i64,
}

/// Sets how late a schedule's backup may be before it is overdue.
#[utoipa::path(
    put,
    path = "/api/v1/orgs/{org}/schedules/{schedule}/grace",
    operation_id = "set_schedule_grace",
    tag = "backups",
    summary = "Set how long a run's backup may take before the database counts as late",
    description = "Who: operator or higher (a person or an API token). The recovery point \
        objective: a database is late — the overview's Late, the backup_overdue alert, the \
        metrics' deadline — when its schedule's next run after its newest backup plus this \
        grace has passed. Audited as schedule.update with the grace before and after.",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        ("schedule" = String, Path, description = "The schedule, sch_…"),
    ),
    request_body = GraceRequest,
    responses(
        (status = 200, description = "Set", body = Schedule),
        OrgErrors,
        BodyErrors,
    )
)]
pub async fn set_schedule_grace(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, schedule_id)): Path<(String, String)>,
    Body(request): Body<GraceRequest>,
) -> ApiResult<Json<Schedule>> {
    let access = org_access(&state, caller, &org_id, Role::Operator).await?;
    let now = state.now();
    let (db, actor) = (&state.db, &access.actor);
    if !schedules::set_grace(db, &org_id, &schedule_id, request.minutes, actor, now).await? {
        return Err(ApiError::not_found());
    }
    let schedule = schedules::get(db, &org_id, &schedule_id, now).await?;
    Ok(Json(schedule.ok_or_else(ApiError::not_found)?.into()))
}
