//! `dbcrate-load`: a control plane under many agents (docs/benchmarks.md, "Control
//! plane under load"), run by `scripts/load-control`.
//!
//! Starts `dbcrate-control serve` (SQLite, or PostgreSQL with `--engine postgres`, one or
//! two replicas), sets an organisation up through the JSON API, enrols `--agents`
//! simulated agents over HTTPS with real CSRs, and has each hold the agent protocol over
//! mutual TLS (see `sim_agent`). For `--minutes` it queues `--jobs-per-minute` backups
//! ("run now", spread evenly over the minute and over the agents) and measures the claim
//! latency (from the request that queued a job to its agent holding it), the control
//! plane's RSS and open descriptors every 10 s, and with two replicas can SIGKILL one
//! (`--kill-replica-after`). Then it drains, checks exactly-once in the database, prints
//! the report, and exits non-zero if a job was handed out or recorded twice or lost.
//! Bounded: it stops by itself after setup + minutes + drain.

mod admin;
mod https;
mod plane;
mod record;
mod sim_agent;
mod verify;

use admin::Admin;
use dbcrate_testkit::{PgServer, TempDir};
use plane::{Plane, PlaneConfig, Usage};
use record::{quantile, Shared};
use sim_agent::SimAgent;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Settings {
    agents: usize,
    postgres: bool,
    minutes: f64,
    jobs_per_minute: u32,
    replicas: usize,
    kill_replica_after: Option<Duration>,
    poll_secs: u64,
    crl_secs: u64,
    drain: Duration,
    concurrency: usize,
    control_bin: PathBuf,
    /// Where to copy the control planes' logs at the end.
    keep_logs: Option<PathBuf>,
}

const USAGE: &str = "usage: dbcrate-load [--agents N] [--engine sqlite|postgres] [--minutes M] \
[--jobs-per-minute R] [--replicas 1|2] [--kill-replica-after SECS] [--poll-secs S] \
[--crl-secs S] [--drain-secs S] [--concurrency C] [--control-bin PATH] [--keep-logs DIR]";

fn parse() -> Result<Settings, String> {
    let mut s = Settings {
        agents: 1000,
        postgres: false,
        minutes: 5.0,
        jobs_per_minute: 500,
        replicas: 1,
        kill_replica_after: None,
        poll_secs: 30,
        crl_secs: 300,
        drain: Duration::from_secs(90),
        concurrency: 16,
        control_bin: std::env::var_os("DBCRATE_CONTROL_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/release/dbcrate-control")),
        keep_logs: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value; {USAGE}"));
        let number = |text: String| -> Result<f64, String> {
            text.parse::<f64>()
                .map_err(|_| format!("{flag}: not a number: {text}"))
        };
        match flag.as_str() {
            "--agents" => s.agents = number(value()?)? as usize,
            "--engine" => {
                s.postgres = match value()?.as_str() {
                    "sqlite" => false,
                    "postgres" => true,
                    other => return Err(format!("--engine {other}: sqlite or postgres")),
                }
            }
            "--minutes" => s.minutes = number(value()?)?,
            "--jobs-per-minute" => s.jobs_per_minute = number(value()?)? as u32,
            "--replicas" => s.replicas = number(value()?)? as usize,
            "--kill-replica-after" => {
                s.kill_replica_after = Some(Duration::from_secs_f64(number(value()?)?))
            }
            "--poll-secs" => s.poll_secs = number(value()?)? as u64,
            "--crl-secs" => s.crl_secs = number(value()?)? as u64,
            "--drain-secs" => s.drain = Duration::from_secs_f64(number(value()?)?),
            "--concurrency" => s.concurrency = number(value()?)?.max(1.0) as usize,
            "--control-bin" => s.control_bin = PathBuf::from(value()?),
            "--keep-logs" => s.keep_logs = Some(PathBuf::from(value()?)),
            _ => return Err(format!("unknown argument {flag}; {USAGE}")),
        }
    }
    if !(1..=2).contains(&s.replicas) || (s.replicas == 2 && !s.postgres) {
        return Err("--replicas 2 needs --engine postgres (SQLite is one node)".into());
    }
    if s.kill_replica_after.is_some() && s.replicas < 2 {
        return Err("--kill-replica-after needs --replicas 2".into());
    }
    if !s.control_bin.is_file() {
        return Err(format!(
            "no control-plane binary at {}; build it with `cargo build --release -p \
             dbcrate-control` or pass --control-bin",
            s.control_bin.display()
        ));
    }
    Ok(s)
}

/// Lets this process hold a descriptor per simulated agent's connection.
#[allow(unsafe_code)]
fn raise_descriptor_limit() {
    // SAFETY: getrlimit/setrlimit on a local struct.
    unsafe {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main() -> ExitCode {
    let settings = match parse() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dbcrate-load: {e}");
            return ExitCode::from(2);
        }
    };
    raise_descriptor_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(run(settings)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("dbcrate-load failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn say(line: &str) {
    eprintln!(
        "[dbcrate-load {}] {line}",
        dbcrate_core::time::rfc3339(dbcrate_core::time::unix_now())
    );
}

/// Runs `task` over `items` with at most `concurrency` at once; stops at the first error.
async fn in_parallel<T, R, F, Fut>(
    items: Vec<T>,
    concurrency: usize,
    task: F,
) -> Result<Vec<R>, String>
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<R, String>> + Send + 'static,
{
    let task = Arc::new(task);
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut handles = Vec::with_capacity(items.len());
    for item in items {
        let permit = semaphore
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let task = task.clone();
        handles.push(tokio::spawn(async move {
            let result = task(item).await;
            drop(permit);
            result
        }));
    }
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await.map_err(|e| e.to_string())??);
    }
    Ok(results)
}

async fn run(s: Settings) -> Result<bool, String> {
    let dir = TempDir::new("dbcrate-load").map_err(|e| e.to_string())?;
    let pg = match s.postgres {
        true => {
            let server = PgServer::start(17).map_err(|e| e.to_string())?;
            server
                .create_database("control")
                .map_err(|e| e.to_string())?;
            Some(server)
        }
        false => None,
    };
    let database_url = pg.as_ref().map(|server| server.url("control"));
    let backups = dir.path().join("backups");
    std::fs::create_dir_all(&backups).map_err(|e| e.to_string())?;
    let config = PlaneConfig {
        binary: s.control_bin.clone(),
        data_dir: dir.path().join("control"),
        database_url: database_url.clone(),
        directory_root: backups.clone(),
        poll_interval_secs: s.poll_secs,
        crl_interval_secs: s.crl_secs,
    };
    let owner = "load@dbcrate.test";
    let (org, one_time) = config.migrate_and_init(owner)?;
    let mut planes: Vec<Plane> = Vec::new();
    for replica in 0..s.replicas {
        planes.push(config.serve(&dir.path().join(format!("control-{replica}.log")))?);
    }
    let fingerprint = https::parse_fingerprint(&planes[0].fingerprint)?;
    say(&format!(
        "{} control plane(s) on {}; setting up {} agents",
        planes.len(),
        if s.postgres {
            "PostgreSQL 17"
        } else {
            "SQLite"
        },
        s.agents
    ));

    let setup_started = Instant::now();
    let admin = Admin::sign_in(
        https::Https::new(fingerprint, None)?,
        &planes[0].api_url,
        &org,
        owner,
        &one_time,
    )
    .await?;
    let destination = admin.directory_destination(&backups).await?;
    // Agents start later; their shared state's stop time is set then.
    let agent_urls: Vec<String> = planes.iter().map(|p| p.agent_url.clone()).collect();
    let enrolling = Arc::new(Shared::new(
        fingerprint,
        agent_urls.clone(),
        Duration::from_secs(s.poll_secs),
        Duration::from_secs(s.crl_secs),
        Instant::now(),
    ));
    let replicas = s.replicas;
    let agents = {
        let (admin, shared) = (admin.clone(), enrolling.clone());
        in_parallel((0..s.agents).collect(), s.concurrency, move |i: usize| {
            let (admin, shared) = (admin.clone(), shared.clone());
            async move {
                let name = format!("load-{i}");
                let token = admin.enrolment_token(&name).await?;
                SimAgent::enrol(&shared, &token, &name, i % replicas).await
            }
        })
        .await?
    };
    let enrolled_in = setup_started.elapsed();
    say(&format!(
        "enrolled {} agents in {enrolled_in:.1?}",
        agents.len()
    ));
    let schedules = {
        let ids: Vec<(usize, String)> = agents
            .iter()
            .map(|a| a.agent_id.clone())
            .enumerate()
            .collect();
        let (admin, destination) = (admin.clone(), destination.clone());
        in_parallel(ids, s.concurrency, move |(i, agent_id)| {
            let (admin, destination) = (admin.clone(), destination.clone());
            async move {
                admin
                    .database_with_schedule(
                        &format!("db{i}"),
                        &agent_id,
                        &destination,
                        (i % 60) as u32,
                    )
                    .await
            }
        })
        .await?
    };
    let set_up_in = setup_started.elapsed();
    say(&format!(
        "databases and schedules in {:.1?}",
        set_up_in - enrolled_in
    ));

    // Run: every agent holds the protocol until the end of the run and the drain.
    let warm_up = Duration::from_secs(s.poll_secs + 10);
    let load = Duration::from_secs_f64(s.minutes * 60.0);
    let stop_at = Instant::now() + warm_up + load + s.drain;
    let shared = Arc::new(Shared::new(
        fingerprint,
        agent_urls,
        Duration::from_secs(s.poll_secs),
        Duration::from_secs(s.crl_secs),
        stop_at,
    ));
    let renew_window = (warm_up + load).as_millis() as u64;
    let mut tasks = Vec::with_capacity(agents.len());
    for (i, agent) in agents.into_iter().enumerate() {
        // Every tenth agent renews its certificate once, at its own moment of the run.
        let renew_at = (i % 10 == 0).then(|| {
            Instant::now() + Duration::from_millis((i as u64 * 7919) % renew_window.max(1))
        });
        tasks.push(tokio::spawn(agent.run(shared.clone(), renew_at)));
        if i % 100 == 99 {
            // A ramp, as hosts coming up would: no 10,000-connection burst at once.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(warm_up).await;
    let mut samples: Vec<(Duration, Vec<Usage>)> = Vec::new();
    let started = Instant::now();
    let sample = |planes: &[Plane]| planes.iter().map(Plane::usage).collect::<Vec<_>>();
    samples.push((Duration::ZERO, sample(&planes)));
    say(&format!(
        "connected; control plane RSS {} MiB, {} descriptors; queueing {} jobs/minute for {} minutes",
        samples[0].1[0].rss_kib / 1024,
        samples[0].1[0].fds,
        s.jobs_per_minute,
        s.minutes
    ));

    // Queue jobs evenly over the minute, round robin over the agents' schedules.
    let every = Duration::from_secs_f64(60.0 / f64::from(s.jobs_per_minute.max(1)));
    let mut next_job = Instant::now();
    let mut next_sample = Instant::now() + Duration::from_secs(10);
    let mut queued = 0usize;
    let mut queue_errors = 0usize;
    let mut killed = false;
    let mut in_flight = tokio::task::JoinSet::new();
    while started.elapsed() < load {
        if Instant::now() >= next_job {
            let schedule = schedules[queued % schedules.len()].clone();
            let (admin, shared) = (admin.clone(), shared.clone());
            in_flight.spawn(async move {
                let asked = Instant::now();
                let job = admin.run_now(&schedule).await?;
                shared.note_queued(job, asked);
                Ok::<(), String>(())
            });
            queued += 1;
            next_job += every;
        }
        while let Some(done) = in_flight.try_join_next() {
            if let Ok(Err(e)) = done {
                queue_errors += 1;
                shared.note_error(&format!("queueing: {e}"));
            }
        }
        if Instant::now() >= next_sample {
            samples.push((started.elapsed(), sample(&planes)));
            next_sample += Duration::from_secs(10);
        }
        if let Some(after) = s.kill_replica_after {
            if !killed && started.elapsed() >= after {
                planes[1].kill();
                killed = true;
                say("killed replica 1 (SIGKILL)");
            }
        }
        let wake = next_job.min(next_sample);
        tokio::time::sleep(wake.saturating_duration_since(Instant::now())).await;
    }
    while in_flight.join_next().await.is_some() {}
    say(&format!("queued {queued} jobs; draining"));
    let drain_until = Instant::now() + s.drain;
    loop {
        let asked = shared.queued().len();
        let got = shared
            .received()
            .iter()
            .map(|r| r.job.clone())
            .collect::<std::collections::HashSet<_>>()
            .len();
        // Every job handed out and its completion reported (not only received: a job
        // cut off between the two would show as unfinished).
        let completed = shared.counts.completions.load(Ordering::Relaxed) as usize;
        if (got >= asked && completed >= got) || Instant::now() >= drain_until {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Let the last completions land.
    tokio::time::sleep(Duration::from_secs(3)).await;
    samples.push((started.elapsed(), sample(&planes)));
    for task in &tasks {
        task.abort();
    }
    let url = match &database_url {
        Some(url) => url.clone(),
        None => dbcrate_testkit::sqlite_url(&dir.path().join("control").join("control.db")),
    };
    let verdict = verify::verify(&url).await?;
    if let Some(keep) = &s.keep_logs {
        std::fs::create_dir_all(keep).map_err(|e| e.to_string())?;
        for replica in 0..s.replicas {
            let name = format!("control-{replica}.log");
            std::fs::copy(dir.path().join(&name), keep.join(&name)).map_err(|e| e.to_string())?;
        }
    }
    let report = Report {
        settings: &s,
        enrolled_in,
        set_up_in,
        queued,
        queue_errors,
        started,
        shared: &shared,
        samples: &samples,
        verdict: &verdict,
        killed,
    };
    Ok(report.print())
}

struct Report<'a> {
    settings: &'a Settings,
    enrolled_in: Duration,
    set_up_in: Duration,
    queued: usize,
    queue_errors: usize,
    /// When the load began (sample times and slow claims count from it).
    started: Instant,
    shared: &'a Shared,
    samples: &'a [(Duration, Vec<Usage>)],
    verdict: &'a verify::Verdict,
    killed: bool,
}

impl Report<'_> {
    /// Prints the report; answers whether exactly-once held.
    fn print(&self) -> bool {
        let s = self.settings;
        let queued_at = self.shared.queued();
        let received = self.shared.received();
        let mut per_job: std::collections::HashMap<&str, usize> = Default::default();
        let mut latencies = Vec::new();
        // Slow claims by the second of the run they were asked for, to line them up
        // with the control plane's periodic work.
        let mut slow_at: std::collections::BTreeMap<u64, usize> = Default::default();
        for r in &received {
            *per_job.entry(&r.job).or_default() += 1;
            if r.attempt == 1 {
                if let Some(asked) = queued_at.get(&r.job) {
                    let latency = r.received.saturating_duration_since(*asked);
                    latencies.push(latency);
                    if latency > Duration::from_millis(250) {
                        let second = asked.saturating_duration_since(self.started).as_secs();
                        *slow_at.entry(second).or_default() += 1;
                    }
                }
            }
        }
        let twice = per_job.values().filter(|n| **n > 1).count();
        let never = queued_at
            .keys()
            .filter(|j| !per_job.contains_key(j.as_str()))
            .count();
        let ms = |d: Option<Duration>| {
            d.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1000.0))
        };
        let p99 = quantile(&mut latencies, 0.99);
        let counts = &self.shared.counts;
        println!("## dbcrate-load");
        println!();
        println!(
            "- {} agents, {} control plane(s) on {}, {} jobs/minute for {} min, poll hold {} s, CRL every {} s{}",
            s.agents,
            s.replicas,
            if s.postgres { "PostgreSQL 17" } else { "SQLite" },
            s.jobs_per_minute,
            s.minutes,
            s.poll_secs,
            s.crl_secs,
            if self.killed { ", replica 1 SIGKILLed mid-run" } else { "" }
        );
        println!(
            "- setup: enrolment {:.1?} ({:.1} ms per agent), databases and schedules {:.1?}",
            self.enrolled_in,
            self.enrolled_in.as_secs_f64() * 1000.0 / s.agents.max(1) as f64,
            self.set_up_in - self.enrolled_in
        );
        println!(
            "- jobs: {} queued ({} failed to queue), {} received by agents, {} received twice, {} never",
            self.queued, self.queue_errors, received.len(), twice, never
        );
        println!(
            "- claim latency (run-now request → agent holds the job), ms: p50 {} p90 {} p99 {} max {} (target p99 ≤ 250: {})",
            ms(quantile(&mut latencies, 0.5)),
            ms(quantile(&mut latencies, 0.9)),
            ms(p99),
            ms(quantile(&mut latencies, 1.0)),
            if p99.is_some_and(|p| p <= Duration::from_millis(250)) { "met" } else { "MISSED" }
        );
        if !slow_at.is_empty() {
            let seconds: Vec<String> = slow_at.iter().map(|(s, n)| format!("{s}s×{n}")).collect();
            println!(
                "  - claims over 250 ms, by the second of the run they were queued: {}",
                seconds.join(" ")
            );
        }
        println!(
            "- calls: {} polls, {} CRL pulls, {} renewals, {} completions, {} errors",
            counts.polls.load(Ordering::Relaxed),
            counts.crl_pulls.load(Ordering::Relaxed),
            counts.renewals.load(Ordering::Relaxed),
            counts.completions.load(Ordering::Relaxed),
            counts.errors.load(Ordering::Relaxed)
        );
        for (n, first) in self.shared.errors().into_values() {
            println!("  - {n}× {first}");
        }
        let v = self.verdict;
        println!(
            "- database: {} jobs, {} succeeded, {} retried after a lease ran out, {} unfinished; \
             start audits ≠ attempts: {}; doubled backups: {}; succeeded without backup: {} → exactly once: {}",
            v.jobs, v.succeeded, v.retried, v.unfinished, v.starts_not_matching_attempts,
            v.double_backups, v.missing_backups,
            if v.exactly_once() { "yes" } else { "NO" }
        );
        println!(
            "- control plane, every sample (s: RSS MiB / peak MiB / descriptors per replica):"
        );
        let mut line = String::new();
        for (at, usages) in self.samples {
            let cells: Vec<String> = usages
                .iter()
                .map(|u| format!("{}/{}/{}", u.rss_kib / 1024, u.peak_rss_kib / 1024, u.fds))
                .collect();
            line.push_str(&format!("{}: {}; ", at.as_secs(), cells.join(" ")));
        }
        println!("  {line}");
        let peak = self
            .samples
            .iter()
            .flat_map(|(_, u)| u.iter().map(|u| u.peak_rss_kib))
            .max()
            .unwrap_or(0);
        println!(
            "- peak RSS {} MiB (target ≤ 1024: {})",
            peak / 1024,
            if peak <= 1024 * 1024 { "met" } else { "MISSED" }
        );
        v.exactly_once() && twice == 0 && never == 0
    }
}
