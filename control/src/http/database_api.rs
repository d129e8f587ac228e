//! `/api/v1/orgs/{org}/databases…`: the databases an organisation backs up, how to reach
//! them and through which agent. Any member reads; admins and owners add and edit (they
//! carry credentials). API tokens may do these within their role. A stored password is
//! never answered: only whether there is one.

use super::auth::{org_access, Caller};
use super::error::{ApiError, ApiResult};
use super::error_doc::{BodyErrors, ErrorBody, OrgErrors};
use super::extract::{Body, Path, SecretField};
use super::AppState;
use crate::accounts::roles::Role;
use crate::backups::databases::{self, DatabaseEdit, DatabaseInfo, NewDatabase, PasswordChange};
use crate::error::Error;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/orgs/{org}/databases`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseRequest {
    /// Unique in the organisation; the folder its backups go in.
    name: String,
    host: String,
    /// 5432 unless given.
    #[serde(default = "default_port")]
    port: i64,
    /// The database's name on the server.
    dbname: String,
    username: String,
    /// libpq's sslmode: `disable`, `prefer` (unless given), `require`, `verify-ca`,
    /// `verify-full`.
    #[serde(default = "default_tls_mode")]
    tls_mode: String,
    /// Sealed at once; never shown again.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<SecretField>,
    /// The agent that reaches it, `agt_…`.
    agent_id: String,
}

/// A database as the API shows it (never its password).
#[derive(Debug, Serialize, ToSchema)]
pub struct Database {
    /// The agent that reaches it.
    agent_id: String,
    created_at: i64,
    dbname: String,
    /// Whether a password is stored.
    has_password: bool,
    host: String,
    /// `dbs_…`.
    id: String,
    name: String,
    port: i64,
    /// libpq's sslmode.
    tls_mode: String,
    username: String,
}

impl From<DatabaseInfo> for Database {
    fn from(d: DatabaseInfo) -> Self {
        Self {
            agent_id: d.agent_id,
            created_at: d.created_at,
            dbname: d.dbname,
            has_password: d.has_password,
            host: d.host,
            id: d.id,
            name: d.name,
            port: d.port,
            tls_mode: d.tls_mode,
            username: d.username,
        }
    }
}

/// What `GET /api/v1/orgs/{org}/databases` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseList {
    items: Vec<Database>,
}

fn default_port() -> i64 {
    5432
}

fn default_tls_mode() -> String {
    "prefer".into()
}

/// Adds a database (its password sealed).
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/databases",
    operation_id = "create_database",
    tag = "backups",
    summary = "Add a database the given agent reaches; the password is sealed",
    description = "Who: admin or higher (a person or an API token).",
    params(("org" = String, Path, description = "The organisation, org_…")),
    request_body = DatabaseRequest,
    responses(
        (status = 201, description = "Added", body = Database),
        OrgErrors,
        BodyErrors,
        (status = 409, description = "conflict: the name exists", body = ErrorBody),
    )
)]
pub async fn create_database(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<DatabaseRequest>,
) -> ApiResult<(StatusCode, Json<Database>)> {
    let access = org_access(&state, caller, &org_id, Role::Admin).await?;
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
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// The organisation's databases.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/databases",
    operation_id = "list_databases",
    tag = "backups",
    summary = "The organisation's databases (never their passwords)",
    description = "Who: viewer or higher.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    responses(
        (status = 200, description = "Databases", body = DatabaseList),
        OrgErrors,
    )
)]
pub async fn list_databases(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<DatabaseList>> {
    org_access(&state, caller, &org_id, Role::Viewer).await?;
    let items = databases::list(&state.db, &org_id).await?;
    Ok(Json(DatabaseList {
        items: items.into_iter().map(Database::from).collect(),
    }))
}

/// One database.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/databases/{database}",
    operation_id = "show_database",
    tag = "backups",
    summary = "One database",
    description = "Who: viewer or higher.",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        ("database" = String, Path, description = "The database, dbs_…"),
    ),
    responses(
        (status = 200, description = "The database", body = Database),
        OrgErrors,
    )
)]
pub async fn show_database(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, id)): Path<(String, String)>,
) -> ApiResult<Json<Database>> {
    org_access(&state, caller, &org_id, Role::Viewer).await?;
    let found = databases::get(&state.db, &org_id, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(found.into()))
}

/// `PUT /api/v1/orgs/{org}/databases/{database}`: everything but the name (the folder
/// its backups go into).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseEditRequest {
    host: String,
    /// 5432 unless given.
    #[serde(default = "default_port")]
    port: i64,
    /// The database's name on the server.
    dbname: String,
    username: String,
    /// libpq's sslmode: `disable`, `prefer` (unless given), `require`, `verify-ca`,
    /// `verify-full`.
    #[serde(default = "default_tls_mode")]
    tls_mode: String,
    /// A new password, sealed at once, replacing the stored one. Leave it out to keep
    /// the stored one.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<SecretField>,
    /// `true`: the server wants no password any more; the stored one is deleted.
    #[serde(default)]
    remove_password: bool,
    /// The agent that reaches it, `agt_…`.
    agent_id: String,
}

/// Edits a database: where it is reached, as whom, through which agent, its password.
#[utoipa::path(
    put,
    path = "/api/v1/orgs/{org}/databases/{database}",
    operation_id = "update_database",
    tag = "backups",
    summary = "Edit a database (all but its name); its password is kept unless replaced or removed",
    description = "Who: admin or higher (a person or an API token). Audited as database.update, \
                   with what happened to the password (kept, replaced, removed), never it.",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        ("database" = String, Path, description = "The database, dbs_…"),
    ),
    request_body = DatabaseEditRequest,
    responses(
        (status = 200, description = "Saved", body = Database),
        OrgErrors,
        BodyErrors,
    )
)]
pub async fn update_database(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, id)): Path<(String, String)>,
    Body(request): Body<DatabaseEditRequest>,
) -> ApiResult<Json<Database>> {
    let access = org_access(&state, caller, &org_id, Role::Admin).await?;
    let password = match (&request.password, request.remove_password) {
        (Some(_), true) => {
            return Err(
                Error::invalid("give either password or remove_password: true, not both").into(),
            )
        }
        (Some(password), false) => PasswordChange::Set(&password.0),
        (None, true) => PasswordChange::Remove,
        (None, false) => PasswordChange::Keep,
    };
    let edit = DatabaseEdit {
        host: &request.host,
        port: request.port,
        dbname: &request.dbname,
        username: &request.username,
        tls_mode: &request.tls_mode,
        agent_id: &request.agent_id,
        password,
    };
    let now = state.now();
    let saved = databases::update(
        &state.db,
        &state.keys,
        &org_id,
        &id,
        &edit,
        &access.actor,
        now,
    )
    .await?;
    Ok(Json(saved.into()))
}
