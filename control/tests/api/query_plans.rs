//! Every statement the agent protocol and the housekeeping loop run, as SQLite plans
//! them: none may read a whole table or a whole organisation's rows. These run for each
//! of thousands of agents' polls, or every minute over everything, so a statement that
//! reads more as the tables grow slows every route together. The 30-minute soak
//! (docs/benchmarks.md) found one: the poll for a claimable job searched the jobs by
//! organisation, because SQLite, without statistics, preferred that index.
//!
//! The statements are the ones actually run, captured from sqlx's own statement log
//! while the protocol is exercised, so a new one is covered without being listed here.

use crate::harness::{Api, Engine};
use crate::jobs::{enrolled_agent, shop_with_schedule};
use dbcrate_control::backups::{destinations, jobs, retention, scheduler};
use dbcrate_control::db::Db;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::SubscriberExt;

/// Collects the SQL of every statement sqlx logs.
#[derive(Clone, Default)]
struct Statements(Arc<Mutex<BTreeSet<String>>>);

impl Statements {
    fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// sqlx logs a statement's first words as `summary` and, when there are more, the
/// whole text as `db.statement`.
#[derive(Default)]
struct StatementText {
    summary: String,
    whole: String,
}

impl tracing::field::Visit for StatementText {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "summary" => self.summary = value.to_string(),
            "db.statement" => self.whole = value.trim().to_string(),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "summary" {
            self.summary = format!("{value:?}").trim_matches('"').to_string();
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() != "sqlx::query" {
            return;
        }
        let mut text = StatementText::default();
        event.record(&mut text);
        let sql = if text.whole.is_empty() {
            text.summary
        } else {
            text.whole
        };
        self.0.lock().unwrap().insert(sql);
    }
}

/// Tables whose rows accumulate with time (every job, backup, audit row, renewal, alert
/// and drill ever), as against the fleet's tables (agents, databases, schedules,
/// destinations), which the housekeeping loop reads whole by design.
const HISTORY: &[&str] = &[
    "jobs",
    "backups",
    "audit_log",
    "agent_certificates",
    "alerts",
    "alert_deliveries",
    "drill_results",
    "abandoned_objects",
    "sign_in_failures",
    "sessions",
];

/// Statements that search a history table by organisation and still read one row, and
/// why.
const ONE_ROW: &[(&str, &str)] = &[(
    "SELECT seq, hash FROM audit_log WHERE org_id = $1 ORDER BY seq DESC LIMIT 1",
    "the unique index (org_id, seq) yields the chain's head directly",
)];

/// The partial indexes (`CREATE INDEX ... WHERE ...`): scanning one reads only the rows
/// it holds (the open alerts, the deletions being retried), not the history.
async fn partial_indexes(db: &Db) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
}

/// What in SQLite's plan of `sql` reads more as history grows: a full scan of a history
/// table, or a search of one by organisation alone.
async fn growing_reads(db: &Db, sql: &str, partial: &[String]) -> Vec<String> {
    let parameters = (1..=99)
        .take_while(|n| sql.contains(&format!("${n}")))
        .count();
    let explain = format!("EXPLAIN QUERY PLAN {sql}");
    let mut query = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
    for _ in 0..parameters {
        query = query.bind(None::<String>);
    }
    let plan = query
        .fetch_all(db.pool())
        .await
        .unwrap_or_else(|e| panic!("explaining {sql}: {e}"));
    let one_row = ONE_ROW.iter().any(|(statement, _)| sql == *statement);
    plan.into_iter()
        .map(|(_, _, _, detail)| detail)
        .filter(|detail| {
            let words: Vec<&str> = detail.split_whitespace().collect();
            let table = table_read(sql, &words);
            if !table.is_some_and(|t| HISTORY.contains(&t.as_str())) {
                return false;
            }
            let by_partial = partial
                .iter()
                .any(|p| detail.contains(&format!("INDEX {p}")));
            let whole = words[0] == "SCAN" && !by_partial;
            whole || (detail.ends_with("(org_id=?)") && !one_row)
        })
        .collect()
}

/// The table a plan line (`SCAN t ...`, `SEARCH t ...`) reads, its alias resolved
/// against the statement's `FROM`/`JOIN` clauses.
fn table_read(sql: &str, words: &[&str]) -> Option<String> {
    if !matches!(words.first(), Some(&"SCAN") | Some(&"SEARCH")) {
        return None;
    }
    let name = *words.get(1)?;
    let tokens: Vec<&str> = sql.split_whitespace().collect();
    let aliased = tokens
        .windows(2)
        .find(|pair| pair[1] == name && !["FROM", "JOIN", "INTO", "UPDATE"].contains(&pair[0]))
        .map(|pair| pair[0]);
    Some(aliased.unwrap_or(name).to_string())
}

/// Statements worth planning: reads and writes (not transactions, pragmas or DDL).
fn plannable(sql: &str) -> bool {
    let first = sql.split_whitespace().next().unwrap_or("").to_uppercase();
    ["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"].contains(&first.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_no_agent_or_housekeeping_statement_reads_a_growing_table_whole() {
    let statements = Statements::default();
    let subscriber = tracing_subscriber::registry().with(statements.clone());
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let engine = Engine::sqlite();
    let api = Api::start(engine.db().await).await;
    let (a, owner) = api.init_owner().await;
    let org = a.org.id.clone();
    let agent = enrolled_agent(&api, &org).await;
    let now = dbcrate_core::time::unix_now();
    let schedule = shop_with_schedule(&api, &org, &agent, now).await;
    // Only what runs per poll, per job and per tick from here on.
    statements.take();

    assert_eq!(agent.get(&api, "/agent/v1/jobs/next").await.0, 200);
    assert_eq!(agent.get(&api, "/agent/v1/crl").await.0, 200);
    assert_eq!(scheduler::fire_due(&api.db, now).await.unwrap().len(), 1);
    let (_, claimed) = agent.get(&api, "/agent/v1/jobs/next").await;
    let job = claimed["job"]["id"].as_str().unwrap().to_string();
    let credentials = format!("/agent/v1/jobs/{job}/credentials");
    assert_eq!(agent.get(&api, &credentials).await.0, 200);
    let progress = format!("/agent/v1/jobs/{job}/progress");
    let beat = json!({ "bytes": 1024, "phase": "dumping", "rate": 7 });
    assert_eq!(agent.post(&api, &progress, beat).await.0, 200);
    let report = json!({
        "succeeded": true, "object_key": claimed["job"]["object_key"], "size": 4096,
        "sha256": "ab".repeat(32), "pg_server_version": "17.2", "pg_dump_version": "17.2",
    });
    let complete = format!("/agent/v1/jobs/{job}/complete");
    assert_eq!(agent.post(&api, &complete, report).await.0, 200);
    // An operator's "run now" (the load generator's 500 jobs a minute), claimed.
    let run_now = format!("/api/v1/orgs/{org}/schedules/{schedule}/run");
    api.post(&run_now, &owner, json!({})).await.ok();
    let (_, claimed) = agent.get(&api, "/agent/v1/jobs/next").await;
    assert!(claimed["job"]["id"].is_string(), "{claimed}");

    let reach = Arc::new(dbcrate_control::local::loopback_reach(&std::env::temp_dir()).unwrap());
    let later = now + 3600;
    retention::apply_all(&api.db, &api.keys, &reach, later)
        .await
        .unwrap();
    jobs::abandoned::sweep(&api.db, &api.keys, &reach, later)
        .await
        .unwrap();
    scheduler::fire_due(&api.db, later).await.unwrap();
    jobs::expire_leases(&api.db, later).await.unwrap();
    dbcrate_control::alerts::engine::tick(&api.db, later)
        .await
        .unwrap();
    dbcrate_control::alerts::delivery::deliver_due(&api.db, &api.keys, &reach, later)
        .await
        .unwrap();
    destinations::reprobe_due(&api.db, &api.keys, &reach, later)
        .await
        .unwrap();
    dbcrate_control::accounts::throttle::prune(&api.db, later)
        .await
        .unwrap();

    let run = statements.take();
    assert!(run.len() > 20, "too few statements captured: {run:?}");
    let partial = partial_indexes(&api.db).await;
    let mut found = Vec::new();
    for sql in run.iter().filter(|sql| plannable(sql)) {
        let reads = growing_reads(&api.db, sql, &partial).await;
        if !reads.is_empty() {
            found.push(format!("{sql}\n    {}", reads.join("\n    ")));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n\n"));
}
