//! The control plane (`dbcrate-control serve`, SQLite) killed with SIGKILL at random
//! moments while it works: each round makes the schedule due and starts the control
//! plane, whose first minute-loop pass applies retention (the schedule keeps the last
//! two backups, so each round has one to delete) and fires the schedule; the agent
//! claims the job, fetches its credentials, backs up and reports. The kill falls
//! anywhere from the start to a little past the round's usual end. The control plane is
//! started again, everything settles, and every invariant of [`crate::kill_checks`] must
//! hold.
//!
//! CI runs a short sample; `scripts/kill-points` runs the full count
//! (`DBCRATE_KILL_POINTS_CONTROL`).

use crate::kill_checks::{self, Rng, Stored, Tally, NO_HEARTBEAT_FOR};
use crate::scene::{self, Storage};
use crate::served::{two_free_ports, Served};
use dbcrate_control::backups::jobs;
use dbcrate_control::db::Db;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Kills in the CI sample.
const SAMPLE: usize = 6;

/// How long violations may last before they count: the control plane started again
/// finishes what the killed one left (a retention pass marks what it had deleted), and
/// a report the agent retries lands.
const SETTLE: Duration = Duration::from_secs(20);

fn now() -> i64 {
    dbcrate_core::time::unix_now()
}

/// Makes the schedule due now: the next minute-loop pass fires it.
async fn make_due(db: &Db, schedule: &str) {
    sqlx::query("UPDATE schedules SET last_fired_at = $1 WHERE id = $2")
        .bind(now() - 120)
        .bind(schedule)
        .execute(db.pool())
        .await
        .unwrap();
}

/// What the jobs are doing: (queued, running without credentials, running, ended).
async fn job_counts(db: &Db) -> (i64, i64, i64, i64) {
    sqlx::query_as(
        "SELECT \
           COALESCE(SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END), 0), \
           COALESCE(SUM(CASE WHEN state = 'running' AND credentials_fetched_at IS NULL \
                        THEN 1 ELSE 0 END), 0), \
           COALESCE(SUM(CASE WHEN state = 'running' AND credentials_fetched_at IS NOT NULL \
                        THEN 1 ELSE 0 END), 0), \
           COALESCE(SUM(CASE WHEN state IN ('succeeded', 'failed') THEN 1 ELSE 0 END), 0) \
         FROM jobs",
    )
    .fetch_one(db.pool())
    .await
    .unwrap()
}

/// Where a kill fell, from what the jobs were doing and how many had ended before.
fn landed(before_ended: i64, counts: (i64, i64, i64, i64), since_start: Duration) -> String {
    let (queued, claimed, running, ended) = counts;
    if queued + claimed + running == 0 && ended == before_ended {
        format!(
            "before the job was queued ({} ms after the start: start-up, retention, the \
             schedule's firing)",
            since_start.as_millis() / 250 * 250
        )
    } else if claimed > 0 {
        "handing out (claimed, credentials not fetched)".into()
    } else if running > 0 {
        "a job running (progress, completion)".into()
    } else if queued > 0 {
        "scheduled, not yet claimed".into()
    } else {
        "after the job ended".into()
    }
}

/// Waits until no job is queued or running. A running job nobody heartbeats for (agents
/// here send one a second) was claimed or handed its credentials in an answer that died
/// with the control plane: its lease lapsing takes it back (seven minutes in real time;
/// simulated here, and counted), and what its attempt may have stored is deleted.
async fn settle(
    db: &Db,
    keys: &dbcrate_control::envelope::MasterKeys,
    reach: &Arc<dbcrate_storage::reach::ReachPolicy>,
    tally: &mut Tally,
) {
    let started = Instant::now();
    loop {
        let stale: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE state = 'running' AND lease_until < $1",
        )
        .bind(now() + jobs::LEASE_SECS - NO_HEARTBEAT_FOR)
        .fetch_one(db.pool())
        .await
        .unwrap();
        if stale > 0 {
            tally.unanswered_claims += kill_checks::lapse_leases_now(db, keys, reach, tally).await;
        }
        let (queued, claimed, running, _) = job_counts(db).await;
        if queued + claimed + running == 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "jobs still queued or running after 180 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Watches `target` (every 2 ms, for up to 10 s) until it holds fewer than `before`
/// objects: retention's delete reached storage. Whether it did.
async fn deleted_from(target: &std::path::Path, before: usize) -> bool {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if scene::final_objects(target).len() < before {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    false
}

/// Waits (closely) until a job is claimed, or one more has ended.
async fn claimed_or_ended(db: &Db, ended_before: i64) {
    let started = Instant::now();
    loop {
        let (_, claimed, running, ended) = job_counts(db).await;
        if claimed + running > 0 || ended > ended_before {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "no job claimed within 180 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_plane_killed_at_random_moments() {
    let kills = kill_checks::kills_wanted("CONTROL", SAMPLE);
    let basis = scene::basis(17).await;
    let (api_port, agent_port) = two_free_ports();
    let log = |round: usize| format!("control-{round}.log");
    let first = Served::start(&basis, api_port, agent_port, &log(0));
    let agent_url = format!("https://127.0.0.1:{agent_port}");
    let enrolled =
        scene::enrol_and_schedule(&basis, &agent_url, &first.fingerprint, Storage::Directory).await;
    drop(first);
    let db = &basis.db;
    sqlx::query("UPDATE schedules SET keep_last = 2, keep_daily = 0 WHERE id = $1")
        .bind(&enrolled.schedule_id)
        .execute(db.pool())
        .await
        .unwrap();
    let reach = Arc::new(dbcrate_control::local::loopback_reach(&std::env::temp_dir()).unwrap());
    let stored = Stored::Files(enrolled.target.clone());
    let agent_log = basis.dir.path().join("agent.log");
    let mut agent = scene::run_agent_logging_to(&basis.server, &enrolled.data, &agent_log);
    let mut rng = Rng::from_env("control-plane kills");
    let mut tally = Tally::default();
    let mut hashed = HashMap::new();

    // Three unkilled rounds: how long from the start to the backup's end, and from its
    // claim to its end (the shortest of each, so that the kills fall within the work).
    let (mut usual, mut job_time) = (Duration::MAX, Duration::MAX);
    for unkilled in 0..3 {
        let ended_before = job_counts(db).await.3;
        make_due(db, &enrolled.schedule_id).await;
        let started = Instant::now();
        let control = Served::spawn(
            &basis,
            api_port,
            agent_port,
            &format!("unkilled-{unkilled}.log"),
        );
        claimed_or_ended(db, ended_before).await;
        let claimed = Instant::now();
        scene::wait_for(
            "an unkilled scheduled backup",
            Duration::from_secs(120),
            || async {
                let (queued, claimed, running, ended) = job_counts(db).await;
                (queued + claimed + running == 0 && ended > ended_before).then_some(())
            },
        )
        .await;
        usual = usual.min(started.elapsed());
        job_time = job_time.min(claimed.elapsed());
        drop(control);
    }
    eprintln!("unkilled rounds: {usual:?} from the start, {job_time:?} from the claim");

    for round in 0..kills {
        let ended_before = job_counts(db).await.3;
        let objects_before = scene::final_objects(&enrolled.target).len();
        make_due(db, &enrolled.schedule_id).await;
        let started = Instant::now();
        let mut control = Served::spawn(&basis, api_port, agent_port, &log(2 + 2 * round));
        // A quarter of the kills anywhere from the start (start-up, retention, firing the
        // schedule); a quarter the moment retention's delete has reached storage (before
        // or while the backup is marked deleted); the others from the claim on (hand-out,
        // credentials, progress, the report), where the moments that matter are close.
        let mut at_retention = false;
        match round % 4 {
            0 => {
                let wait = rng
                    .below(usual.mul_f64(1.1))
                    .saturating_sub(started.elapsed());
                tokio::time::sleep(wait).await;
            }
            1 => at_retention = deleted_from(&enrolled.target, objects_before).await,
            _ => {
                claimed_or_ended(db, ended_before).await;
                tokio::time::sleep(rng.below(job_time.mul_f64(1.2))).await;
            }
        }
        let counts = job_counts(db).await;
        control.kill();
        tally.landed(if at_retention {
            "retention: an object deleted from storage, its record maybe not yet".into()
        } else {
            landed(ended_before, counts, started.elapsed())
        });

        // Started again, it finishes what the killed one left; then all must hold.
        let control = Served::start(&basis, api_port, agent_port, &log(3 + 2 * round));
        let settled = Instant::now();
        let wrong = loop {
            settle(db, &basis.keys, &reach, &mut tally).await;
            let wrong = kill_checks::violations(db, &basis.org.id, &stored, &mut hashed).await;
            if wrong.is_empty() || settled.elapsed() > SETTLE {
                break wrong;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert!(
            wrong.is_empty(),
            "after kill {} ({}), for {SETTLE:?}:\n{}",
            round + 1,
            tally.last,
            wrong.join("\n")
        );
        drop(control);
        assert!(
            agent.try_wait().unwrap().is_none(),
            "the agent stopped while the control plane was killed"
        );
    }
    let retained: i64 =
        sqlx::query_scalar("SELECT count(*) FROM backups WHERE deleted_at IS NOT NULL")
            .fetch_one(db.pool())
            .await
            .unwrap();
    tally.retention_deleted = retained as usize;
    // Deletions a restarted control plane found done in storage already: the kill fell
    // between retention's delete and its record.
    let finished_after_kill: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'backup.delete' \
         AND details LIKE '%absent already%'",
    )
    .fetch_one(db.pool())
    .await
    .unwrap();
    eprintln!(
        "retention deletions a restarted control plane found done in storage already \
         (the kill fell between the delete and its record): {finished_after_kill}"
    );
    let outcomes: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM jobs GROUP BY state ORDER BY state")
            .fetch_all(db.pool())
            .await
            .unwrap();
    for (state, n) in outcomes {
        tally.ended(format!("backup: {state}"), n as usize);
    }
    let _ = agent.start_kill();
    let _ = agent.wait().await;
    eprintln!("{}", tally.report("control-plane kills"));
}
