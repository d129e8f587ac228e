//! Running one job from the control plane: fetch its credentials (once, right before
//! the work), run the backup or restore pipeline with them held in memory only, keep
//! the lease alive with heartbeats, and report the outcome.
//!
//! The credentials arrive as [`wire::JobCredentials`], whose secrets deserialise
//! straight into types that redact themselves and zeroize on drop (`SecretString`,
//! `SecretBytes`), and stay in such types in the database URL and storage options; the
//! answer's bytes are wiped as soon as they are parsed. Nothing is written to disk,
//! logged or put on a command line (pg_dump gets the password through its environment).

use super::link::Link;
use super::roots::DirectoryRoots;
use crate::crypto::parse_recipients;
use crate::crypto::{Decryption, FileKeyIdentity};
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt::Interrupt;
use crate::pg::conninfo::DatabaseUrl;
use crate::pipeline::backup::{run_backup, BackupRequest};
use crate::pipeline::drill::{run_drill, DrillRequest};
use crate::pipeline::restore::{run_restore, RestoreRequest};
use crate::pipeline::{Compression, GlobalsSource, ParallelRestore, Progress};
use crate::registry::RegistryConfig;
use dbcrate_core::secret::SecretJson;
use dbcrate_core::wire::{self, Completion, Job, JobCredentials, JobKind};
use dbcrate_storage::location::Location;
use dbcrate_storage::StorageOptions;
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// The agent's current link to the control plane: renewal replaces it while a job runs,
/// and every request of the job takes the newest.
pub type LinkWatch = tokio::sync::watch::Receiver<Link>;

fn current(links: &LinkWatch) -> Link {
    links.borrow().clone()
}

/// The zstd level of control-plane backups.
pub const JOB_ZSTD_LEVEL: i32 = 3;

/// Where jobs get pg_dump and pg_restore, and how often they report progress: from the
/// agent's flags and the control plane's config.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Host-managed tools (`run --pg-bin-dir`): used as they are, ahead of any registry.
    pub pg_bin_dir: Option<PathBuf>,
    /// The signed registry the control plane names, used when `pg_bin_dir` is not given
    /// (each job fetches, or finds cached, the build matching its server's major).
    /// Neither: the tools on PATH.
    pub registry: Option<RegistryConfig>,
    /// Why the control plane's registry settings cannot be used, if they cannot: every
    /// job that would need them fails with this.
    pub registry_problem: Option<String>,
    /// How often a running job reports progress (well inside the control plane's lease).
    pub heartbeat: Duration,
    /// Where directory destinations may be (`run --directory-root`): a job to a
    /// directory elsewhere fails before anything is read or written.
    pub directory_roots: DirectoryRoots,
    /// How backups are compressed (the level is fixed; workers from `--zstd-threads`).
    pub compression: Compression,
    /// Managed restores in parallel from a staged dump (`run --restore-jobs`).
    pub parallel_restore: Option<ParallelRestore>,
}

impl JobSettings {
    fn usable(&self) -> Result<()> {
        match &self.registry_problem {
            Some(problem) => Err(Error::new(ErrorKind::Control, problem.clone())),
            None => Ok(()),
        }
    }
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            pg_bin_dir: None,
            registry: None,
            registry_problem: None,
            heartbeat: Duration::from_secs(wire::DEFAULT_HEARTBEAT_SECS),
            directory_roots: DirectoryRoots::default(),
            compression: Compression::new(JOB_ZSTD_LEVEL, None),
            parallel_restore: None,
        }
    }
}

/// The database connection of a job's credentials, its password kept secret.
fn database_url(db: wire::DatabaseConnection) -> Result<DatabaseUrl> {
    DatabaseUrl::from_parts(
        &db.host,
        db.port,
        &db.dbname,
        &db.username,
        &db.tls_mode,
        db.password,
    )
}

/// Where the job's destination is and how to reach it; the credentials pass through the
/// storage settings parser as JSON that is wiped straight after.
fn storage(destination: &wire::Destination) -> Result<(Location, StorageOptions)> {
    let credentials = destination
        .credentials
        .as_ref()
        .map(wire::DestinationCredentials::to_secret_json);
    Ok(dbcrate_storage::spec::from_settings(
        &destination.kind,
        &destination.settings,
        credentials.as_ref().map(SecretJson::expose_secret),
    )?)
}

/// Builds the backup request from the job and its credentials (consumed: their secrets
/// move into the request or are wiped).
fn backup_request(
    job: &Job,
    settings: &JobSettings,
    credentials: JobCredentials,
    interrupt: Interrupt,
    progress: Progress,
) -> Result<BackupRequest> {
    let JobCredentials {
        database,
        destination,
        recipients,
        ..
    } = credentials;
    let database = database_url(database)?;
    let (prefix, storage) = storage(&destination)?;
    let object = dbcrate_storage::spec::object_location(&prefix, &job.object_key);
    settings.directory_roots.check(&prefix, &object)?;
    Ok(BackupRequest {
        database,
        recipients: parse_recipients(&recipients)?,
        destination: prefix,
        storage,
        name: Some(job.database_name.clone()),
        job: job.id.clone(),
        key: Some(job.object_key.clone()),
        pg_bin_dir: settings.pg_bin_dir.clone(),
        registry: settings.registry.clone(),
        compression: settings.compression,
        interrupt,
        progress,
        count_rows: job.count_rows,
    })
}

/// Builds a managed restore's request: the target database, the backup object, and
/// this one backup's file key (never the organisation's key), from the credentials
/// (consumed likewise). Also returns the object key, for the report.
fn restore_request(
    settings: &JobSettings,
    credentials: JobCredentials,
    interrupt: Interrupt,
    progress: Progress,
) -> Result<(RestoreRequest, String)> {
    let JobCredentials {
        restore,
        database,
        destination,
        ..
    } = credentials;
    let database = database_url(database)?;
    let (prefix, storage) = storage(&destination)?;
    let restore = restore.ok_or_else(|| {
        Error::new(
            ErrorKind::Control,
            "the job's credentials lack restore (the backup to read)",
        )
    })?;
    let sha256 = parse_sha256("restore.sha256", &restore.sha256)?;
    let source = dbcrate_storage::spec::object_location(&prefix, &restore.object_key);
    settings.directory_roots.check(&prefix, &source)?;
    let globals = match restore.globals {
        Some(globals) => {
            let source = dbcrate_storage::spec::object_location(&prefix, &globals.object_key);
            settings.directory_roots.check(&prefix, &source)?;
            Some(GlobalsSource {
                source,
                expect_sha256: Some(parse_sha256("restore.globals.sha256", &globals.sha256)?),
                decryption: Decryption::FileKey(FileKeyIdentity::new(globals.file_key)),
            })
        }
        None => None,
    };
    Ok((
        RestoreRequest {
            source,
            storage,
            decryption: Decryption::FileKey(FileKeyIdentity::new(restore.file_key)),
            database,
            pg_bin_dir: settings.pg_bin_dir.clone(),
            registry: settings.registry.clone(),
            expect_sha256: Some(sha256),
            interrupt,
            progress,
            globals,
            parallel: settings.parallel_restore.clone(),
        },
        restore.object_key,
    ))
}

/// A SHA-256 the control plane sent as hex (`what` names the field).
fn parse_sha256(what: &str, hex: &str) -> Result<[u8; 32]> {
    dbcrate_core::hex::decode_array::<32>(hex)
        .ok_or_else(|| Error::new(ErrorKind::Control, format!("{what} is not 32 hex bytes")))
}

/// The job's credentials from the control plane's answer, which is wiped once parsed. A
/// malformed answer is told by its position only: serde's own words could quote a value.
fn parse_credentials(answer: Vec<u8>) -> Result<JobCredentials> {
    let answer = Zeroizing::new(answer);
    serde_json::from_slice(&answer).map_err(|e| {
        Error::new(
            ErrorKind::Control,
            format!(
                "the job's credentials are not what this agent expects ({:?} error at line {} \
                 column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })
}

/// A count as the wire's signed integer.
fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reports the end of the claimed `job`, naming its attempt (a stale attempt's report is
/// refused), retrying while the control plane is unreachable (restarting, say) for up to
/// ten minutes: a finished backup must not be redone because its report was lost. A
/// refusal (the job is no longer this agent's) is final. Returns the job's state after
/// the report (`succeeded`, `queued` to be retried, `failed`).
async fn report_completion(links: &LinkWatch, job: &Job, mut report: Completion) -> Result<String> {
    report.attempt = Some(job.attempt);
    let report = &report;
    let path = wire::paths::complete(&job.id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let mut wait = Duration::from_secs(1);
    loop {
        match current(links)
            .post::<_, wire::CompletionAnswer>(&path, report)
            .await
        {
            Ok(answer) => return Ok(answer.state),
            Err(e) if e.kind().is_temporary() && tokio::time::Instant::now() < deadline => {
                tracing::warn!(job.id = %job.id, "reporting the job failed, retrying in {wait:?}: {e}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e),
        }
    }
}

/// The heartbeat interval kept well inside the lease the control plane answers with (at
/// least three heartbeats per lease).
fn within_lease(every: Duration, lease_secs: i64) -> Duration {
    match u64::try_from(lease_secs) {
        Ok(lease) if lease > 0 => every.min(Duration::from_secs((lease / 3).max(1))),
        _ => every,
    }
}

/// Runs `work` while sending heartbeats for job `id` with the bytes `progress` counts.
/// The heartbeats run as a task of their own: a slow or unreachable control plane must
/// not hold up the work (storage drops an upload that stalls).
async fn with_heartbeats<T>(
    links: &LinkWatch,
    every: Duration,
    id: &str,
    phase: &'static str,
    progress: &Progress,
    work: impl std::future::Future<Output = T>,
) -> T {
    let (links, progress) = (links.clone(), progress.clone());
    let (job, path) = (id.to_string(), wire::paths::progress(id));
    let _beats = AbortOnDrop(tokio::spawn(async move {
        let mut every = every;
        loop {
            tokio::time::sleep(every).await;
            let beat = wire::ProgressReport {
                bytes: signed(progress.bytes()),
                phase: phase.to_string(),
            };
            match current(&links)
                .post::<_, wire::ProgressAnswer>(&path, &beat)
                .await
            {
                Ok(answer) => every = within_lease(every, answer.lease_secs),
                Err(e) => tracing::warn!(job.id = %job, "heartbeat failed: {e}"),
            }
        }
    }));
    work.await
}

/// Stops a task when the job that started it ends, however it ends (a cancelled job
/// included).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs a claimed job (a backup or a managed restore) to its end and reports it.
/// Errors are the agent's own (the control plane unreachable); a failed job is
/// reported, not returned.
pub async fn run(
    links: &LinkWatch,
    settings: &JobSettings,
    job: &Job,
    interrupt: Interrupt,
) -> Result<()> {
    let id = &job.id;
    tracing::info!(job.id = %id, kind = job.kind.as_str(), "job started");
    // A job that cannot run here fails before its credentials are handed out.
    let runnable = settings.usable().and_then(|()| match job.kind {
        JobKind::Unknown => Err(Error::new(
            ErrorKind::Control,
            "the control plane sent a kind of job this agent does not know; upgrade the agent",
        )),
        JobKind::Backup | JobKind::Restore | JobKind::Drill => Ok(()),
    });
    if let Err(e) = runnable {
        let state = report_completion(links, job, Completion::failed(e.to_string())).await?;
        tracing::warn!(job.id = %id, state, "job failed: {e}");
        return Ok(());
    }
    let answer = current(links)
        .get_bytes(&wire::paths::credentials(id))
        .await?;
    let credentials = parse_credentials(answer);
    if job.kind == JobKind::Drill {
        return run_drill_job(links, settings, job, credentials, interrupt).await;
    }
    if job.kind == JobKind::Restore {
        let progress = Progress::default();
        let request =
            credentials.and_then(|c| restore_request(settings, c, interrupt, progress.clone()));
        let outcome = match request {
            Err(e) => Err(e),
            Ok((request, key)) => {
                let work = run_restore(request, &key);
                with_heartbeats(links, settings.heartbeat, id, "restoring", &progress, work).await
            }
        };
        let report = match &outcome {
            Ok(_) => Completion {
                succeeded: true,
                ..Completion::default()
            },
            Err(e) => Completion::failed(e.to_string()),
        };
        let state = report_completion(links, job, report).await?;
        match outcome {
            Ok(_) => tracing::info!(job.id = %id, state, "restore succeeded"),
            Err(e) => tracing::warn!(job.id = %id, state, "restore failed: {e}"),
        }
        return Ok(());
    }
    let progress = Progress::default();
    let request =
        credentials.and_then(|c| backup_request(job, settings, c, interrupt, progress.clone()));
    let outcome = match request {
        Err(e) => Err(e),
        Ok(request) => {
            let work = run_backup(request);
            with_heartbeats(links, settings.heartbeat, id, "backing up", &progress, work).await
        }
    };
    let report = match &outcome {
        Ok(r) => Completion {
            succeeded: true,
            globals: r.globals.as_ref().map(|g| wire::StoredObject {
                object_key: g.key.clone(),
                size: signed(g.ciphertext_bytes),
                sha256: g.sha256.clone(),
            }),
            row_counts: r.row_counts.clone(),
            object_key: Some(r.key.clone()),
            size: signed(r.ciphertext_bytes),
            dump_size: Some(signed(r.plaintext_bytes)),
            duration_ms: Some((r.seconds * 1000.0).round() as i64),
            sha256: r.sha256.clone(),
            pg_server_version: r.pg_server_version.clone(),
            pg_dump_version: r.pg_dump_version.clone(),
            ..Completion::default()
        },
        Err(e) => Completion::failed(e.to_string()),
    };
    let state = report_completion(links, job, report).await?;
    match outcome {
        Ok(r) => tracing::info!(job.id = %id, state, bytes = r.ciphertext_bytes, "job succeeded"),
        Err(e) => tracing::warn!(job.id = %id, state, "job failed: {e}"),
    }
    Ok(())
}

/// A restore drill: the restore into a throwaway database, its checks, and the report
/// of what it measured.
async fn run_drill_job(
    links: &LinkWatch,
    settings: &JobSettings,
    job: &Job,
    credentials: Result<JobCredentials>,
    interrupt: Interrupt,
) -> Result<()> {
    let id = &job.id;
    let progress = Progress::default();
    let request = credentials.and_then(|mut c| {
        let checks = c.drill.take().unwrap_or_default();
        let (restore, key) = restore_request(settings, c, interrupt, progress.clone())?;
        let drill = DrillRequest {
            restore,
            job_id: id.clone(),
            checks,
        };
        Ok((drill, key))
    });
    let (report, outcome) = match request {
        Err(e) => (None, Err(e)),
        Ok((request, key)) => {
            let work = run_drill(request, &key);
            let (report, outcome) =
                with_heartbeats(links, settings.heartbeat, id, "drilling", &progress, work).await;
            (Some(report), outcome)
        }
    };
    let completion = Completion {
        succeeded: outcome.is_ok(),
        duration_ms: report.as_ref().and_then(|r| r.restore_ms),
        error: outcome.as_ref().err().map(ToString::to_string),
        drill: report,
        ..Completion::default()
    };
    let state = report_completion(links, job, completion).await?;
    match outcome {
        Ok(()) => tracing::info!(job.id = %id, state, "restore drill passed"),
        Err(e) => tracing::warn!(job.id = %id, state, "restore drill failed: {e}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use std::sync::Arc;

    /// A control plane that accepts connections and never answers: every heartbeat
    /// hangs until the link's timeout.
    async fn silent_control_plane() -> (Link, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        (Link::new(&url, Arc::new(tls)).unwrap(), server)
    }

    /// A job to the directory `path` and its credentials (restore ones too), as the
    /// control plane sends them.
    fn directory_job(path: &std::path::Path) -> (Job, Value) {
        let job = json!({
            "id": "job_x", "kind": "backup", "attempt": 1, "database_name": "shop",
            "object_key": "shop/2026/01/02/20260102T030000Z-job_x.pgdump.zst.age",
        });
        let credentials = json!({
            "database": {
                "host": "127.0.0.1", "port": 5432, "dbname": "shop", "username": "postgres",
                "tls_mode": "disable", "password": "pw",
            },
            "destination": { "kind": "directory", "settings": { "path": path } },
            "recipients": [age::x25519::Identity::generate().to_public().to_string()],
            "restore": {
                "object_key": job["object_key"], "file_key": "00".repeat(16),
                "sha256": "00".repeat(32),
            },
        });
        (serde_json::from_value(job).unwrap(), credentials)
    }

    fn parsed(credentials: &Value) -> JobCredentials {
        parse_credentials(serde_json::to_vec(credentials).unwrap()).unwrap()
    }

    #[test]
    fn credentials_that_do_not_parse_are_told_without_their_values() {
        let (_, mut credentials) = directory_job(std::path::Path::new("/b"));
        credentials["database"]["port"] = json!("hunter2");
        let err = parse_credentials(serde_json::to_vec(&credentials).unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("credentials are not what this agent expects"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn heartbeats_stay_well_inside_the_lease() {
        let every = Duration::from_secs(20);
        assert_eq!(within_lease(every, 120), every);
        assert_eq!(within_lease(every, 30), Duration::from_secs(10));
        assert_eq!(within_lease(every, 1), Duration::from_secs(1));
        assert_eq!(within_lease(every, 0), every);
        assert_eq!(within_lease(every, -5), every);
    }

    #[test]
    fn jobs_to_a_directory_outside_the_roots_are_refused_before_any_work() {
        let dir = dbcrate_testkit::TempDir::new("agent-job-roots").unwrap();
        let (root, outside) = (dir.path().join("root"), dir.path().join("outside"));
        std::fs::create_dir_all(root.join("backups")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let settings = JobSettings {
            directory_roots: DirectoryRoots::resolve(std::slice::from_ref(&root)).unwrap(),
            ..JobSettings::default()
        };
        let progress = Progress::default;
        for (path, allowed) in [(root.join("backups"), true), (outside.clone(), false)] {
            let (job, credentials) = directory_job(&path);
            let backup = backup_request(
                &job,
                &settings,
                parsed(&credentials),
                Interrupt::never(),
                progress(),
            );
            let restore = restore_request(
                &settings,
                parsed(&credentials),
                Interrupt::never(),
                progress(),
            );
            if allowed {
                assert!(backup.is_ok(), "{:?}", backup.err());
                assert!(restore.is_ok(), "{:?}", restore.err());
                continue;
            }
            for err in [backup.err().unwrap(), restore.err().unwrap()] {
                let text = err.to_string();
                for needle in [
                    &outside.display().to_string(),
                    "not under a configured directory root",
                    "--directory-root",
                ] {
                    assert!(text.contains(needle), "no {needle:?} in: {text}");
                }
            }
        }
        // Nothing was created in the refused directory.
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        // Without roots, the allowed one is refused too.
        let (job, credentials) = directory_job(&root.join("backups"));
        let err = backup_request(
            &job,
            &JobSettings::default(),
            parsed(&credentials),
            Interrupt::never(),
            progress(),
        )
        .err()
        .unwrap();
        assert!(err.to_string().contains("no directory roots"), "{err}");
    }

    #[tokio::test]
    async fn a_hanging_heartbeat_does_not_hold_up_the_work() {
        let (link, _server) = silent_control_plane().await;
        let (_keep, links) = tokio::sync::watch::channel(link);
        let progress = Progress::default();
        let started = std::time::Instant::now();
        let work = async {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                progress.add(1);
            }
            "done"
        };
        let every = Duration::from_millis(10);
        let result = with_heartbeats(&links, every, "job_x", "backing up", &progress, work).await;
        assert_eq!(result, "done");
        assert_eq!(progress.bytes(), 10);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the work waited for heartbeats: {:?}",
            started.elapsed()
        );
    }
}
