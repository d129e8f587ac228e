//! The API's one error type: a status, a stable code and a message, as
//! `{"error": {"code": …, "message": …}}`.
//!
//! Internal failures answer 500 with a generic message and an id; the detail goes to
//! the log under that id, never to the client. Not-found and not-yours are the same 404.

use super::error_doc::{ErrorBody, ErrorCode, ErrorDetail, HttpCode};
use crate::error::{Code, Error};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ErrorCode,
    message: String,
    details: Option<serde_json::Value>,
}

impl ApiError {
    /// An answer with this status, code and message.
    pub fn new(status: StatusCode, code: impl Into<ErrorCode>, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.into(),
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
        Self::new(StatusCode::NOT_FOUND, Code::NotFound, "not found")
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
                Code::Internal,
                format!("internal error; the server log has the details under {id}"),
            );
        }
        if e.code == Code::NotFound {
            return Self::not_found();
        }
        Self::new(status_of(e.code), e.code, e.message)
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                HttpCode::InvalidBody,
                format!("the JSON body does not fit this request: {}", e.body_text()),
            ),
            JsonRejection::JsonSyntaxError(_) => Self::new(
                StatusCode::BAD_REQUEST,
                HttpCode::MalformedJson,
                "the body is not valid JSON",
            ),
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                HttpCode::UnsupportedMediaType,
                "send the body as JSON with Content-Type: application/json",
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                HttpCode::BodyTooLarge,
                format!("the body is larger than {} bytes", super::MAX_BODY_BYTES),
            ),
            _ => Self::new(
                StatusCode::BAD_REQUEST,
                HttpCode::UnreadableBody,
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
            HttpCode::InvalidQuery,
            format!(
                "the query string does not fit this request: {}",
                rejection.body_text()
            ),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                details: self.details,
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;
