//! `/api/v1/orgs/{org}/destinations…`, `…/backups` and `…/restores`: where databases
//! (`database_api`) are backed up (when: `schedule_api`), what was, and restoring it.
//! Reading needs any role; adding destinations needs admin or owner; restores need
//! operator or higher. API tokens may do these within their role.

use super::auth::{org_access, Caller};
use super::error::{ApiError, ApiResult};
use super::error_doc::{BodyErrors, ErrorBody, HttpCode, OrgErrors, ProbeStep};
use super::extract::{Body, Path, Query};
use super::AppState;
use crate::accounts::roles::Role;
use crate::backups::destinations::{self, DestinationInfo, NewDestination};
use crate::backups::history::{self, BackupRecord};
use crate::secrets::SecretJson;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};

/// A destination as the API shows it (its settings, never its credentials).
#[derive(Debug, Serialize, ToSchema)]
pub struct Destination {
    created_at: i64,
    /// Whether credentials are stored.
    has_credentials: bool,
    /// `dst_…`.
    id: String,
    /// `s3`, `sftp` or `directory`.
    kind: String,
    name: String,
    /// The kind's settings, as given.
    #[schema(value_type = Object)]
    settings: Value,
}

impl From<DestinationInfo> for Destination {
    fn from(d: DestinationInfo) -> Self {
        Self {
            created_at: d.created_at,
            has_credentials: d.has_credentials,
            id: d.id,
            kind: d.kind,
            name: d.name,
            settings: d.settings,
        }
    }
}

/// What `GET /api/v1/orgs/{org}/destinations` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct DestinationList {
    items: Vec<Destination>,
}

/// What `POST /api/v1/orgs/{org}/destinations` answers: the destination and each probe
/// step's outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedDestination {
    created_at: i64,
    has_credentials: bool,
    id: String,
    kind: String,
    name: String,
    /// Each step of the probe, in order (all `ok` here).
    #[schema(value_type = Vec<ProbeStep>)]
    probe: Value,
    #[schema(value_type = Object)]
    settings: Value,
}

/// What queueing a job answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobQueued {
    /// The job's id, `job_…`.
    pub(super) job: String,
}

/// A recorded backup.
#[derive(Debug, Serialize, ToSchema)]
pub struct Backup {
    database_id: String,
    /// When retention removed it from storage, if it did.
    #[schema(required = true)]
    deleted_at: Option<i64>,
    destination_id: String,
    /// pg_dump's output before compression and encryption, when the agent said.
    #[schema(required = true)]
    dump_size: Option<i64>,
    /// How long the agent took, when it said.
    #[schema(required = true)]
    duration_ms: Option<i64>,
    finished_at: i64,
    /// The cluster's roles and other globals saved next to it (the object at its key
    /// with `.globals.sql.zst.age` for `.pgdump.zst.age`): their size, or `null` when
    /// none were saved.
    #[schema(required = true)]
    globals_size: Option<i64>,
    /// `bkp_…`.
    id: String,
    /// Its object key, relative to the destination's prefix.
    object_key: String,
    pg_dump_version: String,
    pg_server_version: String,
    /// The schedule that made it (none for a run by hand of a since-deleted schedule).
    #[schema(required = true)]
    schedule_id: Option<String>,
    /// SHA-256 of the stored (encrypted) object, hex.
    sha256: String,
    /// Bytes stored.
    size: i64,
    started_at: i64,
}

impl From<BackupRecord> for Backup {
    fn from(b: BackupRecord) -> Self {
        Self {
            database_id: b.database_id,
            deleted_at: b.deleted_at,
            destination_id: b.destination_id,
            dump_size: b.dump_size,
            duration_ms: b.duration_ms,
            finished_at: b.finished_at,
            globals_size: b.globals_size,
            id: b.id,
            object_key: b.object_key,
            pg_dump_version: b.pg_dump_version,
            pg_server_version: b.pg_server_version,
            schedule_id: b.schedule_id,
            sha256: b.sha256,
            size: b.size,
            started_at: b.started_at,
        }
    }
}

/// What `GET /api/v1/orgs/{org}/backups` answers: one page.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupList {
    items: Vec<Backup>,
    /// The `after` of the next page; none when this page is the last.
    #[schema(required = true)]
    next_after: Option<String>,
}

/// The query string of `GET /api/v1/orgs/{org}/backups`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BackupsQuery {
    /// Backups after this one in the list (`next_after` of the previous page).
    after: Option<String>,
    /// Backups per page, 1 to 1000 (1000 unless given).
    limit: Option<usize>,
}

/// The most backups one page holds.
const MAX_BACKUPS_PAGE: usize = 1000;

/// `POST /api/v1/orgs/{org}/destinations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationRequest {
    name: String,
    /// `s3`, `sftp` or `directory`.
    kind: String,
    /// s3: endpoint, region, bucket, prefix, path_style; sftp: host, port, user, path,
    /// host_key; directory: path.
    #[schema(value_type = Object)]
    settings: Value,
    /// s3: access_key_id, secret_access_key; sftp: private_key; directory: none. Sealed
    /// at once; never shown again.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    credentials: Option<SecretJson>,
}

/// Probes a destination and saves it only if every step passed (answering each step's
/// outcome either way).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/destinations",
    operation_id = "create_destination",
    tag = "backups",
    summary = "Add a destination after a list / write / read / delete probe; writes README-dbcrate.txt at the prefix",
    description = "Who: admin or higher (a person or an API token). A failed probe saves \
        nothing and answers each step's outcome in error.details.probe.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    request_body = DestinationRequest,
    responses(
        (status = 201, description = "Added, with each probe step's outcome", body = CreatedDestination),
        OrgErrors,
        BodyErrors,
        (status = 409, description = "conflict: the name exists", body = ErrorBody),
        (status = 422, description = "probe_failed (error.details.probe has each step), invalid_input, invalid_body", body = ErrorBody),
    )
)]
pub async fn create_destination(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<DestinationRequest>,
) -> ApiResult<(StatusCode, Json<CreatedDestination>)> {
    let access = org_access(&state, caller, &org_id, Role::Admin).await?;
    let new = NewDestination {
        name: &request.name,
        kind: &request.kind,
        settings: &request.settings,
        credentials: request.credentials.as_ref().map(SecretJson::value),
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
            let body = CreatedDestination {
                created_at: info.created_at,
                has_credentials: info.has_credentials,
                id: info.id,
                kind: info.kind,
                name: info.name,
                probe: destinations::report_json(&report),
                settings: info.settings,
            };
            Ok((StatusCode::CREATED, Json(body)))
        }
        Err(report) => {
            let why = destinations::first_failure_message(&report)
                .unwrap_or_else(|| "the probe failed".into());
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                HttpCode::ProbeFailed,
                format!("the destination failed its probe ({why}); nothing was saved"),
            )
            .with_details(json!({ "probe": destinations::report_json(&report) })))
        }
    }
}

/// The organisation's destinations (never their credentials).
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/destinations",
    operation_id = "list_destinations",
    tag = "backups",
    summary = "The organisation's destinations (settings; never credentials)",
    description = "Who: viewer or higher.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    responses(
        (status = 200, description = "Destinations", body = DestinationList),
        OrgErrors,
    )
)]
pub async fn list_destinations(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<DestinationList>> {
    org_access(&state, caller, &org_id, Role::Viewer).await?;
    let items = destinations::list(&state.db, &org_id).await?;
    Ok(Json(DestinationList {
        items: items.into_iter().map(Destination::from).collect(),
    }))
}

/// The organisation's recorded backups, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/backups",
    operation_id = "list_backups",
    tag = "backups",
    summary = "The organisation's recorded backups, newest first, in pages with a next_after cursor",
    description = "Who: viewer or higher. deleted_at is set once retention removed one. \
        Pages hold up to 1000 backups; pass next_after as after for the next one.",
    params(("org" = String, Path, description = "The organisation, org_…"), BackupsQuery),
    responses(
        (status = 200, description = "Backups", body = BackupList),
        OrgErrors,
        (status = 400, description = "invalid_query: an unknown parameter or a wrong type", body = ErrorBody),
        (status = 422, description = "invalid_input: limit outside 1-1000, or an after that no page gave", body = ErrorBody),
    )
)]
pub async fn list_backups(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Query(q): Query<BackupsQuery>,
) -> ApiResult<Json<BackupList>> {
    org_access(&state, caller, &org_id, Role::Viewer).await?;
    let limit = q.limit.unwrap_or(MAX_BACKUPS_PAGE);
    if !(1..=MAX_BACKUPS_PAGE).contains(&limit) {
        return Err(
            crate::error::Error::invalid(format!("limit must be 1 to {MAX_BACKUPS_PAGE}")).into(),
        );
    }
    let after = match q.after.as_deref() {
        None => None,
        Some(token) => Some(history::After::parse(token).ok_or_else(|| {
            crate::error::Error::invalid(
                "after must be the next_after of a previous page (leave it out for the first)",
            )
        })?),
    };
    let filter = history::BackupFilter {
        after: after.as_ref(),
        ..Default::default()
    };
    let records = history::backups(&state.db, &org_id, &filter, limit).await?;
    let next_after = history::next_page(&records, limit).map(|after| after.token());
    let items = records.into_iter().map(Backup::from).collect();
    Ok(Json(BackupList { items, next_after }))
}

/// `POST /api/v1/orgs/{org}/restores`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRequest {
    /// The backup, `bkp_…`.
    backup_id: String,
    /// The database to restore into (what is there is overwritten), `dbs_…`.
    target_database_id: String,
    /// The customer passphrase, for an organisation whose key is customer-sealed.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    passphrase: Option<super::extract::SecretField>,
}

/// Queues a managed restore of a backup into a target database (admins and owners:
/// it overwrites what is there).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/restores",
    operation_id = "create_restore",
    tag = "backups",
    summary = "Managed restore: queue a restore of a recorded backup into a target database",
    description = "Who: admin or higher (a person or an API token). The target's agent gets \
        only this backup's file key, never the organisation key.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    request_body = RestoreRequest,
    responses(
        (status = 202, description = "Queued", body = JobQueued),
        OrgErrors,
        BodyErrors,
        (status = 409, description = "customer_passphrase_required: the organisation key is customer-sealed; send {\"passphrase\": …} (unattended restores are not possible in that mode)", body = ErrorBody),
        (status = 422, description = "invalid_body, invalid_input, or customer_passphrase_invalid (audited)", body = ErrorBody),
        (status = 429, description = "throttled: too many wrong passphrases; wait 15 minutes", body = ErrorBody),
    )
)]
pub async fn create_restore(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<RestoreRequest>,
) -> ApiResult<(StatusCode, Json<JobQueued>)> {
    let access = org_access(&state, caller, &org_id, Role::Admin).await?;
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
    Ok((StatusCode::ACCEPTED, Json(JobQueued { job })))
}
