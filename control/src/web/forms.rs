//! Forms: labelled fields, and the guard in front of every state-changing request.
//!
//! The guard ([`csrf_guard`]) runs before any handler, so no handler can forget it:
//!
//! 1. A browser says where a request comes from; a POST whose `Sec-Fetch-Site` is
//!    anything but `same-origin` (or `none`, typed by the person), or, from a browser
//!    that does not send it, whose `Origin` names another host, is refused. This covers
//!    the sign-in form too (login CSRF), which has no session yet.
//! 2. A POST that carries a session cookie must carry that session's CSRF token
//!    (`accounts::sessions::csrf_token`, the same token the API wants in its header) in
//!    the hidden form field `csrf`; compared in constant time. Without the cookie the
//!    handler sends the person to sign in and does nothing.

use super::layout;
use super::session::session_token;
use crate::accounts::sessions;
use crate::http::MAX_BODY_BYTES;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use dbcrate_core::secret::same_bytes;
use maud::{html, Markup};

/// The name of the hidden field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// The value of the first field `name` in a form body (the token is hex, so it needs
/// no percent-decoding).
fn form_value<'a>(body: &'a [u8], name: &str) -> Option<&'a [u8]> {
    body.split(|b| *b == b'&').find_map(|pair| {
        let at = pair.iter().position(|b| *b == b'=')?;
        (&pair[..at] == name.as_bytes()).then_some(&pair[at + 1..])
    })
}

/// Whether the request comes from this host's own pages, as the browser reports it.
/// `Sec-Fetch-Site` first (every current browser sends it, and it is not "null" under
/// `Referrer-Policy: no-referrer`, unlike `Origin` on a form post); then an `Origin`
/// that names a host. A request with neither (not a browser, or an old one) passes to
/// the token check.
fn same_origin(request: &Request) -> bool {
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    match headers.get(header::ORIGIN).map(|o| o.as_bytes()) {
        None | Some(b"null") => true,
        Some(origin) => {
            let host = headers.get(header::HOST).map(|h| h.as_bytes());
            host.is_some_and(|host| origin.strip_prefix(b"https://") == Some(host))
        }
    }
}

fn forged() -> Response {
    layout::refused(
        StatusCode::FORBIDDEN,
        "This form was not sent from this dashboard's own page (or the page is out of \
         date): nothing was changed. Reload the page and try again.",
    )
}

/// Refuses state-changing requests from other origins, and those without the
/// session's CSRF token (see the module documentation).
pub async fn csrf_guard(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    if !same_origin(&request) {
        return forged();
    }
    let Some(token) = session_token(request.headers()) else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return layout::refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form was too large: nothing was changed.",
        );
    };
    let expected = sessions::csrf_token(&token);
    let given = form_value(&bytes, CSRF_FIELD).unwrap_or_default();
    if !same_bytes(given, expected.as_bytes()) {
        return forged();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// `text` percent-encoded for a query string (all but unreserved characters).
pub fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One labelled input.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// The visible label.
    pub label: &'a str,
    /// The form field's name (also its element id).
    pub name: &'a str,
    /// The input type: `email`, `password`, `text`.
    pub kind: &'a str,
    /// The `autocomplete` token (`username`, `current-password`, `new-password`,
    /// `one-time-code`, `off`).
    pub autocomplete: &'a str,
    /// A value to fill in again (never a secret).
    pub value: Option<&'a str>,
    /// Whether the field must be filled.
    pub required: bool,
    /// A hint under the label.
    pub hint: Option<&'a str>,
    /// Whether the cursor starts here.
    pub autofocus: bool,
}

impl<'a> Field<'a> {
    /// A required field with no value, hint or focus.
    pub const fn new(label: &'a str, name: &'a str, kind: &'a str, autocomplete: &'a str) -> Self {
        Self {
            label,
            name,
            kind,
            autocomplete,
            value: None,
            required: true,
            hint: None,
            autofocus: false,
        }
    }
}

/// A field: label, optional hint (tied to the input by `aria-describedby`), input.
pub fn field(f: Field<'_>) -> Markup {
    let hint_id = format!("{}-hint", f.name);
    html! {
        div.field {
            label for=(f.name) { (f.label) @if !f.required { " (optional)" } }
            @if let Some(hint) = f.hint {
                p.hint id=(hint_id) { (hint) }
            }
            input id=(f.name) name=(f.name) type=(f.kind) autocomplete=(f.autocomplete)
                value=[f.value] required[f.required] autofocus[f.autofocus]
                aria-describedby=[f.hint.map(|_| hint_id.as_str())]
                spellcheck="false" autocapitalize="none";
        }
    }
}

#[cfg(test)]
mod tests {
    use super::form_value;

    #[test]
    fn the_token_is_found_among_the_fields() {
        let body = b"email=a%40b&csrf=abc123&csrfx=no";
        assert_eq!(form_value(body, "csrf"), Some(&b"abc123"[..]));
        assert_eq!(form_value(b"xcsrf=1", "csrf"), None);
        assert_eq!(form_value(b"", "csrf"), None);
    }
}
