//! The scheduler fires each due schedule once: after downtime one job covers every
//! missed slot, and two control planes firing at the same moment (two replicas on
//! PostgreSQL) make one job per fire, not two.

mod common;

use dbcrate_control::backups::{databases, jobs, scheduler, schedules};
use dbcrate_control::db::Db;
use dbcrate_control::orgs;
use dbcrate_control::pki::identity::AgentIdentity;
use dbcrate_core::retention::Rules;
use dbcrate_testkit::{PgServer, TempDir};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;

async fn setup(db: &Db, count: usize) {
    db.migrate().await.unwrap();
    let keys = common::keys_with_audit_key(db, "2026-01-01T00:00:00Z").await;
    let org = orgs::create(db, &keys, "Acme", "system:test", "2026-01-01T00:00:00Z")
        .await
        .unwrap();
    let agent = dbcrate_control::local::enrol_agent(db, &keys, &org.id, T0)
        .await
        .unwrap()
        .0
        .agent_id;
    let destination = dbcrate_control::error::new_id("dst").unwrap();
    sqlx::query(
        "INSERT INTO destinations (id, org_id, name, kind, settings, created_at) \
         VALUES ($1, $2, 'dir', 'directory', '{}', 0)",
    )
    .bind(&destination)
    .bind(&org.id)
    .execute(db.pool())
    .await
    .unwrap();
    for i in 0..count {
        let database = databases::create(
            db,
            &keys,
            &org.id,
            &common::remote_database(&format!("db{i}"), &agent),
            "system:test",
            T0,
        )
        .await
        .unwrap();
        schedules::create(
            db,
            &org.id,
            &schedules::NewSchedule {
                database_id: &database.id,
                destination_id: &destination,
                cron: "0 3 * * *",
                time_zone: "UTC",
                retention: Rules::default(),
            },
            "system:test",
            T0,
        )
        .await
        .unwrap();
    }
}

async fn jobs(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM jobs")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

async fn fires_once(db: Db, replica: Db) {
    setup(&db, 6).await;
    // Nothing is due before 03:00.
    assert!(scheduler::fire_due(&db, T0 + 3600)
        .await
        .unwrap()
        .is_empty());
    // Three days down: one job per schedule, not three; both "replicas" fire at once.
    let later = T0 + 3 * 86_400 + 4 * 3600;
    let (a, b) = tokio::join!(
        scheduler::fire_due(&db, later),
        scheduler::fire_due(&replica, later)
    );
    assert_eq!(a.unwrap().len() + b.unwrap().len(), 6);
    assert_eq!(jobs(&db).await, 6);
    // Fired already: nothing more until the next 03:00.
    assert!(scheduler::fire_due(&replica, later + 60)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        scheduler::fire_due(&db, later + 86_400)
            .await
            .unwrap()
            .len(),
        6
    );
    assert_eq!(jobs(&db).await, 12);

    // The agent long-polls both replicas at once: every job is handed out exactly once.
    let (org_id, agent_id): (String, String) =
        sqlx::query_as("SELECT org_id, agent_id FROM jobs LIMIT 1")
            .fetch_one(db.pool())
            .await
            .unwrap();
    let agent = AgentIdentity {
        org_id,
        agent_id,
        serial: "00".into(),
        not_before: 0,
        not_after: i64::MAX,
    };
    let mut claimed = Vec::new();
    for _ in 0..8 {
        let (a, b) = tokio::join!(
            jobs::claim_next(&db, &agent, later),
            jobs::claim_next(&replica, &agent, later)
        );
        claimed.extend(a.unwrap().into_iter().chain(b.unwrap()).map(|j| j.id));
    }
    let distinct: std::collections::BTreeSet<_> = claimed.iter().collect();
    assert_eq!(claimed.len(), 12, "every job claimed");
    assert_eq!(distinct.len(), 12, "no job claimed twice: {claimed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_schedules_fire_once() {
    let dir = TempDir::new("control-scheduler").unwrap();
    let url = dbcrate_testkit::sqlite_url(&dir.path().join("c.db"));
    fires_once(
        Db::connect(&url).await.unwrap(),
        Db::connect(&url).await.unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_schedules_fire_once_across_two_replicas() {
    let server = PgServer::start(17).unwrap();
    server.create_database("control").unwrap();
    let url = server.url("control");
    fires_once(
        Db::connect(&url).await.unwrap(),
        Db::connect(&url).await.unwrap(),
    )
    .await;
}

/// The schedule `setup` made, and its organisation.
async fn the_schedule(db: &Db) -> (String, String) {
    sqlx::query_as("SELECT id, org_id FROM schedules LIMIT 1")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

fn change(cron: &str, keep_daily: u32, enabled: bool) -> schedules::ScheduleChange<'_> {
    schedules::ScheduleChange {
        cron,
        time_zone: "Europe/Berlin",
        retention: Rules {
            keep_daily,
            ..Rules::default()
        },
        enabled,
    }
}

/// A changed schedule fires on its new timing from the moment of the change — never for
/// slots before it (as a new schedule does not) — a paused one not at all, and a resumed
/// one from the moment it resumed; bad settings change nothing; each change is audited
/// with what it was before.
async fn changes_take_effect_from_the_change(db: Db) {
    setup(&db, 1).await;
    let (id, org) = the_schedule(&db).await;
    // Two days later, never fired (the scheduler was down): now hourly.
    let t1 = T0 + 2 * 86_400 + 600;
    let changed = schedules::update(&db, &org, &id, &change("0 * * * *", 3, true), "user:u", t1)
        .await
        .unwrap()
        .expect("the schedule");
    assert_eq!(
        (
            changed.cron.as_str(),
            changed.time_zone.as_str(),
            changed.keep_daily
        ),
        ("0 * * * *", "Europe/Berlin", 3)
    );
    assert!(
        scheduler::fire_due(&db, t1).await.unwrap().is_empty(),
        "no catch-up"
    );
    assert_eq!(scheduler::fire_due(&db, t1 + 3600).await.unwrap().len(), 1);

    // Paused: nothing fires for days; resumed: nothing for the paused time either.
    let t2 = t1 + 2 * 3600;
    let paused = schedules::update(&db, &org, &id, &change("0 * * * *", 3, false), "user:u", t2)
        .await
        .unwrap()
        .unwrap();
    assert!(!paused.enabled && paused.next_run_at.is_none());
    assert!(scheduler::fire_due(&db, t2 + 3 * 86_400)
        .await
        .unwrap()
        .is_empty());
    let t3 = t2 + 3 * 86_400 + 600;
    schedules::update(&db, &org, &id, &change("0 * * * *", 3, true), "user:u", t3)
        .await
        .unwrap()
        .unwrap();
    assert!(
        scheduler::fire_due(&db, t3).await.unwrap().is_empty(),
        "no catch-up"
    );
    // Nor is the database late for the paused days: its recovery point counts from the
    // resumption, and is late only once a run after it produced nothing in time.
    let health = |at| dbcrate_control::backups::overview::databases(&db, &org, at);
    let late = |h: Vec<dbcrate_control::backups::overview::DatabaseHealth>| h[0].late_since;
    assert_eq!(late(health(t3 + 60).await.unwrap()), None);
    let due = t3 - 1200 + 3600;
    let grace = dbcrate_control::backups::overview::GRACE_SECS;
    assert_eq!(late(health(due + grace + 60).await.unwrap()), Some(due));
    assert_eq!(scheduler::fire_due(&db, t3 + 3600).await.unwrap().len(), 1);

    // Refused settings change nothing; another organisation's schedule is not found.
    for (bad, why) in [
        (change("61 * * * *", 3, true), "minute"),
        (
            change("0 * * * *", schedules::MAX_KEEP + 1, true),
            "keep_daily",
        ),
    ] {
        let err = schedules::update(&db, &org, &id, &bad, "user:u", t3)
            .await
            .unwrap_err();
        assert!(err.message.contains(why), "{err:?}");
    }
    let other = orgs::create(
        &db,
        &common::keys_with_audit_key(&db, "2026-01-01T00:00:00Z").await,
        "Other",
        "system:test",
        "2026-01-01T00:00:00Z",
    )
    .await
    .unwrap();
    let hourly = change("0 * * * *", 1, true);
    let elsewhere = schedules::update(&db, &other.id, &id, &hourly, "u", t3).await;
    assert!(elsewhere.unwrap().is_none());
    let (cron, keep_daily): (String, i64) =
        sqlx::query_as("SELECT cron, keep_daily FROM schedules WHERE id = $1")
            .bind(&id)
            .fetch_one(db.pool())
            .await
            .unwrap();
    assert_eq!((cron.as_str(), keep_daily), ("0 * * * *", 3));

    let details: Vec<String> = sqlx::query_scalar(
        "SELECT details FROM audit_log WHERE action = 'schedule.update' ORDER BY seq",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert_eq!(details.len(), 3, "{details:?}");
    let first: serde_json::Value = serde_json::from_str(&details[0]).unwrap();
    assert_eq!(first["before"]["cron"], "0 3 * * *");
    assert_eq!(first["after"]["cron"], "0 * * * *");
    assert_eq!(first["after"]["retention"]["keep_daily"], 3);
    let second: serde_json::Value = serde_json::from_str(&details[1]).unwrap();
    assert_eq!(second["after"]["enabled"], false);
}

crate::sqlite_and_postgres!(
    sqlite_schedule_changes,
    postgres_schedule_changes,
    changes_take_effect_from_the_change
);
