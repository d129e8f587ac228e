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
