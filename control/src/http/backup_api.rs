//! `/api/v1/orgs/{org}/databases…` and `…/schedules…`: what is backed up and when.
//! Reading needs any role; adding databases (they carry credentials) needs admin or
//! owner; adding schedules needs operator or higher. API tokens may do these within
//! their role.

use super::auth::{org_access, Caller};
use super::error::{ApiError, ApiResult};
use super::extract::{Body, Path, SecretField};
use super::AppState;
use crate::backups::databases::{self, NewDatabase};
use crate::backups::destinations::{self, NewDestination};
use crate::backups::schedules::{self, NewSchedule};
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

/// `POST /api/v1/orgs/{org}/destinations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationRequest {
    name: String,
    kind: String,
    settings: Value,
    #[serde(default)]
    credentials: Option<SecretJson>,
}

/// A JSON value holding secrets (keys): redacted in Debug, zeroized when dropped.
pub struct SecretJson(Value);

impl std::fmt::Debug for SecretJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretJson(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for SecretJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Self)
    }
}

impl Drop for SecretJson {
    fn drop(&mut self) {
        fn wipe(v: &mut Value) {
            match v {
                Value::String(s) => zeroize::Zeroize::zeroize(s),
                Value::Array(items) => items.iter_mut().for_each(wipe),
                Value::Object(map) => map.values_mut().for_each(wipe),
                _ => {}
            }
        }
        wipe(&mut self.0);
    }
}

/// Probes a destination and saves it only if every step passed (answering each step's
/// outcome either way).
pub async fn create_destination(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<DestinationRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let access = org_access(&state, caller, &org_id, "admin").await?;
    let new = NewDestination {
        name: &request.name,
        kind: &request.kind,
        settings: &request.settings,
        credentials: request.credentials.as_ref().map(|c| &c.0),
    };
    match destinations::create(
        &state.db,
        &state.keys,
        &state.reach,
        &org_id,
        &new,
        &access.actor,
        state.now(),
    )
    .await?
    {
        Ok((info, report)) => {
            let mut body = json!(info);
            body["probe"] = destinations::report_json(&report);
            Ok((StatusCode::CREATED, Json(body)))
        }
        Err(report) => {
            let why = destinations::first_failure_message(&report)
                .unwrap_or_else(|| "the probe failed".into());
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "probe_failed",
                format!("the destination failed its probe ({why}); nothing was saved"),
            )
            .with_details(json!({ "probe": destinations::report_json(&report) })))
        }
    }
}

/// The organisation's destinations (never their credentials).
pub async fn list_destinations(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Value>> {
    org_access(&state, caller, &org_id, "viewer").await?;
    Ok(Json(
        json!({ "items": destinations::list(&state.db, &org_id).await? }),
    ))
}

/// "Run now": one backup job for the schedule, queued at once.
pub async fn run_schedule_now(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, schedule_id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let access = org_access(&state, caller, &org_id, "operator").await?;
    let job = crate::backups::scheduler::run_now(
        &state.db,
        &org_id,
        &schedule_id,
        &access.actor,
        state.now(),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "job": job }))))
}

/// The organisation's recorded backups, newest first (up to 1,000).
pub async fn list_backups(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<Value>> {
    org_access(&state, caller, &org_id, "viewer").await?;
    let rows = sqlx::query(
        "SELECT b.id, b.database_id, b.destination_id, b.schedule_id, b.object_key, b.size, b.sha256, \
         b.finished_at, b.pg_server_version, b.deleted_at, b.started_at, b.pg_dump_version, \
         b.dump_size, b.duration_ms FROM backups b WHERE b.org_id = $1 \
         ORDER BY b.finished_at DESC, b.id LIMIT 1000",
    )
    .bind(&org_id)
    .fetch_all(state.db.pool())
    .await
    .map_err(crate::error::Error::from)?;
    use sqlx::Row;
    let items = rows
        .iter()
        .map(|r| -> Result<Value, sqlx::Error> {
            Ok(json!({
                "id": r.try_get::<String, _>("id")?,
                "database_id": r.try_get::<String, _>("database_id")?,
                "destination_id": r.try_get::<String, _>("destination_id")?,
                "schedule_id": r.try_get::<Option<String>, _>("schedule_id")?,
                "object_key": r.try_get::<String, _>("object_key")?,
                "size": r.try_get::<i64, _>("size")?,
                "sha256": r.try_get::<String, _>("sha256")?,
                "finished_at": r.try_get::<i64, _>("finished_at")?,
                "pg_server_version": r.try_get::<String, _>("pg_server_version")?,
                "deleted_at": r.try_get::<Option<i64>, _>("deleted_at")?,
                "started_at": r.try_get::<i64, _>("started_at")?,
                "pg_dump_version": r.try_get::<String, _>("pg_dump_version")?,
                "dump_size": r.try_get::<Option<i64>, _>("dump_size")?,
                "duration_ms": r.try_get::<Option<i64>, _>("duration_ms")?,
            }))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(crate::error::Error::from)?;
    Ok(Json(json!({ "items": items })))
}

/// `POST /api/v1/orgs/{org}/restores`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    backup_id: String,
    target_database_id: String,
    /// The customer passphrase, for an organisation whose key is customer-sealed.
    #[serde(default)]
    passphrase: Option<super::extract::SecretField>,
}

/// Queues a managed restore of a backup into a target database (admins and owners:
/// it overwrites what is there).
pub async fn create_restore(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<RestoreRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let access = org_access(&state, caller, &org_id, "admin").await?;
    let passphrase = super::org_api::passphrase_of(request.passphrase)?;
    let job = crate::backups::restores::create_with_passphrase(
        &state.db,
        crate::backups::restores::Access {
            keys: &state.keys,
            reach: &state.reach,
        },
        &org_id,
        &request.backup_id,
        &request.target_database_id,
        passphrase.as_ref(),
        &access.actor,
        state.now(),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "job": job }))))
}
