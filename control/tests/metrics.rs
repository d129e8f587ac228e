//! `/metrics` against real tools: the exposition passes Debian's `promtool check
//! metrics`, says what the database holds (a late and a fresh database, a failed backup,
//! a restore, a retention deletion, an unwrap, an agent online, a queued job), refuses a
//! scraper without the bearer token, and a real Prometheus scraping it with the alert
//! rules shipped in docs/prometheus/ fires the overdue alert for the late database —
//! and not for the fresh one.

mod common;

use dbcrate_control::audit::{self, AuditAction, AuditEvent};
use dbcrate_control::backups::schedules::{self, NewSchedule};
use dbcrate_control::backups::{databases, overview};
use dbcrate_control::db::Db;
use dbcrate_control::metrics::{self, MetricsAccess};
use dbcrate_control::orgs;
use dbcrate_core::retention::Rules;
use dbcrate_core::secret::SecretString;
use dbcrate_testkit::{
    promtool_check_metrics, promtool_check_rules, Deps, PrometheusServer, ScrapeTarget, TempDir,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOKEN: &str = "a-metrics-bearer-token-0123456789";
const STAMP: &str = "2026-11-29T05:00:00Z";

/// What the test made: the organisation and the two databases.
struct Seeded {
    org: String,
    late: String,
    fresh: String,
    now: i64,
}

async fn insert_job(db: &Db, org: &str, database: &str, kind: &str, state: &str, at: i64) {
    sqlx::query(
        "INSERT INTO jobs (id, org_id, kind, database_id, destination_id, agent_id, state, \
         attempt, max_attempts, created_at, started_at, finished_at, progress_bytes, phase) \
         SELECT $1, $2, $3, $4, (SELECT id FROM destinations LIMIT 1), \
         (SELECT id FROM agents LIMIT 1), $5, 1, 3, $6, $7, $8, 0, 'done'",
    )
    .bind(dbcrate_control::error::new_id("job").unwrap())
    .bind(org)
    .bind(kind)
    .bind(database)
    .bind(state)
    .bind(at)
    .bind((state != "queued").then_some(at + 10))
    .bind((state == "succeeded" || state == "failed").then_some(at + 20))
    .execute(db.pool())
    .await
    .unwrap();
}

async fn insert_backup(db: &Db, org: &str, database: &str, at: i64, deleted: bool) {
    sqlx::query(
        "INSERT INTO backups (id, org_id, job_id, database_id, destination_id, object_key, size, \
         sha256, started_at, finished_at, pg_server_version, pg_dump_version, delete_attempts, \
         duration_ms, deleted_at) \
         SELECT $1, $2, (SELECT id FROM jobs LIMIT 1), $3, (SELECT id FROM destinations LIMIT 1), \
         $4, 4096, $5, $6, $6, '17', '17', 0, 2500, $7",
    )
    .bind(dbcrate_control::error::new_id("bkp").unwrap())
    .bind(org)
    .bind(database)
    .bind(format!("db/{at}.pgdump.zst.age"))
    .bind("00".repeat(32))
    .bind(at)
    .bind(deleted.then_some(at + 5))
    .execute(db.pool())
    .await
    .unwrap();
}

async fn seed(db: &Db) -> Seeded {
    db.migrate().await.unwrap();
    let keys = common::keys_with_audit_key(db, STAMP).await;
    let org = orgs::create(db, &keys, "Acme", "system:test", STAMP)
        .await
        .unwrap()
        .id;
    let now = dbcrate_core::time::unix_now();
    let agent = dbcrate_control::local::enrol_agent(db, &keys, &org, now)
        .await
        .unwrap()
        .0
        .agent_id;
    sqlx::query("UPDATE agents SET last_seen_at = $1, version = '0.1.0' WHERE id = $2")
        .bind(now)
        .bind(&agent)
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO destinations (id, org_id, name, kind, settings, created_at) \
         VALUES ('dst_0123456789abcdef0123456789abcdef', $1, 'dir', 'directory', '{}', 0)",
    )
    .bind(&org)
    .execute(db.pool())
    .await
    .unwrap();
    let mut ids = Vec::new();
    for name in ["late", "fresh"] {
        let database = databases::create(
            db,
            &keys,
            &org,
            &common::remote_database(name, &agent),
            "system:test",
            now,
        )
        .await
        .unwrap()
        .id;
        // Hourly, for three hours now.
        let new = NewSchedule {
            database_id: &database,
            destination_id: "dst_0123456789abcdef0123456789abcdef",
            cron: "0 * * * *",
            time_zone: "UTC",
            retention: Rules::default(),
        };
        schedules::create(db, &org, &new, "system:test", now - 3 * 3600)
            .await
            .unwrap();
        ids.push(database);
    }
    let (late, fresh) = (ids[0].clone(), ids[1].clone());
    insert_job(db, &org, &late, "backup", "failed", now - 600).await;
    insert_job(db, &org, &late, "backup", "queued", now - 30).await;
    insert_job(db, &org, &fresh, "restore", "succeeded", now - 900).await;
    insert_backup(db, &org, &fresh, now - 7200, true).await;
    insert_backup(db, &org, &fresh, now - 60, false).await;
    // Two drills of fresh's newest backup: an older failure, then a pass in 1.5 s.
    for (job, passed, ms, at) in [
        ("job_drill_a", 0, None, now - 50),
        ("job_drill_b", 1, Some(1500), now - 40),
    ] {
        sqlx::query(
            "INSERT INTO jobs (id, org_id, kind, database_id, destination_id, agent_id, state, \
             attempt, max_attempts, created_at, progress_bytes, phase, drill) \
             SELECT $1, $2, 'restore', $3, (SELECT id FROM destinations LIMIT 1), \
             (SELECT id FROM agents LIMIT 1), 'succeeded', 1, 1, $4, 0, 'done', 1",
        )
        .bind(job)
        .bind(&org)
        .bind(&fresh)
        .bind(at)
        .execute(db.pool())
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO drill_results (job_id, org_id, backup_id, database_id, passed, \
             restore_ms, tables_checked, finished_at) \
             SELECT $1, $2, (SELECT id FROM backups WHERE finished_at = $3), $4, $5, $6, 3, $7",
        )
        .bind(job)
        .bind(&org)
        .bind(now - 60)
        .bind(&fresh)
        .bind(passed)
        .bind(ms)
        .bind(at)
        .execute(db.pool())
        .await
        .unwrap();
    }
    let event = AuditEvent {
        org_id: &org,
        actor: "agent:test",
        action: AuditAction::SecretUnwrap,
        target: "secret:test",
        details: r#"{"purpose":"database_password","reason":"job credentials"}"#,
    };
    audit::append(db, &event, STAMP).await.unwrap();
    Seeded {
        org,
        late,
        fresh,
        now,
    }
}

/// The value of the sample line that starts with `series` (name and labels).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
        .parse()
        .unwrap()
}

fn rules_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/prometheus/dbcrate-alerts.yml")
}

#[test]
fn metrics_pass_promtool_and_prometheus_fires_the_overdue_rule() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = TempDir::new("control-metrics").unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let (db, seeded, port) = rt.block_on(async {
        let db = common::sqlite_db(&dir).await;
        let seeded = seed(&db).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let access = MetricsAccess {
            token: Some(Arc::new(SecretString::new(TOKEN.into()))),
        };
        tokio::spawn(dbcrate_control::server::serve_plain(
            listener,
            metrics::router(db.clone(), access),
            std::future::pending(),
        ));
        (db, seeded, port)
    });
    let Seeded {
        org,
        late,
        fresh,
        now,
    } = &seeded;
    let url = format!("http://127.0.0.1:{port}/metrics");

    // Without the token, or with a wrong one: 401, and nothing else said.
    let text = rt.block_on(async {
        let client = reqwest::Client::new();
        for auth in [None, Some("Bearer not-the-token")] {
            let mut request = client.get(&url);
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let refused = request.send().await.unwrap();
            assert_eq!(refused.status(), 401);
            assert!(!refused.text().await.unwrap().contains("dbcrate_"));
        }
        let answer = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(
            answer.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        answer.text().await.unwrap()
    });
    let deps = Deps::from_env();
    promtool_check_metrics(&deps, &text).unwrap_or_else(|e| panic!("{e}\n{text}"));

    // The figures say what the database holds.
    let at = |name: &str, labels: &str| sample(&text, &format!("{name}{{{labels}}}"));
    let db_labels = |database: &str| format!("org=\"{org}\",database=\"{database}\"");
    assert_eq!(
        at(
            "dbcrate_database_last_success_timestamp_seconds",
            &format!("{},name=\"fresh\"", db_labels(fresh))
        ),
        (*now - 60) as f64
    );
    assert_eq!(
        at(
            "dbcrate_database_last_backup_size_bytes",
            &format!("{},name=\"fresh\"", db_labels(fresh))
        ),
        4096.0
    );
    assert_eq!(
        at(
            "dbcrate_database_last_backup_duration_seconds",
            &format!("{},name=\"fresh\"", db_labels(fresh))
        ),
        2.5
    );
    // The newest drill: passed, restored in 1.5 s (the measured recovery time).
    assert_eq!(
        at("dbcrate_database_last_drill_passed", &db_labels(fresh)),
        1.0
    );
    assert_eq!(
        at(
            "dbcrate_database_last_drill_restore_seconds",
            &db_labels(fresh)
        ),
        1.5
    );
    assert!(!text.contains(&format!(
        "dbcrate_database_last_drill_passed{{{}",
        db_labels(late)
    )));
    assert!(!text.contains(&format!(
        "dbcrate_database_last_success_timestamp_seconds{{{}",
        db_labels(late)
    )));
    let due = |database: &str| {
        at(
            "dbcrate_database_backup_due_timestamp_seconds",
            &db_labels(database),
        )
    };
    assert!(due(late) < *now as f64, "the late database is overdue");
    assert!(due(fresh) > *now as f64, "the fresh one is not");
    let deadlines = rt.block_on(overview::deadlines(&db)).unwrap();
    assert_eq!(deadlines.len(), 2);
    assert_eq!(
        at("dbcrate_database_backup_failures_total", &db_labels(late)),
        1.0
    );
    assert_eq!(
        at("dbcrate_agents", &format!("org=\"{org}\",state=\"online\"")),
        1.0
    );
    assert!(text.contains(",version=\"0.1.0\"} 1"), "{text}");
    assert_eq!(
        at("dbcrate_jobs", &format!("org=\"{org}\",state=\"queued\"")),
        1.0
    );
    assert_eq!(
        at("dbcrate_job_claim_latency_seconds", "stat=\"median\""),
        10.0
    );
    assert_eq!(
        at(
            "dbcrate_retention_deletions_total",
            &format!("org=\"{org}\"")
        ),
        1.0
    );
    assert_eq!(
        at(
            "dbcrate_restores_total",
            &format!("org=\"{org}\",outcome=\"succeeded\"")
        ),
        1.0
    );
    assert_eq!(
        at(
            "dbcrate_master_key_unwraps_total",
            "purpose=\"database_password\",reason=\"job credentials\""
        ),
        1.0
    );

    // An open alert, counted by kind.
    rt.block_on(async {
        sqlx::query(
            "INSERT INTO alerts (id, org_id, kind, subject, summary, opened_at, last_sent_at, \
             repeats) VALUES ('alr_1', $1, 'backup_overdue', $2, 's', 1, 1, 0)",
        )
        .bind(org)
        .bind(late)
        .execute(db.pool())
        .await
        .unwrap();
    });
    let again = rt.block_on(metrics::render(&db, *now)).unwrap();
    promtool_check_metrics(&deps, &again).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sample(
            &again,
            &format!("dbcrate_alerts_open{{org=\"{org}\",kind=\"backup_overdue\"}}")
        ),
        1.0
    );

    // The shipped rules are valid, and a real Prometheus scraping with the token fires
    // the overdue alert for the late database only.
    let rules = rules_file();
    promtool_check_rules(&deps, &[&rules]).unwrap_or_else(|e| panic!("{e}"));
    let address = format!("127.0.0.1:{port}");
    let prometheus = PrometheusServer::start(
        &ScrapeTarget {
            address: &address,
            bearer_token_file: Some(&token_file),
        },
        &[&rules],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let overdue = loop {
        let firing = prometheus.firing_alerts().unwrap();
        let overdue: Vec<_> = firing
            .iter()
            .filter(|a| a["labels"]["alertname"] == "DbcrateBackupOverdue")
            .cloned()
            .collect();
        if !overdue.is_empty() {
            break overdue;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no overdue alert within a minute; targets: {}",
            prometheus.targets().unwrap()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(overdue.len(), 1, "{overdue:#?}");
    assert_eq!(overdue[0]["labels"]["database"], late.as_str());
    assert!(overdue[0]["annotations"]["summary"]
        .as_str()
        .unwrap()
        .contains(late.as_str()));
}
