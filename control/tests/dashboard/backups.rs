//! Flow 7, backups and jobs: "Run now" queues a job whose page shows it queued, then
//! running with the bytes and phase its agent reports, then succeeded; the backup is
//! listed (size, duration, versions, SHA-256) and filtered; a restore is confirmed by
//! typing the target's name (a wrong name restores nothing) and its job page follows.
//! The agent's side is spoken over the real agent listener with the agent's own
//! certificate (claim, heartbeat, completion), as `dbcrate-agent run` speaks it.

use crate::harness::{Dashboard, Objects, Pages};
use crate::http::{csrf_of, send, sign_in_as};
use dbcrate_control::accounts::roles::Role;
use dbcrate_testkit::TempDir;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// An agent (and a client speaking for it), a database `shop`, a directory destination
/// and a daily schedule: (agent client, the objects, schedule).
fn world(d: &Dashboard, dir: &TempDir) -> (reqwest::Client, Objects, String) {
    let o = d.objects("shop", dir);
    let agent = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(d.cert_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .identity(reqwest::Identity::from_pem(o.agent_identity.as_bytes()).unwrap())
        .build()
        .unwrap();
    let schedule = d.rt.block_on(async {
        let new = dbcrate_control::backups::schedules::NewSchedule {
            database_id: &o.database,
            destination_id: &o.destination,
            cron: "@daily",
            time_zone: "UTC",
            retention: Default::default(),
        };
        let now = dbcrate_core::time::unix_now();
        dbcrate_control::backups::schedules::create(&d.db, &d.org_id, &new, "system:test", now)
            .await
            .unwrap()
            .id
    });
    (agent, o, schedule)
}

/// The agent's call to `path` on the agent listener, answered as JSON.
fn agent_call(
    d: &Dashboard,
    agent: &reqwest::Client,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    d.rt.block_on(async {
        let mut request = agent.request(method, format!("{}{path}", d.agent_url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
        answer.json().await.unwrap()
    })
}

#[test]
fn flow_7_run_now_watch_the_job_find_the_backup_and_restore_it() {
    let d = Dashboard::start();
    let password = d.add_person("admin@example.com", Role::Admin, &d.org_id);
    let dir = TempDir::new("flow7-destination").unwrap();
    let (agent, _, schedule) = world(&d, &dir);
    let b = d.browser();
    let mut pages = Pages::new(&b, "flow7");
    d.sign_in(&b, "admin@example.com", &password);

    // Run now, then follow the job from the jobs list.
    b.goto(&d.url(&format!("/orgs/{}/schedules/{schedule}", d.org_id)))
        .unwrap();
    b.submit("form[action$='/run'] button").unwrap();
    b.goto(&d.url(&format!("/orgs/{}/jobs", d.org_id))).unwrap();
    assert!(b.text_of("tbody tr").unwrap().contains("Queued"));
    pages.check("jobs");
    b.click_through(&b.find("tbody tr a").unwrap()).unwrap();
    assert!(b.text_of("dl.facts").unwrap().contains("Queued"));
    let job_url = b.url().unwrap();

    // The agent claims it and reports progress: the page (which reloads itself) shows it.
    let claimed = agent_call(&d, &agent, Method::GET, "/agent/v1/jobs/next", None);
    let job = claimed["job"].clone();
    let id = job["id"].as_str().unwrap().to_string();
    assert!(job_url.ends_with(&id), "{job_url}");
    agent_call(
        &d,
        &agent,
        Method::POST,
        &format!("/agent/v1/jobs/{id}/progress"),
        Some(json!({ "bytes": 3 * 1024 * 1024 + 400 * 1024, "phase": "backing up" })),
    );
    let reloads: Value = d.rt.block_on(async {
        let a = sign_in_as(&d, "admin@example.com", &password).await;
        let path = format!("/orgs/{}/jobs/{id}", d.org_id);
        let page = send(&d, Method::GET, &path, Some(&a), None, &[]).await;
        json!(page
            .headers
            .get("refresh")
            .map(|v| v.to_str().unwrap().to_string()))
    });
    assert_eq!(reloads, json!("3"), "a running job's page reloads itself");
    b.goto(&job_url).unwrap();
    let facts = b.text_of("dl.facts").unwrap();
    for part in ["Running", "backing up", "3.4 MiB", "1 of"] {
        assert!(facts.contains(part), "{part:?} not in {facts}");
    }
    pages.check("job-running");
    agent_call(
        &d,
        &agent,
        Method::POST,
        &format!("/agent/v1/jobs/{id}/complete"),
        Some(json!({
            "succeeded": true, "object_key": job["object_key"], "size": 4096,
            "dump_size": 10_000, "duration_ms": 2500, "sha256": "ab".repeat(32),
            "pg_server_version": "17.2", "pg_dump_version": "pg_dump (PostgreSQL) 17.2",
            "attempt": job["attempt"],
        })),
    );
    b.goto(&job_url).unwrap();
    assert!(b.text_of("dl.facts").unwrap().contains("Succeeded"));
    pages.check("job-succeeded");

    // The backup in the list, and the filters.
    b.goto(&d.url(&format!("/orgs/{}/backups", d.org_id)))
        .unwrap();
    let row = b.text_of("tbody tr").unwrap();
    for part in ["shop", "4.0 KiB", "2.5 s", "17.2", &"ab".repeat(32)] {
        assert!(row.contains(part), "{part:?} not in {row}");
    }
    pages.check("backups");

    // Restore: a wrong name restores nothing; the right one queues the job.
    b.click_through(&b.find("a[href$='/restore']").unwrap())
        .unwrap();
    assert_eq!(b.title().unwrap(), "Restore a backup · dbcrate");
    pages.check("restore-form");
    b.fill_in("#confirm_name", "shoq").unwrap();
    b.submit("button.danger").unwrap();
    assert!(b
        .text_of("[role=alert]")
        .unwrap()
        .contains("type the target database's name, shop"));
    pages.check("restore-wrong-name");
    let restores: i64 = d.rt.block_on(async {
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'restore'")
            .fetch_one(d.db.pool())
            .await
            .unwrap()
    });
    assert_eq!(restores, 0);
    b.fill_in("#confirm_name", "shop").unwrap();
    b.submit("button.danger").unwrap();
    assert!(b.title().unwrap().starts_with("Job job_"));
    let facts = b.text_of("dl.facts").unwrap();
    assert!(
        facts.contains("restore") && facts.contains("Queued"),
        "{facts}"
    );
    pages.check("restore-queued");
    let actions = d.audited_actions();
    for action in ["job.create", "restore.create"] {
        assert!(
            actions.iter().any(|a| a.starts_with(action)),
            "{action} not in {actions:?}"
        );
    }
}

#[test]
fn backups_and_jobs_pages_follow_roles_filters_and_tenants() {
    let d = Dashboard::start();
    let viewer = d.add_person("viewer@example.com", Role::Viewer, &d.org_id);
    let dir = TempDir::new("backups-viewer").unwrap();
    let (_agent, o, schedule) = world(&d, &dir);
    let now = dbcrate_core::time::unix_now();
    for days_ago in 0..60 {
        // An hour off the day boundaries, so that "the last week" holds exactly 7.
        d.record_backup(
            &o,
            Some(&schedule),
            now - days_ago * 86_400 - 3600,
            10,
            1000,
        );
    }
    let database = o.database.clone();
    d.rt.block_on(async {
        let v = sign_in_as(&d, "viewer@example.com", &viewer).await;
        let list = format!("/orgs/{}/backups", d.org_id);
        // A page of 50, then the rest behind "Older backups"; a week's filter: 7.
        let page = send(&d, Method::GET, &list, Some(&v), None, &[]).await;
        assert_eq!(page.status, StatusCode::OK);
        assert_eq!(page.text.matches("<tr>").count() - 1, 50);
        assert!(
            !page.text.contains("/restore"),
            "a viewer gets no restore links"
        );
        let at = page.text.find("Older backups").expect("an older page");
        let href_at = page.text[..at].rfind("href=\"").unwrap() + 6;
        let older = page.text[href_at..at]
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&");
        let rest = send(&d, Method::GET, &older, Some(&v), None, &[]).await;
        assert_eq!(rest.text.matches("<tr>").count() - 1, 10, "{older}");
        let week = send(
            &d,
            Method::GET,
            &format!("{list}?days=7"),
            Some(&v),
            None,
            &[],
        )
        .await;
        assert_eq!(week.text.matches("<tr>").count() - 1, 7);
        let jobs = format!("/orgs/{}/jobs?state=failed", d.org_id);
        let none = send(&d, Method::GET, &jobs, Some(&v), None, &[]).await;
        assert!(none.text.contains("No jobs match"), "{}", none.text);

        // A viewer's restore is refused; another organisation's job is no such page.
        let backup: String = sqlx::query_scalar("SELECT id FROM backups LIMIT 1")
            .fetch_one(d.db.pool())
            .await
            .unwrap();
        let restore = format!("/orgs/{}/backups/{backup}/restore", d.org_id);
        let csrf = csrf_of(&page.text);
        let form = [
            ("csrf", csrf.as_str()),
            ("target_database_id", database.as_str()),
            ("confirm_name", "shop"),
        ];
        for method in [Method::GET, Method::POST] {
            let refused = send(&d, method.clone(), &restore, Some(&v), None, &form).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{method}");
        }
        let job: String = sqlx::query_scalar("SELECT id FROM jobs LIMIT 1")
            .fetch_one(d.db.pool())
            .await
            .unwrap();
        let other = dbcrate_control::orgs::create(
            &d.db,
            &d.keys,
            "Other Org",
            "system:test",
            "2026-11-29T05:00:00Z",
        )
        .await
        .unwrap()
        .id;
        let foreign = format!("/orgs/{other}/jobs/{job}");
        assert_eq!(
            send(&d, Method::GET, &foreign, Some(&v), None, &[])
                .await
                .status,
            StatusCode::NOT_FOUND
        );
        let restores: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'restore'")
            .fetch_one(d.db.pool())
            .await
            .unwrap();
        assert_eq!(restores, 0);
    });
}
