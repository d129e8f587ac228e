//! The control plane's operations on a destination: list, write a small object, read a
//! byte range, delete, and the list / write / read / delete probe run before a
//! destination is saved.
//!
//! Only with the `admin` feature, which the agent never enables: the agent must have no
//! way to delete a backup (retention is the control plane's alone), and every delete or
//! remove call of this crate lives under this module so a source test can hold the
//! agent to that.
//!
//! Every key is relative to the destination's prefix (the `Location` given to
//! [`Destination::connect`]) and is checked first: no empty key, no leading `/`, no
//! empty, `.` or `..` segment, no backslash or control character. A key can therefore
//! never reach outside the destination.

mod file;
mod s3;
mod sftp;

use crate::error::{Error, Result};
use crate::temp_name::random_hex;
use crate::{Location, StorageOptions};

/// The most bytes [`Destination::get_range`] returns in one call: enough for an age
/// header (a few KiB) many times over, small enough that a hostile or mistaken length
/// cannot make the control plane buffer a whole backup.
pub const MAX_RANGE_LEN: u64 = 1 << 20;

/// The largest object [`Destination::put_small`] writes (READMEs, probe objects): it is
/// sent in one request and held in memory.
pub const MAX_SMALL_OBJECT: usize = 1 << 20;

/// The largest `limit` [`Destination::list`] accepts, so that one listing stays a
/// bounded amount of memory and of requests (S3 pages hold at most 1,000 keys).
pub const MAX_LIST_LIMIT: usize = 100_000;

/// How deep [`Destination::list`] descends into directories on SFTP hosts and local
/// directories (backup keys are `<db>/<YYYY>/<MM>/<DD>/<file>`, five levels).
pub const MAX_LIST_DEPTH: usize = 8;

/// The longest key accepted (S3's limit on a whole key is 1,024 bytes).
const MAX_KEY_LEN: usize = 1024;

/// One stored object, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The key relative to the destination prefix, `/`-separated.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
}

/// What a delete found, so a retention run can record the storage outcome honestly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The object existed and was deleted.
    Deleted,
    /// There was no such object (already deleted, or never written); nothing was done.
    Absent,
}

/// A destination opened for the control plane's operations. Over SFTP it holds one SSH
/// connection for all calls; call [`Destination::close`] when done.
pub struct Destination {
    backend: Backend,
}

enum Backend {
    File(file::FileDestination),
    S3(s3::S3Destination),
    Sftp(Box<sftp::SftpDestination>),
}

impl Destination {
    /// Opens the destination `location` (a prefix: directory, bucket prefix or SFTP
    /// directory) with `options` (in-memory credentials, endpoints, pinned host key).
    /// SFTP connects and authenticates here; S3 and local directories are only
    /// checked on first use.
    pub async fn connect(location: &Location, options: &StorageOptions) -> Result<Self> {
        if let Some(policy) = &options.reach {
            check_reach(policy, location, options).await?;
        }
        let backend = match location {
            Location::File { path } => Backend::File(file::FileDestination::new(path)),
            Location::S3 { bucket, key } => {
                Backend::S3(s3::S3Destination::new(options, bucket, key)?)
            }
            Location::Sftp(target) => Backend::Sftp(Box::new(
                sftp::SftpDestination::connect(options, target).await?,
            )),
        };
        Ok(Self { backend })
    }

    /// Lists up to `limit` objects under `prefix` (relative; `""` for the whole
    /// destination), recursively (SFTP and local directories down to
    /// [`MAX_LIST_DEPTH`] levels). A result of exactly `limit` objects may be
    /// incomplete. A missing destination directory or bucket is an error; a missing
    /// `prefix` inside it lists nothing.
    pub async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<ObjectInfo>> {
        let prefix = check_prefix(prefix)?;
        if limit == 0 || limit > MAX_LIST_LIMIT {
            return Err(Error::invalid_input(format!(
                "list limit {limit} is out of range; give 1 to {MAX_LIST_LIMIT}"
            )));
        }
        match &self.backend {
            Backend::File(d) => d.list(prefix, limit).await,
            Backend::S3(d) => d.list(prefix, limit).await,
            Backend::Sftp(d) => d.list(prefix, limit).await,
        }
    }

    /// Writes a small object (at most [`MAX_SMALL_OBJECT`] bytes) under `key`, whole or
    /// not at all: S3 in one PutObject, SFTP and local directories through a temp file
    /// renamed into place. Without `overwrite` an existing object is never replaced
    /// (S3 `If-None-Match: *`, link/rename that refuse an existing name) and the call
    /// fails saying so. Missing directories below the destination are created.
    pub async fn put_small(&self, key: &str, bytes: &[u8], overwrite: bool) -> Result<()> {
        check_key(key)?;
        if bytes.len() > MAX_SMALL_OBJECT {
            return Err(Error::invalid_input(format!(
                "{} bytes is too large for a small object (at most {MAX_SMALL_OBJECT})",
                bytes.len()
            )));
        }
        match &self.backend {
            Backend::File(d) => d.put_small(key, bytes, overwrite).await,
            Backend::S3(d) => d.put_small(key, bytes, overwrite).await,
            Backend::Sftp(d) => d.put_small(key, bytes, overwrite).await,
        }
    }

    /// Reads up to `len` bytes of `key` from byte `start` (S3 ranged GET, seek + read
    /// elsewhere); fewer at the end of the object, none from beyond it. `len` must be
    /// 1 to [`MAX_RANGE_LEN`]: enough for an age header, never a whole backup.
    pub async fn get_range(&self, key: &str, start: u64, len: u64) -> Result<Vec<u8>> {
        check_key(key)?;
        if len == 0 || len > MAX_RANGE_LEN {
            return Err(Error::invalid_input(format!(
                "a ranged read of {len} bytes is out of range; give 1 to {MAX_RANGE_LEN}"
            )));
        }
        if start.checked_add(len).is_none() {
            return Err(Error::invalid_input("the range runs past 2^64 bytes"));
        }
        match &self.backend {
            Backend::File(d) => d.get_range(key, start, len).await,
            Backend::S3(d) => d.get_range(key, start, len).await,
            Backend::Sftp(d) => d.get_range(key, start, len).await,
        }
    }

    /// Deletes the object `key`, reporting whether it was there. S3 answers a delete
    /// of a missing key with success, so the object is looked up (HEAD) first.
    pub async fn delete(&self, key: &str) -> Result<DeleteOutcome> {
        check_key(key)?;
        match &self.backend {
            Backend::File(d) => d.delete(key).await,
            Backend::S3(d) => d.delete(key).await,
            Backend::Sftp(d) => d.delete(key).await,
        }
    }

    /// Whether the object `key` exists.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        match &self.backend {
            Backend::File(d) => d.exists(key).await,
            Backend::S3(d) => d.exists(key).await,
            Backend::Sftp(d) => d.exists(key).await,
        }
    }

    /// Ends the SFTP connection (nothing to do for S3 and local directories).
    pub async fn close(self) {
        if let Backend::Sftp(d) = self.backend {
            d.close().await;
        }
    }
}

/// Refuses a destination the reach policy does not allow, before any connection: its
/// directory, its S3 endpoint's addresses (the S3 client's resolver checks again on
/// every connect), its SFTP host's addresses (checked again when connecting).
async fn check_reach(
    policy: &crate::reach::ReachPolicy,
    location: &Location,
    options: &StorageOptions,
) -> Result<()> {
    match location {
        Location::File { path } => policy.check_directory(path).map(|_| ()),
        Location::S3 { .. } => match options.s3_endpoint.as_deref() {
            Some(endpoint) => {
                let host = crate::reach::url_host(endpoint).ok_or_else(|| {
                    Error::invalid_input("the S3 endpoint must be an http(s):// URL with a host")
                })?;
                policy.resolve(host, 0).await.map(|_| ())
            }
            None => Ok(()),
        },
        Location::Sftp(target) => policy.resolve(&target.host, target.port).await.map(|_| ()),
    }
}

/// A step of [`probe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeStep {
    /// Connect and list the destination.
    List,
    /// Write the probe object without overwriting.
    Write,
    /// Read the probe object back and compare.
    Read,
    /// Delete the probe object and check that it is gone.
    Delete,
}

impl ProbeStep {
    /// The step's name for people and for API responses.
    pub fn name(self) -> &'static str {
        match self {
            Self::List => "list",
            Self::Write => "write",
            Self::Read => "read",
            Self::Delete => "delete",
        }
    }
}

/// What happened in one probe step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// The step worked.
    Ok,
    /// The step failed.
    Failed {
        /// What kind of failure, for people who may only see a fixed message (tenants).
        class: crate::FailureClass,
        /// What happened and how to fix it (no secrets, but possibly the remote
        /// server's own words): for the operator's log and for local tools.
        detail: String,
    },
    /// The step did not run because an earlier one failed.
    NotRun,
}

/// One probe step and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// Which step.
    pub step: ProbeStep,
    /// How it went.
    pub outcome: StepOutcome,
}

/// The outcome of [`probe`]: the four steps in order, each ok, failed or not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// The probe object's key, relative to the destination.
    pub probe_key: String,
    /// List, write, read, delete, in that order.
    pub steps: Vec<StepReport>,
}

impl ProbeReport {
    /// True when every step worked: the destination can be saved.
    pub fn succeeded(&self) -> bool {
        self.steps.iter().all(|s| s.outcome == StepOutcome::Ok)
    }

    /// The first failed step and its detail.
    pub fn first_failure(&self) -> Option<(ProbeStep, &str)> {
        self.steps.iter().find_map(|s| match &s.outcome {
            StepOutcome::Failed { detail, .. } => Some((s.step, detail.as_str())),
            _ => None,
        })
    }

    /// The outcome of `step`.
    pub fn outcome(&self, step: ProbeStep) -> &StepOutcome {
        self.steps
            .iter()
            .find(|s| s.step == step)
            .map_or(&StepOutcome::NotRun, |s| &s.outcome)
    }
}

/// Checks that the control plane can list, write, read back and delete at `location`
/// with `options`, as it must before saving a destination (it writes READMEs, reads
/// age headers and deletes for retention there).
///
/// Writes a unique `.dbcrate-probe-<random>` object at the top of the destination
/// (never overwriting), reads it back, compares, deletes it and checks that it is
/// gone. A failed step stops the later ones, except that once the write has worked the
/// delete always runs, so a failed read leaves nothing behind; a failed delete is
/// reported (and the object's key is in the report).
pub async fn probe(location: &Location, options: &StorageOptions) -> ProbeReport {
    let mut report = ProbeReport {
        probe_key: String::new(),
        steps: [
            ProbeStep::List,
            ProbeStep::Write,
            ProbeStep::Read,
            ProbeStep::Delete,
        ]
        .into_iter()
        .map(|step| StepReport {
            step,
            outcome: StepOutcome::NotRun,
        })
        .collect(),
    };
    let set = |report: &mut ProbeReport, step: ProbeStep, outcome: Result<()>| {
        let outcome = match outcome {
            Ok(()) => StepOutcome::Ok,
            Err(e) => StepOutcome::Failed {
                class: e.class(),
                detail: e.to_string(),
            },
        };
        if let Some(s) = report.steps.iter_mut().find(|s| s.step == step) {
            s.outcome = outcome;
        }
    };
    let token = match random_hex(8) {
        Ok(t) => t,
        Err(e) => {
            set(&mut report, ProbeStep::List, Err(e));
            return report;
        }
    };
    let key = format!(".dbcrate-probe-{token}");
    report.probe_key.clone_from(&key);
    let body = format!(
        "dbcrate destination probe {token}\nWritten and deleted by the dbcrate control plane \
         to check access; safe to delete if it remains.\n"
    );

    let destination = match Destination::connect(location, options).await {
        Ok(d) => d,
        Err(e) => {
            set(&mut report, ProbeStep::List, Err(e));
            return report;
        }
    };
    let listed = destination.list("", 10).await.map(|_| ());
    let listed_ok = listed.is_ok();
    set(&mut report, ProbeStep::List, listed);
    if !listed_ok {
        destination.close().await;
        return report;
    }

    let written = destination.put_small(&key, body.as_bytes(), false).await;
    let written_ok = written.is_ok();
    set(&mut report, ProbeStep::Write, written);
    if !written_ok {
        destination.close().await;
        return report;
    }

    let read = match destination.get_range(&key, 0, body.len() as u64 + 1).await {
        Ok(bytes) if bytes == body.as_bytes() => Ok(()),
        Ok(bytes) => Err(Error::storage(format!(
            "reading the probe object back gave {} bytes that differ from the {} written; \
             the storage does not return what was stored",
            bytes.len(),
            body.len()
        ))),
        Err(e) => Err(e),
    };
    set(&mut report, ProbeStep::Read, read);

    // The delete runs even after a failed read: the probe must leave nothing behind.
    let deleted = match destination.delete(&key).await {
        Ok(DeleteOutcome::Deleted) => match destination.exists(&key).await {
            Ok(false) => Ok(()),
            Ok(true) => Err(Error::storage(format!(
                "the storage accepted the delete of {key} but the object is still there; \
                 the credentials may lack delete permission — remove {key} by hand"
            ))),
            Err(e) => Err(e.note("could not check that the probe object is gone")),
        },
        Ok(DeleteOutcome::Absent) => Err(Error::storage(format!(
            "the probe object {key} had vanished before the delete; the storage does not \
             keep what is written"
        ))),
        Err(e) => Err(e.note(&format!(
            "the probe object {key} remains; grant delete permission (retention needs it) \
             and remove it by hand"
        ))),
    };
    set(&mut report, ProbeStep::Delete, deleted);
    destination.close().await;
    report
}

/// Checks a key relative to the destination; see the module documentation.
fn check_key(key: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::invalid_input(format!(
            "object key {key:?} refused: {why}; keys are relative to the destination, \
             like \"app/2026/01/02/file\""
        ))
    };
    if key.is_empty() {
        return Err(bad("it is empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(bad(&format!("it is longer than {MAX_KEY_LEN} bytes")));
    }
    if key.starts_with('/') {
        return Err(bad("it is an absolute path"));
    }
    if key.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(bad("it holds a backslash or a control character"));
    }
    for segment in key.split('/') {
        match segment {
            "" => return Err(bad("it has an empty segment (// or a trailing /)")),
            "." | ".." => return Err(bad("it has a . or .. segment")),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a list prefix: `""` (everything), or a key with an optional trailing `/`.
/// Returns it without the trailing `/`.
fn check_prefix(prefix: &str) -> Result<&str> {
    let trimmed = prefix.strip_suffix('/').unwrap_or(prefix);
    if trimmed.is_empty() && prefix.is_empty() {
        return Ok("");
    }
    check_key(trimmed)?;
    Ok(trimmed)
}

/// `base/key` for a `/`-separated base that may be empty or end in `/`.
fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_string()
    } else if base.ends_with('/') {
        format!("{base}{key}")
    } else {
        format!("{base}/{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_leave_the_destination_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "..",
            "../x",
            "a/../../x",
            "a//b",
            "a/",
            "./a",
            "a/./b",
            "a\\..\\b",
            "a\0b",
            "a\nb",
        ] {
            let err = check_key(bad).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput, "{bad:?}");
            assert!(err.to_string().contains("refused"), "{err}");
        }
        for good in [
            "README.txt",
            "app/2026/01/02/x.pgdump.zst.age",
            ".dbcrate-probe-1",
            "a..b",
        ] {
            check_key(good).unwrap();
        }
        assert!(check_key(&"a".repeat(2000)).is_err());
    }

    #[test]
    fn list_prefixes() {
        assert_eq!(check_prefix("").unwrap(), "");
        assert_eq!(check_prefix("app/").unwrap(), "app");
        assert_eq!(check_prefix("app/2026").unwrap(), "app/2026");
        for bad in ["/", "//", "/app", "../app", "app//"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn joins() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/srv/x", "a/b"), "/srv/x/a/b");
        assert_eq!(join("/srv/x/", "a"), "/srv/x/a");
    }

    #[test]
    fn probe_report_helpers() {
        let report = ProbeReport {
            probe_key: ".dbcrate-probe-x".into(),
            steps: vec![
                StepReport {
                    step: ProbeStep::List,
                    outcome: StepOutcome::Ok,
                },
                StepReport {
                    step: ProbeStep::Write,
                    outcome: StepOutcome::Failed {
                        class: crate::FailureClass::PermissionDenied,
                        detail: "denied".into(),
                    },
                },
            ],
        };
        assert!(!report.succeeded());
        assert_eq!(report.first_failure(), Some((ProbeStep::Write, "denied")));
        assert_eq!(report.outcome(ProbeStep::Delete), &StepOutcome::NotRun);
    }
}
