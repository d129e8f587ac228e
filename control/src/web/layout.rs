//! The frame of every page: document head (the one stylesheet, no script), a skip
//! link, the header with the navigation, the main content, and error pages.
//!
//! The navigation is one list, [`NAV`]; a later page adds its area there. Every page
//! has a `<h1>` and a unique title; the current area is marked with `aria-current`.

use crate::error::{Code, Error};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// An area of the dashboard, one entry of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// The landing page: the person's organisations.
    Organisations,
    /// The person's own account: password and second factor.
    Account,
}

/// The navigation, in order: area, path, label.
pub const NAV: [(Area, &str, &str); 2] = [
    (Area::Organisations, "/", "Organisations"),
    (Area::Account, "/account/second-factor", "Account"),
];

/// What the header shows to a signed-in person.
#[derive(Debug, Clone, Copy)]
pub struct Nav<'a> {
    /// Their e-mail address.
    pub email: &'a str,
    /// Their CSRF token, for the sign-out form.
    pub csrf: &'a str,
    /// The area the page belongs to (none for pages outside the navigation).
    pub current: Option<Area>,
    /// Whether to show the navigation: not while a one-time password must be changed,
    /// when every other page leads back to that one.
    pub menu: bool,
}

/// The hidden field that carries the CSRF token in every form.
pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

fn header(nav: Option<Nav<'_>>) -> Markup {
    html! {
        header.site {
            a.brand href="/" { "dbcrate" }
            @if let Some(nav) = nav.filter(|n| n.menu) {
                nav aria-label="Main" {
                    ul {
                        @for (area, path, label) in NAV {
                            li {
                                @if nav.current == Some(area) {
                                    a href=(path) aria-current="page" { (label) }
                                } @else {
                                    a href=(path) { (label) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(nav) = nav {
                form.sign-out method="post" action="/sign-out" {
                    (csrf_field(nav.csrf))
                    span.who { "Signed in as " strong { (nav.email) } }
                    button type="submit" { "Sign out" }
                }
            }
        }
    }
}

/// A whole page: `title` is the `<h1>` and (with the product name) the `<title>`.
pub fn page(title: &str, nav: Option<Nav<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                // No /favicon.ico request (it would be a 404 in the console).
                link rel="icon" href="data:,";
                title { (title) " · dbcrate" }
                link rel="stylesheet" href=(super::assets::STYLESHEET_PATH);
            }
            body {
                a.skip href="#content" { "Skip to content" }
                (header(nav))
                main #content tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page as an answer with `status`.
pub fn answer(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// What an operation's failure tells the person, and the status it answers with.
/// Internal failures are logged under an id and shown only as that id.
pub fn explain(e: &Error) -> (StatusCode, String) {
    if e.code == Code::Internal {
        let id = crate::error::new_id("err").unwrap_or_else(|_| "err_unknown".into());
        tracing::error!(error.id = %id, "dashboard request failed: {}", e.message);
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Something went wrong on the server; its log has the details under {id}."),
        );
    }
    let status = crate::http::error::ApiError::from(Error::new(e.code, "")).status();
    (status, e.message.clone())
}

/// A status paragraph people notice: `role="alert"` so screen readers announce it,
/// with the word "Error" so the meaning does not rest on colour.
pub fn error_message(message: &str) -> Markup {
    html! {
        p.message.error role="alert" { strong { "Error: " } (message) }
    }
}

/// A confirmation or hint, marked by text as well as colour.
pub fn notice(message: &str) -> Markup {
    html! {
        p.message.notice role="status" { strong { "Note: " } (message) }
    }
}

/// A page for a failure outside any form.
pub fn failure(e: &Error) -> Response {
    let (status, message) = explain(e);
    refused(status, &message)
}

/// The page for a path the dashboard does not have.
pub fn not_found() -> Response {
    refused(
        StatusCode::NOT_FOUND,
        "There is no such page. It may have moved, or the address has a typo.",
    )
}

/// A page that says why a request was refused.
pub fn refused(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Refused");
    answer(
        status,
        page(
            title,
            None,
            html! {
                (error_message(message))
                p { a href="/" { "Back to the dashboard" } }
            },
        ),
    )
}
