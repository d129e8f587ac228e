//! Databases and schedules through the API: passwords sealed and never shown, inputs
//! checked with clear errors, schedules validated (cron, zone, retention counts) and
//! answering their next run.

use crate::harness::{Api, Auth};
use dbcrate_control::db::Db;
use serde_json::json;

/// A destination row inserted directly (no storage probe), for tests of what refers to
/// destinations.
pub async fn fixture_destination(db: &Db, org: &str) -> String {
    let id = dbcrate_control::error::new_id("dst").unwrap();
    sqlx::query(
        "INSERT INTO destinations (id, org_id, name, kind, settings, created_at) \
         VALUES ($1, $2, $3, 'directory', '{\"path\":\"/srv/backups\"}', 0)",
    )
    .bind(&id)
    .bind(org)
    .bind(format!("fixture {id}"))
    .execute(db.pool())
    .await
    .unwrap();
    id
}

async fn databases_and_schedules(db: Db) {
    let api = Api::start(db).await;
    let (a, owner) = api.init_owner().await;
    let org = a.org.id.clone();
    let agent = api.enrol_agent(&org).await;
    let databases = format!("/api/v1/orgs/{org}/databases");
    let good = json!({
        "name": "shop", "host": "db1.internal", "port": 5433, "dbname": "shop",
        "username": "backup", "tls_mode": "verify-full",
        "password": "s3cret-db-password", "agent_id": agent,
    });
    let created = api.post(&databases, &owner, good.clone()).await.ok();
    assert_eq!(created["has_password"], true);
    assert!(!created.to_string().contains("s3cret-db-password"));
    api.post(&databases, &owner, good.clone())
        .await
        .fails(409, "conflict");
    for (field, value) in [
        ("tls_mode", json!("maybe")),
        ("port", json!(0)),
        ("name", json!("a/b")),
        ("host", json!("two words")),
        ("agent_id", json!("agt_00000000000000000000000000000000")),
    ] {
        let mut body = good.clone();
        body["name"] = json!(format!("other-{field}"));
        body[field] = value;
        api.post(&databases, &owner, body)
            .await
            .fails(422, "invalid_input");
    }
    let listed = api.get(&databases, &owner).await.ok();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        api.get(&format!("{databases}/{id}"), &owner).await.ok()["host"],
        "db1.internal"
    );
    api.get(
        &format!("{databases}/dbs_00000000000000000000000000000000"),
        &owner,
    )
    .await
    .fails(404, "not_found");

    // Schedules.
    let destination = fixture_destination(&api.db, &org).await;
    let schedules = format!("/api/v1/orgs/{org}/schedules");
    let schedule = json!({
        "database_id": id, "destination_id": destination, "cron": "30 2 * * *",
        "time_zone": "Europe/Berlin", "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12,
    });
    let made = api.post(&schedules, &owner, schedule.clone()).await.ok();
    assert!(made["next_run_at"].as_i64().unwrap() > dbcrate_core::time::unix_now());
    assert_eq!(made["keep_daily"], 7);
    for (field, value, needle) in [
        ("cron", json!("61 * * * *"), "minute field"),
        ("time_zone", json!("Mars/Olympus"), "unknown time zone"),
        ("keep_daily", json!(100000), "keep_daily"),
        (
            "database_id",
            json!("dbs_00000000000000000000000000000000"),
            "no such database",
        ),
    ] {
        let mut body = schedule.clone();
        body[field] = value;
        let reply = api.post(&schedules, &owner, body).await;
        reply.fails(422, "invalid_input");
        assert!(reply.text.contains(needle), "{}", reply.text);
    }
    let listed = api.get(&schedules, &owner).await.ok();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);

    // The password is sealed: not in any row or audit detail in clear.
    let dump = dbcrate_testkit::every_text_in_database(api.db.pool()).await;
    assert!(!dump.contains("s3cret-db-password"));
    dbcrate_testkit::assert_audited(api.db.pool(), &org, &["database.create", "schedule.create"])
        .await;
    let _ = Auth::None;
}

crate::both_engines!(
    sqlite_databases_and_schedules,
    postgres_databases_and_schedules,
    databases_and_schedules
);

/// `GET …/backups` reaches every backup, however many: pages newest first with a
/// `next_after` cursor, rows finished in the same second neither lost nor repeated
/// between pages; a bad cursor or page size is refused saying so.
async fn backups_are_listed_page_by_page(db: Db) {
    let api = Api::start(db).await;
    let (a, owner) = api.init_owner().await;
    let org = a.org.id.clone();
    let agent = api.enrol_agent(&org).await;
    let database = api
        .post(
            &format!("/api/v1/orgs/{org}/databases"),
            &owner,
            json!({ "name": "shop", "host": "db1.internal", "dbname": "shop",
                    "username": "backup", "agent_id": agent }),
        )
        .await
        .ok()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let destination = fixture_destination(&api.db, &org).await;
    let mut recorded = Vec::new();
    for finished_at in [100, 200, 200, 300, 300] {
        let row = crate::common::BackupRow {
            org: &org,
            agent: &agent,
            database: &database,
            destination: &destination,
            schedule: None,
            finished_at,
            size: 10,
            duration_ms: None,
        };
        recorded.push(crate::common::record_backup(&api.db, &row).await);
    }

    let path = format!("/api/v1/orgs/{org}/backups");
    let mut paged: Vec<(i64, String)> = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..recorded.len() + 1 {
        let query = match &after {
            None => "?limit=2".to_string(),
            Some(token) => format!("?limit=2&after={token}"),
        };
        let page = api.get(&format!("{path}{query}"), &owner).await.ok();
        for item in page["items"].as_array().unwrap() {
            let at = item["finished_at"].as_i64().unwrap();
            paged.push((at, item["id"].as_str().unwrap().to_string()));
        }
        match page["next_after"].as_str() {
            Some(token) => after = Some(token.to_string()),
            None => break,
        }
    }
    let mut ids: Vec<&String> = paged.iter().map(|(_, id)| id).collect();
    ids.sort();
    let mut expected: Vec<&String> = recorded.iter().collect();
    expected.sort();
    assert_eq!(ids, expected, "every backup once: {paged:?}");
    assert!(
        paged.windows(2).all(|w| w[0].0 >= w[1].0),
        "newest first: {paged:?}"
    );

    let whole = api.get(&path, &owner).await.ok();
    assert_eq!(whole["next_after"], serde_json::Value::Null);
    let whole_ids: Vec<&str> = whole["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    let paged_ids: Vec<&str> = paged.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(whole_ids, paged_ids, "one page or several, the same order");

    for bad in [
        "limit=0",
        "limit=1001",
        "after=yesterday",
        "after=300:bkp%20x",
    ] {
        api.get(&format!("{path}?{bad}"), &owner)
            .await
            .fails(422, "invalid_input");
    }
    api.get(&format!("{path}?page=2"), &owner)
        .await
        .fails(400, "invalid_query");
}

crate::both_engines!(
    sqlite_backups_are_listed_page_by_page,
    postgres_backups_are_listed_page_by_page,
    backups_are_listed_page_by_page
);
