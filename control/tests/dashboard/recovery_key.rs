//! Flow 9, the recovery key: owners only; without a second factor the page says to set
//! one up; with one checked in the last five minutes the download is the identity file
//! (audited), which stock `age` decrypts a backup with; after five minutes the form asks
//! for a code again, and a missing or wrong code downloads nothing.

use crate::common::totp_code;
use crate::harness::{Dashboard, Pages};
use crate::http::{csrf_of, send, sign_in_as};
use dbcrate_control::accounts::roles::Role;
use dbcrate_testkit::{Deps, TempDir};
use reqwest::{Method, StatusCode};
use std::io::Write;
use std::process::{Command, Stdio};

const OWNER: &str = "keeper@example.com";

/// Turns on TOTP for the signed-in person through the account pages; answers the seed
/// and the first recovery code.
async fn enrol_totp(d: &Dashboard, cookie: &str, password: &str) -> (String, String) {
    let page = send(
        d,
        Method::GET,
        "/account/second-factor",
        Some(cookie),
        None,
        &[],
    )
    .await;
    let csrf = csrf_of(&page.text);
    let form = [("csrf", csrf.as_str()), ("password", password)];
    let qr = send(
        d,
        Method::POST,
        "/account/second-factor",
        Some(cookie),
        None,
        &form,
    )
    .await;
    let at = qr.text.find("<code class=\"secret\">").expect("the seed") + 21;
    let seed: String = qr.text[at..].split('<').next().unwrap().replace(' ', "");
    let code = totp_code(&seed, 0);
    let form = [
        ("csrf", csrf.as_str()),
        ("code", code.as_str()),
        ("password", password),
    ];
    let done = send(
        d,
        Method::POST,
        "/account/second-factor/confirm",
        Some(cookie),
        None,
        &form,
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text);
    let start = "<ol class=\"codes\"><li><code>";
    let at = done.text.find(start).expect("recovery codes") + start.len();
    let recovery = done.text[at..].split('<').next().unwrap().to_string();
    (seed, recovery)
}

/// Stock age: encrypts `message` to `recipient` and decrypts it with `identity`.
fn stock_age_round_trip(recipient: &str, identity: &str) -> Vec<u8> {
    let age = Deps::from_env()
        .tool("age")
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = TempDir::new("recovery-key").unwrap();
    let key_file = dir.path().join("dbcrate.key");
    std::fs::write(&key_file, identity).unwrap();
    let mut enc = Command::new(&age)
        .args(["-r", recipient])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    enc.stdin
        .take()
        .unwrap()
        .write_all(b"a backup's bytes")
        .unwrap();
    let sealed = enc.wait_with_output().unwrap();
    assert!(sealed.status.success());
    let sealed_file = dir.path().join("backup.age");
    std::fs::write(&sealed_file, &sealed.stdout).unwrap();
    let out = Command::new(&age)
        .arg("-d")
        .arg("-i")
        .arg(&key_file)
        .arg(&sealed_file)
        .output()
        .unwrap();
    dbcrate_testkit::assert_succeeded("stock age -d", &out);
    out.stdout
}

#[test]
fn flow_9_the_recovery_key_needs_an_owner_and_a_fresh_second_factor_and_opens_backups() {
    let d = Dashboard::start();
    let password = d.add_person(OWNER, Role::Owner, &d.org_id);
    let admin = d.add_person("admin@example.com", Role::Admin, &d.org_id);
    let path = format!("/orgs/{}/recovery-key", d.org_id);
    let ((seed, recovery), cookie) = d.rt.block_on(async {
        // No second factor yet: the page says what is missing and offers no download.
        let cookie = sign_in_as(&d, OWNER, &password).await;
        let page = send(&d, Method::GET, &path, Some(&cookie), None, &[]).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text.contains("needs a second factor"), "{}", page.text);
        assert!(
            !page.text.contains("Download the recovery key"),
            "{}",
            page.text
        );
        (enrol_totp(&d, &cookie, &password).await, cookie)
    });
    // The page in a browser, checked like every page.
    let b = d.browser();
    let mut pages = Pages::new(&b, "flow9");
    b.goto(&d.url("/sign-in")).unwrap();
    b.fill_in("#email", OWNER).unwrap();
    b.fill_in("#password", &password).unwrap();
    // (A recovery code: this step's TOTP code went to the enrolment.)
    b.fill_in("#code", &recovery).unwrap();
    b.submit("main button[type=submit]").unwrap();
    assert_eq!(
        b.find_all("[role=alert]").unwrap().len(),
        0,
        "{}",
        b.text_of("main").unwrap()
    );
    b.goto(&d.url(&path)).unwrap();
    assert_eq!(b.title().unwrap(), "Recovery key · dbcrate");
    let text = b.text_of("main").unwrap();
    assert!(text.contains("cannot be decrypted by anyone"), "{text}");
    assert!(
        b.find_all("#code").unwrap().is_empty(),
        "just signed in with a code: none asked"
    );
    pages.check("recovery-key");

    d.rt.block_on(async {
        let recipient = dbcrate_control::orgs::get(&d.db, &d.org_id)
            .await
            .unwrap()
            .unwrap()
            .recipient;
        // The session from before the second factor was set up: a code is asked for;
        // none, or a wrong one, downloads nothing; the right one downloads the file.
        let page = send(&d, Method::GET, &path, Some(&cookie), None, &[]).await;
        assert!(page.text.contains("id=\"code\""), "{}", page.text);
        let csrf = csrf_of(&page.text);
        let none = send(
            &d,
            Method::POST,
            &path,
            Some(&cookie),
            None,
            &[("csrf", csrf.as_str())],
        )
        .await;
        assert_eq!(none.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(!none.text.contains("AGE-SECRET-KEY"));
        let wrong = [("csrf", csrf.as_str()), ("code", "000000")];
        let refused = send(&d, Method::POST, &path, Some(&cookie), None, &wrong).await;
        assert!(refused.status.is_client_error(), "{}", refused.status);
        assert!(!refused.text.contains("AGE-SECRET-KEY"));
        let code = totp_code(&seed, 1);
        let right = [("csrf", csrf.as_str()), ("code", code.as_str())];
        let file = send(&d, Method::POST, &path, Some(&cookie), None, &right).await;
        assert_eq!(file.status, StatusCode::OK, "{}", file.text);
        let disposition = file.headers["content-disposition"].to_str().unwrap();
        assert!(disposition.starts_with("attachment;"), "{disposition}");
        assert!(file.text.contains("AGE-SECRET-KEY-1"), "an identity file");
        assert_eq!(
            stock_age_round_trip(&recipient, &file.text),
            b"a backup's bytes"
        );

        // For five minutes no code is asked again; after them, it is.
        let again = send(
            &d,
            Method::POST,
            &path,
            Some(&cookie),
            None,
            &[("csrf", csrf.as_str())],
        )
        .await;
        assert!(again.text.contains("AGE-SECRET-KEY-1"), "{}", again.status);
        sqlx::query("UPDATE sessions SET second_factor_at = second_factor_at - 600")
            .execute(d.db.pool())
            .await
            .unwrap();
        let page = send(&d, Method::GET, &path, Some(&cookie), None, &[]).await;
        assert!(page.text.contains("id=\"code\""), "{}", page.text);

        // An admin has no link to it and is refused.
        let a = sign_in_as(&d, "admin@example.com", &admin).await;
        let agents = send(
            &d,
            Method::GET,
            &format!("/orgs/{}/agents", d.org_id),
            Some(&a),
            None,
            &[],
        )
        .await;
        assert!(!agents.text.contains("recovery-key"), "{}", agents.text);
        assert_eq!(
            send(&d, Method::GET, &path, Some(&a), None, &[])
                .await
                .status,
            StatusCode::FORBIDDEN
        );
    });
    let exports = d
        .audited_actions()
        .iter()
        .filter(|a| *a == "org.recovery_key.export")
        .count();
    assert_eq!(exports, 2, "each download audited");
}
