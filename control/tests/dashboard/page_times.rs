//! How long the dashboard's list pages take for a large organisation: 10,000 backups
//! (with their jobs) and 100,000 audit rows, seeded straight into SQLite, each page
//! fetched over HTTPS on loopback as a signed-in admin, seven times, the median taken.
//! The target is 50 ms of server time per page; the medians are printed (and
//! recorded in docs/benchmarks.md). Shared CI machines are noisy, so the test fails only
//! above 500 ms — what a page that reads every row instead of one page would cost.

use crate::harness::Dashboard;
use crate::http::{send, sign_in_as};
use dbcrate_control::accounts::roles::Role;
use dbcrate_testkit::TempDir;
use reqwest::StatusCode;
use std::time::{Duration, Instant};

const BACKUPS: i64 = 10_000;
const AUDIT_ROWS: i64 = 100_000;
const RUNS: usize = 7;
const LIMIT: Duration = Duration::from_millis(500);

/// Seeds the organisation; answers (database id, a cursor deep into the backups).
fn seed(d: &Dashboard, dir: &TempDir) -> (String, String) {
    let o = d.objects("shop", dir);
    let (agent, database, destination) = (&o.agent, &o.database, &o.destination);
    d.rt.block_on(async {
        let now = dbcrate_core::time::unix_now();
        let numbers = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)";
        sqlx::query(&format!(
            "{numbers} INSERT INTO jobs (id, org_id, kind, schedule_id, database_id, destination_id, \
             agent_id, state, attempt, max_attempts, created_at, finished_at, progress_bytes, phase) \
             SELECT 'job_' || printf('%032x', i), $2, 'backup', NULL, $3, $4, $5, 'succeeded', 1, 3, \
             $6 - i * 600, $6 - i * 600, 0, 'done' FROM n"
        ))
        .bind(BACKUPS).bind(&d.org_id).bind(database).bind(destination).bind(agent).bind(now)
        .execute(d.db.pool()).await.unwrap();
        sqlx::query(&format!(
            "{numbers} INSERT INTO backups (id, org_id, job_id, schedule_id, database_id, \
             destination_id, object_key, size, sha256, started_at, finished_at, pg_server_version, \
             pg_dump_version, delete_attempts, duration_ms) \
             SELECT 'bkp_' || printf('%032x', i), $2, 'job_' || printf('%032x', i), NULL, $3, $4, \
             'shop/' || i || '.pgdump.zst.age', 1000000 + i, $5, $6 - i * 600, $6 - i * 600, '17', \
             '17', 0, 2000 FROM n"
        ))
        .bind(BACKUPS).bind(&d.org_id).bind(database).bind(destination).bind("00".repeat(32))
        .bind(now)
        .execute(d.db.pool()).await.unwrap();
        let last: i64 = sqlx::query_scalar("SELECT max(seq) FROM audit_log WHERE org_id = $1")
            .bind(&d.org_id)
            .fetch_one(d.db.pool())
            .await
            .unwrap();
        sqlx::query(&format!(
            "{numbers} INSERT INTO audit_log (org_id, seq, at, actor, action, target, details, \
             prev_hash, hash) SELECT $2, $3 + i, '2026-11-29T05:00:00Z', 'system:bench', \
             'job.create', 'job:job_' || printf('%032x', i), '{{\"n\":' || i || '}}', 'x', 'x' FROM n"
        ))
        .bind(AUDIT_ROWS).bind(&d.org_id).bind(last)
        .execute(d.db.pool()).await.unwrap();
        let deep = (BACKUPS - 50, format!("bkp_{:032x}", BACKUPS - 50));
        (database.clone(), format!("{}:{}", now - deep.0 * 600, deep.1))
    })
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[test]
fn list_pages_stay_fast_with_10000_backups_and_100000_audit_rows() {
    let d = Dashboard::start();
    let password = d.add_person("admin@example.com", Role::Admin, &d.org_id);
    let dir = TempDir::new("page-times").unwrap();
    let (database, deep) = seed(&d, &dir);
    let org = &d.org_id;
    let pages = [
        ("backups, first page", format!("/orgs/{org}/backups")),
        (
            "backups, a page 9,950 rows in",
            format!("/orgs/{org}/backups?after={deep}"),
        ),
        (
            "backups, one database, last week",
            format!("/orgs/{org}/backups?database={database}&days=7"),
        ),
        ("jobs, first page", format!("/orgs/{org}/jobs")),
        (
            "jobs, failed only",
            format!("/orgs/{org}/jobs?state=failed"),
        ),
        ("audit, first page", format!("/orgs/{org}/audit")),
        (
            "audit, a page 99,000 rows in",
            format!("/orgs/{org}/audit?before=1000"),
        ),
        (
            "audit, one action",
            format!("/orgs/{org}/audit?action=member.add"),
        ),
        ("overview", format!("/orgs/{org}")),
        ("agents", format!("/orgs/{org}/agents")),
    ];
    let results = d.rt.block_on(async {
        let cookie = sign_in_as(&d, "admin@example.com", &password).await;
        let mut results = Vec::new();
        for (name, path) in &pages {
            // One request first, so the connection and caches are warm for all.
            let first = send(&d, reqwest::Method::GET, path, Some(&cookie), None, &[]).await;
            assert_eq!(first.status, StatusCode::OK, "{name}: {}", first.text);
            let mut times = Vec::new();
            for _ in 0..RUNS {
                let started = Instant::now();
                let answer = send(&d, reqwest::Method::GET, path, Some(&cookie), None, &[]).await;
                times.push(started.elapsed());
                assert_eq!(answer.status, StatusCode::OK);
            }
            results.push((*name, median(times)));
        }
        results
    });
    for (name, time) in &results {
        println!(
            "page time: {name}: median {:.1} ms of {RUNS}",
            time.as_secs_f64() * 1000.0
        );
    }
    for (name, time) in &results {
        assert!(*time < LIMIT, "{name} took {time:?} (median of {RUNS})");
    }
}
