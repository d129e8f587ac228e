//! `GET /api/v1/orgs/{org}/audit`: the organisation's audit log for owners and admins,
//! as pages of JSON (`format=json`, the default, with a `next_after` cursor) or as a
//! whole export in JSON lines (`format=jsonl`) or CSV (`format=csv`), streamed page by
//! page so a long log never sits in memory.

use super::auth::{org_access, Caller};
use super::error::{ApiError, ApiResult};
use super::extract::{Path, Query};
use super::AppState;
use crate::audit::query::{self as audit_query, Filter, CSV_HEADER, DEFAULT_PAGE, MAX_PAGE};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

/// The query string.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    from: Option<String>,
    to: Option<String>,
    action: Option<String>,
    actor: Option<String>,
    after: Option<i64>,
    limit: Option<i64>,
    format: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Lines,
    Csv,
}

/// Answers one page, or streams an export.
pub async fn query(
    State(state): State<AppState>,
    caller: Caller,
    Path(org_id): Path<String>,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Response> {
    org_access(&state, caller, &org_id, "admin").await?;
    let format = match q.format.as_deref() {
        None | Some("json") => Format::Json,
        Some("jsonl") => Format::Lines,
        Some("csv") => Format::Csv,
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
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
    };
    filter.validate()?;
    if format == Format::Json {
        let limit = q.limit.unwrap_or(DEFAULT_PAGE);
        let rows = audit_query::page(&state.db, &org_id, &filter, limit).await?;
        let next_after = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.seq));
        let items: Vec<_> = rows.iter().map(audit_query::to_json).collect();
        return Ok(
            Json(json!({ "items": items, "next_after": next_after.flatten() })).into_response(),
        );
    }
    if q.limit.is_some() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
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
