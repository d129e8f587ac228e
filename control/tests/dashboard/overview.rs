//! Flow 2, the overview: a database whose scheduled backup has not happened is "Late"
//! (in words), one backed up on time is "On schedule" with charts of its recent sizes and
//! durations; the week's failed jobs, the agents by presence, and what each destination
//! holds.

use crate::harness::{Dashboard, Objects, Pages, ORG};
use dbcrate_control::accounts::roles::Role;
use dbcrate_testkit::TempDir;

const HOUR: i64 = 3600;

#[test]
fn flow_2_the_overview_shows_late_and_healthy_databases_failures_agents_and_storage() {
    let d = Dashboard::start();
    let password = d.add_person("viewer@example.com", Role::Viewer, &d.org_id);
    let dir = TempDir::new("flow2-destination").unwrap();
    let shop = d.objects("shop", &dir);
    let now = dbcrate_core::time::unix_now();
    let crm = Objects {
        database: d.rt.block_on(async {
            let new = crate::common::remote_database("crm", &shop.agent);
            dbcrate_control::backups::databases::create(
                &d.db,
                &d.keys,
                &d.org_id,
                &new,
                "system:test",
                now,
            )
            .await
            .unwrap()
            .id
        }),
        ..shop.clone()
    };
    // Both schedules are three hours old; only crm has backed up since (every few
    // minutes), and shop's last job failed.
    let mut schedules = Vec::new();
    for (o, cron) in [(&shop, "0 * * * *"), (&crm, "*/5 * * * *")] {
        let schedule = d.rt.block_on(async {
            let new = dbcrate_control::backups::schedules::NewSchedule {
                database_id: &o.database,
                destination_id: &o.destination,
                cron,
                time_zone: "UTC",
                retention: Default::default(),
            };
            let id = dbcrate_control::backups::schedules::create(
                &d.db,
                &d.org_id,
                &new,
                "system:test",
                now,
            )
            .await
            .unwrap()
            .id;
            sqlx::query("UPDATE schedules SET created_at = $1, timing_since = $1 WHERE id = $2")
                .bind(now - 3 * HOUR)
                .bind(&id)
                .execute(d.db.pool())
                .await
                .unwrap();
            id
        });
        schedules.push(schedule);
    }
    for (i, minutes_ago) in [40, 30, 20, 10, 2].iter().enumerate() {
        let i = i as i64;
        d.record_backup(
            &crm,
            Some(&schedules[1]),
            now - minutes_ago * 60,
            1024 * (10 + i),
            1000 * (2 + i),
        );
    }
    d.rt.block_on(async {
        sqlx::query(
            "INSERT INTO jobs (id, org_id, kind, schedule_id, database_id, destination_id, agent_id, \
             state, attempt, max_attempts, created_at, finished_at, progress_bytes, phase, error) \
             VALUES ($1, $2, 'backup', $3, $4, $5, $6, 'failed', 3, 3, $7, $7, 0, 'failed', \
             'pg_dump: connection refused')",
        )
        .bind(dbcrate_control::error::new_id("job").unwrap()).bind(&d.org_id).bind(&schedules[0])
        .bind(&shop.database).bind(&shop.destination).bind(&shop.agent).bind(now - HOUR)
        .execute(d.db.pool()).await.unwrap();
        // crm's newest backup was drilled: restored in 2.1 s.
        let backup: String = sqlx::query_scalar(
            "SELECT id FROM backups WHERE database_id = $1 ORDER BY finished_at DESC LIMIT 1",
        )
        .bind(&crm.database).fetch_one(d.db.pool()).await.unwrap();
        sqlx::query(
            "INSERT INTO jobs (id, org_id, kind, database_id, destination_id, agent_id, state, \
             attempt, max_attempts, created_at, finished_at, progress_bytes, phase, backup_id, \
             drill) VALUES ('job_drill1', $1, 'restore', $2, $3, $4, 'succeeded', 1, 1, $5, $5, \
             0, 'done', $6, 1)",
        )
        .bind(&d.org_id).bind(&crm.database).bind(&crm.destination).bind(&crm.agent)
        .bind(now - 60).bind(&backup)
        .execute(d.db.pool()).await.unwrap();
        sqlx::query(
            "INSERT INTO drill_results (job_id, org_id, backup_id, database_id, passed, \
             restore_ms, tables_checked, finished_at) \
             VALUES ('job_drill1', $1, $2, $3, 1, 2100, 4, $4)",
        )
        .bind(&d.org_id).bind(&backup).bind(&crm.database).bind(now - 60)
        .execute(d.db.pool()).await.unwrap();
    });

    let b = d.browser();
    let mut pages = Pages::new(&b, "flow2");
    d.sign_in(&b, "viewer@example.com", &password);
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
        row("crm").contains("Last restore drill: restored in 2.1 s"),
        "{}",
        row("crm")
    );
    assert!(!row("shop").contains("restore drill"), "{}", row("shop"));
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
