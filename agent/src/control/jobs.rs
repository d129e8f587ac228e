//! Running one job from the control plane: fetch its credentials (once, right before
//! the work), run the backup or restore pipeline with them held in memory only, keep
//! the lease alive with heartbeats, and report the outcome.
//!
//! The credentials arrive as JSON and go straight into types that redact themselves
//! and zeroize on drop (`SecretString` in the database URL and storage options); the
//! JSON text is wiped as soon as it is read. Nothing is written to disk, logged or put
//! on a command line (pg_dump gets the password through its environment).

use super::link::Link;
use super::roots::DirectoryRoots;

/// The agent's current link to the control plane: renewal replaces it while a job runs,
/// and every request of the job takes the newest.
pub type LinkWatch = tokio::sync::watch::Receiver<Link>;

fn current(links: &LinkWatch) -> Link {
    links.borrow().clone()
}
use crate::crypto::parse_recipients;
use crate::crypto::{Decryption, FileKeyIdentity};
use crate::error::{Error, ErrorKind, Result};
use crate::interrupt::Interrupt;
use crate::pg::conninfo::DatabaseUrl;
use crate::pipeline::backup::{run_backup, BackupRequest};
use crate::pipeline::restore::{run_restore, RestoreRequest};
use crate::pipeline::Progress;
use crate::registry::RegistryConfig;
use dbcrate_core::secret::SecretBytes;
use dbcrate_core::secret::SecretString;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

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
            heartbeat: Duration::from_secs(20),
            directory_roots: DirectoryRoots::default(),
        }
    }
}

/// Wipes every string in a JSON value (the credentials' plaintext copies).
fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => zeroize::Zeroize::zeroize(s),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

fn field<'a>(v: &'a Value, path: &[&str]) -> Result<&'a Value> {
    let mut at = v;
    for key in path {
        at = &at[*key];
    }
    if at.is_null() {
        return Err(Error::new(
            ErrorKind::Control,
            format!("the job's credentials lack {}", path.join(".")),
        ));
    }
    Ok(at)
}

fn text(v: &Value, path: &[&str]) -> Result<String> {
    field(v, path)?.as_str().map(String::from).ok_or_else(|| {
        Error::new(
            ErrorKind::Control,
            format!("{} is not text", path.join(".")),
        )
    })
}

/// The database connection of a job's credentials, its password kept secret.
fn database_url(db: &Value) -> Result<DatabaseUrl> {
    let port = field(db, &["port"])?
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| Error::new(ErrorKind::Control, "database.port is not a port"))?;
    let password = db["password"]
        .as_str()
        .map(|p| SecretString::new(p.to_string()));
    DatabaseUrl::from_parts(
        &text(db, &["host"])?,
        port,
        &text(db, &["dbname"])?,
        &text(db, &["username"])?,
        &text(db, &["tls_mode"])?,
        password,
    )
}

/// Builds the backup request from the job and its credentials, consuming (and wiping)
/// the credentials' JSON.
fn backup_request(
    job: &Value,
    settings: &JobSettings,
    mut credentials: Value,
    interrupt: Interrupt,
    progress: Progress,
) -> Result<BackupRequest> {
    let built = (|| {
        let database = database_url(&credentials["database"])?;
        let dest = &credentials["destination"];
        let creds = dest.get("credentials").filter(|c| !c.is_null());
        let (destination, storage) = dbcrate_storage::spec::from_settings(
            &text(dest, &["kind"])?,
            field(dest, &["settings"])?,
            creds,
        )?;
        let key = text(job, &["object_key"])?;
        let object = dbcrate_storage::spec::object_location(&destination, &key);
        settings.directory_roots.check(&destination, &object)?;
        let recipients: Vec<String> = field(&credentials, &["recipients"])?
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        Ok(BackupRequest {
            database,
            recipients: parse_recipients(&recipients)?,
            destination,
            storage,
            name: Some(text(job, &["database_name"])?),
            job: text(job, &["id"])?,
            key: Some(key),
            pg_bin_dir: settings.pg_bin_dir.clone(),
            registry: settings.registry.clone(),
            zstd_level: 3,
            interrupt,
            progress,
        })
    })();
    wipe(&mut credentials);
    built
}

/// Builds a managed restore's request: the target database, the backup object, and
/// this one backup's file key (never the organisation's key), consuming (and wiping)
/// the credentials' JSON. Also returns the object key, for the report.
fn restore_request(
    settings: &JobSettings,
    mut credentials: Value,
    interrupt: Interrupt,
    progress: Progress,
) -> Result<(RestoreRequest, String)> {
    let built = (|| {
        let database = database_url(&credentials["database"])?;
        let dest = &credentials["destination"];
        let creds = dest.get("credentials").filter(|c| !c.is_null());
        let (prefix, storage) = dbcrate_storage::spec::from_settings(
            &text(dest, &["kind"])?,
            field(dest, &["settings"])?,
            creds,
        )?;
        let restore = field(&credentials, &["restore"])?;
        let key = text(restore, &["object_key"])?;
        let file_key = dbcrate_core::hex::decode_array::<16>(&text(restore, &["file_key"])?)
            .ok_or_else(|| {
                Error::new(ErrorKind::Control, "restore.file_key is not 16 hex bytes")
            })?;
        let sha256 = dbcrate_core::hex::decode_array::<32>(&text(restore, &["sha256"])?)
            .ok_or_else(|| Error::new(ErrorKind::Control, "restore.sha256 is not 32 hex bytes"))?;
        let source = dbcrate_storage::spec::object_location(&prefix, &key);
        settings.directory_roots.check(&prefix, &source)?;
        Ok((
            RestoreRequest {
                source,
                storage,
                decryption: Decryption::FileKey(FileKeyIdentity::new(SecretBytes::new(file_key))),
                database,
                pg_bin_dir: settings.pg_bin_dir.clone(),
                registry: settings.registry.clone(),
                expect_sha256: Some(sha256),
                interrupt,
                progress,
            },
            key,
        ))
    })();
    wipe(&mut credentials);
    built
}

/// A failed job's report.
fn failure(e: &Error) -> Value {
    json!({ "succeeded": false, "error": e.to_string() })
}

/// Reports the end of the claimed `job`, naming its attempt (a stale attempt's report is
/// refused), retrying while the control plane is unreachable (restarting, say) for up to
/// ten minutes: a finished backup must not be redone because its report was lost. A
/// refusal (the job is no longer this agent's) is final.
async fn report_completion(links: &LinkWatch, job: &Value, mut report: Value) -> Result<()> {
    let id = text(job, &["id"])?;
    report["attempt"] = job["attempt"].clone();
    let report = &report;
    let path = format!("/agent/v1/jobs/{id}/complete");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    let mut wait = Duration::from_secs(1);
    loop {
        match current(links).post_json(&path, report).await {
            Ok(_) => return Ok(()),
            Err(e) if e.kind().is_temporary() && tokio::time::Instant::now() < deadline => {
                tracing::warn!(job.id = %id, "reporting the job failed, retrying in {wait:?}: {e}");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e),
        }
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
    let (job, path) = (id.to_string(), format!("/agent/v1/jobs/{id}/progress"));
    let _beats = AbortOnDrop(tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let beat = json!({ "bytes": progress.bytes(), "phase": phase });
            if let Err(e) = current(&links).post_json(&path, &beat).await {
                tracing::warn!(job.id = %job, "heartbeat failed: {e}");
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
    job: &Value,
    interrupt: Interrupt,
) -> Result<()> {
    let id = text(job, &["id"])?;
    tracing::info!(job.id = %id, kind = job["kind"].as_str().unwrap_or("?"), "job started");
    // A job that cannot run here fails before its credentials are handed out.
    if let Err(e) = settings.usable() {
        report_completion(links, job, failure(&e)).await?;
        tracing::warn!(job.id = %id, "job failed: {e}");
        return Ok(());
    }
    let credentials = current(links)
        .get_json(&format!("/agent/v1/jobs/{id}/credentials"))
        .await?;
    if job["kind"].as_str() == Some("restore") {
        let progress = Progress::default();
        let outcome = match restore_request(settings, credentials, interrupt, progress.clone()) {
            Err(e) => Err(e),
            Ok((request, key)) => {
                let work = run_restore(request, &key);
                with_heartbeats(links, settings.heartbeat, &id, "restoring", &progress, work).await
            }
        };
        let report = match &outcome {
            Ok(_) => json!({ "succeeded": true }),
            Err(e) => failure(e),
        };
        report_completion(links, job, report).await?;
        match outcome {
            Ok(_) => tracing::info!(job.id = %id, "restore succeeded"),
            Err(e) => tracing::warn!(job.id = %id, "restore failed: {e}"),
        }
        return Ok(());
    }
    let progress = Progress::default();
    let outcome = match backup_request(job, settings, credentials, interrupt, progress.clone()) {
        Err(e) => Err(e),
        Ok(request) => {
            let work = run_backup(request);
            with_heartbeats(
                links,
                settings.heartbeat,
                &id,
                "backing up",
                &progress,
                work,
            )
            .await
        }
    };
    let report = match &outcome {
        Ok(r) => json!({
            "succeeded": true, "object_key": r.key, "size": r.ciphertext_bytes, "sha256": r.sha256,
            "dump_size": r.plaintext_bytes, "duration_ms": (r.seconds * 1000.0).round() as u64,
            "pg_server_version": r.pg_server_version, "pg_dump_version": r.pg_dump_version,
        }),
        Err(e) => failure(e),
    };
    report_completion(links, job, report).await?;
    match outcome {
        Ok(r) => tracing::info!(job.id = %id, bytes = r.ciphertext_bytes, "job succeeded"),
        Err(e) => tracing::warn!(job.id = %id, "job failed: {e}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
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

    /// A job to the directory `path` and its credentials (restore ones too).
    fn directory_job(path: &std::path::Path) -> (Value, Value) {
        let job = json!({
            "id": "job_x", "kind": "backup", "database_name": "shop",
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
        (job, credentials)
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
                credentials.clone(),
                Interrupt::never(),
                progress(),
            );
            let restore = restore_request(&settings, credentials, Interrupt::never(), progress());
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
            credentials,
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
