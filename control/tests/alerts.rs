//! Alerts end to end against a real HTTP receiver on loopback that checks each webhook
//! delivery's signature the way a customer's receiver would: an overdue backup, a silent
//! agent and a failed job each produce exactly one alert per channel (webhook and
//! Slack); nothing more on the next ticks; the open ones are told again after the
//! back-off, never the failed job; a backup and a call from the agent clear theirs with
//! one recovery notice each; a receiver answering 500 is retried on the back-off until
//! the delivery fails, with the error in the log; a removed channel's pending deliveries
//! are dropped; a test notification arrives; a URL the reach policy forbids is not
//! called; the channels' secrets are sealed and unwrapped only to deliver (audited).

mod common;

use dbcrate_control::alerts::channels::{self, ChannelKind, NewChannel, Target};
use dbcrate_control::alerts::signing;
use dbcrate_control::alerts::{delivery, engine};
use dbcrate_control::backups::{databases, schedules};
use dbcrate_control::db::Db;
use dbcrate_control::envelope::MasterKeys;
use dbcrate_core::retention::Rules;
use dbcrate_core::secret::SecretString;
use dbcrate_storage::reach::ReachPolicy;
use dbcrate_testkit::TempDir;
use serde_json::Value;
use std::sync::Arc;

const STAMP: &str = "2026-11-29T05:00:00Z";
const DESTINATION: &str = "dst_0123456789abcdef0123456789abcdef";

use common::receiver::{receiver, Received};

struct World {
    db: Db,
    keys: Arc<MasterKeys>,
    reach: ReachPolicy,
    org: String,
    agent: String,
    late: String,
    now: i64,
    _dir: TempDir,
}

async fn world() -> World {
    let dir = TempDir::new("control-alerts").unwrap();
    let db = common::sqlite_db(&dir).await;
    db.migrate().await.unwrap();
    let keys = Arc::new(common::keys_with_audit_key(&db, STAMP).await);
    let org = dbcrate_control::orgs::create(&db, &keys, "Acme", "system:test", STAMP)
        .await
        .unwrap()
        .id;
    let now = dbcrate_core::time::unix_now();
    let agent = dbcrate_control::local::enrol_agent(&db, &keys, &org, now)
        .await
        .unwrap()
        .0
        .agent_id;
    // A certificate with most of its life ahead (enrol_agent issues one for an hour).
    sqlx::query("UPDATE agent_certificates SET not_after = $1 WHERE agent_id = $2")
        .bind(now + 100 * 3600)
        .bind(&agent)
        .execute(db.pool())
        .await
        .unwrap();
    // Last seen half an hour ago: offline.
    sqlx::query("UPDATE agents SET last_seen_at = $1 WHERE id = $2")
        .bind(now - 1800)
        .bind(&agent)
        .execute(db.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO destinations (id, org_id, name, kind, settings, created_at) \
         VALUES ($1, $2, 'dir', 'directory', '{}', 0)",
    )
    .bind(DESTINATION)
    .bind(&org)
    .execute(db.pool())
    .await
    .unwrap();
    let late = databases::create(
        &db,
        &keys,
        &org,
        &common::remote_database("shop", &agent),
        "system:test",
        now,
    )
    .await
    .unwrap()
    .id;
    // Hourly for three hours, never a backup: overdue.
    let hourly = schedules::NewSchedule {
        database_id: &late,
        destination_id: DESTINATION,
        cron: "0 * * * *",
        time_zone: "UTC",
        retention: Rules::default(),
    };
    schedules::create(&db, &org, &hourly, "system:test", now - 3 * 3600)
        .await
        .unwrap();
    // A backup job that failed for good ten minutes ago.
    sqlx::query(
        "INSERT INTO jobs (id, org_id, kind, database_id, destination_id, agent_id, state, \
         attempt, max_attempts, created_at, finished_at, progress_bytes, phase, error) \
         VALUES ('job_failed0', $1, 'backup', $2, $3, $4, 'failed', 3, 3, $5, $5, 0, 'failed', \
         'pg_dump: connection refused')",
    )
    .bind(&org)
    .bind(&late)
    .bind(DESTINATION)
    .bind(&agent)
    .bind(now - 600)
    .execute(db.pool())
    .await
    .unwrap();
    World {
        db,
        keys,
        reach: dbcrate_control::local::loopback_reach(&std::env::temp_dir()).unwrap(),
        org,
        agent,
        late,
        now,
        _dir: dir,
    }
}

/// Makes the world's agent certificate 95% through its life (renewal is due at 80%).
async fn age_the_certificate(w: &World) {
    sqlx::query(
        "UPDATE agent_certificates SET not_before = $1, not_after = $2 WHERE agent_id = $3",
    )
    .bind(w.now - 95 * 3600)
    .bind(w.now + 5 * 3600)
    .bind(&w.agent)
    .execute(w.db.pool())
    .await
    .unwrap();
}

/// An old backup `bkp_old` retention failed to delete `attempts` times, last at
/// `last_delete_at`.
async fn failing_deletion(w: &World, attempts: i64, last_delete_at: Option<i64>) {
    sqlx::query(
        "INSERT INTO backups (id, org_id, job_id, database_id, destination_id, object_key, size, \
         sha256, started_at, finished_at, pg_server_version, pg_dump_version, delete_attempts, \
         last_delete_at) VALUES ('bkp_old', $1, 'job_failed0', $2, $3, 'old', 1, 'ab', 1, 1, \
         '17', '17', $4, $5)",
    )
    .bind(&w.org)
    .bind(&w.late)
    .bind(DESTINATION)
    .bind(attempts)
    .bind(last_delete_at)
    .execute(w.db.pool())
    .await
    .unwrap();
}

/// A restore drill of the backup `bkp_old` ([`failing_deletion`] makes it) that failed:
/// its job (a restore with `drill = 1`) and its result.
async fn failed_drill(w: &World) {
    sqlx::query(
        "INSERT INTO jobs (id, org_id, kind, database_id, destination_id, agent_id, state, \
         attempt, max_attempts, created_at, finished_at, progress_bytes, phase, error, \
         backup_id, drill) SELECT 'job_drill0', org_id, 'restore', id, $1, agent_id, 'failed', \
         1, 1, $2, $2, 0, 'failed', 'rows differ', 'bkp_old', 1 FROM databases WHERE id = $3",
    )
    .bind(DESTINATION)
    .bind(w.now)
    .bind(&w.late)
    .execute(w.db.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO drill_results (job_id, org_id, backup_id, database_id, passed, \
         tables_checked, error, finished_at) \
         VALUES ('job_drill0', $1, 'bkp_old', $2, 0, 3, 'rows differ', $3)",
    )
    .bind(&w.org)
    .bind(&w.late)
    .bind(w.now)
    .execute(w.db.pool())
    .await
    .unwrap();
}

/// Changes the first row of the organisation's audit chain, as someone who can switch
/// the append-only trigger off would.
async fn tamper_with_the_audit_chain(w: &World) {
    sqlx::raw_sql("DROP TRIGGER IF EXISTS audit_log_no_update")
        .execute(w.db.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'user:mallory' WHERE org_id = $1 AND seq = 1")
        .bind(&w.org)
        .execute(w.db.pool())
        .await
        .unwrap();
}

/// E-mail through `server` (`security`: `starttls` or `implicit`) to ops@example.com,
/// trusting its test CA, with the account it accepts.
fn smtp_settings(
    server: &dbcrate_testkit::SmtpServer,
    security: &str,
) -> dbcrate_control::alerts::channels::EmailSettings {
    dbcrate_control::alerts::channels::EmailSettings {
        host: "localhost".into(),
        port: server.port(),
        security: security.into(),
        username: Some(dbcrate_testkit::SMTP_USER.into()),
        from: "dbcrate@example.com".into(),
        to: vec!["ops@example.com".into()],
        ca_pem: Some(server.ca_pem().into()),
    }
}

async fn add_channel(
    w: &World,
    name: &str,
    kind: ChannelKind,
    url: String,
) -> (String, Option<SecretString>) {
    let url = SecretString::new(url);
    let target = match kind {
        ChannelKind::Webhook => Target::Webhook(&url),
        _ => Target::Slack(&url),
    };
    let new = NewChannel { name, target };
    let (info, key) = channels::create(&w.db, &w.keys, &w.org, &new, "user:admin", w.now)
        .await
        .unwrap();
    (info.id, key)
}

async fn deliveries(db: &Db) -> Vec<(String, String, String, i64, Option<String>)> {
    sqlx::query_as(
        "SELECT channel_name, event, state, attempts, last_error FROM alert_deliveries \
         ORDER BY created_at, channel_name, id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

/// The webhook deliveries received so far, each checked against the signing key (and
/// signed no earlier than `now`, the test's first clock reading).
fn webhook_bodies(received: &Received, key: &SecretString, now: i64) -> Vec<Value> {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, _, _)| path == "/hook")
        .map(|(_, headers, body)| {
            let timestamp: i64 = header(headers, signing::TIMESTAMP_HEADER).parse().unwrap();
            let signature = header(headers, signing::SIGNATURE_HEADER);
            let key = key.expose_secret().as_bytes();
            // Signed when sent: at one of the test's clock readings, never before `now`.
            assert!(timestamp >= now, "signed at {timestamp}, before {now}");
            assert!(
                signing::verify(key, timestamp, body, signature, timestamp),
                "a bad signature"
            );
            assert!(!signing::verify(
                b"another key",
                timestamp,
                body,
                signature,
                timestamp
            ));
            assert!(header(headers, signing::DELIVERY_HEADER).starts_with("adl_"));
            serde_json::from_slice(body).unwrap()
        })
        .collect()
}

fn slack_texts(received: &Received) -> Vec<String> {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, _, _)| path == "/slack")
        .map(|(_, _, body)| {
            let json: Value = serde_json::from_slice(body).unwrap();
            json["text"].as_str().unwrap().to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_condition_is_told_once_repeated_on_a_back_off_and_cleared_once() {
    let w = world().await;
    let received: Received = Arc::default();
    let port = receiver(received.clone()).await;
    let (_, key) = add_channel(
        &w,
        "ops webhook",
        ChannelKind::Webhook,
        format!("http://127.0.0.1:{port}/hook"),
    )
    .await;
    let key = key.expect("a webhook has a signing key, shown once");
    assert!(key.expose_secret().starts_with("dbcwh_"));
    let (_, none) = add_channel(
        &w,
        "ops slack",
        ChannelKind::Slack,
        format!("http://127.0.0.1:{port}/slack"),
    )
    .await;
    assert!(none.is_none());
    let now = w.now;

    // Three conditions, two channels: six deliveries, all delivered, all signed.
    let ticked = engine::tick(&w.db, now).await.unwrap();
    assert_eq!((ticked.opened, ticked.repeated, ticked.cleared), (3, 0, 0));
    assert_eq!(
        delivery::deliver_due(&w.db, &w.keys, &w.reach, now)
            .await
            .unwrap(),
        6
    );
    let bodies = webhook_bodies(&received, &key, now);
    let mut kinds: Vec<(&str, &str)> = bodies
        .iter()
        .map(|b| {
            (
                b["alert"]["kind"].as_str().unwrap(),
                b["event"].as_str().unwrap(),
            )
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            ("agent_offline", "open"),
            ("backup_overdue", "open"),
            ("job_failed", "open")
        ]
    );
    let overdue = bodies
        .iter()
        .find(|b| b["alert"]["kind"] == "backup_overdue")
        .unwrap();
    assert_eq!(overdue["alert"]["subject"], w.late.as_str());
    assert_eq!(overdue["org"]["name"], "Acme");
    let failed = bodies
        .iter()
        .find(|b| b["alert"]["kind"] == "job_failed")
        .unwrap();
    assert!(failed["alert"]["summary"]
        .as_str()
        .unwrap()
        .contains("connection refused"));
    let texts = slack_texts(&received);
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert!(
        texts.iter().all(|t| t.starts_with("[dbcrate] Alert: ")),
        "{texts:?}"
    );

    // No storm: the next ticks send nothing while nothing changed.
    for later in [now + 10, now + 600, now + 3000] {
        assert_eq!(
            engine::tick(&w.db, later).await.unwrap(),
            engine::Tick::default()
        );
        assert_eq!(
            delivery::deliver_due(&w.db, &w.keys, &w.reach, later)
                .await
                .unwrap(),
            0
        );
    }
    // After an hour the two open ones are told again; the failed job is not.
    let hour = now + 3600;
    let ticked = engine::tick(&w.db, hour).await.unwrap();
    assert_eq!((ticked.opened, ticked.repeated, ticked.cleared), (0, 2, 0));
    assert_eq!(
        delivery::deliver_due(&w.db, &w.keys, &w.reach, hour)
            .await
            .unwrap(),
        4
    );
    // The next repeat waits two hours.
    assert_eq!(engine::tick(&w.db, hour + 3600).await.unwrap().repeated, 0);

    // A backup arrives and the agent calls: both clear, one recovery notice each.
    sqlx::query(
        "INSERT INTO backups (id, org_id, job_id, database_id, destination_id, object_key, size, \
         sha256, started_at, finished_at, pg_server_version, pg_dump_version, delete_attempts) \
         VALUES ('bkp_1', $1, 'job_failed0', $2, $3, 'k', 1, 'ab', $4, $4, '17', '17', 0)",
    )
    .bind(&w.org)
    .bind(&w.late)
    .bind(DESTINATION)
    .bind(hour + 3700)
    .execute(w.db.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE agents SET last_seen_at = $1 WHERE id = $2")
        .bind(hour + 3700)
        .bind(&w.agent)
        .execute(w.db.pool())
        .await
        .unwrap();
    let clear_at = hour + 3720;
    let ticked = engine::tick(&w.db, clear_at).await.unwrap();
    assert_eq!((ticked.opened, ticked.repeated, ticked.cleared), (0, 0, 2));
    assert_eq!(
        delivery::deliver_due(&w.db, &w.keys, &w.reach, clear_at)
            .await
            .unwrap(),
        4
    );
    let cleared: Vec<Value> = webhook_bodies(&received, &key, now)
        .into_iter()
        .filter(|b| b["event"] == "clear")
        .collect();
    assert_eq!(cleared.len(), 2);
    assert!(cleared.iter().all(|b| b["alert"]["cleared_at"].is_string()));
    assert_eq!(
        slack_texts(&received)
            .iter()
            .filter(|t| t.starts_with("[dbcrate] Resolved: "))
            .count(),
        2
    );
    assert_eq!(
        engine::tick(&w.db, clear_at + 60).await.unwrap(),
        engine::Tick::default()
    );

    // Every delivery is in the log, delivered on its first attempt.
    let log = deliveries(&w.db).await;
    assert_eq!(log.len(), 14);
    assert!(log
        .iter()
        .all(|(_, _, state, attempts, _)| state == "delivered" && *attempts == 1));
    // The URLs and key were unsealed only to deliver, each time audited.
    let unwraps: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'secret.unwrap' \
         AND details LIKE '%alert delivery%'",
    )
    .fetch_one(w.db.pool())
    .await
    .unwrap();
    assert_eq!(
        unwraps,
        14 + 7,
        "a URL per delivery, a key per webhook delivery"
    );
    dbcrate_testkit::assert_audited(
        w.db.pool(),
        &w.org,
        &["alert_channel.create", "alert_channel.create"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_receivers_are_retried_on_a_back_off_and_forbidden_addresses_never_called() {
    let w = world().await;
    let received: Received = Arc::default();
    let port = receiver(received.clone()).await;
    add_channel(
        &w,
        "broken",
        ChannelKind::Slack,
        format!("http://127.0.0.1:{port}/fail"),
    )
    .await;
    let now = w.now;
    engine::tick(&w.db, now).await.unwrap();
    assert_eq!(
        delivery::deliver_due(&w.db, &w.keys, &w.reach, now)
            .await
            .unwrap(),
        0
    );
    let log = deliveries(&w.db).await;
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|(_, _, state, attempts, error)| {
        state == "pending"
            && *attempts == 1
            && error.as_deref() == Some("the receiver answered 500")
    }));
    // Not before the back-off; then again, doubling, until it gives up.
    assert_eq!(
        delivery::deliver_due(&w.db, &w.keys, &w.reach, now + 29)
            .await
            .unwrap(),
        0
    );
    assert_eq!(received.lock().unwrap().len(), 3);
    let mut at = now;
    for attempt in 1..delivery::MAX_ATTEMPTS {
        at += delivery::retry_after(attempt);
        delivery::deliver_due(&w.db, &w.keys, &w.reach, at)
            .await
            .unwrap();
    }
    assert_eq!(
        received.lock().unwrap().len(),
        3 * delivery::MAX_ATTEMPTS as usize
    );
    let log = deliveries(&w.db).await;
    assert!(
        log.iter()
            .all(|(_, _, state, attempts, _)| state == "failed"
                && *attempts == delivery::MAX_ATTEMPTS)
    );
    assert_eq!(
        delivery::deliver_due(&w.db, &w.keys, &w.reach, at + 86_400)
            .await
            .unwrap(),
        0
    );

    // A test notification to a working channel arrives; a removed channel's pending
    // deliveries are dropped.
    let (good, _) = add_channel(
        &w,
        "good",
        ChannelKind::Slack,
        format!("http://127.0.0.1:{port}/slack"),
    )
    .await;
    let test = delivery::queue_test(&w.db, &w.org, &good, at)
        .await
        .unwrap()
        .unwrap();
    assert!(test.starts_with("adl_"));
    assert!(delivery::queue_test(&w.db, "org_other", &good, at)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        delivery::deliver_due(&w.db, &w.keys, &w.reach, at)
            .await
            .unwrap(),
        1
    );
    assert!(slack_texts(&received)
        .iter()
        .any(|t| t.starts_with("[dbcrate] Test: ")));
    let (gone, _) = add_channel(
        &w,
        "gone",
        ChannelKind::Slack,
        format!("http://127.0.0.1:{port}/fail"),
    )
    .await;
    delivery::queue_test(&w.db, &w.org, &gone, at)
        .await
        .unwrap();
    assert!(channels::delete(&w.db, &w.org, &gone, "user:admin", at)
        .await
        .unwrap());
    assert!(!channels::delete(&w.db, &w.org, &gone, "user:admin", at)
        .await
        .unwrap());
    let dropped: (String, Option<String>) =
        sqlx::query_as("SELECT state, last_error FROM alert_deliveries WHERE channel_id = $1")
            .bind(&gone)
            .fetch_one(w.db.pool())
            .await
            .unwrap();
    assert_eq!(
        dropped,
        ("failed".into(), Some("the channel was removed".into()))
    );

    // A reach policy that allows no private address: the loopback receiver is never
    // called, and the log says why without the URL's path.
    let strict = ReachPolicy::new(Vec::new(), &[]).unwrap();
    let before = received.lock().unwrap().len();
    delivery::queue_test(&w.db, &w.org, &good, at)
        .await
        .unwrap();
    assert_eq!(
        delivery::deliver_due(&w.db, &w.keys, &strict, at)
            .await
            .unwrap(),
        0
    );
    assert_eq!(received.lock().unwrap().len(), before);
    let refused: Option<String> = sqlx::query_scalar(
        "SELECT last_error FROM alert_deliveries WHERE channel_id = $1 AND state = 'pending'",
    )
    .bind(&good)
    .fetch_one(w.db.pool())
    .await
    .unwrap();
    let refused = refused.unwrap();
    assert!(refused.starts_with("127.0.0.1: "), "{refused}");
    assert!(!refused.contains("/slack"), "{refused}");

    // Channels: names are unique, URLs must be https (or http to loopback), secrets
    // never listed.
    let url = SecretString::new("https://hooks.example.com/services/T0/B0/secret".into());
    let dup = NewChannel {
        name: "good",
        target: Target::Slack(&url),
    };
    let err = channels::create(&w.db, &w.keys, &w.org, &dup, "user:admin", at)
        .await
        .unwrap_err();
    assert!(err.message.contains("exists"), "{err:?}");
    let plain = SecretString::new("http://hooks.example.com/x".into());
    let bad = NewChannel {
        name: "plain",
        target: Target::Webhook(&plain),
    };
    let err = channels::create(&w.db, &w.keys, &w.org, &bad, "user:admin", at)
        .await
        .unwrap_err();
    assert!(err.message.contains("https://"), "{err:?}");
    let listed = channels::list(&w.db, &w.org).await.unwrap();
    assert!(listed.iter().all(|c| c.host == "127.0.0.1"), "{listed:?}");
    assert!(format!("{listed:?}").contains("good") && !format!("{listed:?}").contains("/slack"));
    let stored = dbcrate_testkit::every_text_in_database(w.db.pool()).await;
    assert!(
        !stored.contains("/slack") && !stored.contains("/fail") && !stored.contains("T0/B0"),
        "a URL stored in the clear"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_that_is_not_renewing_and_a_deletion_that_keeps_failing_are_conditions() {
    use dbcrate_control::alerts::conditions::{current, AlertKind};
    let w = world().await;
    let now = w.now;
    age_the_certificate(&w).await;
    // Retention failed to delete an old backup twice.
    failing_deletion(&w, 2, Some(now - 60)).await;
    let found = |kind: AlertKind, conditions: &[dbcrate_control::alerts::conditions::Condition]| {
        conditions
            .iter()
            .filter(|c| c.kind == kind)
            .map(|c| (c.subject.clone(), c.summary.clone()))
            .collect::<Vec<_>>()
    };
    let now_holding = current(&w.db, now).await.unwrap();
    let expiring = found(AlertKind::CertificateNotRenewing, &now_holding);
    assert_eq!(expiring.len(), 1, "{now_holding:#?}");
    assert_eq!(expiring[0].0, w.agent);
    assert!(expiring[0].1.contains("expires"), "{}", expiring[0].1);
    let stuck = found(AlertKind::RetentionDeleteFailed, &now_holding);
    assert_eq!(stuck.len(), 1, "{now_holding:#?}");
    assert_eq!(stuck[0].0, "bkp_old");
    assert!(stuck[0].1.contains("2 attempts"), "{}", stuck[0].1);

    // Renewed, and deleted at last: both clear.
    sqlx::query(
        "INSERT INTO agent_certificates (serial, agent_id, org_id, not_before, not_after) \
         VALUES ('renewed', $1, $2, $3, $4)",
    )
    .bind(&w.agent)
    .bind(&w.org)
    .bind(now)
    .bind(now + 100 * 3600)
    .execute(w.db.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE backups SET deleted_at = $1 WHERE id = 'bkp_old'")
        .bind(now)
        .execute(w.db.pool())
        .await
        .unwrap();
    let later = current(&w.db, now + 60).await.unwrap();
    assert!(
        found(AlertKind::CertificateNotRenewing, &later).is_empty(),
        "{later:#?}"
    );
    assert!(
        found(AlertKind::RetentionDeleteFailed, &later).is_empty(),
        "{later:#?}"
    );
}

#[test]
fn alerts_are_mailed_through_a_real_smtp_server() {
    use dbcrate_control::alerts::channels::EmailSettings;
    use dbcrate_testkit::{SmtpServer, SmtpTls, SMTP_PASSWORD};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = rt.block_on(world());
    let server = SmtpServer::start(SmtpTls::StartTls).unwrap_or_else(|e| panic!("{e}"));
    let email = smtp_settings(&server, "starttls");
    let password = SecretString::new(SMTP_PASSWORD.into());
    let now = w.now;
    rt.block_on(async {
        // Settings that cannot work are refused before anything is stored.
        for (bad, why) in [
            (
                EmailSettings {
                    to: vec![],
                    ..email.clone()
                },
                "to must list",
            ),
            (
                EmailSettings {
                    from: "ops\r\nBcc: x@y".into(),
                    ..email.clone()
                },
                "from must be",
            ),
            (
                EmailSettings {
                    security: "none".into(),
                    ..email.clone()
                },
                "starttls or implicit",
            ),
            (
                EmailSettings {
                    ca_pem: Some("not pem".into()),
                    ..email.clone()
                },
                "ca_pem",
            ),
        ] {
            let new = NewChannel {
                name: "bad",
                target: Target::Email(bad, Some(&password)),
            };
            let err = channels::create(&w.db, &w.keys, &w.org, &new, "user:admin", now)
                .await
                .unwrap_err();
            assert!(err.message.contains(why), "{why}: {err:?}");
        }
        let no_password = NewChannel {
            name: "bad",
            target: Target::Email(email.clone(), None),
        };
        let err = channels::create(&w.db, &w.keys, &w.org, &no_password, "user:admin", now)
            .await
            .unwrap_err();
        assert!(err.message.contains("go together"), "{err:?}");
        assert!(channels::list(&w.db, &w.org).await.unwrap().is_empty());

        let new = NewChannel {
            name: "mail",
            target: Target::Email(email.clone(), Some(&password)),
        };
        let (info, key) = channels::create(&w.db, &w.keys, &w.org, &new, "user:admin", now)
            .await
            .unwrap();
        assert!(key.is_none());
        assert_eq!(
            (info.kind.as_str(), info.host.as_str()),
            ("email", "localhost")
        );
        assert_eq!(engine::tick(&w.db, now).await.unwrap().opened, 3);
        assert_eq!(
            delivery::deliver_due(&w.db, &w.keys, &w.reach, now)
                .await
                .unwrap(),
            3
        );
    });
    let mails = server
        .wait_for(3, std::time::Duration::from_secs(10))
        .unwrap();
    assert_eq!(mails.len(), 3);
    for m in &mails {
        assert_eq!(m["tls"], true);
        assert_eq!(m["authenticated"], true);
        assert_eq!(m["rcpt_tos"], serde_json::json!(["ops@example.com"]));
        let data = m["data"].as_str().unwrap();
        assert!(data.contains("Subject: [dbcrate] Alert: "), "{data}");
    }
    let subjects: Vec<&str> = mails
        .iter()
        .filter_map(|m| {
            m["data"]
                .as_str()?
                .lines()
                .find(|l| l.starts_with("Subject: "))
        })
        .collect();
    for kind in ["backup_overdue", "agent_offline", "job_failed"] {
        assert!(
            subjects.iter().any(|s| s.contains(kind)),
            "{kind} not in {subjects:?}"
        );
    }
    let stored = rt.block_on(dbcrate_testkit::every_text_in_database(w.db.pool()));
    assert!(
        !stored.contains(SMTP_PASSWORD),
        "the SMTP password is stored sealed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_missed_by_more_than_its_own_grace_is_overdue() {
    use dbcrate_control::alerts::conditions::{current, AlertKind};
    use dbcrate_control::backups::schedules;
    let w = world().await;
    let overdue = |c: Vec<dbcrate_control::alerts::conditions::Condition>| {
        c.into_iter()
            .filter(|c| c.kind == AlertKind::BackupOverdue)
            .map(|c| c.subject)
            .collect::<Vec<_>>()
    };
    // The hourly schedule made three hours ago, no backup: late with the default hour.
    assert_eq!(
        overdue(current(&w.db, w.now).await.unwrap()),
        std::slice::from_ref(&w.late)
    );
    let schedule: String = sqlx::query_scalar("SELECT id FROM schedules WHERE database_id = $1")
        .bind(&w.late)
        .fetch_one(w.db.pool())
        .await
        .unwrap();
    // Given four hours to finish, it is not late yet; then it is.
    assert!(
        schedules::set_grace(&w.db, &w.org, &schedule, 240, "user:admin", w.now)
            .await
            .unwrap()
    );
    assert!(overdue(current(&w.db, w.now).await.unwrap()).is_empty());
    let later = w.now + 3 * 3600;
    assert_eq!(
        overdue(current(&w.db, later).await.unwrap()),
        std::slice::from_ref(&w.late)
    );
    let refused = schedules::set_grace(&w.db, &w.org, &schedule, 1, "user:admin", w.now).await;
    assert!(refused.unwrap_err().to_string().contains("between 5 and"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_chain_changed_behind_the_control_planes_back_is_a_condition() {
    use dbcrate_control::alerts::chain_checks;
    use dbcrate_control::alerts::conditions::{current, AlertKind};
    let w = world().await;
    let now = w.now;
    let chains = |at| chain_checks::run_due(&w.db, at);
    let broken = |c: Vec<dbcrate_control::alerts::conditions::Condition>| {
        c.into_iter()
            .filter(|c| c.kind == AlertKind::AuditChainBroken)
            .map(|c| (c.subject, c.summary))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        chains(now).await.unwrap(),
        1,
        "the one organisation, never checked"
    );
    assert_eq!(
        chains(now + 60).await.unwrap(),
        0,
        "checked within the hour"
    );
    assert!(broken(current(&w.db, now).await.unwrap()).is_empty());
    tamper_with_the_audit_chain(&w).await;
    assert!(
        broken(current(&w.db, now + 120).await.unwrap()).is_empty(),
        "not told before the next hourly check"
    );
    assert_eq!(
        chains(now + chain_checks::CHECK_EVERY_SECS).await.unwrap(),
        1
    );
    let told = broken(
        current(&w.db, now + chain_checks::CHECK_EVERY_SECS)
            .await
            .unwrap(),
    );
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].0, w.org);
    assert!(told[0].1.contains("at row 1"), "{}", told[0].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_fails_its_daily_probe_is_a_condition_until_one_passes() {
    use dbcrate_control::alerts::conditions::{current, AlertKind};
    use dbcrate_control::backups::destinations::{self, NewDestination, REPROBE_EVERY_SECS};
    let w = world().await;
    let now = w.now;
    let dir = TempDir::new("alerts-reprobe").unwrap();
    let target = dir.path().join("backups");
    std::fs::create_dir(&target).unwrap();
    let reach = Arc::new(dbcrate_control::local::loopback_reach(&std::env::temp_dir()).unwrap());
    let settings = serde_json::json!({ "path": target });
    let new = NewDestination {
        name: "local",
        kind: "directory",
        settings: &settings,
        credentials: None,
    };
    let (saved, _) = destinations::create(&w.db, &w.keys, &reach, &w.org, &new, "user:admin", now)
        .await
        .unwrap()
        .unwrap();
    let probe_failures = |c: Vec<dbcrate_control::alerts::conditions::Condition>| {
        c.into_iter()
            .filter(|c| c.kind == AlertKind::DestinationProbeFailed)
            .map(|c| (c.subject, c.summary))
            .collect::<Vec<_>>()
    };
    let reprobe = |at| destinations::reprobe_due(&w.db, &w.keys, &reach, at);
    let probed_at = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT probed_at FROM destination_probes WHERE destination_id = $1",
        )
        .bind(&saved.id)
        .fetch_optional(w.db.pool())
        .await
        .unwrap()
    };
    reprobe(now + 60).await.unwrap();
    assert_eq!(
        probed_at().await,
        None,
        "probed when saved: not due for a day"
    );
    let day = now + REPROBE_EVERY_SECS;
    reprobe(day).await.unwrap();
    assert_eq!(probed_at().await, Some(day));
    let fine = probe_failures(current(&w.db, day).await.unwrap());
    assert!(!fine.iter().any(|(id, _)| *id == saved.id), "{fine:?}");

    // The directory is gone: the next daily probe fails, and says where.
    std::fs::remove_dir_all(&target).unwrap();
    reprobe(day + 60).await.unwrap();
    assert_eq!(probed_at().await, Some(day), "once a day");
    let next = day + REPROBE_EVERY_SECS;
    reprobe(next).await.unwrap();
    let failing = probe_failures(current(&w.db, next).await.unwrap());
    let mine: Vec<_> = failing.iter().filter(|(id, _)| *id == saved.id).collect();
    assert_eq!(mine.len(), 1, "{failing:?}");
    assert!(
        mine[0].1.contains("local") && mine[0].1.contains("failed ("),
        "{}",
        mine[0].1
    );

    // Back: the next probe passes and the condition is gone.
    std::fs::create_dir(&target).unwrap();
    reprobe(next + REPROBE_EVERY_SECS).await.unwrap();
    let later = probe_failures(current(&w.db, next + REPROBE_EVERY_SECS).await.unwrap());
    assert!(!later.iter().any(|(id, _)| *id == saved.id), "{later:?}");
}

/// Every kind of condition there is, at once, reaches every kind of channel exactly
/// once: a webhook (signature checked), a Slack-compatible webhook and e-mail through
/// a real SMTP server.
#[test]
fn every_kind_of_alert_reaches_every_kind_of_channel_once() {
    use dbcrate_control::alerts::chain_checks;
    use dbcrate_control::alerts::conditions::AlertKind;
    use dbcrate_testkit::{SmtpServer, SmtpTls, SMTP_PASSWORD};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = rt.block_on(world());
    let now = w.now;
    let smtp = SmtpServer::start(SmtpTls::Implicit).unwrap_or_else(|e| panic!("{e}"));
    let received = Received::default();
    let key = rt.block_on(async {
        let port = receiver(received.clone()).await;
        // Beyond the world's overdue backup, silent agent and failed job: a certificate
        // near its end, a deletion that keeps failing, a failed restore drill, a tampered
        // audit chain, and a destination (the fixture, whose settings cannot work)
        // failing its probe.
        age_the_certificate(&w).await;
        failing_deletion(&w, 3, None).await;
        failed_drill(&w).await;
        tamper_with_the_audit_chain(&w).await;
        chain_checks::run_due(&w.db, now).await.unwrap();
        let reach =
            Arc::new(dbcrate_control::local::loopback_reach(&std::env::temp_dir()).unwrap());
        dbcrate_control::backups::destinations::reprobe_due(&w.db, &w.keys, &reach, now)
            .await
            .unwrap();

        let (_, key) = add_channel(
            &w,
            "hook",
            ChannelKind::Webhook,
            format!("http://127.0.0.1:{port}/hook"),
        )
        .await;
        add_channel(
            &w,
            "chat",
            ChannelKind::Slack,
            format!("http://127.0.0.1:{port}/slack"),
        )
        .await;
        let email = smtp_settings(&smtp, "implicit");
        let password = SecretString::new(SMTP_PASSWORD.into());
        let mail = NewChannel {
            name: "mail",
            target: Target::Email(email, Some(&password)),
        };
        channels::create(&w.db, &w.keys, &w.org, &mail, "user:admin", now)
            .await
            .unwrap();

        let kinds = AlertKind::ALL.len();
        assert_eq!(engine::tick(&w.db, now).await.unwrap().opened, kinds);
        let sent = delivery::deliver_due(&w.db, &w.keys, &w.reach, now)
            .await
            .unwrap();
        assert_eq!(sent, 3 * kinds, "{:#?}", deliveries(&w.db).await);
        assert_eq!(
            engine::tick(&w.db, now + 60).await.unwrap(),
            engine::Tick::default()
        );
        key.unwrap()
    });
    let mut hooked: Vec<String> = webhook_bodies(&received, &key, now)
        .iter()
        .map(|b| b["alert"]["kind"].as_str().unwrap().to_string())
        .collect();
    hooked.sort();
    let mut every: Vec<String> = AlertKind::ALL
        .iter()
        .map(|k| k.as_str().to_string())
        .collect();
    every.sort();
    assert_eq!(hooked, every, "one webhook delivery per kind");
    let chat = slack_texts(&received);
    let mails = smtp
        .wait_for(every.len(), std::time::Duration::from_secs(10))
        .unwrap();
    assert_eq!(mails.len(), every.len());
    for kind in &every {
        assert_eq!(
            chat.iter().filter(|t| t.contains(kind.as_str())).count(),
            1,
            "{kind}: {chat:?}"
        );
        let subjects = mails
            .iter()
            .filter(|m| {
                m["data"]
                    .as_str()
                    .unwrap()
                    .contains(&format!(": {kind} in Acme"))
            })
            .count();
        assert_eq!(subjects, 1, "{kind}");
    }
}
