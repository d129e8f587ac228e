//! `dbcrate-bench`: the agent's benchmark (docs/benchmarks.md), run by
//! `scripts/bench-agent`.
//!
//! For each database size it generates a database of the `--dataset` (`mixed`, the
//! default; `text`; `pgbench`: see `datasets`), then measures, side by side on the
//! same server and in the same run, the wall time of:
//! - `pg_dump -Fc -Z0 | cat > /dev/null` (the floor for any streaming consumer: a pipe,
//!   so pg_dump cannot seek),
//! - the shell pipeline `pg_dump -Fc -Z0 | zstd -L | age -r R > file` (`--level L`,
//!   default 3; the agent backs up at the same level),
//! - `zstd -L --single-thread` of the same dump from a file (how long one core takes to
//!   compress it, i.e. how many workers keep pace with pg_dump),
//! - `dbcrate-agent backup` to `file://` (its default workers, and each of
//!   `--zstd-threads 0,1,…` if given) and to the local S3 store (Garage; `--no-s3`
//!   leaves it out),
//! - `age -d | zstd -d | pg_restore` vs `dbcrate-agent restore` (each into a fresh
//!   database),
//!
//! plus the agent's peak RSS (VmHWM of the agent process alone, pg_dump excluded) and
//! each case's CPU time over the whole machine (see `cpu`).
//! Each case runs `--runs` times (default 3) and reports the median; the backup cases
//! alternate, one of each per round. The agent binary is taken from `DBCRATE_AGENT_BIN`
//! (a release build). `--vs-agent PATH` also backs up with a second agent binary (e.g.
//! the static musl release against the glibc build).

mod backup_cases;
mod cpu;
mod datasets;
mod restore_cases;

use datasets::Dataset;
use dbcrate_testkit::{Deps, KitError, PgServer, S3Server, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dbcrate-bench failed: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Settings {
    sizes_mib: Vec<u64>,
    runs: usize,
    major: u32,
    restore: bool,
    vs_agent: Option<PathBuf>,
    /// What the database holds.
    dataset: Dataset,
    /// The zstd level of the shell pipeline and the agent alike.
    level: i32,
    /// Also back up with these `--zstd-threads` (the agent's default always runs).
    zstd_threads: Vec<u32>,
    /// Also back up to S3.
    s3: bool,
    /// Also restore in parallel with these `--jobs`.
    restore_jobs: Vec<u32>,
}

fn settings() -> Result<Settings, KitError> {
    let mut s = Settings {
        sizes_mib: vec![200, 2048],
        runs: 3,
        major: 17,
        restore: true,
        vs_agent: None,
        dataset: Dataset::Mixed,
        level: 3,
        zstd_threads: Vec::new(),
        s3: true,
        restore_jobs: vec![2],
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| KitError::new(format!("{a} needs a value")))
        };
        match a.as_str() {
            "--sizes-mib" => {
                s.sizes_mib = value()?
                    .split(',')
                    .map(|v| v.parse().map_err(|_| KitError::new("bad --sizes-mib")))
                    .collect::<Result<_, _>>()?
            }
            "--runs" => s.runs = value()?.parse().map_err(|_| KitError::new("bad --runs"))?,
            "--major" => s.major = value()?.parse().map_err(|_| KitError::new("bad --major"))?,
            "--no-restore" => s.restore = false,
            "--no-s3" => s.s3 = false,
            "--restore-jobs" => {
                s.restore_jobs = value()?
                    .split(',')
                    .map(|v| v.parse().map_err(|_| KitError::new("bad --restore-jobs")))
                    .collect::<Result<_, _>>()?
            }
            "--zstd-threads" => {
                s.zstd_threads = value()?
                    .split(',')
                    .map(|v| v.parse().map_err(|_| KitError::new("bad --zstd-threads")))
                    .collect::<Result<_, _>>()?
            }
            "--vs-agent" => s.vs_agent = Some(PathBuf::from(value()?)),
            "--dataset" => s.dataset = Dataset::parse(&value()?)?,
            "--level" => {
                s.level = value()?
                    .parse()
                    .ok()
                    .filter(|l| (1..=19).contains(l))
                    .ok_or_else(|| KitError::new("--level is a zstd level, 1 to 19"))?
            }
            other => return Err(KitError::new(format!("unknown argument {other}"))),
        }
    }
    Ok(s)
}

/// One measured run: wall time and the agent's peak RSS (if an agent ran).
#[derive(Clone, Copy)]
struct Sample {
    seconds: f64,
    peak_rss_kib: Option<u64>,
    /// What the run stored, when the case says where.
    output_bytes: Option<u64>,
    /// The machine's CPUs during the run.
    cpu: Option<cpu::CpuUse>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The agent binaries, the stock tools and the organisation's key every case runs with.
struct Bench {
    settings: Settings,
    agent: PathBuf,
    age: PathBuf,
    zstd: PathBuf,
    key: PathBuf,
    recipient: String,
}

/// Measured cases by name, in the order they ran.
type Cases = Vec<(String, Vec<Sample>)>;

fn run() -> Result<(), KitError> {
    let settings = settings()?;
    let deps = Deps::from_env();
    let agent = PathBuf::from(
        std::env::var_os("DBCRATE_AGENT_BIN")
            .ok_or_else(|| KitError::new("set DBCRATE_AGENT_BIN to a release dbcrate-agent"))?,
    );
    let age = deps.tool("age")?;
    let zstd = deps.tool("zstd")?;
    let work = TempDir::new("bench")?;
    let (key, recipient) = dbcrate_testkit::age_keypair(&deps, work.path())?;

    println!("# dbcrate-agent benchmark");
    println!();
    println!(
        "machine: {} cores, {}; PostgreSQL {}; {} runs per case, medians; dataset {}; \
         zstd level {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        mem_total(),
        settings.major,
        settings.runs,
        settings.dataset.name(),
        settings.level
    );
    let bench = Bench {
        settings,
        agent,
        age,
        zstd,
        key,
        recipient,
    };
    for &size in &bench.settings.sizes_mib {
        measure(&bench, &deps, &work, size)?;
    }
    Ok(())
}

/// Every case on a database of about `size` MiB on fresh servers, and its report.
fn measure(bench: &Bench, deps: &Deps, work: &TempDir, size: u64) -> Result<(), KitError> {
    let server = PgServer::start_with(deps, bench.settings.major)?;
    let s3 = S3Server::start_with(deps)?;
    eprintln!(
        "generating ~{size} MiB of the {} dataset …",
        bench.settings.dataset.name()
    );
    server.create_database("bench")?;
    bench.settings.dataset.generate(&server, size)?;
    let db_bytes: u64 = server
        .psql("bench", "SELECT pg_database_size('bench')")?
        .trim()
        .parse()
        .unwrap_or(0);
    let out_dir = work.path().join(format!("out-{size}"));
    std::fs::create_dir_all(&out_dir).map_err(|e| KitError::io("mkdir", e))?;
    let shell_file = out_dir.join("shell.age");

    let mut cases = backup_cases::backup_cases(bench, &server, &s3, &out_dir, &shell_file)?;
    if bench.settings.s3 {
        cases.push((
            "curl PUT of the shell's ciphertext to S3 (reference)".into(),
            put_case(bench, &s3, &shell_file)?,
        ));
    }
    if bench.settings.restore {
        cases.extend(restore_cases::restore_cases(
            bench,
            &server,
            &shell_file,
            &out_dir,
        )?);
    }
    let dump_bytes = std::fs::metadata(backup_cases::dump_file(&out_dir))
        .map_err(|e| KitError::io("reading the dump's size", e))?
        .len();
    report(bench, db_bytes, dump_bytes, &shell_file, &cases)
}

/// The store's own cost on this machine: one PUT of the shell's ciphertext per run.
fn put_case(bench: &Bench, s3: &S3Server, shell_file: &Path) -> Result<Vec<Sample>, KitError> {
    let mut n = 0;
    repeat(bench.settings.runs, || {
        n += 1;
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!(
            "curl -sS --fail -K - -T {file:?} --aws-sigv4 'aws:amz:{region}:s3' \
             -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' {endpoint}/{bucket}/put-{n} <<EOF\n\
             user = \"{id}:{secret}\"\nEOF",
            file = shell_file.display().to_string(),
            region = s3.region(),
            endpoint = s3.endpoint(),
            bucket = s3.bucket(),
            id = s3.access_key_id(),
            secret = s3.secret_access_key(),
        ));
        timed(c, false)
    })
}

/// Prints one size's table (median, runs, agent peak RSS) and the ratios against the
/// targets.
fn report(
    bench: &Bench,
    db_bytes: u64,
    dump_bytes: u64,
    shell_file: &Path,
    cases: &Cases,
) -> Result<(), KitError> {
    println!();
    println!(
        "## database of {:.0} MiB (pg_database_size), dump {:.0} MiB, ciphertext {:.0} MiB",
        db_bytes as f64 / 1048576.0,
        dump_bytes as f64 / 1048576.0,
        std::fs::metadata(shell_file).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0
    );
    println!();
    println!(
        "| case | median s | runs (s) | agent peak RSS (MiB, median) | stored (MiB) | \
         CPU busy / stolen (%, medians) | CPU core-s (median) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, samples) in cases {
        let secs: Vec<f64> = samples.iter().map(|s| s.seconds).collect();
        let rss: Vec<f64> = samples
            .iter()
            .filter_map(|s| s.peak_rss_kib.map(|k| k as f64 / 1024.0))
            .collect();
        let stored = samples
            .iter()
            .rev()
            .find_map(|s| s.output_bytes)
            .map_or("–".to_string(), |b| {
                format!("{:.2}", b as f64 / 1048576.0)
            });
        let uses: Vec<cpu::CpuUse> = samples.iter().filter_map(|s| s.cpu).collect();
        let (cpu, core_seconds) = match uses.is_empty() {
            true => ("–".to_string(), "–".to_string()),
            false => (
                format!(
                    "{:.0} / {:.0}",
                    100.0 * median(uses.iter().map(|c| c.busy_share).collect()),
                    100.0 * median(uses.iter().map(|c| c.stolen_share).collect())
                ),
                format!(
                    "{:.2}",
                    median(uses.iter().map(|c| c.busy_core_seconds).collect())
                ),
            ),
        };
        println!(
            "| {} | {:.2} | {} | {} | {stored} | {cpu} | {core_seconds} |",
            name.replace('|', "\\|"),
            median(secs.clone()),
            secs.iter()
                .map(|s| format!("{s:.2}"))
                .collect::<Vec<_>>()
                .join(", "),
            if rss.is_empty() {
                "–".to_string()
            } else {
                format!("{:.1}", median(rss))
            }
        );
    }
    // Ratios by case name, so adding a case cannot shift them.
    let samples_of = |prefix: &str| {
        cases
            .iter()
            .find(|(name, _)| name.starts_with(prefix))
            .map(|(_, samples)| samples.as_slice())
    };
    let m = |prefix: &str| {
        samples_of(prefix).map_or(f64::NAN, |samples| {
            median(samples.iter().map(|s| s.seconds).collect())
        })
    };
    let (floor, shell, file) = (
        m("pg_dump -Fc"),
        m("pg_dump |"),
        m("dbcrate-agent backup → file"),
    );
    println!();
    println!(
        "ratios: agent file / shell = {:.2} (target ≤ 0.90); agent file / floor = {:.2} \
         (target ≤ 1.10)",
        file / shell,
        file / floor,
    );
    let one_core = m("zstd -");
    println!(
        "compression alone, one thread, from a file: {one_core:.2} s = {:.2} × the floor — \
         keeping pace with pg_dump takes about that many zstd workers, each with a core \
         of its own",
        one_core / floor,
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    // The machine's CPU time is missing only where /proc/stat cannot be read.
    let work = samples_of("dbcrate-agent backup → file")
        .map(|samples| {
            samples
                .iter()
                .filter_map(|s| s.cpu)
                .map(|c| c.busy_core_seconds)
                .collect::<Vec<_>>()
        })
        .filter(|seconds| !seconds.is_empty())
        .map(median);
    if let Some(work) = work {
        println!(
            "the agent's backup kept the CPUs busy for {work:.2} core-s (PostgreSQL and \
             pg_dump included): on {cores} cores no run of it can take under {:.2} s = \
             {:.2} × the floor",
            work / cores,
            work / cores / floor,
        );
    }
    if bench.settings.s3 {
        println!(
            "agent S3 / agent file = {:.2} (target ≤ 1.10)",
            m("dbcrate-agent backup → S3") / file
        );
    }
    if bench.settings.vs_agent.is_some() {
        println!(
            "--vs-agent / DBCRATE_AGENT_BIN = {:.3} (alternating runs; the static agent's \
             target is ≤ 1.05)",
            m("vs: --vs-agent") / m("dbcrate-agent backup → file")
        );
    }
    if bench.settings.restore {
        let single = m("dbcrate-agent restore ←");
        println!(
            "restore: agent / stock = {:.2} (target ≤ 1.05); agent restore / agent backup = {:.2}",
            single / m("age -d | zstd -d | pg_restore"),
            single / file,
        );
        for jobs in &bench.settings.restore_jobs {
            println!(
                "restore --jobs {jobs} (staged) / single stream = {:.2}",
                m(&format!("dbcrate-agent restore --jobs {jobs} ")) / single
            );
        }
    }
    Ok(())
}

fn repeat(
    runs: usize,
    mut f: impl FnMut() -> Result<Sample, KitError>,
) -> Result<Vec<Sample>, KitError> {
    (0..runs).map(|_| f()).collect()
}

/// Runs `cmd` to completion; with `sample_rss`, polls its VmHWM every 20 ms.
fn timed(mut cmd: Command, sample_rss: bool) -> Result<Sample, KitError> {
    let ticks = cpu::Ticks::now();
    let start = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| KitError::io("spawning a benchmark case", e))?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let status = loop {
        if sample_rss {
            if let Ok(text) = std::fs::read_to_string(&status_path) {
                if let Some(kib) = text
                    .lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
                {
                    peak = peak.max(kib);
                }
            }
        }
        if let Some(status) = child.try_wait().map_err(|e| KitError::io("waiting", e))? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let seconds = start.elapsed().as_secs_f64();
    let cpu = cpu::Ticks::now().since(ticks);
    if !status.success() {
        return Err(KitError::new(format!(
            "a benchmark case failed ({status}): {cmd:?}"
        )));
    }
    Ok(Sample {
        seconds,
        peak_rss_kib: sample_rss.then_some(peak),
        output_bytes: None,
        cpu,
    })
}

fn mem_total() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|k| k.parse::<u64>().ok())
        .map(|k| format!("{:.0} GiB RAM", k as f64 / 1048576.0))
        .unwrap_or_default()
}
