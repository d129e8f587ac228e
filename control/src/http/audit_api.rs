//! `GET /api/v1/orgs/{org}/audit`: the organisation's audit log for owners and admins,
//! as pages of JSON (`format=json`, the default, with a `next_after` cursor) or as a
//! whole export in JSON lines (`format=jsonl`) or CSV (`format=csv`), streamed page by
//! page so a long log never sits in memory.

use super::auth::{org_access, Caller};
use super::error::{ApiError, ApiResult};
use super::error_doc::{ErrorBody, HttpCode, OrgErrors};
use super::extract::{Path, Query};
use super::AppState;
use crate::accounts::roles::Role;
use crate::audit::query::{self as audit_query, Filter, CSV_HEADER, DEFAULT_PAGE, MAX_PAGE};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The query string.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At or after this time, UTC `YYYY-MM-DDTHH:MM:SSZ`.
    from: Option<String>,
    /// Before this time, the same form.
    to: Option<String>,
    /// Exactly this action, e.g. `member.add`.
    action: Option<String>,
    /// Exactly this actor, e.g. `user:usr_…`.
    actor: Option<String>,
    /// Rows after this sequence number (`next_after` of the previous page).
    after: Option<i64>,
    /// Rows per page, 1 to 1000 (format=json only; 100 unless given).
    limit: Option<i64>,
    /// `json` (pages, the default), `jsonl` or `csv` (an export of every matching row).
    format: Option<String>,
}

/// One page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// The rows, each as the JSON-lines export writes it.
    #[schema(value_type = Vec<AuditEntry>)]
    items: Vec<serde_json::Value>,
    /// The `after` of the next page; none when this page is the last.
    #[schema(required = true)]
    next_after: Option<i64>,
}

// `audit::query::to_json` renders rows, one function for the pages and the JSON-lines
// export; this type only documents its shape, and the live API test holds the two
// together.
/// An audit row, in pages and in the JSON-lines export alike.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct AuditEntry {
    /// What was done, e.g. `member.add`.
    action: String,
    /// Who: `user:…`, `api_token:…`, `agent:…` or `system:…`.
    actor: String,
    /// When, UTC RFC 3339 to the second.
    at: String,
    /// What the action recorded (never a secret).
    #[schema(value_type = Object)]
    details: serde_json::Value,
    /// This row's keyed hash (hex).
    hash: String,
    /// The previous row's hash: the chain.
    prev_hash: String,
    /// Its sequence number.
    seq: i64,
    /// What it was done to.
    target: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Lines,
    Csv,
}

/// Answers one page, or streams an export.
#[utoipa::path(
    get,
    path = "/api/v1/orgs/{org}/audit",
    operation_id = "query_audit_log",
    tag = "audit",
    summary = "The organisation's audit log: JSON pages with a next_after cursor, or a whole export as JSON lines or CSV",
    description = "Who: admin or higher.",
    params(("org" = String, Path, description = "The organisation, org_…"), AuditQuery),
    responses(
        (status = 200, description = "Rows", content(
            (AuditPage = "application/json"),
            (String = "application/x-ndjson"),
            (String = "text/csv"),
        )),
        OrgErrors,
        (status = 400, description = "invalid_query: an unknown parameter, a wrong type, an unknown format, or limit with an export", body = ErrorBody),
        (status = 422, description = "invalid_input: a filter value (time form, lengths, limit)", body = ErrorBody),
    )
)]
pub async fn query(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Response> {
    org_access(&state, caller, &org_id, Role::Admin).await?;
    let format = match q.format.as_deref() {
        None | Some("json") => Format::Json,
        Some("jsonl") => Format::Lines,
        Some("csv") => Format::Csv,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                HttpCode::InvalidQuery,
                "format must be json, jsonl or csv",
            ))
        }
    };
    let filter = Filter {
        from: q.from,
        to: q.to,
        action: q.action,
        actor: q.actor,
        after: q.after,
        ..Filter::default()
    };
    filter.validate()?;
    if format == Format::Json {
        let limit = q.limit.unwrap_or(DEFAULT_PAGE);
        let rows = audit_query::page(&state.db, &org_id, &filter, limit).await?;
        let next_after = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.seq));
        let items = rows.iter().map(audit_query::to_json).collect();
        let page = AuditPage {
            items,
            next_after: next_after.flatten(),
        };
        return Ok(Json(page).into_response());
    }
    if q.limit.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            HttpCode::InvalidQuery,
            "limit applies to format=json pages; exports hold every matching row",
        ));
    }
    Ok(export(state, org_id, filter, format))
}

fn export(state: AppState, org_id: String, filter: Filter, format: Format) -> Response {
    let first = (format == Format::Csv).then(|| CSV_HEADER.to_string());
    let stream = futures_util::stream::unfold((Some(filter), first), move |(filter, pending)| {
        let state = state.clone();
        let org_id = org_id.clone();
        async move {
            if let Some(text) = pending {
                return Some((Ok::<_, std::io::Error>(text), (filter, None)));
            }
            let mut filter = filter?;
            let rows = match audit_query::page(&state.db, &org_id, &filter, MAX_PAGE).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!("audit export stopped: {}", e.message);
                    return Some((
                        Err(std::io::Error::other("audit export failed")),
                        (None, None),
                    ));
                }
            };
            let last = rows.last()?.seq;
            let mut text = String::new();
            for row in &rows {
                match format {
                    Format::Csv => text.push_str(&audit_query::csv_line(row)),
                    _ => {
                        text.push_str(&audit_query::to_json(row).to_string());
                        text.push('\n');
                    }
                }
            }
            let more = rows.len() as i64 == MAX_PAGE;
            filter.after = Some(last);
            Some((Ok(text), (more.then_some(filter), None)))
        }
    });
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        _ => "application/x-ndjson",
    };
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
    )
        .into_response()
}
