//! The dashboard's answers over HTTPS, without a browser: the security headers on every
//! answer, `security.txt`, the CSRF guard on every form post, and no inline script or
//! style in any page.

use crate::harness::{Dashboard, OWNER};
use crate::http::{csrf_of, send, send_with};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[track_caller]
fn assert_secure_headers(what: &str, headers: &HeaderMap) {
    let get = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name} header"))
            .to_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(get("content-security-policy"), CSP, "{what}");
    assert!(!CSP.contains("unsafe"), "{what}");
    assert_eq!(
        get("strict-transport-security"),
        "max-age=31536000",
        "{what}"
    );
    assert_eq!(get("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("cache-control"), "no-store", "{what}");
}

/// Signs in through the form; answers the session cookie (`name=value`).
async fn sign_in(d: &Dashboard) -> String {
    let answer = send(
        d,
        reqwest::Method::POST,
        "/sign-in",
        None,
        None,
        &[
            ("email", OWNER),
            ("password", &d.one_time_password),
            ("code", ""),
        ],
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    let cookie = answer.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("__Host-dbcrate_session="), "{cookie}");
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    cookie.split(';').next().unwrap().to_string()
}

#[test]
fn every_dashboard_answer_carries_the_security_headers() {
    let d = Dashboard::start();
    d.rt.block_on(async {
        use reqwest::Method;
        let signed_out = [
            (Method::GET, "/sign-in", StatusCode::OK),
            (Method::GET, "/", StatusCode::SEE_OTHER),
            (Method::GET, "/account/password", StatusCode::SEE_OTHER),
            (Method::GET, "/assets/dashboard.css", StatusCode::OK),
            (Method::GET, "/.well-known/security.txt", StatusCode::OK),
            (Method::POST, "/sign-in", StatusCode::UNAUTHORIZED),
            (Method::POST, "/sign-out", StatusCode::SEE_OTHER),
        ];
        for (method, path, status) in signed_out {
            let answer = send(
                &d,
                method.clone(),
                path,
                None,
                None,
                &[
                    ("email", "nobody@example.com"),
                    ("password", "wrong password"),
                ],
            )
            .await;
            assert_eq!(answer.status, status, "{method} {path}: {}", answer.text);
            assert_secure_headers(&format!("{method} {path}"), &answer.headers);
        }
        let cookie = sign_in(&d).await;
        for path in ["/account/password", "/"] {
            let answer = send(&d, Method::GET, path, Some(&cookie), None, &[]).await;
            assert_secure_headers(path, &answer.headers);
        }
        // The JSON API answers as before, its unknown routes included; other unknown
        // paths are the dashboard's page.
        let api = send(&d, Method::GET, "/api/v1/orgs", None, None, &[]).await;
        assert_eq!(api.status, StatusCode::UNAUTHORIZED);
        assert!(api.text.contains("\"not_signed_in\""), "{}", api.text);
        for path in ["/api/v1/nothing-here", "/agent/v1/config", "/api/"] {
            let api = send(&d, Method::GET, path, None, None, &[]).await;
            assert_eq!(api.status, StatusCode::NOT_FOUND, "{path}");
            assert!(
                api.text.contains("\"no_such_route\""),
                "{path}: {}",
                api.text
            );
        }
        let api = send(&d, Method::PUT, "/api/v1/orgs", None, None, &[]).await;
        assert_eq!(api.status, StatusCode::METHOD_NOT_ALLOWED);
        let page = send(&d, Method::GET, "/no-such-page", None, None, &[]).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        assert!(page.text.contains("There is no such page"), "{}", page.text);
        assert_secure_headers("/no-such-page", &page.headers);
    });
}

#[test]
fn pages_hold_no_inline_script_or_style_and_the_stylesheet_is_first_party() {
    let d = Dashboard::start();
    d.rt.block_on(async {
        let cookie = sign_in(&d).await;
        for (path, cookie) in [
            ("/sign-in", None),
            ("/account/password", Some(cookie.as_str())),
        ] {
            let page = send(&d, reqwest::Method::GET, path, cookie, None, &[]).await;
            assert_eq!(page.status, StatusCode::OK, "{path}");
            assert!(
                page.headers["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/html"),
                "{path}"
            );
            for forbidden in ["<script", "style=", "<style", "javascript:", "http://"] {
                assert!(!page.text.contains(forbidden), "{path} holds {forbidden}");
            }
        }
        let css = send(
            &d,
            reqwest::Method::GET,
            "/assets/dashboard.css",
            None,
            None,
            &[],
        )
        .await;
        assert!(css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css"));
        for forbidden in ["@import", "url(", "http:", "https:"] {
            assert!(
                !css.text.contains(forbidden),
                "the stylesheet holds {forbidden}"
            );
        }
    });
}

#[test]
fn security_txt_follows_rfc_9116() {
    let d = Dashboard::start();
    d.rt.block_on(async {
        let answer = send(
            &d,
            reqwest::Method::GET,
            "/.well-known/security.txt",
            None,
            None,
            &[],
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        let text = &answer.text;
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{name}: ")))
                .unwrap_or_else(|| panic!("no {name} in {text}"))
                .to_string()
        };
        assert!(field("Contact").starts_with("https://"), "{text}");
        assert!(field("Policy").ends_with("/SECURITY.md"), "{text}");
        assert_eq!(
            field("Canonical"),
            format!("{}/.well-known/security.txt", d.base),
            "{text}"
        );
        let expires = dbcrate_core::time::parse_rfc3339(&field("Expires")).unwrap();
        let now = dbcrate_core::time::unix_now();
        assert!(expires > now && expires < now + 366 * 24 * 3600, "{text}");
    });
}

#[test]
fn a_form_post_without_the_session_csrf_token_or_from_another_origin_changes_nothing() {
    let d = Dashboard::start();
    d.rt.block_on(async {
        use reqwest::Method;
        let cookie = sign_in(&d).await;
        // A page only a signed-in person gets.
        let password_page = || {
            send(
                &d,
                Method::GET,
                "/account/password",
                Some(&cookie),
                None,
                &[],
            )
        };
        let csrf = csrf_of(&password_page().await.text);
        let still_signed_in = || async { password_page().await.status == StatusCode::OK };
        let forged = [
            (None, vec![]),
            (None, vec![("csrf", "0".repeat(64))]),
            (None, vec![("csrf", csrf[..63].to_string())]),
            (
                Some(("origin", "https://evil.example")),
                vec![("csrf", csrf.clone())],
            ),
            (
                Some(("sec-fetch-site", "cross-site")),
                vec![("csrf", csrf.clone())],
            ),
            (
                Some(("sec-fetch-site", "same-site")),
                vec![("csrf", csrf.clone())],
            ),
        ];
        for (header, form) in forged {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let answer =
                send_with(&d, Method::POST, "/sign-out", Some(&cookie), header, &form).await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{header:?} {form:?}");
            assert!(
                answer.text.contains("nothing was changed"),
                "{}",
                answer.text
            );
            assert!(
                still_signed_in().await,
                "{header:?} {form:?} signed the person out"
            );
        }
        // The sign-in form is refused from another origin too (login CSRF).
        let answer = send(
            &d,
            Method::POST,
            "/sign-in",
            None,
            Some("https://evil.example"),
            &[("email", OWNER), ("password", &d.one_time_password)],
        )
        .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        assert!(!answer.headers.contains_key("set-cookie"));
        // The real form, from this origin, works.
        let origin = d.base.clone();
        let answer = send(
            &d,
            Method::POST,
            "/sign-out",
            Some(&cookie),
            Some(&origin),
            &[("csrf", &csrf)],
        )
        .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
        assert!(!still_signed_in().await);
    });
    let actions = d.audited_actions();
    assert_eq!(
        actions.iter().filter(|a| *a == "auth.sign_out").count(),
        1,
        "{actions:?}"
    );
}
