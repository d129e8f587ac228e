//! Flow 3, the agents: a token created on the page enrols an agent at the real agent
//! listener, which then shows as online with its version; revocation names the agent
//! and takes effect. Roles: a viewer sees no control they cannot use and the server
//! refuses their hand-made requests anyway; another organisation's pages are 404s.

use crate::harness::{Dashboard, Pages, ORG};
use crate::http::{client, csrf_of, send, sign_in_as};
use dbcrate_control::accounts::roles::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Enrols at the agent listener with `token` and a fresh key, as `dbcrate-agent enroll`
/// does; answers a client that presents the new certificate.
async fn enrol(d: &Dashboard, token: &str, name: &str) -> (String, reqwest::Client) {
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let answer = client(d)
        .post(format!("{}/agent/v1/enroll", d.agent_url))
        .json(&json!({ "token": token, "csr": csr, "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let enrolled: Value = answer.json().await.unwrap();
    let identity = format!(
        "{}{}",
        key.serialize_pem(),
        enrolled["certificate_chain"].as_str().unwrap()
    );
    let agent = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(d.cert_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
        .user_agent("dbcrate-agent/7.6.5")
        .build()
        .unwrap();
    (enrolled["agent_id"].as_str().unwrap().to_string(), agent)
}

/// The token and the whole command from the page that shows them once.
fn command_parts(command: &str) -> String {
    let start = command
        .find("DBCRATE_ENROLMENT_TOKEN='")
        .expect("the token")
        + 25;
    let end = start + command[start..].find('\'').unwrap();
    command[start..end].to_string()
}

#[test]
fn agents_pages_follow_roles_and_tenants() {
    let d = Dashboard::start();
    let org = d.org_id.clone();
    let viewer = d.add_person("viewer@example.com", Role::Viewer, &org);
    let operator = d.add_person("operator@example.com", Role::Operator, &org);
    let admin = d.add_person("admin@example.com", Role::Admin, &org);
    let other = d.other_org();
    d.rt.block_on(async {
        let now = dbcrate_core::time::unix_now();
        let (enrolled, _) = dbcrate_control::local::enrol_agent(&d.db, &d.keys, &org, now)
            .await
            .unwrap();
        let agent = enrolled.agent_id;
        let list = format!("/orgs/{org}/agents");
        let tokens = format!("/orgs/{org}/agents/enrolment-tokens");
        let revoke = format!("/orgs/{org}/agents/{agent}/revoke");

        // A viewer reads the list, and sees neither the token form nor a revoke link.
        let v = sign_in_as(&d, "viewer@example.com", &viewer).await;
        let page = send(&d, Method::GET, &list, Some(&v), None, &[]).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        assert!(page.text.contains(&agent), "{}", page.text);
        assert!(page.text.contains("Never connected"), "{}", page.text);
        assert!(!page.text.contains("enrolment-tokens"), "{}", page.text);
        assert!(!page.text.contains("/revoke"), "{}", page.text);
        // … and is refused when asking by hand: nothing changes.
        let csrf = csrf_of(&page.text);
        let form = [("csrf", csrf.as_str()), ("name", "db9")];
        let refused = send(&d, Method::POST, &tokens, Some(&v), None, &form).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
        assert!(
            refused.text.contains("operator role or higher"),
            "{}",
            refused.text
        );
        for method in [Method::GET, Method::POST] {
            let form = [("csrf", csrf.as_str())];
            let refused = send(&d, method.clone(), &revoke, Some(&v), None, &form).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{method}");
            assert!(
                refused.text.contains("admin role or higher"),
                "{}",
                refused.text
            );
        }
        let tokens_made: i64 = sqlx::query_scalar("SELECT count(*) FROM enrolment_tokens")
            .fetch_one(d.db.pool())
            .await
            .unwrap();
        assert_eq!(tokens_made, 1, "only the library's own token");

        // Another organisation's agents, an unknown one and a malformed id: no such page.
        for path in [
            format!("/orgs/{other}/agents"),
            "/orgs/org_00000000000000000000000000000000/agents".to_string(),
            "/orgs/not-an-id/agents".to_string(),
        ] {
            let missing = send(&d, Method::GET, &path, Some(&v), None, &[]).await;
            assert_eq!(missing.status, StatusCode::NOT_FOUND, "{path}");
            assert!(!missing.text.contains("Other Org"), "{path}");
        }

        // An operator gets the form, not the revoke link; a bad name keeps the form.
        let o = sign_in_as(&d, "operator@example.com", &operator).await;
        let page = send(&d, Method::GET, &list, Some(&o), None, &[]).await;
        assert!(
            page.text.contains("Create enrolment token"),
            "{}",
            page.text
        );
        assert!(!page.text.contains("/revoke"), "{}", page.text);
        let csrf = csrf_of(&page.text);
        let bad = [
            ("csrf", csrf.as_str()),
            ("name", "bad\u{7}name"),
            ("expires_in_secs", "3600"),
        ];
        let refused = send(&d, Method::POST, &tokens, Some(&o), None, &bad).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            refused.text
        );
        assert!(refused.text.contains("Error:"), "{}", refused.text);
        let made = [
            ("csrf", csrf.as_str()),
            ("name", "db's host"),
            ("expires_in_secs", "86400"),
        ];
        let shown = send(&d, Method::POST, &tokens, Some(&o), None, &made).await;
        assert_eq!(shown.status, StatusCode::CREATED, "{}", shown.text);
        for part in [
            "DBCRATE_ENROLMENT_TOKEN='dbce_",
            &format!("--control-url {}", d.agent_url),
            "--server-fingerprint ",
            &format!("--org {org}"),
            r#"--name 'db'\''s host'"#,
            "shown once",
        ] {
            assert!(
                shown.text.contains(part),
                "{part:?} missing: {}",
                shown.text
            );
        }

        // An admin confirms on a page that names the agent; the revocation takes effect.
        let a = sign_in_as(&d, "admin@example.com", &admin).await;
        let page = send(&d, Method::GET, &list, Some(&a), None, &[]).await;
        assert!(page.text.contains(&revoke), "{}", page.text);
        let confirm = send(&d, Method::GET, &revoke, Some(&a), None, &[]).await;
        assert_eq!(confirm.status, StatusCode::OK);
        assert!(confirm.text.contains("Revoke local"), "{}", confirm.text);
        let csrf = csrf_of(&confirm.text);
        let done = send(
            &d,
            Method::POST,
            &revoke,
            Some(&a),
            None,
            &[("csrf", &csrf)],
        )
        .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
        let to = done.headers["location"].to_str().unwrap().to_string();
        assert_eq!(to, format!("{list}?revoked={agent}"));
        let after = send(&d, Method::GET, &to, Some(&a), None, &[]).await;
        assert!(after.text.contains("local is revoked"), "{}", after.text);
        assert!(after.text.contains(">Revoked<"), "{}", after.text);
        let revoked_at: Option<i64> =
            sqlx::query_scalar("SELECT revoked_at FROM agents WHERE id = $1")
                .bind(&agent)
                .fetch_one(d.db.pool())
                .await
                .unwrap();
        assert!(revoked_at.is_some());
        // Twice is refused, and says why.
        let again = send(
            &d,
            Method::POST,
            &revoke,
            Some(&a),
            None,
            &[("csrf", &csrf)],
        )
        .await;
        assert_eq!(again.status, StatusCode::NOT_FOUND, "{}", again.text);
        assert!(again.text.contains("revoked already"), "{}", again.text);
    });
    let actions = d.audited_actions();
    for action in ["agent.enrolment_token.create", "agent.revoke"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} not in {actions:?}"
        );
    }
}

#[test]
fn flow_3_enrol_an_agent_from_the_page_see_it_online_and_revoke_it() {
    let d = Dashboard::start();
    let password = d.add_person("admin@example.com", Role::Admin, &d.org_id);
    let b = d.browser();
    let mut pages = Pages::new(&b, "flow3");

    d.sign_in(&b, "admin@example.com", &password);
    // From the organisations page to the organisation's overview, then its agents.
    let link = b
        .find(&format!("main a[href='/orgs/{}']", d.org_id))
        .unwrap();
    assert_eq!(b.text(&link).unwrap(), ORG);
    b.click_through(&link).unwrap();
    assert_eq!(b.title().unwrap(), format!("{ORG} · dbcrate"));
    let agents = b
        .find(&format!("nav.org a[href='/orgs/{}/agents']", d.org_id))
        .unwrap();
    b.click_through(&agents).unwrap();
    assert_eq!(b.title().unwrap(), "Agents · dbcrate");
    assert!(b
        .text_of("main")
        .unwrap()
        .contains("No agent has enrolled yet"));
    pages.check("agents-empty");

    // A token, shown once with the command to paste.
    b.fill_in("#name", "db1.example.com").unwrap();
    b.submit("main form button[type=submit]").unwrap();
    assert_eq!(
        b.title().unwrap(),
        "Enrolment token for db1.example.com · dbcrate"
    );
    let command = b.text_of("pre.command").unwrap();
    assert!(command.contains("dbcrate-agent enroll"), "{command}");
    assert!(
        command.contains(&format!("--control-url {}", d.agent_url)),
        "{command}"
    );
    let token = command_parts(&command);
    pages.check("agents-token");

    // The agent enrols with it at the agent listener and calls in once.
    let agent = d.rt.block_on(async {
        let (agent, client) = enrol(&d, &token, "db1.example.com").await;
        let config = client
            .get(format!("{}/agent/v1/config", d.agent_url))
            .send()
            .await
            .unwrap();
        assert_eq!(config.status(), StatusCode::OK);
        agent
    });
    b.goto(&d.url(&format!("/orgs/{}/agents", d.org_id)))
        .unwrap();
    let row = b.text_of("tbody tr").unwrap();
    for part in [
        "db1.example.com",
        &agent,
        "Online",
        "7.6.5",
        "no backup yet",
    ] {
        assert!(row.contains(part), "{part:?} missing in {row:?}");
    }
    pages.check("agents-online");

    // Revoke: the confirmation names the agent; then the list says so.
    let revoke = b.find("a[href$='/revoke']").unwrap();
    b.click_through(&revoke).unwrap();
    assert_eq!(b.title().unwrap(), "Revoke db1.example.com? · dbcrate");
    assert_eq!(
        b.text_of("button.danger").unwrap(),
        "Revoke db1.example.com"
    );
    pages.check("agents-revoke-confirm");
    b.submit("button.danger").unwrap();
    assert!(b
        .text_of("[role=status]")
        .unwrap()
        .contains("db1.example.com is revoked"));
    assert!(b.text_of("tbody tr").unwrap().contains("Revoked"));
    pages.check("agents-revoked");
}
