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
