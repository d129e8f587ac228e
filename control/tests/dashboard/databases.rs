//! Flow 4, the databases: added and edited in the browser; a stored password is never
//! sent back (the edit form's field is empty and keeping it keeps the sealed secret); a
//! refused form comes back filled, the password excepted. A viewer sees no add form or
//! edit link and is refused anyway.

use crate::harness::{Dashboard, Pages};
use crate::http::{csrf_of, send, sign_in_as};
use dbcrate_control::accounts::roles::Role;
use reqwest::{Method, StatusCode};

const PASSWORD: &str = "the database password 7f3a";

fn stored_secret(d: &Dashboard) -> Option<String> {
    d.rt.block_on(async {
        sqlx::query_scalar("SELECT password_secret_id FROM databases")
            .fetch_one(d.db.pool())
            .await
            .unwrap()
    })
}

fn enrol(d: &Dashboard) -> String {
    d.rt.block_on(async {
        let now = dbcrate_core::time::unix_now();
        dbcrate_control::local::enrol_agent(&d.db, &d.keys, &d.org_id, now)
            .await
            .unwrap()
            .0
            .agent_id
    })
}

#[test]
fn flow_4_add_and_edit_a_database_whose_password_never_comes_back() {
    let d = Dashboard::start();
    let password = d.add_person("admin@example.com", Role::Admin, &d.org_id);
    let b = d.browser();
    let mut pages = Pages::new(&b, "flow4");
    d.sign_in(&b, "admin@example.com", &password);

    // No agent yet: the page says to enrol one first.
    b.goto(&d.url(&format!("/orgs/{}/databases", d.org_id)))
        .unwrap();
    assert!(b.text_of("main").unwrap().contains("Enrol an agent first"));
    pages.check("databases-no-agent");
    let agent = enrol(&d);
    b.goto(&d.url(&format!("/orgs/{}/databases", d.org_id)))
        .unwrap();
    assert_eq!(b.title().unwrap(), "Databases · dbcrate");
    pages.check("databases-empty");

    // A refused form comes back filled, without the password.
    b.fill_in("#name", "shop").unwrap();
    b.fill_in("#host", "db1.internal").unwrap();
    b.fill_in("#port", "not a port").unwrap();
    b.fill_in("#dbname", "shop").unwrap();
    b.fill_in("#username", "backup").unwrap();
    b.fill_in("#password", PASSWORD).unwrap();
    b.submit("main form button[type=submit]").unwrap();
    assert!(b
        .text_of("[role=alert]")
        .unwrap()
        .contains("port must be a number"));
    let value = |id: &str| {
        b.execute(
            &format!("return document.querySelector('#{id}').value;"),
            serde_json::json!([]),
        )
        .unwrap()
    };
    assert_eq!(value("host"), "db1.internal");
    assert_eq!(value("password"), "", "the password is not sent back");
    pages.check("databases-refused");

    b.fill_in("#port", "5433").unwrap();
    b.fill_in("#password", PASSWORD).unwrap();
    b.submit("main form button[type=submit]").unwrap();
    assert!(b
        .text_of("[role=status]")
        .unwrap()
        .contains("shop is added"));
    let row = b.text_of("tbody tr").unwrap();
    for part in [
        "shop",
        "db1.internal:5433/shop",
        "backup",
        "prefer",
        "stored (sealed)",
        "local",
    ] {
        assert!(row.contains(part), "{part:?} missing in {row:?}");
    }
    pages.check("databases-added");
    let sealed = stored_secret(&d).expect("a sealed password");

    // Edit: the password field is empty; saving without one keeps the sealed secret.
    let edit = b.find("a[href$='/edit']").unwrap();
    b.click_through(&edit).unwrap();
    assert_eq!(b.title().unwrap(), "Edit shop · dbcrate");
    assert_eq!(value("password"), "");
    assert!(!b
        .execute(
            "return document.documentElement.outerHTML;",
            serde_json::json!([])
        )
        .unwrap()
        .as_str()
        .unwrap()
        .contains(PASSWORD));
    assert_eq!(value("agent_id"), agent.as_str());
    pages.check("databases-edit");
    b.fill_in("#host", "db2.internal").unwrap();
    b.submit("main form button[type=submit]").unwrap();
    assert!(b
        .text_of("[role=status]")
        .unwrap()
        .contains("shop is saved"));
    assert!(b
        .text_of("tbody tr")
        .unwrap()
        .contains("db2.internal:5433/shop"));
    assert_eq!(stored_secret(&d), Some(sealed), "kept");

    // Then remove it.
    b.click_through(&b.find("a[href$='/edit']").unwrap())
        .unwrap();
    b.click(&b.find("#remove_password").unwrap()).unwrap();
    b.submit("main form button[type=submit]").unwrap();
    assert!(b.text_of("tbody tr").unwrap().contains("none"));
    assert_eq!(stored_secret(&d), None);
    pages.check("databases-saved");

    let actions = d.audited_actions();
    for action in ["database.create", "database.update"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} not in {actions:?}"
        );
    }
}

#[test]
fn a_viewer_sees_no_database_controls_and_is_refused_anyway() {
    let d = Dashboard::start();
    let viewer = d.add_person("viewer@example.com", Role::Viewer, &d.org_id);
    let agent = enrol(&d);
    d.rt.block_on(async {
        let new = dbcrate_control::backups::databases::NewDatabase {
            name: "shop",
            host: "db1.internal",
            port: 5432,
            dbname: "shop",
            username: "backup",
            tls_mode: "prefer",
            password: None,
            agent_id: &agent,
        };
        let now = dbcrate_core::time::unix_now();
        let shop = dbcrate_control::backups::databases::create(
            &d.db,
            &d.keys,
            &d.org_id,
            &new,
            "system:test",
            now,
        )
        .await
        .unwrap();
        let list = format!("/orgs/{}/databases", d.org_id);
        let edit = format!("/orgs/{}/databases/{}/edit", d.org_id, shop.id);
        let v = sign_in_as(&d, "viewer@example.com", &viewer).await;
        let page = send(&d, Method::GET, &list, Some(&v), None, &[]).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text.contains("db1.internal"), "{}", page.text);
        assert!(!page.text.contains("Add a database"), "{}", page.text);
        assert!(!page.text.contains("/edit"), "{}", page.text);
        let csrf = csrf_of(&page.text);
        let form = [
            ("csrf", csrf.as_str()),
            ("name", "other"),
            ("host", "h"),
            ("port", "5432"),
            ("dbname", "x"),
            ("username", "u"),
            ("tls_mode", "prefer"),
            ("agent_id", agent.as_str()),
        ];
        for (method, path) in [
            (Method::POST, &list),
            (Method::GET, &edit),
            (Method::POST, &edit),
        ] {
            let refused = send(&d, method.clone(), path, Some(&v), None, &form).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{method} {path}");
        }
        let after = dbcrate_control::backups::databases::list(&d.db, &d.org_id)
            .await
            .unwrap();
        assert_eq!(after, vec![shop], "nothing changed");
    });
}
