//! Flow 10, members and API tokens: an invitation's token shown once; a role changed; a
//! password reset to a one-time password shown once (with which the person must choose
//! their own); a member removed after a confirmation naming them; an API token shown
//! once that works with the API until revoked. An admin gets no control over an owner,
//! and the server refuses anyway.

use crate::harness::{Dashboard, Pages, OWNER};
use crate::http::{csrf_of, send, sign_in_as};
use dbcrate_control::accounts::roles::Role;
use reqwest::{Method, StatusCode};

fn user_id(d: &Dashboard, email: &str) -> String {
    d.rt.block_on(async {
        sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
            .bind(email)
            .fetch_one(d.db.pool())
            .await
            .unwrap()
    })
}

#[test]
fn flow_10_invite_change_reset_remove_and_tokens() {
    let d = Dashboard::start();
    let password = d.add_person("admin@example.com", Role::Admin, &d.org_id);
    d.add_person("operator@example.com", Role::Operator, &d.org_id);
    d.add_person("leaver@example.com", Role::Viewer, &d.org_id);
    let b = d.browser();
    let mut pages = Pages::new(&b, "flow10");
    d.sign_in(&b, "admin@example.com", &password);
    let members = d.url(&format!("/orgs/{}/members", d.org_id));
    b.goto(&members).unwrap();
    assert_eq!(b.title().unwrap(), "Members · dbcrate");
    // The owner's row has no controls for an admin.
    let owner_row = b
        .find_all("tbody tr")
        .unwrap()
        .into_iter()
        .find(|r| b.text(r).unwrap().contains(OWNER))
        .unwrap();
    assert!(!b.text(&owner_row).unwrap().contains("Remove"));
    pages.check("members");

    // An invitation: its token shown once.
    b.fill_in("#email", "newcomer@example.com").unwrap();
    b.submit("form[action$='/members'] button").unwrap();
    assert_eq!(
        b.title().unwrap(),
        "Invitation for newcomer@example.com · dbcrate"
    );
    assert!(b.text_of("pre.command").unwrap().starts_with("dbci_"));
    pages.check("invitation");

    // The operator becomes a viewer.
    let operator = user_id(&d, "operator@example.com");
    b.goto(&members).unwrap();
    b.execute(
        &format!("document.querySelector('#role-{operator}').value = 'viewer';"),
        serde_json::json!([]),
    )
    .unwrap();
    b.submit(&format!("form[action$='/members/{operator}/role'] button"))
        .unwrap();
    assert!(b
        .text_of("[role=status]")
        .unwrap()
        .contains("role is changed"));
    let role: String = d.rt.block_on(async {
        sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1")
            .bind(&operator)
            .fetch_one(d.db.pool())
            .await
            .unwrap()
    });
    assert_eq!(role, "viewer");

    // A password reset, confirmed by name, shows a one-time password once.
    b.click_through(
        &b.find(&format!("a[href$='/members/{operator}/password-reset']"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        b.title().unwrap(),
        "Reset the password of operator@example.com? · dbcrate"
    );
    pages.check("reset-confirm");
    b.submit("button.danger").unwrap();
    let one_time = b.text_of("pre.command").unwrap();
    assert!(one_time.len() >= 12, "{one_time}");
    pages.check("reset-shown");

    // Removal, confirmed by name.
    let leaver = user_id(&d, "leaver@example.com");
    b.goto(&members).unwrap();
    b.click_through(
        &b.find(&format!("a[href$='/members/{leaver}/remove']"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(b.title().unwrap(), "Remove leaver@example.com? · dbcrate");
    b.submit("button.danger").unwrap();
    assert!(b.text_of("[role=status]").unwrap().contains("removed"));
    assert!(!b.text_of("main").unwrap().contains("leaver@example.com"));

    // An API token: shown once, works with the API, then revoked.
    b.fill_in("#name", "monitoring").unwrap();
    b.submit("form[action$='/api-tokens'] button").unwrap();
    let token = b.text_of("pre.command").unwrap();
    assert!(token.starts_with("dbct_"), "{token}");
    pages.check("token-shown");
    let org_path = d.url(&format!("/api/v1/orgs/{}", d.org_id));
    let api_status = |token: &str| {
        d.rt.block_on(async {
            crate::http::client(&d)
                .get(&org_path)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    assert_eq!(api_status(&token), StatusCode::OK);
    b.goto(&members).unwrap();
    b.submit("form[action$='/revoke'] button").unwrap();
    assert!(b.text_of("[role=status]").unwrap().contains("revoked"));
    assert_eq!(api_status(&token), StatusCode::UNAUTHORIZED);
    pages.check("token-revoked");

    // The owner, by hand: refused, unchanged; the new one-time password must be changed.
    let owner = user_id(&d, OWNER);
    d.rt.block_on(async {
        let a = sign_in_as(&d, "admin@example.com", &password).await;
        let page = send(&d, Method::GET, "/", Some(&a), None, &[]).await;
        let csrf = csrf_of(&page.text);
        let path = format!("/orgs/{}/members/{owner}/remove", d.org_id);
        let refused = send(
            &d,
            Method::POST,
            &path,
            Some(&a),
            None,
            &[("csrf", csrf.as_str())],
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
        let form = [
            ("email", "operator@example.com"),
            ("password", one_time.as_str()),
            ("code", ""),
        ];
        let signed = send(&d, Method::POST, "/sign-in", None, None, &form).await;
        assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.text);
        let cookie = signed.headers["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let home = send(&d, Method::GET, "/", Some(&cookie), None, &[]).await;
        assert_eq!(
            home.headers["location"], "/account/password",
            "the one-time password is changed first"
        );
    });
    let actions = d.audited_actions();
    for action in [
        "invitation.create",
        "member.role_change",
        "user.password_reset",
        "member.remove",
        "api_token.create",
        "api_token.revoke",
    ] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} not in {actions:?}"
        );
    }
}

#[test]
fn the_members_page_is_for_admins_and_owners() {
    let d = Dashboard::start();
    let operator = d.add_person("operator@example.com", Role::Operator, &d.org_id);
    d.rt.block_on(async {
        let o = sign_in_as(&d, "operator@example.com", &operator).await;
        let path = format!("/orgs/{}/members", d.org_id);
        assert_eq!(
            send(&d, Method::GET, &path, Some(&o), None, &[])
                .await
                .status,
            StatusCode::FORBIDDEN
        );
        let agents = send(
            &d,
            Method::GET,
            &format!("/orgs/{}/agents", d.org_id),
            Some(&o),
            None,
            &[],
        )
        .await;
        assert!(
            !agents.text.contains("/members\""),
            "no link for an operator"
        );
        let csrf = csrf_of(&agents.text);
        let form = [
            ("csrf", csrf.as_str()),
            ("name", "sneaky"),
            ("role", "viewer"),
        ];
        let tokens = format!("/orgs/{}/api-tokens", d.org_id);
        assert_eq!(
            send(&d, Method::POST, &tokens, Some(&o), None, &form)
                .await
                .status,
            StatusCode::FORBIDDEN
        );
    });
}
