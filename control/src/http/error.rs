//! The API's one error type: a status, a stable code and a message, as
//! `{"error": {"code": …, "message": …}}`.
//!
//! Internal failures answer 500 with a generic message and an id; the detail goes to
//! the log under that id, never to the client. Not-found and not-yours are the same 404.

use crate::error::{Code, Error};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Option<serde_json::Value>,
}

impl ApiError {
    /// An answer with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Adds structured details (e.g. each step of a failed probe) under `error.details`.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 404 `not_found`: what a missing object and another organisation's both get.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "not found")
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

fn status_of(code: Code) -> StatusCode {
    match code {
        Code::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
        Code::NotSignedIn
        | Code::ClientCertificateRequired
        | Code::ClientCertificateExpired
        | Code::ClientCertificateNotYetValid
        | Code::AgentRevoked
        | Code::WrongCredentials
        | Code::SecondFactorRequired
        | Code::SecondFactorInvalid => StatusCode::UNAUTHORIZED,
        Code::RecentSecondFactorRequired
        | Code::PasswordChangeRequired
        | Code::Forbidden
        | Code::CsrfTokenInvalid => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::Conflict | Code::CustomerPassphraseRequired => StatusCode::CONFLICT,
        Code::CustomerPassphraseInvalid => StatusCode::UNPROCESSABLE_ENTITY,
        Code::Throttled => StatusCode::TOO_MANY_REQUESTS,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        if e.code == Code::Internal {
            let id = crate::error::new_id("err").unwrap_or_else(|_| "err_unknown".into());
            tracing::error!(error.id = %id, "request failed: {}", e.message);
            return Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("internal error; the server log has the details under {id}"),
            );
        }
        if e.code == Code::NotFound {
            return Self::not_found();
        }
        Self::new(status_of(e.code), e.code.as_str(), e.message)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("the JSON body does not fit this request: {}", e.body_text()),
            ),
            JsonRejection::JsonSyntaxError(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "the body is not valid JSON",
            ),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with Content-Type: application/json",
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than {} bytes", super::MAX_BODY_BYTES),
            ),
            _ => Self::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                "the request body could not be read",
            ),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        Self::not_found()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!(
                "the query string does not fit this request: {}",
                rejection.body_text()
            ),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({
            "error": { "code": self.code, "message": self.message }
        });
        if let Some(details) = self.details {
            body["error"]["details"] = details;
        }
        (self.status, axum::Json(body)).into_response()
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;
