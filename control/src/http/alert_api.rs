//! `/api/v1/orgs/{org}/alert-channels…`, `…/alerts` and `…/alert-deliveries`: where an
//! organisation's alerts go, what they were and what was sent. Any member reads the
//! alerts and the delivery log and sees the channels (by host: a URL carries a token
//! and is never answered); admins and owners add and remove channels and send a test
//! notification. Adding and removing is audited; a webhook's signing key is answered
//! once, when it is made.

use super::auth::{org_access, Caller};
use super::error::{ApiError, ApiResult};
use super::error_doc::{BodyErrors, ErrorBody, OrgErrors};
use super::extract::{Body, Path, SecretField};
use super::AppState;
use crate::accounts::roles::Role;
use crate::alerts::channels::{self, ChannelInfo, ChannelKind, EmailSettings, NewChannel, Target};
use crate::alerts::delivery;
use crate::alerts::log::{self, AlertRecord, DeliveryRecord};
use crate::error::Error;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How many alerts and deliveries the lists answer.
const LIST_LIMIT: i64 = 200;

/// `POST /api/v1/orgs/{org}/alert-channels`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertChannelRequest {
    /// Unique in the organisation.
    name: String,
    /// `webhook` (a signed JSON body), `slack` (a Slack-compatible incoming webhook) or
    /// `email` (SMTP).
    kind: String,
    /// For `webhook` and `slack`: `https://…` (or `http://` to a loopback address);
    /// sealed at once, never answered.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    url: Option<SecretField>,
    /// For `email`: the server and the message's addresses.
    #[serde(default)]
    smtp: Option<SmtpRequest>,
}

/// An e-mail channel's server and addresses.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmtpRequest {
    /// The SMTP server's host name (its certificate must name it).
    host: String,
    /// 587 for `starttls`, 465 for `implicit`.
    port: u16,
    /// `starttls` (required on the plain connection) or `implicit` (TLS from the first
    /// byte).
    security: String,
    /// The account, if the server wants AUTH (with `password`).
    #[serde(default)]
    username: Option<String>,
    /// Sealed at once; never answered.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<SecretField>,
    /// The sender address.
    from: String,
    /// 1 to 20 recipients.
    to: Vec<String>,
    /// A CA certificate (PEM) to trust besides the system's, for a private relay.
    #[serde(default)]
    ca_pem: Option<String>,
}

/// A channel as the API shows it (never its URL).
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertChannel {
    created_at: i64,
    /// The host deliveries go to.
    host: String,
    /// `ach_…`.
    id: String,
    /// `webhook` or `slack`.
    kind: String,
    name: String,
}

impl From<ChannelInfo> for AlertChannel {
    fn from(c: ChannelInfo) -> Self {
        Self {
            created_at: c.created_at,
            host: c.host,
            id: c.id,
            kind: c.kind,
            name: c.name,
        }
    }
}

/// What adding a channel answers: the channel and, for a webhook, its signing key — here
/// only, never again.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedAlertChannel {
    channel: AlertChannel,
    /// `dbcwh_…`: the HMAC-SHA256 key `X-Dbcrate-Signature` is made with (webhooks only).
    #[schema(required = true)]
    signing_key: Option<String>,
}

/// What `GET …/alert-channels` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertChannelList {
    items: Vec<AlertChannel>,
}

/// An alert.
#[derive(Debug, Serialize, ToSchema)]
pub struct Alert {
    /// When its condition ended (for an event, when it was told), if it did.
    #[schema(required = true)]
    cleared_at: Option<i64>,
    /// `alr_…`.
    id: String,
    /// `backup_overdue`, `agent_offline` or `job_failed`.
    kind: String,
    opened_at: i64,
    /// How often it was told again while open.
    repeats: i64,
    /// What it is about: `dbs_…`, `agt_…` or `job_…`.
    subject: String,
    summary: String,
}

impl From<AlertRecord> for Alert {
    fn from(a: AlertRecord) -> Self {
        Self {
            cleared_at: a.cleared_at,
            id: a.id,
            kind: a.kind,
            opened_at: a.opened_at,
            repeats: a.repeats,
            subject: a.subject,
            summary: a.summary,
        }
    }
}

/// What `GET …/alerts` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    items: Vec<Alert>,
}

/// A delivery in the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertDelivery {
    /// The alert; none for a test.
    #[schema(required = true)]
    alert_id: Option<String>,
    attempts: i64,
    /// The channel's name when it was queued.
    channel_name: String,
    created_at: i64,
    #[schema(required = true)]
    delivered_at: Option<i64>,
    /// `open`, `repeat`, `clear` or `test`.
    event: String,
    /// `adl_…`.
    id: String,
    /// Why the last attempt failed.
    #[schema(required = true)]
    last_error: Option<String>,
    /// `pending` (retried on a back-off), `delivered` or `failed`.
    state: String,
}

impl From<DeliveryRecord> for AlertDelivery {
    fn from(d: DeliveryRecord) -> Self {
        Self {
            alert_id: d.alert_id,
            attempts: d.attempts,
            channel_name: d.channel_name,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
            event: d.event,
            id: d.id,
            last_error: d.last_error,
            state: d.state,
        }
    }
}

/// What `GET …/alert-deliveries` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertDeliveryList {
    items: Vec<AlertDelivery>,
}

/// Adds an alert channel.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/alert-channels",
    operation_id = "create_alert_channel",
    tag = "alerts",
    summary = "Add where alerts go: a signed webhook, a Slack-compatible webhook or e-mail",
    description = "Who: admin or higher (a person or an API token). A URL or SMTP password \
        is sealed and never answered; a webhook's signing key is answered here only.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    request_body = AlertChannelRequest,
    responses(
        (status = 201, description = "Added", body = CreatedAlertChannel),
        OrgErrors,
        BodyErrors,
        (status = 409, description = "conflict: the name exists", body = ErrorBody),
    )
)]
pub async fn create_channel(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Body(request): Body<AlertChannelRequest>,
) -> ApiResult<(StatusCode, Json<CreatedAlertChannel>)> {
    let access = org_access(&state, caller, &org_id, Role::Admin).await?;
    let target = match (
        ChannelKind::parse(&request.kind)?,
        &request.url,
        &request.smtp,
    ) {
        (ChannelKind::Webhook, Some(url), None) => Target::Webhook(&url.0),
        (ChannelKind::Slack, Some(url), None) => Target::Slack(&url.0),
        (ChannelKind::Email, None, Some(smtp)) => Target::Email(
            EmailSettings {
                host: smtp.host.clone(),
                port: smtp.port,
                security: smtp.security.clone(),
                username: smtp.username.clone(),
                from: smtp.from.clone(),
                to: smtp.to.clone(),
                ca_pem: smtp.ca_pem.clone(),
            },
            smtp.password.as_ref().map(|p| &p.0),
        ),
        (ChannelKind::Email, _, _) => {
            return Err(Error::invalid("an email channel takes smtp, and no url").into())
        }
        _ => {
            return Err(Error::invalid("a webhook or slack channel takes url, and no smtp").into())
        }
    };
    let new = NewChannel {
        name: &request.name,
        target,
    };
    let (channel, key) = channels::create(
        &state.db,
        &state.keys,
        &org_id,
        &new,
        &access.actor,
        state.now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedAlertChannel {
            channel: channel.into(),
            signing_key: key.map(|k| k.expose_secret().to_string()),
        }),
    ))
}

/// The organisation's alert channels.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/alert-channels",
    operation_id = "list_alert_channels",
    tag = "alerts",
    summary = "Where the organisation's alerts go (hosts only, never URLs)",
    description = "Who: viewer or higher.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    responses(
        (status = 200, description = "Channels", body = AlertChannelList),
        OrgErrors,
    )
)]
pub async fn list_channels(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<AlertChannelList>> {
    org_access(&state, caller, &org_id, Role::Viewer).await?;
    let items = channels::list(&state.db, &org_id).await?;
    Ok(Json(AlertChannelList {
        items: items.into_iter().map(AlertChannel::from).collect(),
    }))
}

/// Removes an alert channel.
#[utoipa::path(
    delete,
    path = "/api/v1/orgs/{org}/alert-channels/{channel}",
    operation_id = "delete_alert_channel",
    tag = "alerts",
    summary = "Remove an alert channel (its sealed URL and key with it)",
    description = "Who: admin or higher (a person or an API token). Its deliveries stay in \
        the log; pending ones are dropped.",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        ("channel" = String, Path, description = "The channel, ach_…"),
    ),
    responses(
        (status = 204, description = "Removed"),
        OrgErrors,
    )
)]
pub async fn delete_channel(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, channel_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = org_access(&state, caller, &org_id, Role::Admin).await?;
    if channels::delete(&state.db, &org_id, &channel_id, &access.actor, state.now()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// Sends a test notification through a channel, now.
#[utoipa::path(
    post,
    path = "/api/v1/orgs/{org}/alert-channels/{channel}/test",
    operation_id = "test_alert_channel",
    tag = "alerts",
    summary = "Send a test notification through the channel now; answers how it went",
    description = "Who: admin or higher (a person or an API token). A delivery that fails is \
        retried on the usual back-off; the answer is its first attempt.",
    params(
        ("org" = String, Path, description = "The organisation, org_…"),
        ("channel" = String, Path, description = "The channel, ach_…"),
    ),
    responses(
        (status = 200, description = "Sent (see state and last_error)", body = AlertDelivery),
        OrgErrors,
    )
)]
pub async fn test_channel(
    State(state): State<AppState>,
    caller: Caller,
    Path((org_id, channel_id)): Path<(String, String)>,
) -> ApiResult<Json<AlertDelivery>> {
    org_access(&state, caller, &org_id, Role::Admin).await?;
    let now = state.now();
    let id = delivery::queue_test(&state.db, &org_id, &channel_id, now)
        .await?
        .ok_or_else(ApiError::not_found)?;
    delivery::send_now(&state.db, &state.keys, &state.reach, &org_id, &id, now).await?;
    let sent = log::delivery(&state.db, &org_id, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(sent.into()))
}

/// The organisation's alerts.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/alerts",
    operation_id = "list_alerts",
    tag = "alerts",
    summary = "The organisation's newest alerts (up to 200), open or not",
    description = "Who: viewer or higher.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    responses(
        (status = 200, description = "Alerts", body = AlertList),
        OrgErrors,
    )
)]
pub async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<AlertList>> {
    org_access(&state, caller, &org_id, Role::Viewer).await?;
    let items = log::alerts(&state.db, &org_id, LIST_LIMIT).await?;
    Ok(Json(AlertList {
        items: items.into_iter().map(Alert::from).collect(),
    }))
}

/// The delivery log.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/alert-deliveries",
    operation_id = "list_alert_deliveries",
    tag = "alerts",
    summary = "The organisation's newest alert deliveries (up to 200) and how each went",
    description = "Who: viewer or higher.",
    params(("org" = String, Path, description = "The organisation, org_…")),
    responses(
        (status = 200, description = "Deliveries", body = AlertDeliveryList),
        OrgErrors,
    )
)]
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
) -> ApiResult<Json<AlertDeliveryList>> {
    org_access(&state, caller, &org_id, Role::Viewer).await?;
    let items = log::deliveries(&state.db, &org_id, LIST_LIMIT).await?;
    Ok(Json(AlertDeliveryList {
        items: items.into_iter().map(AlertDelivery::from).collect(),
    }))
}
