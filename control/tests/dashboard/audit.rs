//! Flow 8, the audit log: the chain verifies and its head is shown; rows filtered by
//! action, actor and day; exports of the filtered rows as JSON lines and CSV through the
//! API's own export; a changed row makes the page say the chain no longer verifies. An
//! operator is refused, as by the API.

use crate::harness::{Dashboard, Pages};
use crate::http::{send, sign_in_as};
use dbcrate_control::accounts::roles::Role;
use reqwest::{Method, StatusCode};

#[test]
fn flow_8_read_filter_and_export_the_audit_log_and_see_a_broken_chain() {
    let d = Dashboard::start();
    let password = d.add_person("admin@example.com", Role::Admin, &d.org_id);
    let operator = d.add_person("operator@example.com", Role::Operator, &d.org_id);
    let b = d.browser();
    let mut pages = Pages::new(&b, "flow8");
    d.sign_in(&b, "admin@example.com", &password);
    b.goto(&d.url(&format!("/orgs/{}/audit", d.org_id)))
        .unwrap();
    assert_eq!(b.title().unwrap(), "Audit log · dbcrate");
    // Newest first: the first row is the organisation's newest.
    let newest: String = d.rt.block_on(async {
        sqlx::query_scalar(
            "SELECT action FROM audit_log WHERE org_id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(&d.org_id)
        .fetch_one(d.db.pool())
        .await
        .unwrap()
    });
    let times: Vec<String> = b
        .find_all("td[data-label='When (UTC)']")
        .unwrap()
        .iter()
        .map(|cell| b.text(cell).unwrap())
        .collect();
    assert!(times.len() >= 2, "{times:?}");
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert_eq!(b.text_of("td[data-label=Action]").unwrap(), newest);
    pages.check("audit");
    b.click_through(&b.find("a[href$='/audit/chain']").unwrap())
        .unwrap();
    assert_eq!(b.title().unwrap(), "The audit chain · dbcrate");
    let status = b.text_of("[role=status]").unwrap();
    assert!(status.contains("The chain verifies"), "{status}");
    let head = b.text_of("pre.command").unwrap();
    assert!(head.starts_with(&d.org_id), "{head}");
    pages.check("audit-chain");
    b.goto(&d.url(&format!("/orgs/{}/audit", d.org_id)))
        .unwrap();

    // Only the members added.
    b.execute(
        "document.querySelector('#action').value = 'member.add';",
        serde_json::json!([]),
    )
    .unwrap();
    b.submit("form.filters button").unwrap();
    let actions: Vec<String> = b
        .find_all("td[data-label=Action]")
        .unwrap()
        .iter()
        .map(|cell| b.text(cell).unwrap())
        .collect();
    assert!(!actions.is_empty());
    assert!(actions.iter().all(|a| a == "member.add"), "{actions:?}");
    pages.check("audit-filtered");

    // The export links carry the filter to the API's export.
    let href = b
        .execute(
            "return document.querySelector(\"a[download='audit.jsonl']\").getAttribute('href');",
            serde_json::json!([]),
        )
        .unwrap();
    let href = href.as_str().unwrap().to_string();
    assert!(
        href.contains("format=jsonl") && href.contains("action=member.add"),
        "{href}"
    );
    d.rt.block_on(async {
        let a = sign_in_as(&d, "admin@example.com", &password).await;
        let export = send(&d, Method::GET, &href, Some(&a), None, &[]).await;
        assert_eq!(export.status, StatusCode::OK);
        let lines: Vec<&str> = export.text.lines().collect();
        assert!(lines.len() >= 2, "{}", export.text);
        assert!(lines.iter().all(|l| l.contains("\"action\":\"member.add\"")), "{}", export.text);
        let csv = href.replace("format=jsonl", "format=csv");
        let export = send(&d, Method::GET, &csv, Some(&a), None, &[]).await;
        assert!(export.text.starts_with("seq,"), "{}", export.text);
        // An operator may not read it, here or through the API.
        let o = sign_in_as(&d, "operator@example.com", &operator).await;
        let page = format!("/orgs/{}/audit", d.org_id);
        assert_eq!(send(&d, Method::GET, &page, Some(&o), None, &[]).await.status, StatusCode::FORBIDDEN);
        assert_eq!(send(&d, Method::GET, &href, Some(&o), None, &[]).await.status, StatusCode::FORBIDDEN);
        // A row changed behind the control plane's back (by someone with the database
        // owner's rights, who can drop the append-only trigger).
        sqlx::raw_sql("DROP TRIGGER IF EXISTS audit_log_no_update")
            .execute(d.db.pool())
            .await
            .unwrap();
        sqlx::query("UPDATE audit_log SET details = '{\"role\":\"viewer\"}' WHERE action = 'member.add' AND org_id = $1")
            .bind(&d.org_id)
            .execute(d.db.pool())
            .await
            .unwrap();
    });
    b.goto(&d.url(&format!("/orgs/{}/audit/chain", d.org_id)))
        .unwrap();
    let alert = b.text_of("[role=alert]").unwrap();
    assert!(alert.contains("does not verify"), "{alert}");
    pages.check("audit-broken");
}
