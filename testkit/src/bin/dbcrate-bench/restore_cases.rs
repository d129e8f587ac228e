//! The restore cases, alternated round by round like the backup cases: the stock
//! pipeline, the agent's single stream and its parallel restore for each `--restore-jobs`
//! — each into a fresh database dropped after its run — and the breakdown of where a
//! restore's time goes: decrypting alone, decrypting and decompressing, and pg_restore's
//! three sections (schema, data load, index and constraint builds) run one after the
//! other from a staged file.

use super::{timed, Bench, Cases, Sample};
use dbcrate_testkit::{KitError, PgServer};
use std::path::Path;
use std::process::Command;

/// One restore case: the names of the samples one run gives, and the run (given its
/// round, for unique database names).
struct Case<'a> {
    names: Vec<String>,
    run: Box<dyn Fn(usize) -> Result<Vec<Sample>, KitError> + 'a>,
}

/// Every restore case of `object` (age ciphertext of a zstd-compressed custom dump).
pub fn restore_cases(
    bench: &Bench,
    server: &PgServer,
    object: &Path,
    work: &Path,
) -> Result<Cases, KitError> {
    let (age, zstd, key) = (
        bench.age.display().to_string(),
        bench.zstd.display().to_string(),
        bench.key.display().to_string(),
    );
    let obj = object.display().to_string();
    let pg_restore = server.pg_restore().display().to_string();
    let staged = work.join("staged.dump");
    let staging = work.join("staging");
    std::fs::create_dir_all(&staging).map_err(|e| KitError::io("mkdir staging", e))?;
    let shell = |script: String| {
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!("set -e; {script}"));
        server.client_env(&mut c);
        c
    };
    let fresh = |round: usize, label: &str| -> Result<String, KitError> {
        let db = format!("{label}_{round}");
        server.create_database(&db)?;
        Ok(db)
    };
    let drop_db = |db: &str| {
        server
            .psql("postgres", &format!("DROP DATABASE {db}"))
            .map(|_| ())
    };
    let agent_restore = |db: &str| {
        let mut c = Command::new(&bench.agent);
        c.arg("restore")
            .arg("--source")
            .arg(format!("file://{}", object.display()))
            .arg("--identity")
            .arg(&bench.key)
            .args(["--database-url", &server.url(db)])
            .arg("--pg-bin-dir")
            .arg(server.bin_dir())
            .env("DBCRATE_LOG", "warn");
        c
    };
    let mut cases: Vec<Case> = vec![
        Case {
            names: vec!["age -d > /dev/null (decrypt only)".into()],
            run: Box::new(|_| {
                Ok(vec![timed(
                    shell(format!("{age:?} -d -i {key:?} {obj:?} > /dev/null")),
                    false,
                )?])
            }),
        },
        Case {
            names: vec!["age -d | zstd -d > /dev/null (decrypt + decompress)".into()],
            run: Box::new(|_| {
                let script =
                    format!("{age:?} -d -i {key:?} {obj:?} | {zstd:?} -d -q -c > /dev/null");
                Ok(vec![timed(shell(script), false)?])
            }),
        },
        Case {
            names: [
                "pre-data (schema)",
                "data (COPY)",
                "post-data (indexes, constraints)",
            ]
            .iter()
            .map(|s| format!("pg_restore --section={s} from a file"))
            .collect(),
            run: Box::new(|round| {
                let db = fresh(round, "sections")?;
                let mut samples = Vec::new();
                for section in ["pre-data", "data", "post-data"] {
                    let script = format!(
                        "{pg_restore:?} --section={section} --single-transaction --exit-on-error -d {db} {staged:?}",
                        staged = staged.display().to_string()
                    );
                    samples.push(timed(shell(script), false)?);
                }
                drop_db(&db)?;
                Ok(samples)
            }),
        },
        Case {
            names: vec!["age -d | zstd -d | pg_restore (stock)".into()],
            run: Box::new(|round| {
                let db = fresh(round, "stock")?;
                let script = format!(
                    "{age:?} -d -i {key:?} {obj:?} | {zstd:?} -d -q -c | {pg_restore:?} --single-transaction --exit-on-error -d {db}"
                );
                let sample = timed(shell(script), false)?;
                drop_db(&db)?;
                Ok(vec![sample])
            }),
        },
        Case {
            names: vec!["dbcrate-agent restore ← file://".into()],
            run: Box::new(|round| {
                let db = fresh(round, "agent")?;
                let sample = timed(agent_restore(&db), true)?;
                drop_db(&db)?;
                Ok(vec![sample])
            }),
        },
    ];
    for &jobs in &bench.settings.restore_jobs {
        let (agent_restore, fresh, drop_db, staging) = (&agent_restore, &fresh, &drop_db, &staging);
        cases.push(Case {
            names: vec![format!(
                "dbcrate-agent restore --jobs {jobs} (staged) ← file://"
            )],
            run: Box::new(move |round| {
                let db = fresh(round, &format!("jobs{jobs}"))?;
                let mut c = agent_restore(&db);
                c.args(["--jobs", &jobs.to_string()])
                    .arg("--staging-dir")
                    .arg(staging);
                let sample = timed(c, true)?;
                drop_db(&db)?;
                Ok(vec![sample])
            }),
        });
    }
    // The sections' staged file, decrypted once.
    let stage = format!(
        "{age:?} -d -i {key:?} {obj:?} | {zstd:?} -d -q -c > {staged:?}",
        staged = staged.display().to_string()
    );
    timed(shell(stage), false)?;
    let mut samples: Vec<Vec<Vec<Sample>>> = cases.iter().map(|_| Vec::new()).collect();
    for round in 0..bench.settings.runs {
        for (case, samples) in cases.iter().zip(&mut samples) {
            samples.push((case.run)(round)?);
        }
    }
    let _ = std::fs::remove_file(&staged);
    let mut out = Cases::new();
    for (case, rounds) in cases.iter().zip(samples) {
        for (i, name) in case.names.iter().enumerate() {
            out.push((name.clone(), rounds.iter().map(|r| r[i]).collect()));
        }
    }
    Ok(out)
}
