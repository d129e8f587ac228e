//! Flow 2, the overview: a database whose scheduled backup has not happened is "Late"
//! (in words), one backed up on time is "On schedule" with charts of its recent sizes and
//! durations; the week's failed jobs, the agents by presence, and what each destination
//! holds.

use crate::harness::{Dashboard, Pages, ORG};
use dbcrate_control::accounts::roles::Role;
use dbcrate_testkit::TempDir;
use serde_json::json;

const HOUR: i64 = 3600;

#[test]
fn flow_2_the_overview_shows_late_and_healthy_databases_failures_agents_and_storage() {
    let d = Dashboard::start();
    let password = d.add_person("viewer@example.com", Role::Viewer, &d.org_id);
    let dir = TempDir::new("flow2-destination").unwrap();
    d.rt.block_on(async {
        let now = dbcrate_core::time::unix_now();
        let agent = dbcrate_control::local::enrol_agent(&d.db, &d.keys, &d.org_id, now)
            .await
            .unwrap()
            .0
            .agent_id;
        let settings = json!({ "path": dir.path() });
        let new = dbcrate_control::backups::destinations::NewDestination {
            name: "local",
            kind: "directory",
            settings: &settings,
            credentials: None,
        };
        let reach = std::sync::Arc::new(
            dbcrate_control::local::loopback_reach(&std::env::temp_dir()).unwrap(),
        );
        let destination = dbcrate_control::backups::destinations::create(
            &d.db, &d.keys, &reach, &d.org_id, &new, "system:test", now,
        )
        .await
        .unwrap()
        .unwrap()
        .0
        .id;
        for (name, cron) in [("shop", "0 * * * *"), ("crm", "*/5 * * * *")] {
            let database = dbcrate_control::backups::databases::create(
                &d.db,
                &d.keys,
                &d.org_id,
                &crate::common::remote_database(name, &agent),
                "system:test",
                now,
            )
            .await
            .unwrap()
            .id;
            let new = dbcrate_control::backups::schedules::NewSchedule {
                database_id: &database,
                destination_id: &destination,
                cron,
                time_zone: "UTC",
                retention: Default::default(),
            };
            let schedule = dbcrate_control::backups::schedules::create(
                &d.db, &d.org_id, &new, "system:test", now,
            )
            .await
            .unwrap()
            .id;
            // Both schedules are three hours old; only crm has backed up since.
            sqlx::query("UPDATE schedules SET created_at = $1 WHERE id = $2")
                .bind(now - 3 * HOUR)
                .bind(&schedule)
                .execute(d.db.pool())
                .await
                .unwrap();
            if name == "crm" {
                for (i, minutes_ago) in [40, 30, 20, 10, 2].iter().enumerate() {
                    let at = now - minutes_ago * 60;
                    let job = dbcrate_control::error::new_id("job").unwrap();
                    sqlx::query(
                        "INSERT INTO jobs (id, org_id, kind, schedule_id, database_id, destination_id, agent_id, \
                         state, attempt, max_attempts, created_at, finished_at, progress_bytes, phase) \
                         VALUES ($1, $2, 'backup', $3, $4, $5, $6, 'succeeded', 1, 3, $7, $7, 0, 'done')",
                    )
                    .bind(&job).bind(&d.org_id).bind(&schedule).bind(&database).bind(&destination)
                    .bind(&agent).bind(at)
                    .execute(d.db.pool()).await.unwrap();
                    sqlx::query(
                        "INSERT INTO backups (id, org_id, job_id, schedule_id, database_id, destination_id, \
                         object_key, size, sha256, started_at, finished_at, pg_server_version, \
                         pg_dump_version, delete_attempts, duration_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, '17', '17', 0, $11)",
                    )
                    .bind(dbcrate_control::error::new_id("bkp").unwrap()).bind(&d.org_id).bind(&job)
                    .bind(&schedule).bind(&database).bind(&destination)
                    .bind(format!("crm/{job}.pgdump.zst.age"))
                    .bind(1024 * (10 + i as i64)).bind("00".repeat(32)).bind(at)
                    .bind(1000 * (2 + i as i64))
                    .execute(d.db.pool()).await.unwrap();
                }
            } else {
                sqlx::query(
                    "INSERT INTO jobs (id, org_id, kind, schedule_id, database_id, destination_id, agent_id, \
                     state, attempt, max_attempts, created_at, finished_at, progress_bytes, phase, error) \
                     VALUES ($1, $2, 'backup', $3, $4, $5, $6, 'failed', 3, 3, $7, $7, 0, 'failed', \
                     'pg_dump: connection refused')",
                )
                .bind(dbcrate_control::error::new_id("job").unwrap()).bind(&d.org_id).bind(&schedule)
                .bind(&database).bind(&destination).bind(&agent).bind(now - HOUR)
                .execute(d.db.pool()).await.unwrap();
            }
        }
    });

    let b = d.browser();
    let mut pages = Pages::new(&b, "flow2");
    b.goto(&d.url("/sign-in")).unwrap();
    b.fill_in("#email", "viewer@example.com").unwrap();
    b.fill_in("#password", &password).unwrap();
    b.submit("main button[type=submit]").unwrap();
    b.click_through(
        &b.find(&format!("main a[href='/orgs/{}']", d.org_id))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(b.title().unwrap(), format!("{ORG} · dbcrate"));
    assert!(b
        .text_of("[role=alert]")
        .unwrap()
        .contains("1 database(s) late"));
    let rows: Vec<String> = b
        .find_all("tbody tr")
        .unwrap()
        .iter()
        .map(|r| b.text(r).unwrap())
        .collect();
    let row = |name: &str| rows.iter().find(|r| r.starts_with(name)).unwrap().clone();
    assert!(row("shop").contains("Late"), "{}", row("shop"));
    assert!(
        row("shop").contains("Last backup: never"),
        "{}",
        row("shop")
    );
    assert!(row("crm").contains("On schedule"), "{}", row("crm"));
    assert!(
        row("crm").contains("Size of the last 5 backups: from 10.0 KiB to 14.0 KiB"),
        "{}",
        row("crm")
    );
    assert_eq!(
        b.find_all("figure.chart svg").unwrap().len(),
        2,
        "size and duration"
    );
    let main = b.text_of("main").unwrap();
    for part in [
        "backup of shop failed",
        "pg_dump: connection refused",
        "0 online, 0 offline, 1 never connected",
        "local: 5 backups, 60.0 KiB",
    ] {
        assert!(main.contains(part), "{part:?} not in {main}");
    }
    pages.check("overview");
}
