//! The alerts page in a real browser: empty states; a Slack-compatible channel and a
//! webhook added (the webhook's signing key shown once; no URL ever shown); a test
//! notification sent at once to a real receiver on loopback and its delivery in the
//! log; an e-mail form refused and kept filled without its password; a channel removed
//! after a confirmation naming it; an open alert listed. A viewer sees the alerts and
//! channels but no control, and is refused anyway.

use crate::harness::{Dashboard, Pages};
use crate::http::{csrf_of, send, sign_in_as};
use dbcrate_control::accounts::roles::Role;
use reqwest::{Method, StatusCode};

#[test]
fn alerts_page_channels_tests_and_the_delivery_log() {
    let d = Dashboard::start();
    let admin = d.add_person("admin@example.com", Role::Admin, &d.org_id);
    let viewer = d.add_person("viewer@example.com", Role::Viewer, &d.org_id);
    let got = crate::common::receiver::Received::default();
    let port =
        d.rt.block_on(crate::common::receiver::receiver(got.clone()));
    let b = d.browser();
    let mut pages = Pages::new(&b, "alerts");
    d.sign_in(&b, "admin@example.com", &admin);
    let alerts = d.url(&format!("/orgs/{}/alerts", d.org_id));
    b.goto(&alerts).unwrap();
    assert_eq!(b.title().unwrap(), "Alerts · dbcrate");
    let main = b.text_of("main").unwrap();
    assert!(main.contains("Nothing is wrong right now"), "{main}");
    assert!(main.contains("No channel yet"), "{main}");
    pages.check("alerts-empty");

    // A Slack-compatible channel: the URL is a secret field, and never shown again.
    b.click_through(&b.find("a[href$='kind=slack']").unwrap())
        .unwrap();
    assert_eq!(
        b.title().unwrap(),
        "Add a Slack-compatible webhook · dbcrate"
    );
    pages.check("alerts-add-slack");
    b.fill_in("#name", "ops chat").unwrap();
    b.fill_in("#url", &format!("http://127.0.0.1:{port}/slack/T0/secret"))
        .unwrap();
    b.submit("main form button[type=submit]").unwrap();
    assert!(b
        .text_of("[role=status]")
        .unwrap()
        .contains("ops chat is added"));
    let main = b.text_of("main").unwrap();
    assert!(
        main.contains("127.0.0.1") && !main.contains("/slack"),
        "{main}"
    );

    // A webhook: its signing key, once.
    b.goto(&d.url(&format!(
        "/orgs/{}/alerts/channels/new?kind=webhook",
        d.org_id
    )))
    .unwrap();
    b.fill_in("#name", "ops hook").unwrap();
    b.fill_in("#url", &format!("http://127.0.0.1:{port}/hook"))
        .unwrap();
    b.submit("main form button[type=submit]").unwrap();
    assert_eq!(b.title().unwrap(), "Signing key for ops hook · dbcrate");
    let key = b.text_of("pre.command code").unwrap();
    assert!(key.starts_with("dbcwh_"), "{key}");
    pages.check("alerts-signing-key");
    b.goto(&alerts).unwrap();
    assert!(!b.text_of("main").unwrap().contains(&key), "shown once");

    // A test notification, sent at once, in the log.
    b.submit("form[action$='/test'] button").unwrap();
    let status = b.text_of("[role=status]").unwrap();
    assert!(status.contains("was delivered to ops"), "{status}");
    let received = got.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(
        String::from_utf8_lossy(&received[0].2).contains("Test"),
        "{received:?}"
    );
    assert!(b.text_of("main").unwrap().contains("Delivered"));
    pages.check("alerts-tested");

    // E-mail to something that is no address: refused (by the server: the browser
    // already insists the field is filled), kept, the password not sent back.
    b.goto(&d.url(&format!(
        "/orgs/{}/alerts/channels/new?kind=email",
        d.org_id
    )))
    .unwrap();
    pages.check("alerts-add-email");
    b.fill_in("#name", "on-call mail").unwrap();
    b.fill_in("#host", "smtp.example.com").unwrap();
    b.fill_in("#username", "alerts@example.com").unwrap();
    b.fill_in("#password", "an smtp password").unwrap();
    b.fill_in("#from", "dbcrate@example.com").unwrap();
    b.fill_in("#to", "the on-call team").unwrap();
    b.submit("main form button[type=submit]").unwrap();
    assert!(b
        .text_of("[role=alert]")
        .unwrap()
        .contains("to must be an e-mail address"));
    let value = |id: &str| {
        b.execute(
            &format!("return document.querySelector('#{id}').value;"),
            serde_json::json!([]),
        )
        .unwrap()
    };
    assert_eq!(value("host"), "smtp.example.com");
    assert_eq!(value("password"), "", "the password is not sent back");
    pages.check("alerts-email-refused");

    // Remove, after a confirmation that names the channel.
    b.goto(&alerts).unwrap();
    b.click_through(&b.find("a[href$='/remove']").unwrap())
        .unwrap();
    assert!(
        b.title().unwrap().starts_with("Remove ops"),
        "{}",
        b.title().unwrap()
    );
    pages.check("alerts-remove-confirm");
    b.submit("button.danger").unwrap();
    assert!(b.text_of("[role=status]").unwrap().contains("is removed"));

    // An open alert, listed in words.
    d.rt.block_on(async {
        sqlx::query(
            "INSERT INTO alerts (id, org_id, kind, subject, summary, opened_at, last_sent_at, repeats) \
             VALUES ('alr_1', $1, 'backup_overdue', 'dbs_1', 'No backup of shop has finished since one was due.', $2, $2, 0)",
        )
        .bind(&d.org_id)
        .bind(dbcrate_core::time::unix_now())
        .execute(d.db.pool())
        .await
        .unwrap();
    });
    b.goto(&alerts).unwrap();
    let main = b.text_of("main").unwrap();
    assert!(
        main.contains("1 open alert(s)") && main.contains("Backup overdue"),
        "{main}"
    );
    pages.check("alerts-open");
    let actions = d.audited_actions();
    for action in ["alert_channel.create", "alert_channel.delete"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} not in {actions:?}"
        );
    }

    // A viewer reads, has no control, and is refused anyway.
    d.rt.block_on(async {
        let v = sign_in_as(&d, "viewer@example.com", &viewer).await;
        let path = format!("/orgs/{}/alerts", d.org_id);
        let page = send(&d, Method::GET, &path, Some(&v), None, &[]).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text.contains("Backup overdue"), "{}", page.text);
        assert!(!page.text.contains("Send a test") && !page.text.contains("Add a webhook"));
        let csrf = csrf_of(&page.text);
        let channel: String = sqlx::query_scalar("SELECT id FROM alert_channels LIMIT 1")
            .fetch_one(d.db.pool())
            .await
            .unwrap();
        for action in ["test", "remove"] {
            let refused = send(
                &d,
                Method::POST,
                &format!("/orgs/{}/alerts/channels/{channel}/{action}", d.org_id),
                Some(&v),
                None,
                &[("csrf", csrf.as_str())],
            )
            .await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{action}");
        }
    });
}
