//! The backup cases, run round by round: each round runs every case once, in the same
//! order, so drift on the machine (a neighbour's build, the page cache warming) falls on
//! every case alike instead of on whichever ran last.

use super::{timed, Bench, Cases, Sample};
use dbcrate_testkit::{KitError, PgServer, S3Server};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One case: its name, whether an agent runs (its peak RSS is sampled), and how to make
/// the command of one run and where that run's output lands (a file or a directory, to
/// report its size), if anywhere.
struct Case<'a> {
    name: String,
    agent: bool,
    command: Box<dyn Fn() -> (Command, Option<PathBuf>) + 'a>,
}

/// Every backup case, alternated over `--runs` rounds: the floor, the shell pipeline
/// (which writes `shell_file`), the agent to `file://` with its default workers and with
/// each `--zstd-threads` asked for, `--vs-agent` if given, and the agent to S3.
pub fn backup_cases(
    bench: &Bench,
    server: &PgServer,
    s3: &S3Server,
    out_dir: &Path,
    shell_file: &Path,
) -> Result<Cases, KitError> {
    let destination = Cell::new(0u32);
    let next = || {
        destination.set(destination.get() + 1);
        destination.get()
    };
    let pg_dump = server.pg_dump().display().to_string();
    let shell = |script: String| {
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!("set -e; {script}"));
        server.client_env(&mut c);
        c
    };
    let to_file = |agent: PathBuf, threads: Option<u32>| {
        let (out_dir, next) = (out_dir, &next);
        move || {
            let dest = out_dir.join(format!("agent-{}", next()));
            let mut c = agent_backup(&agent, server, bench, &format!("file://{}", dest.display()));
            c.args(threads.map(|t| format!("--zstd-threads={t}")));
            (c, Some(dest))
        }
    };
    let dump_file = dump_file(out_dir);
    let dumped = server
        .client_command("pg_dump")
        .args(["-Fc", "-Z0", "-d", "bench", "-f"])
        .arg(&dump_file)
        .status()
        .map_err(|e| KitError::io("pg_dump into a file", e))?;
    if !dumped.success() {
        return Err(KitError::new(format!(
            "pg_dump into a file failed ({dumped})"
        )));
    }
    let mut cases = vec![
        Case {
            name: "pg_dump -Fc -Z0 | cat > /dev/null (floor)".into(),
            agent: false,
            command: Box::new(|| {
                let script = format!("{pg_dump:?} -Fc -Z0 -d bench | cat > /dev/null");
                (shell(script), None)
            }),
        },
        Case {
            name: "pg_dump | zstd -L | age > file (shell)".into(),
            agent: false,
            command: Box::new(|| {
                let script = format!(
                    "{pg_dump:?} -Fc -Z0 -d bench | {zstd:?} -{level} -q -c | {age:?} -r {recipient} > {file:?}",
                    level = bench.settings.level,
                    zstd = bench.zstd.display().to_string(),
                    age = bench.age.display().to_string(),
                    recipient = bench.recipient,
                    file = shell_file.display().to_string(),
                );
                (shell(script), Some(shell_file.to_path_buf()))
            }),
        },
        Case {
            name: "zstd -L --single-thread < dump file > /dev/null (one core compressing)".into(),
            agent: false,
            command: Box::new(|| {
                let mut c = Command::new(&bench.zstd);
                c.args(["-q", "-c", "--single-thread"])
                    .arg(format!("-{}", bench.settings.level))
                    .arg(&dump_file);
                (c, None)
            }),
        },
        Case {
            name: "dbcrate-agent backup → file://".into(),
            agent: true,
            command: Box::new(to_file(bench.agent.clone(), None)),
        },
    ];
    for &threads in &bench.settings.zstd_threads {
        cases.push(Case {
            name: format!("dbcrate-agent backup --zstd-threads {threads} → file://"),
            agent: true,
            command: Box::new(to_file(bench.agent.clone(), Some(threads))),
        });
    }
    if let Some(other) = &bench.settings.vs_agent {
        cases.push(Case {
            name: "vs: --vs-agent backup → file://".into(),
            agent: true,
            command: Box::new(to_file(other.clone(), None)),
        });
    }
    if bench.settings.s3 {
        cases.push(Case {
            name: "dbcrate-agent backup → S3 (Garage)".into(),
            agent: true,
            command: Box::new(|| {
                let dest = format!("s3://{}/run-{}", s3.bucket(), next());
                let mut c = agent_backup(&bench.agent, server, bench, &dest);
                s3.agent_flags(&mut c);
                (c, None)
            }),
        });
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); cases.len()];
    for _ in 0..bench.settings.runs {
        for (case, samples) in cases.iter().zip(&mut samples) {
            let (command, output) = (case.command)();
            let mut sample = timed(command, case.agent)?;
            sample.output_bytes = output.map(|o| bytes_under(&o));
            samples.push(sample);
        }
    }
    Ok(cases.into_iter().map(|c| c.name).zip(samples).collect())
}

/// Where the backup cases keep the uncompressed dump (compressed alone by one case; its
/// size is the dump's size in the report).
pub fn dump_file(out_dir: &Path) -> PathBuf {
    out_dir.join("dump.custom")
}

/// `dbcrate-agent backup` of the bench database to `dest` at the bench's level.
pub fn agent_backup(agent: &Path, server: &PgServer, bench: &Bench, dest: &str) -> Command {
    let mut c = Command::new(agent);
    c.arg("backup")
        .args(["--zstd-level", &bench.settings.level.to_string()])
        .args(["--database-url", &server.url("bench")])
        .args(["--recipient", &bench.recipient])
        .args(["--destination", dest])
        .arg("--pg-bin-dir")
        .arg(server.bin_dir())
        .env("DBCRATE_LOG", "warn");
    c
}

/// The bytes of the file at `path`, or of every file under the directory.
fn bytes_under(path: &Path) -> u64 {
    let Ok(meta) = std::fs::metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| bytes_under(&e.path()))
        .sum()
}
