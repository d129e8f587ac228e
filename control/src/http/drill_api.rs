//! `/api/v1/orgs/{org}/schedules/{schedule}/drills` and `/api/v1/orgs/{org}/drills`:
//! a schedule's restore drills (set, read, turned off) and every drill's outcome.
//! Reading needs any role; setting them operator or higher, as schedules.

use super::auth::{org_access, Caller};
use super::error::{ApiError, ApiResult};
use super::error_doc::{BodyErrors, OrgErrors};
use super::extract::{Body, Path, Query};
use super::AppState;
use crate::accounts::roles::Role;
use crate::backups::drills::{self, DrillResult, DrillSettings};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `PUT /api/v1/orgs/{org}/schedules/{schedule}/drills`: a drill after every `every`th
/// backup, on the server of `database_id`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Drills {
    /// A query run read-only in the restored database that must return one row whose
    /// first column is true (e.g. `SELECT count(*) > 0 FROM orders`); `null`: none.
    #[serde(default)]
    #[schema(required = true)]
    check_query: Option<String>,
    /// The database whose server and agent run the drills (`dbs_…`): the agent makes
    /// `dbcrate_drill_<job>` next to it (its role needs CREATEDB), never touches it.
    database_id: String,
    /// A drill after every this many successful backups (1–1000; 1: after each).
    every: i64,
}

impl From<DrillSettings> for Drills {
    fn from(s: DrillSettings) -> Self {
        Self {
            every: s.every,
            database_id: s.database_id,
            check_query: s.check_query,
        }
    }
}

/// Sets a schedule's drills.
#[utoipa::path(
    put,
    path = "/api/v1/orgs/{org}/schedules/{schedule}/drills",
    operation_id = "set_schedule_drills",
    tag = "backups",
    summary = "Restore-drill a schedule's backups: after every Nth, into a throwaway database",
    description = "Who: operator or higher (a person or an API token). Backups of the schedule \
        are then made with their tables' row counts, and after every Nth the backup is restored \
        into a throwaway database on the named database's server, compared and dropped. \
        Audited as schedule.drill.",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        ("schedule" = String, Path, description = "The schedule, sch_…"),
    ),
    request_body = Drills,
    responses(
        (status = 200, description = "Set", body = Drills),
        OrgErrors,
        BodyErrors,
    )
)]
pub async fn set_schedule_drills(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, schedule_id)): Path<(String, String)>,
    Body(request): Body<Drills>,
) -> ApiResult<Json<Drills>> {
    let access = org_access(&state, caller, &org_id, Role::Operator).await?;
    let settings = DrillSettings {
        every: request.every,
        database_id: request.database_id,
        check_query: request.check_query.filter(|q| !q.trim().is_empty()),
    };
    let now = state.now();
    let set = drills::set(
        &state.db,
        &org_id,
        &schedule_id,
        Some(&settings),
        &access.actor,
        now,
    );
    if !set.await? {
        return Err(ApiError::not_found());
    }
    Ok(Json(settings.into()))
}

/// Turns a schedule's drills off.
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}/schedules/{schedule}/drills",
    operation_id = "stop_schedule_drills",
    tag = "backups",
    summary = "Stop restore-drilling a schedule's backups",
    description = "Who: operator or higher. Drills already queued still run. Audited as \
        schedule.drill.",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        ("schedule" = String, Path, description = "The schedule, sch_…"),
    ),
    responses(
        (status = 204, description = "Turned off"),
        OrgErrors,
    )
)]
pub async fn stop_schedule_drills(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, schedule_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = org_access(&state, caller, &org_id, Role::Operator).await?;
    let now = state.now();
    if !drills::set(&state.db, &org_id, &schedule_id, None, &access.actor, now).await? {
        return Err(ApiError::not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Which drills to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DrillQuery {
    /// Only the drills of this database's backups (`dbs_…`).
    database_id: Option<String>,
}

/// One drill's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct Drill {
    /// The backup it restored.
    backup_id: String,
    /// Whether the check query returned true (`null`: there is none, or the drill did
    /// not get that far).
    #[schema(required = true)]
    check_query_passed: Option<bool>,
    /// The database that backup is of.
    database_id: String,
    /// Why it failed.
    #[schema(required = true)]
    error: Option<String>,
    /// When it ended (Unix seconds).
    finished_at: i64,
    /// The drill's job, `job_…`.
    job_id: String,
    /// It restored and its checks held.
    passed: bool,
    /// The measured time to restore (globals and pg_restore), when it finished: the
    /// database's recovery time.
    #[schema(required = true)]
    restore_ms: Option<i64>,
    /// Tables whose row counts were compared with those recorded at backup time.
    tables_checked: i64,
}

impl From<DrillResult> for Drill {
    fn from(r: DrillResult) -> Self {
        Self {
            job_id: r.job_id,
            backup_id: r.backup_id,
            database_id: r.database_id,
            passed: r.passed != 0,
            restore_ms: r.restore_ms,
            tables_checked: r.tables_checked,
            check_query_passed: r.check_query_passed.map(|p| p != 0),
            error: r.error,
            finished_at: r.finished_at,
        }
    }
}

/// What `GET /api/v1/orgs/{org}/drills` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct DrillList {
    /// Newest first, at most 200.
    items: Vec<Drill>,
}

/// The organisation's restore drills.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/drills",
    operation_id = "list_drills",
    tag = "backups",
    summary = "Restore drills and their outcomes, newest first",
    description = "Who: any member (viewer or higher).",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        DrillQuery,
    ),
    responses(
        (status = 200, description = "The drills", body = DrillList),
        OrgErrors,
    )
)]
pub async fn list_drills(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Query(query): Query<DrillQuery>,
) -> ApiResult<Json<DrillList>> {
    org_access(&state, caller, &org_id, Role::Viewer).await?;
    let found = drills::results(&state.db, &org_id, query.database_id.as_deref(), 200).await?;
    Ok(Json(DrillList {
        items: found.into_iter().map(Drill::from).collect(),
    }))
}
