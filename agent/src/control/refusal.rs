//! What a refusal from the control plane's agent listener means for this agent. The
//! status decides the kind (401 and 422 are about this agent's identity or request; a
//! person must act) and the answer's stable code the [`Reason`]; the message is only
//! shown, never searched.

use crate::error::{Error, ErrorKind, Reason};
use dbcrate_core::wire::{self, codes};
use hyper::StatusCode;

/// The error for the non-200 answer `status`, `body` to `what` (`GET /agent/v1/…`).
pub fn refusal(what: &str, status: StatusCode, body: &[u8]) -> Error {
    let detail = serde_json::from_slice::<wire::ErrorAnswer>(body)
        .ok()
        .map(|answer| answer.error);
    let message = detail
        .as_ref()
        .map(|detail| detail.message.as_str())
        .filter(|message| !message.is_empty())
        .map_or_else(|| format!("HTTP {status}"), str::to_string);
    let message = format!("{what}: {message}");
    if status != StatusCode::UNAUTHORIZED && status != StatusCode::UNPROCESSABLE_ENTITY {
        return Error::new(ErrorKind::Control, message);
    }
    match detail.as_ref().and_then(reason) {
        Some(reason) => Error::because(reason, message),
        None => Error::identity(message),
    }
}

/// The reason a refusal names, if it is one the agent acts on.
fn reason(detail: &wire::ErrorDetail) -> Option<Reason> {
    match detail.code.as_str() {
        codes::AGENT_REVOKED => Some(Reason::Revoked),
        codes::CLIENT_CERTIFICATE_EXPIRED => Some(Reason::Expired),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHAT: &str = "GET /agent/v1/crl";

    fn answer(code: &str, message: &str) -> Vec<u8> {
        serde_json::json!({ "error": { "code": code, "message": message } })
            .to_string()
            .into_bytes()
    }

    #[test]
    fn a_revocation_is_told_by_its_code_whatever_the_message_says() {
        let e = refusal(
            WHAT,
            StatusCode::UNAUTHORIZED,
            &answer("agent_revoked", "gone"),
        );
        assert_eq!(e.reason(), Some(Reason::Revoked));
        assert_eq!(e.kind(), ErrorKind::Identity);
        assert_eq!(e.to_string(), "GET /agent/v1/crl: gone");
    }

    #[test]
    fn a_revocation_message_under_another_code_is_no_revocation() {
        // Control planes before `agent_revoked` answered a revocation under
        // client_certificate_required or not_signed_in; the code decides, so this agent
        // reports it as an identity refusal (a person acts) rather than reading words.
        for code in ["client_certificate_required", "not_signed_in"] {
            let body = answer(code, "this agent has been revoked");
            let e = refusal(WHAT, StatusCode::UNAUTHORIZED, &body);
            assert_eq!(
                (e.kind(), e.reason()),
                (ErrorKind::Identity, None),
                "{code}"
            );
            assert_eq!(
                e.to_string(),
                "GET /agent/v1/crl: this agent has been revoked"
            );
        }
    }

    #[test]
    fn the_word_revoked_in_another_refusal_is_no_revocation() {
        for (code, message) in [
            (
                "not_signed_in",
                "this agent certificate is unknown here: re-enrol the revoked agent",
            ),
            ("client_certificate_required", "revoked"),
            (
                "client_certificate_required",
                "this agent has been revoked, said nobody",
            ),
        ] {
            let e = refusal(WHAT, StatusCode::UNAUTHORIZED, &answer(code, message));
            assert_eq!(e.reason(), None, "{code}: {message}");
            assert_eq!(e.kind(), ErrorKind::Identity);
        }
    }

    #[test]
    fn an_expired_certificate_is_told_by_its_code() {
        let body = answer("client_certificate_expired", "valid until yesterday");
        let e = refusal(WHAT, StatusCode::UNAUTHORIZED, &body);
        assert_eq!(e.reason(), Some(Reason::Expired));
        let body = answer("not_signed_in", "this certificate has expired");
        assert_eq!(
            refusal(WHAT, StatusCode::UNAUTHORIZED, &body).reason(),
            None
        );
    }

    #[test]
    fn other_statuses_are_the_control_planes_failures_without_a_reason() {
        let body = answer("agent_revoked", "this agent has been revoked");
        let e = refusal(WHAT, StatusCode::INTERNAL_SERVER_ERROR, &body);
        assert_eq!((e.kind(), e.reason()), (ErrorKind::Control, None));
        // No JSON, or an empty message: the status is the message.
        let e = refusal(WHAT, StatusCode::BAD_GATEWAY, b"<html>");
        assert_eq!(e.to_string(), "GET /agent/v1/crl: HTTP 502 Bad Gateway");
        let e = refusal(WHAT, StatusCode::UNAUTHORIZED, &answer("not_signed_in", ""));
        assert_eq!(e.to_string(), "GET /agent/v1/crl: HTTP 401 Unauthorized");
        assert_eq!((e.kind(), e.reason()), (ErrorKind::Identity, None));
    }
}
