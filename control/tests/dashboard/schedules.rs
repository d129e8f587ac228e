//! Flow 6, schedules and retention: a schedule previewed (its next runs, nothing saved)
//! and saved; its page shows what retention keeps of its backups and why, previews other
//! counts without changing anything, saves them (a bad expression refused with the form
//! kept), pauses and resumes it, and runs it now. A viewer sees no form that changes
//! anything, nor "Run now", and is refused anyway.

use crate::harness::{Dashboard, Pages};
use crate::http::{csrf_of, send, sign_in_as};
use dbcrate_control::accounts::roles::Role;
use dbcrate_testkit::TempDir;
use reqwest::{Method, StatusCode};

const DAY: i64 = 86_400;

fn scalar(d: &Dashboard, sql: &str) -> i64 {
    d.rt.block_on(async {
        sqlx::query_scalar(sql)
            .fetch_one(d.db.pool())
            .await
            .unwrap()
    })
}

#[test]
fn flow_6_preview_and_save_a_schedule_see_retention_and_run_it_now() {
    let d = Dashboard::start();
    let password = d.add_person("operator@example.com", Role::Operator, &d.org_id);
    let dir = TempDir::new("flow6-destination").unwrap();
    let o = d.objects("shop", &dir);
    let b = d.browser();
    let mut pages = Pages::new(&b, "flow6");
    d.sign_in(&b, "operator@example.com", &password);
    b.goto(&d.url(&format!("/orgs/{}/schedules", d.org_id)))
        .unwrap();
    assert_eq!(b.title().unwrap(), "Schedules · dbcrate");
    pages.check("schedules-empty");

    // A bad expression is refused with the form kept; a preview lists the next runs.
    b.fill_in("#cron", "61 2 * * *").unwrap();
    b.fill_in("#time_zone", "Europe/Berlin").unwrap();
    b.fill_in("#keep_daily", "7").unwrap();
    b.submit("button[value=preview]").unwrap();
    assert!(
        b.text_of("[role=alert]").unwrap().contains("minute"),
        "{}",
        b.text_of("[role=alert]").unwrap()
    );
    b.fill_in("#cron", "30 2 * * *").unwrap();
    b.submit("button[value=preview]").unwrap();
    let runs = b.find_all("ol.runs li").unwrap();
    assert_eq!(runs.len(), 5);
    assert!(b.text(&runs[0]).unwrap().contains("02:30 Europe/Berlin"));
    assert_eq!(
        scalar(&d, "SELECT count(*) FROM schedules"),
        0,
        "a preview saves nothing"
    );
    pages.check("schedules-preview");
    b.submit("button[value=save]").unwrap();
    assert!(b.text_of("[role=status]").unwrap().contains("saved"));
    assert_eq!(b.title().unwrap(), "shop to local · dbcrate");
    pages.check("schedule-new");

    // Ten daily backups: seven kept as the days' newest, three deleted.
    let schedule: String = d.rt.block_on(async {
        sqlx::query_scalar("SELECT id FROM schedules")
            .fetch_one(d.db.pool())
            .await
            .unwrap()
    });
    let now = dbcrate_core::time::unix_now();
    for days_ago in 1..=10 {
        d.record_backup(&o, Some(&schedule), now - days_ago * DAY, 10, 1000);
    }
    b.goto(&d.url(&format!("/orgs/{}/schedules/{schedule}", d.org_id)))
        .unwrap();
    let rows = b.find_all("tbody tr").unwrap();
    assert_eq!(rows.len(), 10);
    let texts: Vec<String> = rows.iter().map(|r| b.text(r).unwrap()).collect();
    assert!(texts[0].contains("the newest"), "{}", texts[0]);
    let verdicts = |b: &dbcrate_testkit::browser::Browser| -> Vec<String> {
        b.find_all("td[data-label=Retention]")
            .unwrap()
            .iter()
            .map(|cell| b.text(cell).unwrap())
            .collect()
    };
    let seen = verdicts(&b);
    assert_eq!(
        seen.iter().filter(|v| *v == "kept").count(),
        7,
        "{texts:#?}"
    );
    assert_eq!(
        seen.iter().filter(|v| *v == "deleted").count(),
        3,
        "{texts:#?}"
    );
    pages.check("schedule-retention");

    // Other counts, previewed: three kept; nothing changes.
    b.fill_in("#keep_daily", "3").unwrap();
    b.submit("button[value=preview]").unwrap();
    let seen = verdicts(&b);
    assert_eq!(seen.iter().filter(|v| *v == "kept").count(), 3, "{seen:?}");
    assert!(b.text_of("main").unwrap().contains("nothing is changed"));
    assert_eq!(scalar(&d, "SELECT keep_daily FROM schedules"), 7);
    assert_eq!(
        scalar(
            &d,
            "SELECT count(*) FROM backups WHERE deleted_at IS NOT NULL"
        ),
        0
    );
    pages.check("schedule-retention-preview");

    // A bad expression is refused with the form kept; then the counts are saved.
    b.fill_in("#cron", "30 25 * * *").unwrap();
    b.submit("button[value=save]").unwrap();
    assert!(b.text_of("[role=alert]").unwrap().contains("hour"));
    assert_eq!(
        b.execute(
            "return document.querySelector('#keep_daily').value;",
            serde_json::json!([])
        )
        .unwrap(),
        "3"
    );
    assert_eq!(scalar(&d, "SELECT keep_daily FROM schedules"), 7);
    b.fill_in("#cron", "30 2 * * *").unwrap();
    b.submit("button[value=save]").unwrap();
    assert!(b
        .text_of("[role=status]")
        .unwrap()
        .contains("The schedule is changed"));
    assert!(b.text_of("dl.facts").unwrap().contains("keep 3 daily"));
    assert_eq!(scalar(&d, "SELECT keep_daily FROM schedules"), 3);
    pages.check("schedule-changed");

    // Paused: no next runs, and the page says what pausing means.
    b.click(&b.find("#enabled").unwrap()).unwrap();
    b.submit("button[value=save]").unwrap();
    let facts = b.text_of("dl.facts").unwrap();
    assert!(facts.contains("Paused"), "{facts}");
    assert!(b
        .text_of("main")
        .unwrap()
        .contains("None while it is paused"));
    assert_eq!(scalar(&d, "SELECT enabled FROM schedules"), 0);
    pages.check("schedule-paused");
    b.click(&b.find("#enabled").unwrap()).unwrap();
    b.submit("button[value=save]").unwrap();
    assert!(b.text_of("dl.facts").unwrap().contains("Runs on schedule"));

    // Run now: a job is queued, and the page says which.
    b.goto(&d.url(&format!("/orgs/{}/schedules/{schedule}", d.org_id)))
        .unwrap();
    b.submit("form[action$='/run'] button").unwrap();
    assert!(b
        .text_of("[role=status]")
        .unwrap()
        .contains("A backup is queued now: job job_"));
    assert_eq!(
        scalar(&d, "SELECT count(*) FROM jobs WHERE state = 'queued'"),
        1
    );
    pages.check("schedule-queued");
    let actions = d.audited_actions();
    assert_eq!(
        d.audited_actions()
            .iter()
            .filter(|a| *a == "schedule.update")
            .count(),
        3,
        "counts saved, paused, resumed"
    );
    for action in ["schedule.create", "job.create"] {
        assert!(
            actions.iter().any(|a| a == action),
            "{action} not in {actions:?}"
        );
    }

    // Its checks: how late a backup may be, and restore drills, set on its page.
    b.fill_in("#grace_minutes", "240").unwrap();
    b.submit("form[action$='/grace'] button").unwrap();
    assert_eq!(scalar(&d, "SELECT grace_secs FROM schedules"), 240 * 60);
    b.fill_in("#drill_every", "3").unwrap();
    b.fill_in("#drill_check", "SELECT count(*) >= 0 FROM pg_class")
        .unwrap();
    b.submit("form[action$='/drills'] button").unwrap();
    let main = b.text_of("main").unwrap();
    assert!(main.contains("After every 3 backup(s)"), "{main}");
    assert!(
        main.contains("SELECT count(*) >= 0 FROM pg_class"),
        "{main}"
    );
    assert_eq!(scalar(&d, "SELECT drill_every FROM schedules"), 3);
    pages.check("schedule-drills");
    b.fill_in("#drill_every", "").unwrap();
    b.submit("form[action$='/drills'] button").unwrap();
    assert!(b
        .text_of("main")
        .unwrap()
        .contains("None: backups of this schedule are not restored"));
    assert_eq!(
        scalar(
            &d,
            "SELECT count(*) FROM schedules WHERE drill_every IS NULL"
        ),
        1
    );
    let actions = d.audited_actions();
    let count = |name: &str| actions.iter().filter(|a| *a == name).count();
    assert_eq!((count("schedule.update"), count("schedule.drill")), (4, 2));
}

#[test]
fn a_viewer_cannot_schedule_or_run_and_is_refused_anyway() {
    let d = Dashboard::start();
    let viewer = d.add_person("viewer@example.com", Role::Viewer, &d.org_id);
    let dir = TempDir::new("schedules-viewer").unwrap();
    let o = d.objects("shop", &dir);
    let (database, destination) = (o.database, o.destination);
    let schedule = d.rt.block_on(async {
        let new = dbcrate_control::backups::schedules::NewSchedule {
            database_id: &database,
            destination_id: &destination,
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
    d.rt.block_on(async {
        let v = sign_in_as(&d, "viewer@example.com", &viewer).await;
        let list = format!("/orgs/{}/schedules", d.org_id);
        let show = format!("/orgs/{}/schedules/{schedule}", d.org_id);
        let page = send(&d, Method::GET, &list, Some(&v), None, &[]).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.text.contains(&schedule), "{}", page.text);
        assert!(!page.text.contains("Add a schedule"), "{}", page.text);
        let page = send(&d, Method::GET, &show, Some(&v), None, &[]).await;
        assert!(page.text.contains("Next runs"), "{}", page.text);
        assert!(!page.text.contains("Run now"), "{}", page.text);
        assert!(!page.text.contains("Change this schedule"), "{}", page.text);
        assert!(page.text.contains("Try other counts"), "{}", page.text);
        let csrf = csrf_of(&send(&d, Method::GET, "/", Some(&v), None, &[]).await.text);
        let form = [
            ("csrf", csrf.as_str()),
            ("database_id", database.as_str()),
            ("destination_id", destination.as_str()),
            ("cron", "@hourly"),
            ("action", "save"),
        ];
        let run = format!("{show}/run");
        let (grace, drills) = (format!("{show}/grace"), format!("{show}/drills"));
        for path in [&list, &run, &show, &grace, &drills] {
            let refused = send(&d, Method::POST, path, Some(&v), None, &form).await;
            assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        }
    });
    assert_eq!(scalar(&d, "SELECT count(*) FROM schedules"), 1);
    assert_eq!(scalar(&d, "SELECT count(*) FROM jobs"), 0);
}
