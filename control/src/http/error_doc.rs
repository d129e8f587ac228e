//! The error answers every route shares: the error body ([`ErrorBody`], the very type
//! `error::ApiError` serialises, so the document cannot describe another shape), its
//! codes ([`ErrorCode`]), and the error sets the OpenAPI document lists, written by
//! hand as [`IntoResponses`] impls because every route shares them. A leaf of `http`:
//! the handlers, `error` and the document use it, and it uses none of them.

use crate::error::{stable_codes, Code};
use std::collections::BTreeMap;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoResponses, PartialSchema, ToSchema};

/// An error answer, as every route gives it: `{"error": {"code", "message"}}`.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

// Fields in alphabetical order: every answer is compact JSON with sorted keys.
/// The error itself: a stable code to act on and a message for people.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The stable code.
    pub code: ErrorCode,
    /// Structured details where a route has them (`probe_failed`: each probe step).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ProbeFailure>)]
    pub details: Option<serde_json::Value>,
    /// What went wrong, for people (never internals: a 500 names a log id instead).
    pub message: String,
}

/// `error.details` of `probe_failed`: each step of the destination probe.
#[derive(Debug, ToSchema)]
pub struct ProbeFailure {
    /// The steps, in order.
    pub probe: Vec<ProbeStep>,
}

stable_codes! {
    /// The HTTP layer's own error codes, beside the domain's [`Code`]s: a request that
    /// does not fit (body, query, route, method), and a destination probe that failed.
    pub enum HttpCode {
        /// A destination probe failed; `error.details` has its steps.
        ProbeFailed => "probe_failed",
        /// The body is not JSON.
        MalformedJson => "malformed_json",
        /// The JSON body does not fit the request (unknown, missing or mistyped field).
        InvalidBody => "invalid_body",
        /// The body is over [`super::MAX_BODY_BYTES`].
        BodyTooLarge => "body_too_large",
        /// The body is not sent as `application/json`.
        UnsupportedMediaType => "unsupported_media_type",
        /// The body could not be read.
        UnreadableBody => "unreadable_body",
        /// The query string does not fit the request.
        InvalidQuery => "invalid_query",
        /// No route has this path.
        NoSuchRoute => "no_such_route",
        /// The route does not take this method.
        MethodNotAllowed => "method_not_allowed",
    }
}

/// Every stable error code the API answers with: a domain error's [`Code`] or one of the
/// HTTP layer's own. Its document schema lists the texts of both tables, in their order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum ErrorCode {
    /// The code of a domain error.
    Domain(Code),
    /// The HTTP layer's own.
    Http(HttpCode),
}

impl ErrorCode {
    /// Every code's text: the domain's first, then the HTTP layer's.
    fn texts() -> impl Iterator<Item = &'static str> {
        let domain = Code::ALL.iter().map(|c| c.as_str());
        domain.chain(HttpCode::ALL.iter().map(|c| c.as_str()))
    }
}

impl From<Code> for ErrorCode {
    fn from(code: Code) -> Self {
        Self::Domain(code)
    }
}

impl From<HttpCode> for ErrorCode {
    fn from(code: HttpCode) -> Self {
        Self::Http(code)
    }
}

impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("Every stable error code the API answers with."))
            .enum_values(Some(Self::texts()))
            .into()
    }
}

impl ToSchema for ErrorCode {}

/// A response whose body is an [`ErrorBody`].
pub fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

fn responses(
    list: &[(&str, &str)],
) -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
    list.iter()
        .map(|(status, description)| (status.to_string(), error_response(description)))
        .collect()
}

/// What any signed-in route may answer before its handler runs.
pub struct SignedInErrors;

impl IntoResponses for SignedInErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        responses(&[
            (
                "401",
                "not_signed_in: no session or API token, or one that ended, expired or was revoked",
            ),
            (
                "403",
                "csrf_token_invalid (a state-changing request by cookie without X-CSRF-Token), \
                 password_change_required (a one-time password to change first), forbidden (an \
                 API token where a person is needed)",
            ),
        ])
    }
}

/// What any `/api/v1/orgs/{org}/…` route may answer before its handler's own work.
pub struct OrgErrors;

impl IntoResponses for OrgErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        let mut out = SignedInErrors::responses();
        out.extend(responses(&[
            (
                "403",
                "forbidden (the caller's role is too low, or an API token where a person is \
                 needed), csrf_token_invalid, password_change_required",
            ),
            (
                "404",
                "not_found: no such organisation or object, or not the caller's (the same answer)",
            ),
        ]));
        out
    }
}

/// What an owner's route that needs a second factor checked in the last few minutes may
/// answer before its handler's own work: [`OrgErrors`], the step-up among the 403s.
pub struct SteppedUpOwnerErrors;

impl IntoResponses for SteppedUpOwnerErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        let mut out = OrgErrors::responses();
        out.extend(responses(&[(
            "403",
            "recent_second_factor_required, forbidden, csrf_token_invalid, password_change_required",
        )]));
        out
    }
}

/// What any route with a JSON body may answer before its handler runs.
pub struct BodyErrors;

impl IntoResponses for BodyErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        responses(&[
            ("400", "malformed_json: the body is not JSON"),
            ("413", "body_too_large: over 64 KiB"),
            (
                "415",
                "unsupported_media_type: no Content-Type: application/json",
            ),
            (
                "422",
                "invalid_body (an unknown field, a missing one, a wrong type) or invalid_input \
                 (a value breaking a rule, named in the message)",
            ),
        ])
    }
}

/// What any agent route behind the client certificate may answer before its handler runs.
pub struct AgentErrors;

impl IntoResponses for AgentErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::response::Response>> {
        responses(&[(
            "401",
            "client_certificate_required (no or unknown agent certificate), agent_revoked \
             (the agent or this certificate was revoked: stop), client_certificate_expired, \
             client_certificate_not_yet_valid (the clocks disagree)",
        )])
    }
}

// `destinations::report_json` renders probe steps, for answers and audit rows alike;
// this type only documents their shape, and the live API test holds the two together.
/// One step of a destination probe.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ProbeStep {
    /// `failed` steps only: what a tenant is told (never the remote server's words).
    pub error: Option<String>,
    /// `ok`, `failed` or `not run`.
    pub outcome: String,
    /// `list`, `write`, `read` or `delete`.
    pub step: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code of either table is in the document's list, spelt as it is answered.
    #[test]
    fn every_error_code_is_documented() {
        let schema = serde_json::to_value(ErrorCode::schema()).unwrap();
        let listed = schema["enum"].as_array().unwrap();
        let codes = Code::ALL.iter().map(|&c| ErrorCode::from(c));
        for code in codes.chain(HttpCode::ALL.iter().map(|&c| ErrorCode::from(c))) {
            let spelt = serde_json::to_value(code).unwrap();
            assert!(
                listed.contains(&spelt),
                "{spelt} is not in the document's error codes"
            );
        }
    }

    /// No two codes, domain or HTTP, share a text: a client could not tell them apart.
    #[test]
    fn no_error_code_is_spelt_twice() {
        let mut texts: Vec<&str> = ErrorCode::texts().collect();
        let all = texts.len();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), all, "an error code is spelt twice");
    }
}
