//! `/api/v1/orgs/{org}/databases…` and `…/schedules…`: what is backed up and when.
//! Reading needs any role; adding databases (they carry credentials) needs admin or
//! owner; adding schedules needs operator or higher. API tokens may do these within
//! their role.

use super::auth::{org_access, Caller};
use super::error::{ApiError, ApiResult};
use super::extract::{Body, Path, SecretField};
use super::AppState;
use crate::databases::{self, NewDatabase};
use crate::schedules::{self, NewSchedule};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use dbcrate_core::retention::Rules;
use serde::Deserialize;
use serde_json::{json, Value};

/// `POST /api/v1/orgs/{org}/databases`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseRequest {
    name: String,
    host: String,
    #[serde(default = "default_port")]
    port: i64,
    dbname: String,
    username: String,
    #[serde(default = "default_tls_mode")]
    tls_mode: String,
    #[serde(default)]
    password: Option<SecretField>,
    agent_id: String,
}

fn default_port() -> i64 {
    5432
}

fn default_tls_mode() -> String {
    "prefer".into()
}

/// Adds a database (its password sealed).
pub async fn create_database(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<DatabaseRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let access = org_access(&state, caller, &org_id, "admin").await?;
    let new = NewDatabase {
        name: &request.name,
        host: &request.host,
        port: request.port,
        dbname: &request.dbname,
        username: &request.username,
        tls_mode: &request.tls_mode,
        password: request.password.as_ref().map(|p| &p.0),
        agent_id: &request.agent_id,
    };
    let created = databases::create(
        &state.db,
        &state.keys,
        &org_id,
        &new,
        &access.actor,
        state.now(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!(created))))
}

/// The organisation's databases.
pub async fn list_databases(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Value>> {
    org_access(&state, caller, &org_id, "viewer").await?;
    Ok(Json(
        json!({ "items": databases::list(&state.db, &org_id).await? }),
    ))
}

/// One database.
pub async fn show_database(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    org_access(&state, caller, &org_id, "viewer").await?;
    let found = databases::get(&state.db, &org_id, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(json!(found)))
}

/// `POST /api/v1/orgs/{org}/schedules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    database_id: String,
    destination_id: String,
    cron: String,
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
pub async fn create_schedule(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<ScheduleRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let access = org_access(&state, caller, &org_id, "operator").await?;
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
    Ok((StatusCode::CREATED, Json(json!(created))))
}

/// The organisation's schedules with their next run.
pub async fn list_schedules(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Value>> {
    org_access(&state, caller, &org_id, "viewer").await?;
    let items = schedules::list(&state.db, &org_id, state.now()).await?;
    Ok(Json(json!({ "items": items })))
}
