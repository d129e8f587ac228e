//! The OpenAPI document of both listeners, generated from the handlers' own request and
//! answer types (`#[utoipa::path]` on each handler, `ToSchema` on each type), so the
//! document cannot describe a shape the code does not have. It is built once, when the
//! first router is made, and served at `/api/v1/openapi.json`; `control/openapi.json`
//! is the same text checked in for readers, and the API tests keep the two equal and
//! validate every documented answer against a real one (`control/tests/api/openapi.rs`).
//!
//! The error sets below are written by hand, as [`IntoResponses`] impls, because every
//! route shares them; the error body itself is [`ErrorBody`], a mirror of what
//! `error::ApiError` writes (the live test holds the two together).

use super::{
    account_api, agent_admin_api, agent_api, audit_api, backup_api, invitation_api, member_api,
    org_api, session_api, token_api,
};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoResponses, OpenApi, ToSchema};

/// An error answer, as every route gives it: `{"error": {"code", "message"}}`.
#[derive(Debug, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The error itself: a stable code to act on and a message for people.
#[derive(Debug, ToSchema)]
pub struct ErrorDetail {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for people (never internals: a 500 names a log id instead).
    pub message: String,
    /// Structured details where a route has them (`probe_failed`: each probe step).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<ProbeFailure>)]
    pub details: Option<serde_json::Value>,
}

/// `error.details` of `probe_failed`: each step of the destination probe.
#[derive(Debug, ToSchema)]
pub struct ProbeFailure {
    /// The steps, in order.
    pub probe: Vec<backup_api::ProbeStep>,
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
            "client_certificate_required (no, unknown or revoked agent certificate), \
             client_certificate_expired",
        )])
    }
}

/// Adds the security schemes the operations name.
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                super::auth::SESSION_COOKIE,
                "the session cookie set by POST /api/v1/session; state-changing requests \
                 also send its CSRF token in X-CSRF-Token",
            ))),
        );
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("an API token, dbct_…".into());
        components.add_security_scheme("token", SecurityScheme::Http(bearer));
        components.add_security_scheme(
            "agentCertificate",
            SecurityScheme::MutualTls {
                description: Some(
                    "the agent's client certificate, on the agent listener \
                     (DBCRATE_AGENT_LISTEN)"
                        .into(),
                ),
                deprecated: None,
                extensions: None,
            },
        );
    }
}

/// The document: every route of [`super::router`] and [`super::agent_router`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "dbcrate control plane API",
        version = "1",
        description = "JSON over HTTPS. Errors are {\"error\": {\"code\", \"message\"}} with a \
            stable code. Browsers authenticate with the session cookie and must send \
            X-CSRF-Token on POST/PATCH/DELETE; programs send Authorization: Bearer dbct_…. \
            Another organisation's objects are 404, like missing ones. Unknown JSON fields are \
            refused (except by the agent routes, whose peers upgrade on their own schedule); \
            bodies are capped at 64 KiB. Generated from the control plane's code.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "https://localhost:8443")),
    security(("session" = []), ("token" = [])),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody)),
    paths(
        super::openapi_document,
        session_api::sign_in,
        session_api::current,
        session_api::sign_out,
        session_api::step_up,
        account_api::change_password,
        account_api::begin_second_factor,
        account_api::confirm_second_factor,
        account_api::disable_second_factor,
        org_api::list,
        org_api::show,
        org_api::export_recovery_key,
        org_api::enable_customer_seal,
        org_api::disable_customer_seal,
        member_api::list,
        member_api::add,
        member_api::change_role,
        member_api::remove,
        member_api::reset_password,
        invitation_api::list,
        invitation_api::revoke,
        invitation_api::accept,
        invitation_api::create_account,
        token_api::list,
        token_api::create,
        token_api::revoke,
        audit_api::query,
        agent_admin_api::create_enrolment_token,
        agent_admin_api::list,
        agent_admin_api::revoke,
        backup_api::list_databases,
        backup_api::create_database,
        backup_api::show_database,
        backup_api::list_schedules,
        backup_api::create_schedule,
        backup_api::list_destinations,
        backup_api::create_destination,
        backup_api::run_schedule_now,
        backup_api::list_backups,
        backup_api::create_restore,
        agent_api::enroll,
        agent_api::renew,
        agent_api::config,
        agent_api::crl,
        agent_api::next_job,
        agent_api::job_credentials,
        agent_api::job_progress,
        agent_api::job_complete,
    )
)]
pub struct ApiDoc;

/// The document as served: pretty JSON with a final newline, made once.
pub fn document() -> &'static str {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        let mut text = ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serialises");
        text.push('\n');
        text
    });
    &DOCUMENT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use utoipa::PartialSchema;

    /// Every code of the domain's error type is in the document's list, spelt the same
    /// (the match has no wildcard, so a new code does not compile until it is mapped
    /// here, and then listed below).
    #[test]
    fn every_domain_error_code_is_documented() {
        let documented = |code: Code| match code {
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
            Code::CustomerPassphraseRequired => ErrorCode::CustomerPassphraseRequired,
            Code::CustomerPassphraseInvalid => ErrorCode::CustomerPassphraseInvalid,
            Code::Internal => ErrorCode::Internal,
        };
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
            Code::CustomerPassphraseRequired,
            Code::CustomerPassphraseInvalid,
            Code::Internal,
        ] {
            assert_eq!(
                serde_json::to_value(documented(code)).unwrap(),
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
