//! The error answers every route shares: the error body ([`ErrorBody`], the very type
//! `error::ApiError` serialises, so the document cannot describe another shape), its
//! codes ([`ErrorCode`]), and the error sets the OpenAPI document lists, written by
//! hand as [`IntoResponses`] impls because every route shares them. A leaf of `http`:
//! the handlers, `error` and the document use it, and it uses none of them.

use crate::error::Code;
use std::collections::BTreeMap;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoResponses, ToSchema};

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

// Those of `crate::error::Code` come first (a unit test checks each is here); the rest
// are the HTTP layer's own.
/// Every stable error code the API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum ErrorCode {
    InvalidInput,
    NotSignedIn,
    WrongCredentials,
    SecondFactorRequired,
    SecondFactorInvalid,
    RecentSecondFactorRequired,
    PasswordChangeRequired,
    Forbidden,
    NotFound,
    Conflict,
    Throttled,
    CsrfTokenInvalid,
    ClientCertificateRequired,
    ClientCertificateExpired,
    ClientCertificateNotYetValid,
    AgentRevoked,
    CustomerPassphraseRequired,
    CustomerPassphraseInvalid,
    Internal,
    ProbeFailed,
    MalformedJson,
    InvalidBody,
    BodyTooLarge,
    UnsupportedMediaType,
    UnreadableBody,
    InvalidQuery,
    NoSuchRoute,
    MethodNotAllowed,
}

impl From<Code> for ErrorCode {
    /// The API's code for a domain error (no wildcard: a new [`Code`] does not compile
    /// until it is mapped here).
    fn from(code: Code) -> Self {
        match code {
            Code::InvalidInput => ErrorCode::InvalidInput,
            Code::NotSignedIn => ErrorCode::NotSignedIn,
            Code::WrongCredentials => ErrorCode::WrongCredentials,
            Code::SecondFactorRequired => ErrorCode::SecondFactorRequired,
            Code::SecondFactorInvalid => ErrorCode::SecondFactorInvalid,
            Code::RecentSecondFactorRequired => ErrorCode::RecentSecondFactorRequired,
            Code::PasswordChangeRequired => ErrorCode::PasswordChangeRequired,
            Code::Forbidden => ErrorCode::Forbidden,
            Code::NotFound => ErrorCode::NotFound,
            Code::Conflict => ErrorCode::Conflict,
            Code::Throttled => ErrorCode::Throttled,
            Code::CsrfTokenInvalid => ErrorCode::CsrfTokenInvalid,
            Code::ClientCertificateRequired => ErrorCode::ClientCertificateRequired,
            Code::ClientCertificateExpired => ErrorCode::ClientCertificateExpired,
            Code::ClientCertificateNotYetValid => ErrorCode::ClientCertificateNotYetValid,
            Code::AgentRevoked => ErrorCode::AgentRevoked,
            Code::CustomerPassphraseRequired => ErrorCode::CustomerPassphraseRequired,
            Code::CustomerPassphraseInvalid => ErrorCode::CustomerPassphraseInvalid,
            Code::Internal => ErrorCode::Internal,
        }
    }
}

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
    use utoipa::PartialSchema;

    /// Every code of the domain's error type is in the document's list, spelt the same.
    #[test]
    fn every_domain_error_code_is_documented() {
        let schema = serde_json::to_value(ErrorCode::schema()).unwrap();
        let listed = schema["enum"].as_array().unwrap();
        for code in [
            Code::InvalidInput,
            Code::NotSignedIn,
            Code::WrongCredentials,
            Code::SecondFactorRequired,
            Code::SecondFactorInvalid,
            Code::RecentSecondFactorRequired,
            Code::PasswordChangeRequired,
            Code::Forbidden,
            Code::NotFound,
            Code::Conflict,
            Code::Throttled,
            Code::CsrfTokenInvalid,
            Code::ClientCertificateRequired,
            Code::ClientCertificateExpired,
            Code::ClientCertificateNotYetValid,
            Code::AgentRevoked,
            Code::CustomerPassphraseRequired,
            Code::CustomerPassphraseInvalid,
            Code::Internal,
        ] {
            assert_eq!(
                serde_json::to_value(ErrorCode::from(code)).unwrap(),
                code.as_str(),
                "the document spells {} differently",
                code.as_str()
            );
            assert!(
                listed.iter().any(|v| v == code.as_str()),
                "{} is not in the document's error codes",
                code.as_str()
            );
        }
    }
}
