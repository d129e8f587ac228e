//! What the dashboard serves besides pages: its one stylesheet, compiled into the
//! binary (no CDN, nothing fetched at run time), and `/.well-known/security.txt`
//! (RFC 9116), which tells researchers where to report a vulnerability.

use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};

/// Where the stylesheet is served.
pub const STYLESHEET_PATH: &str = "/assets/dashboard.css";

/// The stylesheet.
pub const STYLESHEET: &str = include_str!("dashboard.css");

/// The project's repository, where `SECURITY.md` lives.
const REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");

/// How long a served `security.txt` stays valid (RFC 9116 asks for less than a year).
const SECURITY_TXT_LIFETIME_SECS: i64 = 180 * 24 * 3600;

/// `GET /assets/dashboard.css`.
pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

/// The text of `security.txt` as served to `host` at Unix time `now`.
pub fn security_txt_text(host: Option<&str>, now: i64) -> String {
    let expires = dbcrate_core::time::UtcDateTime::from_unix(now + SECURITY_TXT_LIFETIME_SECS);
    let mut text = format!(
        "# Security issues in dbcrate, the software this control plane runs.\n\
         Contact: {REPOSITORY}/security/advisories/new\n\
         Expires: {}\n\
         Policy: {REPOSITORY}/blob/main/SECURITY.md\n\
         Preferred-Languages: en\n",
        expires.rfc3339()
    );
    // Only a plain host[:port] is echoed back.
    if let Some(host) = host.filter(|h| {
        !h.is_empty()
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    }) {
        text.push_str(&format!(
            "Canonical: https://{host}/.well-known/security.txt\n"
        ));
    }
    text
}

/// `GET /.well-known/security.txt`.
pub async fn security_txt(headers: HeaderMap) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        security_txt_text(host, dbcrate_core::time::unix_now()),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::security_txt_text;

    #[test]
    fn security_txt_has_the_fields_rfc_9116_requires() {
        let text = security_txt_text(Some("127.0.0.1:8443"), 1_800_000_000);
        assert!(text.contains("\nContact: https://"), "{text}");
        assert!(text.contains("\nExpires: 2027-07-"), "{text}");
        assert!(text.contains("/SECURITY.md\n"), "{text}");
        assert!(text.ends_with("Canonical: https://127.0.0.1:8443/.well-known/security.txt\n"));
    }

    #[test]
    fn a_strange_host_is_not_echoed() {
        let text = security_txt_text(Some("evil\r\nContact: x"), 1_800_000_000);
        assert!(!text.contains("Canonical"), "{text}");
    }
}
