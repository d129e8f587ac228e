//! The agent killed (SIGKILL) at random moments of backups and managed restores, to each
//! kind of destination, at two database sizes. Each round queues a job, kills the agent
//! somewhere between the queueing and a little past the job's usual end, lets the lease
//! lapse (as seven minutes would), starts the agent again and waits for the job to end;
//! then every invariant of [`crate::kill_checks`] must hold.
//!
//! CI runs a short sample; `scripts/kill-points` runs the full count
//! (`DBCRATE_KILL_POINTS_AGENT` rounds per destination kind, split over the sizes).

use crate::common;
use crate::kill_checks::{self, Rng, Stored, Tally, NO_HEARTBEAT_FOR};
use crate::scene::{self, Scene, Storage};
use dbcrate_control::backups::{jobs, restores, retention, scheduler};
use dbcrate_testkit::{S3Server, SftpServer};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Kills per destination kind in the CI sample.
const SAMPLE: usize = 4;

/// Every third round (the second, fifth, …) is a managed restore.
const RESTORE_EVERY: usize = 3;

/// The sizes a run goes through: the sample schema alone, then with this many MiB of
/// incompressible rows added.
const BIGGER_MIB: u32 = 32;

/// One harness run: a scene, its storage as a customer sees it, and the tally.
struct Run<'a> {
    scene: Scene,
    stored: Stored<'a>,
    reach: Arc<dbcrate_storage::reach::ReachPolicy>,
    rng: Rng,
    tally: Tally,
    hashed: HashMap<(String, u64), String>,
    agent: Option<tokio::process::Child>,
    restores: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Backup,
    Restore,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Backup => "backup",
            Kind::Restore => "restore",
        }
    }
}

impl Run<'_> {
    fn now() -> i64 {
        dbcrate_core::time::unix_now()
    }

    fn start_agent(&mut self) {
        if self.agent.is_none() {
            let s = &self.scene;
            let log = s.basis.dir.path().join("agent.log");
            self.agent = Some(scene::run_agent_logging_to(
                &s.basis.server,
                &s.enrolled.data,
                &log,
            ));
        }
    }

    async fn kill_agent(&mut self) {
        if let Some(agent) = self.agent.take() {
            scene::stop(agent).await;
        }
    }

    /// Queues a job of `kind`; its id.
    async fn queue(&mut self, kind: Kind) -> String {
        let (b, e) = (&self.scene.basis, &self.scene.enrolled);
        match kind {
            Kind::Backup => {
                scheduler::run_now(&b.db, &b.org.id, &e.schedule_id, "user:test", Self::now())
                    .await
                    .unwrap()
            }
            Kind::Restore => {
                self.restores += 1;
                let name = format!("restored_{}", self.restores);
                b.server.create_database(&name).unwrap();
                let target = scene::register_database(b, &name, &e.agent_id).await;
                let newest: String = sqlx::query_scalar(
                    "SELECT id FROM backups WHERE deleted_at IS NULL \
                     ORDER BY finished_at DESC, id LIMIT 1",
                )
                .fetch_one(b.db.pool())
                .await
                .unwrap();
                restores::create(
                    &b.db,
                    &b.org.id,
                    &newest,
                    &target.id,
                    "user:test",
                    Self::now(),
                )
                .await
                .unwrap()
            }
        }
    }

    /// Waits for `job` to end; its state.
    ///
    /// A running job nobody heartbeats for (the agent sends one every second) was claimed
    /// for an agent that never got the answer: the long poll of an agent killed while it
    /// waited is still answered, with a claim, into a dead connection. Its lease lapsing
    /// is what takes it back (seven minutes in real time; simulated here, and counted).
    async fn ended(&mut self, job: &str) -> String {
        let db = self.scene.basis.db.clone();
        let started = Instant::now();
        loop {
            let (state, lease_until): (String, Option<i64>) =
                sqlx::query_as("SELECT state, lease_until FROM jobs WHERE id = $1")
                    .bind(job)
                    .fetch_one(db.pool())
                    .await
                    .unwrap();
            match (state.as_str(), lease_until) {
                ("succeeded" | "failed", _) => return state,
                ("running", Some(until))
                    if until < Self::now() + jobs::LEASE_SECS - NO_HEARTBEAT_FOR =>
                {
                    let b = &self.scene.basis;
                    let tally = &mut self.tally;
                    assert_eq!(
                        kill_checks::lapse_leases_now(&b.db, &b.keys, &self.reach, tally).await,
                        1
                    );
                    self.tally.unanswered_claims += 1;
                }
                _ => {}
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "job {job} did not end within 180 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One unkilled job of `kind`: how long it takes from queueing to its end.
    async fn measure(&mut self, kind: Kind) -> Duration {
        self.start_agent();
        let started = Instant::now();
        let job = self.queue(kind).await;
        // Watched closely: the kills are spread over this time.
        let took = loop {
            let (state, _, error) = scene::job_state(&self.scene.basis.db, &job).await;
            match state.as_str() {
                "succeeded" => break started.elapsed(),
                "failed" => panic!("the unkilled {} failed: {error:?}", kind.name()),
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
            assert!(started.elapsed() < Duration::from_secs(180));
        };
        self.after_round(kind).await;
        took
    }

    /// One round: queue, kill at a random moment of the job's `usual` time (or a little
    /// after), recover, check.
    async fn round(&mut self, kind: Kind, usual: Duration) {
        self.start_agent();
        let job = self.queue(kind).await;
        // A little past the usual end too: the report, the globals, the last part.
        let waited = self.rng.below(usual.mul_f64(1.1));
        tokio::time::sleep(waited).await;
        let (state, _, _) = scene::job_state(&self.scene.basis.db, &job).await;
        let phase: String = sqlx::query_scalar("SELECT phase FROM jobs WHERE id = $1")
            .bind(&job)
            .fetch_one(self.scene.basis.db.pool())
            .await
            .unwrap();
        self.kill_agent().await;
        // Where in the usual run the kill fell, by fifths, and what the job was doing.
        let fifth = ((waited.as_secs_f64() / usual.as_secs_f64()) * 5.0).floor() as u32;
        let when = format!("{}–{}% of its usual time", fifth * 20, fifth * 20 + 20);
        let at = match state.as_str() {
            "running" => format!("{}: running ({phase}), {when}", kind.name()),
            other => format!("{}: {other}, {when}", kind.name()),
        };
        self.tally.landed(at);

        // The agent is dead: what seven minutes would do, now — its lease lapses, and
        // what its attempt stored and never reported is deleted.
        let b = &self.scene.basis;
        kill_checks::lapse_leases_now(&b.db, &b.keys, &self.reach, &mut self.tally).await;
        self.start_agent();
        let end = self.ended(&job).await;
        let (_, attempts, _) = scene::job_state(&self.scene.basis.db, &job).await;
        let what = format!("{}: {end} after {attempts} attempt(s)", kind.name());
        self.tally.ended(what, 1);
        self.after_round(kind).await;
    }

    /// Retention, the restored database's check, and every invariant.
    async fn after_round(&mut self, kind: Kind) {
        let b = &self.scene.basis;
        if kind == Kind::Restore {
            let name = format!("restored_{}", self.restores);
            let restored: Option<String> = sqlx::query_scalar(
                "SELECT j.state FROM jobs j JOIN databases d ON d.id = j.database_id \
                 WHERE d.dbname = $1",
            )
            .bind(&name)
            .fetch_optional(b.db.pool())
            .await
            .unwrap();
            if restored.as_deref() == Some("succeeded") {
                common::assert_same_database(&b.server, "shop", &b.server, &name);
            }
            b.server
                .psql(
                    "postgres",
                    &format!("DROP DATABASE \"{name}\" WITH (FORCE)"),
                )
                .unwrap();
        }
        let run = retention::apply(
            &b.db,
            &b.keys,
            &self.reach,
            &self.scene.enrolled.schedule_id,
            Self::now(),
        )
        .await
        .unwrap();
        assert_eq!(run.failed, 0, "{run:?}");
        self.tally.retention_deleted += run.deleted;
        let wrong = kill_checks::violations(&b.db, &b.org.id, &self.stored, &mut self.hashed).await;
        assert!(
            wrong.is_empty(),
            "after kill {} ({}):\n{}",
            self.tally.kills,
            self.tally.last,
            wrong.join("\n")
        );
    }

    /// The rounds of one size: a measured backup and restore, then `kills` kills.
    async fn rounds(&mut self, kills: usize) {
        let backup = self.measure(Kind::Backup).await;
        let restore = self.measure(Kind::Restore).await;
        eprintln!("unkilled: backup {backup:?}, restore {restore:?}");
        for i in 0..kills {
            let (kind, usual) = if i % RESTORE_EVERY == 1 {
                (Kind::Restore, restore)
            } else {
                (Kind::Backup, backup)
            };
            self.round(kind, usual).await;
        }
    }
}

async fn killed_at_random_moments(what: &str, storage: Storage<'_>) {
    let kills = kill_checks::kills_wanted("AGENT", SAMPLE);
    let bucket = match &storage {
        Storage::S3(s3) => Some(*s3),
        _ => None,
    };
    let scene = scene::scene_with(17, scene::quick_settings(), storage).await;
    let stored = match bucket {
        Some(s3) => Stored::Bucket(s3, "acme"),
        None => Stored::Files(scene.enrolled.target.clone()),
    };
    let mut run = Run {
        scene,
        stored,
        reach: Arc::new(dbcrate_control::local::loopback_reach(&std::env::temp_dir()).unwrap()),
        rng: Rng::from_env(what),
        tally: Tally::default(),
        hashed: HashMap::new(),
        agent: None,
        restores: 0,
    };
    run.rounds(kills / 2).await;
    common::noise_table(&run.scene.basis.server, "shop", BIGGER_MIB);
    run.rounds(kills - kills / 2).await;
    run.kill_agent().await;
    eprintln!("{}", run.tally.report(what));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_at_random_moments_directory() {
    killed_at_random_moments("agent kills, directory", Storage::Directory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_at_random_moments_sftp() {
    let sftp = SftpServer::start().unwrap();
    killed_at_random_moments("agent kills, SFTP", Storage::Sftp(&sftp)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_killed_at_random_moments_s3() {
    let s3 = S3Server::start().unwrap();
    killed_at_random_moments("agent kills, S3", Storage::S3(&s3)).await;
}
