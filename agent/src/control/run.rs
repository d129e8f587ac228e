//! `dbcrate-agent run`: the long-running agent.
//!
//! It checks its identity on disk (modes, owner), then loops: renews its certificate at
//! the fraction of its lifetime the control plane sets (80% by default) with a fresh key
//! (failures retried with backoff; an expired certificate stops the agent with a
//! message to re-enrol), and fetches its
//! organisation's CRL every interval the control plane sets, stopping when a verified
//! CRL lists it or the control plane refuses its certificate as revoked (a CRL older
//! than one it accepted before is refused and logged as an error). Between those
//! it long-polls for jobs and runs each (see `jobs`). It never opens a listening socket.

use super::identity::{self, Identity};
use super::jobs::{JobSettings, JOB_ZSTD_LEVEL};
use super::link::{long_poll_timeout, Link};
use super::revocation::{self, Verdict};
use super::roots::DirectoryRoots;
use super::{keys, tls};
use crate::error::{Error, ErrorKind, Reason, Result};
use crate::interrupt::Interrupt;
use crate::pipeline::Compression;
use crate::registry::RegistryConfig;
use dbcrate_core::registry::minisign::PublicKey;
use dbcrate_core::wire;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// What `dbcrate-agent run` is started with.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The agent's data directory (identity, registry state, fetched tools).
    pub data_dir: PathBuf,
    /// Host-managed pg_dump/pg_restore for jobs, instead of the control plane's registry.
    pub pg_bin_dir: Option<PathBuf>,
    /// Ignore the control plane's registry (jobs use PATH).
    pub no_registry: bool,
    /// CA certificate(s) for a private registry.
    pub registry_ca: Option<PathBuf>,
    /// The directories under which jobs may read and write directory destinations
    /// (`--directory-root`); none: directory destinations are refused.
    pub directory_roots: Vec<PathBuf>,
    /// libzstd worker threads for backups (`--zstd-threads`); `None`: one per core.
    pub zstd_threads: Option<u32>,
    /// Managed restores in parallel from a staged dump (`--restore-jobs`); `None`: one
    /// stream in one transaction.
    pub parallel_restore: Option<crate::pipeline::ParallelRestore>,
}

/// Unix seconds now.
pub fn now() -> i64 {
    dbcrate_core::time::unix_now()
}

/// The longest wait between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

struct Agent {
    identity: Identity,
    link: Link,
    /// The newest link, for a job that outlives a renewal.
    links: tokio::sync::watch::Sender<Link>,
    crl_interval: Duration,
    /// At which fraction of its lifetime the certificate is renewed.
    renew_at_fraction: f64,
    /// How long a job long poll may take (the control plane holds it for its poll
    /// interval).
    poll_timeout: Duration,
    options: RunOptions,
    /// How jobs get their tools and report progress (from the control plane's config).
    jobs: JobSettings,
}

impl Agent {
    fn connect(
        identity: Identity,
        options: RunOptions,
        directory_roots: DirectoryRoots,
    ) -> Result<Self> {
        let link = Link::new(&identity.link.control_url, tls::agent_config(&identity)?)?;
        let (links, _) = tokio::sync::watch::channel(link.clone());
        Ok(Self {
            identity,
            link,
            links,
            crl_interval: Duration::from_secs(wire::DEFAULT_CRL_INTERVAL_SECS),
            renew_at_fraction: wire::DEFAULT_RENEW_AT_FRACTION,
            poll_timeout: long_poll_timeout(Duration::from_secs(wire::DEFAULT_POLL_INTERVAL_SECS)),
            jobs: JobSettings {
                pg_bin_dir: options.pg_bin_dir.clone(),
                directory_roots,
                compression: Compression::new(JOB_ZSTD_LEVEL, options.zstd_threads),
                parallel_restore: options.parallel_restore.clone(),
                ..JobSettings::default()
            },
            options,
        })
    }

    fn renew_at(&self) -> i64 {
        let l = &self.identity.link;
        renew_at(l.not_before, l.not_after, self.renew_at_fraction)
    }

    fn check_expiry(&self) -> Result<()> {
        if now() >= self.identity.link.not_after {
            return Err(Error::because(
                Reason::Expired,
                "this agent's certificate has expired: re-enrol with `dbcrate-agent enroll` \
                 (remove the identity directory first)",
            ));
        }
        Ok(())
    }

    async fn fetch_config(&mut self) -> Result<()> {
        let config: wire::ConfigAnswer = self.link.get(wire::paths::CONFIG).await?;
        let me = &self.identity.link;
        if (config.org_id.as_str(), config.agent_id.as_str())
            != (me.org_id.as_str(), me.agent_id.as_str())
        {
            return Err(Error::identity(format!(
                "the control plane took this agent for {} of {}, but it is {} of {}",
                config.agent_id, config.org_id, me.agent_id, me.org_id
            )));
        }
        self.crl_interval = Duration::from_secs(config.crl_interval_secs.max(1));
        self.jobs.heartbeat = Duration::from_secs(config.heartbeat_secs.clamp(1, 60));
        self.poll_timeout = long_poll_timeout(Duration::from_secs(config.poll_interval_secs));
        let fraction = config.renew_at_fraction;
        self.renew_at_fraction = if fraction > 0.0 && fraction < 1.0 {
            fraction
        } else {
            let default = wire::DEFAULT_RENEW_AT_FRACTION;
            tracing::warn!(
                "the control plane's renew_at_fraction {fraction} is not between 0 and 1; \
                 renewing at {default}"
            );
            default
        };
        // Settings this agent cannot use fail the jobs that need them, with the reason,
        // rather than keep the agent from connecting; `--pg-bin-dir` and `--no-registry`
        // need none.
        self.jobs.registry = None;
        self.jobs.registry_problem = None;
        if self.jobs.pg_bin_dir.is_none() && !self.options.no_registry {
            match self.registry(config.registry.as_ref()) {
                Ok(registry) => self.jobs.registry = registry,
                Err(e) => {
                    tracing::error!(
                        "{e}; jobs fail until that is fixed and this agent restarted \
                         (or run it with --pg-bin-dir or --no-registry)"
                    );
                    self.jobs.registry_problem = Some(e.to_string());
                }
            }
        }
        tracing::info!(
            agent.id = %self.identity.link.agent_id,
            org.recipient = %config.recipient,
            crl_interval_secs = self.crl_interval.as_secs(),
            renew_at_fraction = self.renew_at_fraction,
            registry = self.jobs.registry.as_ref().map_or("none", |r| r.url.as_str()),
            pg_bin_dir = ?self.jobs.pg_bin_dir,
            directory_roots = ?self.jobs.directory_roots.roots(),
            zstd_threads = self.jobs.compression.threads,
            restore_jobs = self.jobs.parallel_restore.as_ref().map_or(1, |p| p.jobs),
            "connected to the control plane"
        );
        Ok(())
    }

    /// The registry the control plane names, if any, with this agent's data directory
    /// and CA file.
    fn registry(&self, given: Option<&wire::RegistrySettings>) -> Result<Option<RegistryConfig>> {
        let Some(given) = given else {
            return Ok(None);
        };
        let unusable = |what: String| {
            Error::new(
                ErrorKind::Control,
                format!("the control plane's registry settings are unusable: {what}"),
            )
        };
        let url = Some(given.url.as_str())
            .filter(|u| u.starts_with("https://"))
            .ok_or_else(|| unusable("no https:// url".into()))?;
        if given.root_keys.is_empty() {
            return Err(unusable("no root keys".into()));
        }
        let root_keys = given
            .root_keys
            .iter()
            .map(|k| PublicKey::parse(k).map_err(|e| unusable(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(RegistryConfig {
            url: url.to_string(),
            root_keys,
            ca_file: self.options.registry_ca.clone(),
            data_dir: self.options.data_dir.clone(),
        }))
    }

    async fn renew(&mut self) -> Result<()> {
        let (key_pem, csr) = keys::new_key_and_csr()?;
        let answer: wire::RenewAnswer = self
            .link
            .post(wire::paths::RENEW, &wire::RenewRequest { csr })
            .await?;
        let not_after = answer.not_after;
        self.identity
            .replace(key_pem, answer.certificate_chain, now(), not_after)?;
        self.link = Link::new(
            &self.identity.link.control_url,
            tls::agent_config(&self.identity)?,
        )?;
        self.links.send_replace(self.link.clone());
        tracing::info!(not_after, "certificate renewed");
        Ok(())
    }

    /// Fetches and checks the CRL; one that verifies and is not older than the newest
    /// accepted so far becomes the new floor (see `revocation`).
    async fn check_crl(&mut self) -> Result<Verdict> {
        let crl = self.link.get_bytes(wire::paths::CRL).await?;
        revocation::check_and_remember(&mut self.identity, &crl, now())
    }
}

/// What the agent's one piece of work ended with.
enum Done {
    /// A long poll answered: a job, or none.
    Polled(Result<Option<wire::Job>>),
    /// A job ran to its end (or could not be run or reported).
    Finished(Result<()>),
}

/// The agent's current piece of work.
type Work = std::pin::Pin<Box<dyn std::future::Future<Output = Done>>>;

/// One long poll for the next job.
async fn poll(link: Link, timeout: Duration) -> Done {
    let answer = link
        .get_within::<wire::NextJobAnswer>(wire::paths::NEXT_JOB, timeout)
        .await;
    Done::Polled(answer.map(|a| a.job))
}

/// When a certificate valid from `not_before` to `not_after` is renewed: at `fraction`
/// of its lifetime.
fn renew_at(not_before: i64, not_after: i64, fraction: f64) -> i64 {
    not_before + ((not_after - not_before) as f64 * fraction) as i64
}

/// Whether a failure means this agent has been revoked: it stops.
fn revoked(e: &Error) -> bool {
    e.reason() == Some(Reason::Revoked)
}

/// Whether a failure means this agent's certificate has expired: it stops.
fn expired(e: &Error) -> bool {
    e.reason() == Some(Reason::Expired)
}

/// What `run` ends with when this agent has been revoked (`detail`: how it learnt).
fn stop_revoked(detail: &str) -> Error {
    Error::because(
        Reason::Revoked,
        format!(
        "this agent has been revoked ({detail}); it stops and runs no jobs. Re-enrol this host \
         if that was a mistake"
        ),
    )
}

/// Runs until interrupted (Ok) or until the identity is revoked, expired or unusable
/// (Err). A directory root that cannot be used stops it before anything else.
pub async fn run(options: &RunOptions, mut interrupt: Interrupt) -> Result<serde_json::Value> {
    let directory_roots = DirectoryRoots::resolve(&options.directory_roots)?;
    let identity = identity::load(&options.data_dir)?;
    let mut agent = Agent::connect(identity, options.clone(), directory_roots)?;
    agent.check_expiry()?;
    let mut backoff = Duration::from_secs(1);
    while let Err(e) = agent.fetch_config().await {
        if revoked(&e) {
            return Err(stop_revoked(&e.to_string()).with_source(e));
        }
        if e.kind() == ErrorKind::Identity {
            return Err(e);
        }
        tracing::warn!("cannot reach the control plane, retrying in {backoff:?}: {e}");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = interrupt.raised() => return Ok(json!({ "stopped": "signal" })),
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        agent.check_expiry()?;
    }
    let mut next_crl = tokio::time::Instant::now();
    let mut renew_backoff = Duration::from_secs(1);
    let mut next_renew_try = agent.renew_at();
    // One piece of work at a time, living across loop turns: the job long poll (a timer
    // firing meanwhile must not cancel a request the control plane may already have
    // answered with a claimed job), or the job it returned. Renewal and CRL checks go on
    // while a job runs; the job takes the newest link for each request.
    let mut work: Work = Box::pin(poll(agent.link.clone(), agent.poll_timeout));
    loop {
        agent.check_expiry()?;
        let until_renew = Duration::from_secs((next_renew_try - now()).max(0) as u64);
        let renew_deadline = tokio::time::Instant::now() + until_renew;
        tokio::select! {
            () = interrupt.raised() => return Ok(json!({ "stopped": "signal" })),
            done = &mut work => {
                match done {
                    Done::Polled(Ok(Some(job))) => {
                        let links = agent.links.subscribe();
                        let interrupt = interrupt.clone();
                        let settings = agent.jobs.clone();
                        work = Box::pin(async move {
                            Done::Finished(super::jobs::run(&links, &settings, &job, interrupt).await)
                        });
                        continue;
                    }
                    Done::Polled(Ok(None)) | Done::Finished(Ok(())) => {}
                    Done::Polled(Err(e)) | Done::Finished(Err(e)) if revoked(&e) => {
                        return Err(stop_revoked(&e.to_string()).with_source(e))
                    }
                    Done::Finished(Err(e)) => tracing::warn!("a job could not be run or reported: {e}"),
                    Done::Polled(Err(e)) => {
                        tracing::warn!("polling for jobs failed: {e}");
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_secs(2)) => {}
                            () = interrupt.raised() => return Ok(json!({ "stopped": "signal" })),
                        }
                    }
                }
                work = Box::pin(poll(agent.link.clone(), agent.poll_timeout));
            }
            () = tokio::time::sleep_until(next_crl) => {
                match agent.check_crl().await {
                    Ok(Verdict::Good) => tracing::debug!("CRL checked: not revoked"),
                    Ok(Verdict::Revoked) => {
                        return Err(stop_revoked("its serial is in the organisation's signed CRL"))
                    }
                    Err(e) if revoked(&e) => return Err(stop_revoked(&e.to_string()).with_source(e)),
                    Err(e) if expired(&e) => return Err(e),
                    // A CRL refused (altered, foreign, expired, older than one accepted
                    // before): nothing changes, the last verdict (not revoked, or the
                    // agent would have stopped) stands; said at error level, as it may
                    // be an attack.
                    Err(e) if e.kind() == ErrorKind::Integrity => tracing::error!("{e}"),
                    Err(e) => tracing::warn!("CRL check failed, trying again next interval: {e}"),
                }
                next_crl = tokio::time::Instant::now() + agent.crl_interval;
            }
            () = tokio::time::sleep_until(renew_deadline) => {
                match agent.renew().await {
                    Ok(()) => {
                        renew_backoff = Duration::from_secs(1);
                        next_renew_try = agent.renew_at();
                    }
                    Err(e) if revoked(&e) => return Err(stop_revoked(&e.to_string()).with_source(e)),
                    Err(e) => {
                        tracing::warn!("certificate renewal failed, retrying in {renew_backoff:?}: {e}");
                        next_renew_try = now() + renew_backoff.as_secs() as i64;
                        renew_backoff = (renew_backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{expired, renew_at, revoked, stop_revoked};
    use crate::error::{Error, ErrorKind, Reason};

    #[test]
    fn revoked_is_decided_by_the_reason_not_the_words() {
        // The reason, with words that never say so: revoked.
        assert!(revoked(&Error::because(
            Reason::Revoked,
            "GET /agent/v1/config: the TLS layer said no"
        )));
        // The words, an identity failure even, without the reason: not revoked (a data
        // directory called /srv/revoked-hosts must not stop the agent).
        for e in [
            Error::identity("this agent has been revoked"),
            Error::identity("cannot write /srv/revoked-hosts/identity/cert.pem: disk full"),
            Error::new(ErrorKind::Control, "revoked"),
            Error::because(Reason::Expired, "revoked"),
        ] {
            assert!(!revoked(&e), "{e}");
        }
        // What `run` stops with is a revocation too, through any further context.
        let stop = stop_revoked("its serial is in the organisation's signed CRL");
        assert!(revoked(&stop.context("run")));
        assert_eq!(stop_revoked("x").kind(), ErrorKind::Identity);
    }

    #[test]
    fn expired_is_decided_by_the_reason_not_the_words() {
        assert!(expired(&Error::because(
            Reason::Expired,
            "GET /agent/v1/crl: the certificate's time is up"
        )));
        for e in [
            Error::identity("this agent's certificate has expired: re-enrol"),
            // A CRL refused for being expired is the CRL's problem, not this agent's.
            Error::integrity("refusing the CRL the control plane sent: it has expired"),
            Error::because(Reason::Revoked, "expired"),
        ] {
            assert!(!expired(&e), "{e}");
        }
    }

    #[test]
    fn renewal_comes_at_the_fraction_the_control_plane_sets() {
        // The default is the agent's old fixed 4/5.
        for (not_before, not_after) in [(0, 10), (1_000, 1_007), (5, 86_405), (0, 3_600)] {
            let lifetime = not_after - not_before;
            assert_eq!(
                renew_at(
                    not_before,
                    not_after,
                    dbcrate_core::wire::DEFAULT_RENEW_AT_FRACTION
                ),
                not_before + lifetime * 4 / 5,
                "{not_before}..{not_after}"
            );
        }
        assert_eq!(renew_at(100, 200, 0.5), 150);
        assert_eq!(renew_at(0, 86_400, 0.9), 77_760);
    }
}
