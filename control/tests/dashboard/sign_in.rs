//! Flow 1 in a real browser: first sign-in with the one-time password from `init`
//! (by keyboard alone), the forced password change, TOTP enrolment with the QR code,
//! recovery codes shown once, sign-in with a TOTP code and with a recovery code,
//! sign-out, the throttling message, and a cross-origin form post refused.

use crate::common::totp_code;
use crate::harness::{Dashboard, Pages, ORG, OWNER};
use serde_json::json;
use std::io::{Read, Write};

const NEW_PASSWORD: &str = "correct horse battery staple";
const TAB: &str = "\u{e004}";
const ENTER: &str = "\u{e007}";

fn path_of(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    after_scheme
        .find('/')
        .map_or("/".to_string(), |at| after_scheme[at..].to_string())
}

#[test]
fn flow_1_sign_in_password_change_totp_recovery_codes_sign_out_throttle() {
    let d = Dashboard::start();
    let b = d.browser();
    let mut pages = Pages::new(&b, "flow1");

    // Signed out, every page leads to the sign-in form.
    b.goto(&d.url("/")).unwrap();
    assert_eq!(path_of(&b.url().unwrap()), "/sign-in");
    assert_eq!(b.title().unwrap(), "Sign in · dbcrate");
    pages.check("sign-in");

    // A wrong password: the one message that does not say which part was wrong.
    b.fill_in("#email", OWNER).unwrap();
    b.fill_in("#password", "not the password").unwrap();
    b.submit("main button[type=submit]").unwrap();
    let error = b.text_of("[role=alert]").unwrap();
    assert!(
        error.contains("wrong e-mail address or password"),
        "{error}"
    );
    assert_eq!(
        b.execute("return document.querySelector('#email').value;", json!([]))
            .unwrap(),
        json!(OWNER),
        "the e-mail address is kept"
    );
    pages.check("sign-in-wrong-password");

    // First sign-in, keyboard only: the e-mail field has the focus; type, Tab, type, Enter.
    b.goto(&d.url("/sign-in")).unwrap();
    // Browsers move the focus to an autofocus field at their next rendering step.
    let mut focused = json!(null);
    for _ in 0..100 {
        focused = b
            .execute("return document.activeElement.id;", json!([]))
            .unwrap();
        if focused == json!("email") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(focused, json!("email"));
    b.keys(OWNER).unwrap();
    b.keys(TAB).unwrap();
    b.keys(&d.one_time_password).unwrap();
    b.navigating(|| b.keys(ENTER)).unwrap();
    // The one-time password must be changed before anything else.
    assert_eq!(path_of(&b.url().unwrap()), "/account/password");
    assert_eq!(b.title().unwrap(), "Choose your password · dbcrate");
    assert!(
        b.find_all("nav").unwrap().is_empty(),
        "no navigation that would only lead back here"
    );
    b.goto(&d.url("/")).unwrap();
    assert_eq!(path_of(&b.url().unwrap()), "/account/password");
    pages.check("forced-password-change");

    b.fill_in("#current_password", &d.one_time_password)
        .unwrap();
    b.fill_in("#new_password", NEW_PASSWORD).unwrap();
    b.fill_in("#repeat_password", "a different new password")
        .unwrap();
    b.submit("main button[type=submit]").unwrap();
    assert!(b.text_of("[role=alert]").unwrap().contains("differ"));
    pages.check("password-mismatch");
    b.fill_in("#current_password", &d.one_time_password)
        .unwrap();
    b.fill_in("#new_password", NEW_PASSWORD).unwrap();
    b.fill_in("#repeat_password", NEW_PASSWORD).unwrap();
    b.submit("main button[type=submit]").unwrap();
    assert_eq!(
        path_of(&b.url().unwrap()),
        "/account/second-factor?done=password"
    );
    assert!(b
        .text_of("[role=status]")
        .unwrap()
        .contains("password is changed"));
    pages.check("second-factor-start");

    // TOTP enrolment: the QR code is inline SVG; the key is also shown as text.
    b.fill_in("#password", NEW_PASSWORD).unwrap();
    b.submit("main button[type=submit]").unwrap();
    assert_eq!(
        b.find_all(".qr svg").unwrap().len(),
        1,
        "the QR code is an inline <svg>"
    );
    let seed = b.text_of("code.secret").unwrap().replace(' ', "");
    assert!(seed.len() >= 32, "{seed}");
    pages.check("second-factor-qr");
    b.fill_in("#code", &totp_code(&seed, 0)).unwrap();
    b.fill_in("#password", NEW_PASSWORD).unwrap();
    b.submit("main button[type=submit]").unwrap();
    assert_eq!(b.title().unwrap(), "Save your recovery codes · dbcrate");
    let mut codes = Vec::new();
    for code in b.find_all("ol.codes code").unwrap() {
        codes.push(b.text(&code).unwrap());
    }
    assert_eq!(codes.len(), 10, "{codes:?}");
    pages.check("recovery-codes");

    // The landing page: the organisation and the role.
    b.submit("main a.button").unwrap();
    assert_eq!(path_of(&b.url().unwrap()), "/");
    let row = b.text_of("tbody tr").unwrap();
    assert!(row.contains(ORG) && row.contains("owner"), "{row}");
    assert!(
        b.find_all("[role=status]").unwrap().is_empty(),
        "no second-factor reminder once it is on"
    );
    // Keyboard: the first Tab stop is the skip link, and it moves the focus to the content.
    b.execute("document.activeElement.blur();", json!([]))
        .unwrap();
    b.keys(TAB).unwrap();
    let first = b
        .execute("return document.activeElement.textContent;", json!([]))
        .unwrap();
    assert_eq!(first, json!("Skip to content"));
    b.keys(ENTER).unwrap();
    let focused = b
        .execute("return document.activeElement.id;", json!([]))
        .unwrap();
    assert_eq!(focused, json!("content"));
    pages.check("organisations");

    // A secret shown once is gone: a page of the enrolment shows no seed or codes now.
    b.goto(&d.url("/account/second-factor")).unwrap();
    let account = b.text_of("main").unwrap();
    assert!(account.contains("10 of 10"), "{account}");
    assert!(!account.contains(&codes[0]) && !account.contains(&seed[..8]));
    pages.check("account");

    // Sign out: the session is gone.
    b.submit("form.sign-out button").unwrap();
    assert_eq!(path_of(&b.url().unwrap()), "/sign-in?signed_out=1");
    assert!(b.text_of("[role=status]").unwrap().contains("signed out"));
    pages.check("signed-out");
    b.goto(&d.url("/")).unwrap();
    assert_eq!(path_of(&b.url().unwrap()), "/sign-in");

    // The password alone is not enough any more.
    b.fill_in("#email", OWNER).unwrap();
    b.fill_in("#password", NEW_PASSWORD).unwrap();
    b.submit("main button[type=submit]").unwrap();
    assert!(b
        .text_of("[role=alert]")
        .unwrap()
        .contains("has a second factor"));
    pages.check("sign-in-code-needed");

    // A recovery code signs in once.
    b.fill_in("#password", NEW_PASSWORD).unwrap();
    b.fill_in("#code", &codes[0]).unwrap();
    b.submit("main button[type=submit]").unwrap();
    assert_eq!(path_of(&b.url().unwrap()), "/");
    b.goto(&d.url("/account/second-factor")).unwrap();
    assert!(b.text_of("main").unwrap().contains("9 of 10"));
    b.submit("form.sign-out button").unwrap();
    b.fill_in("#email", OWNER).unwrap();
    b.fill_in("#password", NEW_PASSWORD).unwrap();
    b.fill_in("#code", &codes[0]).unwrap();
    b.submit("main button[type=submit]").unwrap();
    assert!(b.text_of("[role=alert]").unwrap().contains("used already"));
    pages.check("sign-in-used-recovery-code");

    // A code from the app signs in (the next step: the current one was used to enrol).
    b.fill_in("#password", NEW_PASSWORD).unwrap();
    b.fill_in("#code", &totp_code(&seed, 1)).unwrap();
    b.submit("main button[type=submit]").unwrap();
    assert_eq!(path_of(&b.url().unwrap()), "/");
    // Signed in, the sign-in page leads to the dashboard.
    b.goto(&d.url("/sign-in")).unwrap();
    assert_eq!(path_of(&b.url().unwrap()), "/");

    // A form on another origin posting here is refused and changes nothing.
    let other = CrossOriginPage::serve(&d.url("/sign-out"));
    b.goto(&other.url).unwrap();
    b.submit("button").unwrap();
    assert!(
        b.text_of("main").unwrap().contains("nothing was changed"),
        "{}",
        b.text_of("main").unwrap()
    );
    pages.check("cross-origin-post-refused");
    b.goto(&d.url("/")).unwrap();
    assert_eq!(path_of(&b.url().unwrap()), "/", "still signed in");
    b.submit("form.sign-out button").unwrap();

    // An unknown address is a page, not a JSON error.
    b.goto(&d.url("/no-such-page")).unwrap();
    assert!(b.text_of("main").unwrap().contains("There is no such page"));
    pages.check("not-found");
    b.goto(&d.url("/sign-in")).unwrap();

    // Guessing is throttled, and the page says so in words.
    let mut throttled = None;
    for _ in 0..8 {
        b.fill_in("#email", OWNER).unwrap();
        b.fill_in("#password", "a wrong guess here").unwrap();
        b.submit("main button[type=submit]").unwrap();
        let message = b.text_of("[role=alert]").unwrap();
        if message.contains("Too many failed attempts") {
            throttled = Some(message);
            break;
        }
    }
    let message = throttled.expect("the sign-in form is throttled");
    assert!(message.contains("15 minutes"), "{message}");
    pages.check("sign-in-throttled");

    // Every step was audited by the domain functions the API uses.
    let actions = d.audited_actions();
    for action in [
        "auth.failed",
        "auth.sign_in",
        "user.password_change",
        "user.second_factor.enrol",
        "auth.sign_out",
        "auth.recovery_code.use",
        "auth.second_factor.failed",
        "auth.throttled",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} not audited: {actions:?}"
        );
    }
    // No secret reached the audit log.
    let details: Vec<String> = d.rt.block_on(async {
        sqlx::query_scalar("SELECT details || ' ' || target FROM audit_log")
            .fetch_all(d.db.pool())
            .await
            .unwrap()
    });
    for secret in [NEW_PASSWORD, d.one_time_password.as_str(), &codes[0], &seed] {
        assert!(!details.iter().any(|row| row.contains(secret)));
    }
}

#[test]
fn the_page_checks_catch_a_csp_violation_and_a_javascript_error() {
    let d = Dashboard::start();
    let b = d.browser();
    let pages = Pages::new(&b, "selftest");
    b.goto(&d.url("/sign-in")).unwrap();
    assert!(pages.problems().is_empty());
    // An inline style, as an injection would add: the CSP blocks it and the checks see it.
    b.execute(
        "window.__dbcrateViolations = [];\
         document.addEventListener('securitypolicyviolation', e => \
           window.__dbcrateViolations.push(e.violatedDirective));\
         const s = document.createElement('style'); s.textContent = 'body{color:red}';\
         document.head.appendChild(s);",
        json!([]),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let problems = pages.problems();
    assert!(
        problems.iter().any(|p| p.contains("style-src")),
        "{problems:?}"
    );
    let color = b
        .execute("return getComputedStyle(document.body).color;", json!([]))
        .unwrap();
    assert_ne!(
        color,
        json!("rgb(255, 0, 0)"),
        "the inline style was applied"
    );
    // An uncaught JavaScript error reaches the checks through the browser log.
    b.goto(&d.url("/sign-in")).unwrap();
    b.execute(
        "setTimeout(() => { throw new Error('dbcrate selftest error'); }, 0);",
        json!([]),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let problems = pages.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("dbcrate selftest error")),
        "{problems:?}"
    );
}

/// A page on another origin (plain HTTP on another loopback port) with a form that
/// posts to the dashboard, as a hostile site would.
struct CrossOriginPage {
    url: String,
}

impl CrossOriginPage {
    fn serve(target: &str) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let page = format!(
            "<!doctype html><html lang=en><title>elsewhere</title><main>\
             <form method=post action=\"{target}\"><input type=hidden name=csrf value=forged>\
             <button type=submit>Win a prize</button></form></main></html>"
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{page}",
                    page.len()
                );
            }
        });
        Self { url }
    }
}
