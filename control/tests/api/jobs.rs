//! The job protocol over mutual TLS: a fired schedule becomes a job the right agent
//! claims; its credentials are answered once, only to that agent, only while it runs
//! (and every answer is audited); heartbeats renew the lease; a stale lease puts the
//! job back in the queue until its attempts are used up; completion records the backup.

use crate::harness::{Api, NOW};
use dbcrate_control::backups::{jobs, scheduler};
use dbcrate_control::db::Db;
use dbcrate_control::pki::identity::AgentIdentity;
use dbcrate_control::secrets::{self, Owner};
use serde_json::{json, Value};

pub(crate) struct Agent {
    client: reqwest::Client,
    identity: AgentIdentity,
}

pub(crate) async fn enrolled_agent(api: &Api, org: &str) -> Agent {
    let now = dbcrate_core::time::unix_now();
    let (enrolled, key) = dbcrate_control::local::enrol_agent(&api.db, &api.keys, org, now)
        .await
        .unwrap();
    api._local_reload().await;
    let identity_pem = format!("{}{}", key.serialize_pem(), enrolled.chain_pem);
    let client = api.client(Some(&identity_pem));
    let leaf = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::pem_slice_iter(enrolled.chain_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap()
    };
    Agent {
        client,
        identity: dbcrate_control::pki::identity::from_certificate(&leaf).unwrap(),
    }
}

impl Agent {
    pub(crate) async fn get(&self, api: &Api, path: &str) -> (u16, Value) {
        let r = self.client.get(api.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn post(&self, api: &Api, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .client
            .post(api.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// A database `shop` on `agent` with a schedule due every minute (made two minutes
/// ago, so due now) into a destination whose sealed credentials have no storage behind
/// them; returns the schedule's id.
pub(crate) async fn shop_with_schedule(api: &Api, org: &str, agent: &Agent, now: i64) -> String {
    let database = dbcrate_control::backups::databases::create(
        &api.db,
        &api.keys,
        org,
        &dbcrate_control::backups::databases::NewDatabase {
            name: "shop",
            host: "db.internal",
            port: 5432,
            dbname: "shop",
            username: "backup",
            tls_mode: "require",
            password: Some(&dbcrate_core::secret::SecretString::new(
                "db-password-123".into(),
            )),
            agent_id: &agent.identity.agent_id,
        },
        "system:test",
        now,
    )
    .await
    .unwrap();
    // A destination with sealed credentials, inserted directly (no storage behind it).
    let destination = dbcrate_control::error::new_id("dst").unwrap();
    let mut tx = api.db.begin().await.unwrap();
    let secret = secrets::insert(
        &mut tx,
        &api.keys,
        Owner::Org(org),
        dbcrate_control::backups::destinations::DESTINATION_CREDENTIALS_PURPOSE,
        br#"{"access_key_id":"AKID","secret_access_key":"s3-secret-xyz"}"#,
        NOW,
    )
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO destinations (id, org_id, name, kind, settings, credentials_secret_id, created_at) \
         VALUES ($1, $2, 'bucket', 's3', '{\"bucket\":\"b\",\"prefix\":\"p\"}', $3, 0)",
    )
    .bind(&destination)
    .bind(org)
    .bind(&secret)
    .execute(&mut *tx)
    .await
    .unwrap();
    dbcrate_control::db::end_write(tx, Ok::<(), sqlx::Error>(()))
        .await
        .unwrap();
    let schedule = dbcrate_control::backups::schedules::create(
        &api.db,
        org,
        &dbcrate_control::backups::schedules::NewSchedule {
            database_id: &database.id,
            destination_id: &destination,
            cron: "* * * * *",
            time_zone: "UTC",
            retention: Default::default(),
        },
        "system:test",
        now - 120,
    )
    .await
    .unwrap();
    schedule.id
}

async fn job_protocol(db: Db) {
    let api = Api::start(db).await;
    let (a, owner) = api.init_owner().await;
    let org = a.org.id.clone();
    let agent = enrolled_agent(&api, &org).await;
    let other = enrolled_agent(&api, &org).await;
    let now = dbcrate_core::time::unix_now();
    let schedule = shop_with_schedule(&api, &org, &agent, now).await;

    // Nothing queued yet: the long poll answers null.
    let (status, body) = agent.get(&api, "/agent/v1/jobs/next").await;
    assert_eq!((status, &body["job"]), (200, &Value::Null));
    assert_eq!(scheduler::fire_due(&api.db, now).await.unwrap().len(), 1);

    // Another agent of the same organisation does not get it.
    let (_, none) = other.get(&api, "/agent/v1/jobs/next").await;
    assert_eq!(none["job"], Value::Null);
    let (status, claimed) = agent.get(&api, "/agent/v1/jobs/next").await;
    assert_eq!(status, 200);
    let job = claimed["job"]["id"].as_str().unwrap().to_string();
    assert!(claimed["job"]["object_key"]
        .as_str()
        .unwrap()
        .starts_with("shop/"));
    assert_eq!(claimed["job"]["attempt"], 1);

    // Credentials: not for the other agent, once for this one.
    let path = format!("/agent/v1/jobs/{job}/credentials");
    assert_eq!(other.get(&api, &path).await.0, 404);
    let (status, creds) = agent.get(&api, &path).await;
    assert_eq!(status, 200, "{creds}");
    assert_eq!(creds["database"]["password"], "db-password-123");
    assert_eq!(
        creds["destination"]["credentials"]["secret_access_key"],
        "s3-secret-xyz"
    );
    assert_eq!(creds["recipients"][0], a.org.recipient.as_str());
    // The answer is the wire's type, secrets and all.
    let typed: dbcrate_core::wire::JobCredentials = serde_json::from_value(creds.clone()).unwrap();
    assert_eq!(
        typed.database.password.unwrap().expose_secret(),
        "db-password-123"
    );
    let s3 = typed.destination.credentials.unwrap();
    assert_eq!(s3.access_key_id.unwrap().expose_secret(), "AKID");
    assert!(typed.restore.is_none() && s3.private_key.is_none());
    let (status, again) = agent.get(&api, &path).await;
    assert_eq!(status, 409, "{again}");

    // Heartbeats renew the lease; a lapsed lease requeues the job (attempt 2 next).
    let progress = format!("/agent/v1/jobs/{job}/progress");
    assert_eq!(
        agent
            .post(
                &api,
                &progress,
                json!({ "bytes": 1024, "phase": "dumping", "rate": 7 })
            )
            .await
            .0,
        200
    );
    assert_eq!(
        other
            .post(&api, &progress, json!({ "bytes": 1, "phase": "x" }))
            .await
            .0,
        404
    );
    // Within the grace after the lease the job is still the agent's (its report may be
    // on its way); after it, the job goes back to the queue.
    let lapsed = now + 60 + jobs::LEASE_SECS + 1;
    assert_eq!(jobs::expire_leases(&api.db, lapsed).await.unwrap(), 0);
    assert_eq!(
        jobs::expire_leases(&api.db, lapsed + jobs::LEASE_GRACE_SECS + 3600)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        agent.get(&api, &path).await.0,
        404,
        "credentials only while running"
    );
    let (_, claimed) = agent.get(&api, "/agent/v1/jobs/next").await;
    assert_eq!(claimed["job"]["id"], job.as_str());
    assert_eq!(claimed["job"]["attempt"], 2);
    assert_eq!(
        agent.get(&api, &path).await.0,
        200,
        "a new attempt gets its credentials once"
    );

    // Completion records the backup.
    let complete = format!("/agent/v1/jobs/{job}/complete");
    let report = json!({
        "succeeded": true, "object_key": claimed["job"]["object_key"], "size": 4096,
        "dump_size": 9000, "duration_ms": 1500,
        "sha256": "ab".repeat(32), "pg_server_version": "17.2", "pg_dump_version": "17.2",
    });
    // The key is the control plane's choice: an agent reporting another one (a file it
    // would like retention to delete, say) is refused and the job stays running.
    for other_key in [
        "control.db",
        "shop/2020/01/01/20200101T000000Z-job_x.pgdump.zst.age",
    ] {
        let mut forged = report.clone();
        forged["object_key"] = json!(other_key);
        let (status, body) = agent.post(&api, &complete, forged).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], "invalid_input", "{body}");
    }
    let (status, done) = agent.post(&api, &complete, report.clone()).await;
    assert_eq!((status, &done["state"]), (200, &json!("succeeded")));
    assert_eq!(
        agent.post(&api, &complete, report).await.0,
        404,
        "a finished job is not running"
    );
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM backups WHERE job_id = $1")
        .bind(&job)
        .fetch_one(api.db.pool())
        .await
        .unwrap();
    assert_eq!(recorded, 1);
    let listed = api
        .get(&format!("/api/v1/orgs/{org}/backups"), &owner)
        .await
        .ok();
    let row = &listed["items"][0];
    assert_eq!(
        (
            &row["size"],
            &row["dump_size"],
            &row["duration_ms"],
            &row["pg_dump_version"]
        ),
        (&json!(4096), &json!(9000), &json!(1500), &json!("17.2")),
        "{row}"
    );

    // A report that arrives after the lease and its grace lapsed (the control plane was
    // down longer than that) still counts while the job waits in the queue: the object
    // exists under its final name, so it is recorded instead of redone. Only by the
    // job's own agent.
    let late = scheduler::run_now(&api.db, &org, &schedule, "user:test", now)
        .await
        .unwrap();
    let (_, claimed) = agent.get(&api, "/agent/v1/jobs/next").await;
    assert_eq!(claimed["job"]["id"], late.as_str());
    let long_after = now + jobs::LEASE_SECS + jobs::LEASE_GRACE_SECS + 3600;
    assert_eq!(jobs::expire_leases(&api.db, long_after).await.unwrap(), 1);
    // (With a field this version does not know, as a newer agent may send: reports
    // ignore such fields rather than orphan a backup during an upgrade.)
    let late_report = json!({
        "succeeded": true, "object_key": claimed["job"]["object_key"], "size": 10,
        "sha256": "cd".repeat(32), "pg_server_version": "17.2", "pg_dump_version": "17.2",
        "reported_by_a_newer_agent": { "anything": 1 },
    });
    let late_complete = format!("/agent/v1/jobs/{late}/complete");
    assert_eq!(
        other
            .post(&api, &late_complete, late_report.clone())
            .await
            .0,
        404
    );
    // A report naming another attempt than the job's is stale: refused.
    let mut stale = late_report.clone();
    stale["attempt"] = json!(claimed["job"]["attempt"].as_i64().unwrap() + 1);
    assert_eq!(agent.post(&api, &late_complete, stale).await.0, 404);
    let mut late_report = late_report;
    late_report["attempt"] = claimed["job"]["attempt"].clone();
    let (status, done) = agent.post(&api, &late_complete, late_report).await;
    assert_eq!(
        (status, &done["state"]),
        (200, &json!("succeeded")),
        "{done}"
    );
    let (error, retry_at): (Option<String>, Option<i64>) =
        sqlx::query_as("SELECT error, retry_at FROM jobs WHERE id = $1")
            .bind(&late)
            .fetch_one(api.db.pool())
            .await
            .unwrap();
    assert_eq!(
        (error, retry_at),
        (None, None),
        "a succeeded job keeps no error"
    );
    let (_, next) = agent.get(&api, "/agent/v1/jobs/next").await;
    assert!(
        next["job"].is_null(),
        "the recorded job was handed out again: {next}"
    );

    // Failures are retried until the attempts are used up.
    assert_eq!(
        scheduler::fire_due(&api.db, now + 60).await.unwrap().len(),
        1
    );
    // Failures are retried after a growing wait (storage back from maintenance, say),
    // not at once: a failed job is not handed out again before its retry time.
    let (mut last, mut id) = (String::new(), String::new());
    for attempt in 1..=scheduler::MAX_ATTEMPTS {
        let (_, claimed) = agent.get(&api, "/agent/v1/jobs/next").await;
        id = claimed["job"]["id"].as_str().unwrap().to_string();
        let (_, state) = agent
            .post(
                &api,
                &format!("/agent/v1/jobs/{id}/complete"),
                json!({ "succeeded": false, "error": "pg_dump failed" }),
            )
            .await;
        last = state["state"].as_str().unwrap().to_string();
        if attempt == scheduler::MAX_ATTEMPTS {
            break;
        }
        let failed_at = dbcrate_core::time::unix_now();
        let retry_at: i64 = sqlx::query_scalar("SELECT retry_at FROM jobs WHERE id = $1")
            .bind(&id)
            .fetch_one(api.db.pool())
            .await
            .unwrap();
        let wait = dbcrate_control::backups::jobs::retry_delay(attempt);
        assert!(wait >= 60, "attempt {attempt} waits {wait} s");
        assert!(
            (retry_at - failed_at - wait).abs() <= 5,
            "retry at {retry_at}"
        );
        let (_, early) = agent.get(&api, "/agent/v1/jobs/next").await;
        assert!(
            early["job"].is_null(),
            "handed out before its retry time: {early}"
        );
        // As if the wait had passed.
        sqlx::query("UPDATE jobs SET retry_at = $1 WHERE id = $2")
            .bind(failed_at - 1)
            .bind(&id)
            .execute(api.db.pool())
            .await
            .unwrap();
    }
    assert_eq!(last, "failed");
    let retry_at: Option<i64> = sqlx::query_scalar("SELECT retry_at FROM jobs WHERE id = $1")
        .bind(&id)
        .fetch_one(api.db.pool())
        .await
        .unwrap();
    assert_eq!(
        retry_at, None,
        "a job that failed for good has no retry time"
    );

    // A revoked agent gets no credentials: refused at the application layer on an
    // open connection (and at the TLS layer on a new one, see agents.rs).
    assert_eq!(
        scheduler::fire_due(&api.db, now + 120).await.unwrap().len(),
        1
    );
    let (_, claimed) = agent.get(&api, "/agent/v1/jobs/next").await;
    let pending = claimed["job"]["id"].as_str().unwrap().to_string();
    dbcrate_control::agents::revoke(
        &api.db,
        &api.keys,
        &org,
        &agent.identity.agent_id,
        "user:test",
        now,
    )
    .await
    .unwrap();
    let (status, body) = agent
        .get(&api, &format!("/agent/v1/jobs/{pending}/credentials"))
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "agent_revoked");

    dbcrate_testkit::assert_audited(
        api.db.pool(),
        &org,
        &[
            "job.create",
            "job.start",
            "job.credentials",
            "job.succeeded",
            "job.failed",
            "job.lease_expired",
        ],
    )
    .await;
    // Credentials are audited as handed out, never recorded.
    let dump = dbcrate_testkit::every_text_in_database(api.db.pool()).await;
    assert!(!dump.contains("db-password-123") && !dump.contains("s3-secret-xyz"));
    let _ = schedule;
}

crate::both_engines!(sqlite_job_protocol, postgres_job_protocol, job_protocol);

/// A waiting long poll answers as soon as a job is queued for its agent, whichever code
/// queued it, instead of at its next look at the database: the claim latency the load
/// figures (docs/benchmarks.md) rest on. Four rounds, each under 250 ms.
async fn a_queued_job_reaches_the_waiting_poll_at_once(db: Db) {
    use dbcrate_control::config::AgentSettings;
    use std::time::{Duration, Instant};
    let agents = AgentSettings {
        poll_interval_secs: 20,
        ..AgentSettings::default()
    };
    let reach = dbcrate_control::local::loopback_reach(&std::env::temp_dir()).unwrap();
    let api = Api::start_with(db, reach, agents).await;
    let (a, _) = api.init_owner().await;
    let org = a.org.id.clone();
    let agent = enrolled_agent(&api, &org).await;
    let now = dbcrate_core::time::unix_now();
    let schedule = shop_with_schedule(&api, &org, &agent, now).await;
    let api = std::sync::Arc::new(api);
    let agent = std::sync::Arc::new(agent);
    for round in 0..4 {
        let waiting = {
            let (api, agent) = (api.clone(), agent.clone());
            tokio::spawn(async move { agent.get(&api, "/agent/v1/jobs/next").await })
        };
        // Long enough for the poll to be waiting (it answers null after 20 s).
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(
            !waiting.is_finished(),
            "round {round}: the poll answered early"
        );
        let now = dbcrate_core::time::unix_now();
        let job = scheduler::run_now(&api.db, &org, &schedule, "system:test", now)
            .await
            .unwrap();
        let queued = Instant::now();
        let (status, claimed) = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the poll answered")
            .unwrap();
        let latency = queued.elapsed();
        assert_eq!(
            (status, claimed["job"]["id"].as_str()),
            (200, Some(job.as_str()))
        );
        assert!(
            latency < Duration::from_millis(250),
            "round {round}: the job reached the waiting poll after {latency:?}"
        );
    }
}

crate::both_engines!(
    sqlite_a_queued_job_reaches_the_waiting_poll_at_once,
    postgres_a_queued_job_reaches_the_waiting_poll_at_once,
    a_queued_job_reaches_the_waiting_poll_at_once
);
