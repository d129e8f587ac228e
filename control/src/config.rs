//! Where the control plane keeps its state, from flags and the environment.
//!
//! `DATABASE_URL` chooses the database: unset means the embedded SQLite file
//! `<data dir>/control.db`; a `postgres://` URL means PostgreSQL (several replicas).
//! The data directory comes from `--data-dir` or `DBCRATE_DATA_DIR` (default
//! `/var/lib/dbcrate-control`) and is created with mode 0700.

mod agent_settings;
mod metrics_settings;
pub use agent_settings::AgentSettings;
pub use metrics_settings::{MetricsSettings, DEFAULT_METRICS_LISTEN};

use crate::error::{Error, Result};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/dbcrate-control";

/// The resolved locations.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data directory (SQLite file, generated TLS material).
    pub data_dir: PathBuf,
    /// The database URL (never printed whole: it may hold a password).
    pub database_url: String,
}

impl Config {
    /// Resolves the configuration; `data_dir` is the `--data-dir` flag.
    pub fn resolve(data_dir: Option<PathBuf>) -> Self {
        let data_dir = data_dir
            .or_else(|| std::env::var_os("DBCRATE_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = std::env::var("DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| {
                format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.join("control.db").display()
                )
            });
        Self {
            data_dir,
            database_url,
        }
    }

    /// Whether the database is the embedded SQLite file.
    pub fn is_embedded(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// Creates the data directory (0700) if needed and refuses one others can read.
    pub fn ensure_data_dir(&self) -> Result<()> {
        let dir = &self.data_dir;
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    Error::internal(format!(
                        "cannot create data directory {}: {e}",
                        dir.display()
                    ))
                })?;
        }
        check_private_dir(dir)
    }

    /// The database URL with any password replaced, for messages.
    pub fn database_for_display(&self) -> String {
        mask_password(&self.database_url)
    }
}

/// Where `serve` listens unless `DBCRATE_LISTEN` says otherwise: loopback only, so a
/// fresh install is not on the network before someone decides it should be.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8443";

/// Where the agent listener (mutual TLS) listens unless `DBCRATE_AGENT_LISTEN` says
/// otherwise.
pub const DEFAULT_AGENT_LISTEN: &str = "127.0.0.1:8444";

fn env_addr(name: &str, default: &str) -> Result<std::net::SocketAddr> {
    let text = std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_string());
    text.parse().map_err(|_| {
        Error::internal(format!(
            "{name}={text:?} is not an address: use IP:PORT, e.g. 0.0.0.0:8443"
        ))
    })
}

fn env_secs(name: &str, default: i64, range: std::ops::RangeInclusive<i64>) -> Result<i64> {
    match std::env::var(name).ok().filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|v| range.contains(v))
            .ok_or_else(|| {
                Error::internal(format!(
                    "{name}={text:?} must be a number of seconds from {} to {}",
                    range.start(),
                    range.end()
                ))
            }),
    }
}

impl Config {
    /// The metrics listener (`DBCRATE_METRICS_LISTEN`, `DBCRATE_METRICS_TOKEN_FILE`).
    pub fn metrics_settings(&self) -> Result<MetricsSettings> {
        let listen = std::env::var("DBCRATE_METRICS_LISTEN").ok();
        let token_file = std::env::var_os("DBCRATE_METRICS_TOKEN_FILE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        metrics_settings::metrics_settings(listen.as_deref(), token_file.as_deref())
    }

    /// The agent listener's address (`DBCRATE_AGENT_LISTEN`).
    pub fn agent_listen_addr(&self) -> Result<std::net::SocketAddr> {
        env_addr("DBCRATE_AGENT_LISTEN", DEFAULT_AGENT_LISTEN)
    }

    /// Agent certificate lifetime and intervals: `DBCRATE_AGENT_CERT_LIFETIME_SECS`
    /// (default a day), `DBCRATE_AGENT_CRL_INTERVAL_SECS` (default 5 minutes),
    /// `DBCRATE_AGENT_POLL_INTERVAL_SECS` (default 30 s),
    /// `DBCRATE_AGENT_HEARTBEAT_SECS` (default 20 s; at most 60, half the job lease),
    /// `DBCRATE_AGENT_MAX_CONNECTION_AGE_SECS` (default 10 minutes).
    pub fn agent_settings(&self) -> Result<AgentSettings> {
        let defaults = AgentSettings::default();
        let registry_url = std::env::var("DBCRATE_REGISTRY_URL")
            .ok()
            .filter(|v| !v.is_empty());
        let registry_root_keys: Vec<String> = std::env::var("DBCRATE_REGISTRY_ROOT_KEYS")
            .unwrap_or_default()
            .split([',', ' ', '\n'])
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(String::from)
            .collect();
        if let Some(url) = &registry_url {
            if !url.starts_with("https://") || registry_root_keys.is_empty() {
                return Err(Error::internal(
                    "DBCRATE_REGISTRY_URL must be an https:// URL and needs \
                     DBCRATE_REGISTRY_ROOT_KEYS (the registry's pinned root public keys)",
                ));
            }
            for key in &registry_root_keys {
                dbcrate_core::registry::minisign::PublicKey::parse(key).map_err(|e| {
                    Error::internal(format!(
                        "DBCRATE_REGISTRY_ROOT_KEYS: {e} (give the RW… line of the registry's \
                         root-….pub files, separated by commas)"
                    ))
                })?;
            }
        }
        Ok(AgentSettings {
            registry_url,
            registry_root_keys,
            cert_lifetime_secs: env_secs(
                "DBCRATE_AGENT_CERT_LIFETIME_SECS",
                defaults.cert_lifetime_secs,
                10..=30 * 86_400,
            )?,
            crl_interval_secs: env_secs(
                "DBCRATE_AGENT_CRL_INTERVAL_SECS",
                defaults.crl_interval_secs,
                1..=86_400,
            )?,
            poll_interval_secs: env_secs(
                "DBCRATE_AGENT_POLL_INTERVAL_SECS",
                defaults.poll_interval_secs,
                1..=3600,
            )?,
            heartbeat_secs: env_secs(
                "DBCRATE_AGENT_HEARTBEAT_SECS",
                defaults.heartbeat_secs,
                1..=crate::backups::jobs::LEASE_SECS / 2,
            )?,
            max_connection_age_secs: env_secs(
                "DBCRATE_AGENT_MAX_CONNECTION_AGE_SECS",
                defaults.max_connection_age_secs,
                1..=3600,
            )?,
            public_url: agent_public_url()?,
            ..defaults
        })
    }
}

/// `DBCRATE_AGENT_PUBLIC_URL`: how agents reach the agent listener when that is not the
/// address it binds (a host name, a load balancer), for the dashboard's enrolment
/// command. An https:// URL without a path.
fn agent_public_url() -> Result<Option<String>> {
    let Some(url) = std::env::var("DBCRATE_AGENT_PUBLIC_URL")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let host = url.strip_prefix("https://").unwrap_or_default();
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    if host.is_empty() || !host.trim_end_matches('/').chars().all(plain) {
        return Err(Error::internal(format!(
            "DBCRATE_AGENT_PUBLIC_URL {url:?} must be https://HOST[:PORT], the address agents              use to reach the agent listener"
        )));
    }
    Ok(Some(url.trim_end_matches('/').to_string()))
}

impl Config {
    /// Where the control plane may reach for tenants (probes, READMEs, header reads,
    /// retention deletes): `DBCRATE_OUTBOUND_ALLOW`, networks allowed besides public
    /// addresses (comma-separated CIDR, e.g. `10.20.0.0/16,127.0.0.1/32`), and
    /// `DBCRATE_DIRECTORY_ROOTS`, the directories under which directory destinations may
    /// live (comma-separated absolute paths that exist). Both default to none: only public
    /// addresses, and no directory destinations.
    pub fn reach_policy(&self) -> Result<dbcrate_storage::reach::ReachPolicy> {
        let list = |name: &str| -> Vec<String> {
            std::env::var(name)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
                .collect()
        };
        let networks = list("DBCRATE_OUTBOUND_ALLOW")
            .iter()
            .map(|n| dbcrate_storage::reach::Network::parse(n))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::internal(format!("DBCRATE_OUTBOUND_ALLOW: {e}")))?;
        let roots: Vec<PathBuf> = list("DBCRATE_DIRECTORY_ROOTS")
            .into_iter()
            .map(PathBuf::from)
            .collect();
        dbcrate_storage::reach::ReachPolicy::new(networks, &roots)
            .map_err(|e| Error::internal(format!("DBCRATE_DIRECTORY_ROOTS: {e}")))
    }
}

impl Config {
    /// The address to listen on (`DBCRATE_LISTEN`, default [`DEFAULT_LISTEN`]).
    pub fn listen_addr(&self) -> Result<std::net::SocketAddr> {
        env_addr("DBCRATE_LISTEN", DEFAULT_LISTEN)
    }

    /// The TLS certificate and key: `DBCRATE_TLS_CERT_FILE` and `DBCRATE_TLS_KEY_FILE`
    /// (both or neither), else a self-signed pair in `<data dir>/tls/`, made on first
    /// start with extra names from `DBCRATE_TLS_HOSTNAMES` (comma-separated).
    pub fn tls_source(&self) -> Result<crate::server::tls::TlsSource> {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let hostnames = std::env::var("DBCRATE_TLS_HOSTNAMES")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(String::from)
            .collect();
        match (var("DBCRATE_TLS_CERT_FILE"), var("DBCRATE_TLS_KEY_FILE")) {
            (Some(cert_file), Some(key_file)) => Ok(crate::server::tls::TlsSource {
                cert_file,
                key_file,
                generate_if_missing: false,
                hostnames,
            }),
            (None, None) => Ok(crate::server::tls::TlsSource {
                cert_file: self.data_dir.join("tls/cert.pem"),
                key_file: self.data_dir.join("tls/key.pem"),
                generate_if_missing: true,
                hostnames,
            }),
            _ => Err(Error::internal(
                "set both DBCRATE_TLS_CERT_FILE and DBCRATE_TLS_KEY_FILE, or neither (for a \
                 self-signed certificate in the data directory)",
            )),
        }
    }
}

/// A data directory readable by group or others would expose the SQLite database.
fn check_private_dir(dir: &Path) -> Result<()> {
    let mode = std::fs::metadata(dir)
        .map_err(|e| Error::internal(format!("cannot read data directory {}: {e}", dir.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(Error::internal(format!(
            "data directory {} is accessible to group or others: run `chmod 700 {}`",
            dir.display(),
            dir.display()
        )));
    }
    Ok(())
}

/// `scheme://user:***@host/…` for `scheme://user:password@host/…`.
pub fn mask_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            let masked = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::mask_password;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_password("postgres://app:s3cret@db:5432/control?sslmode=require"),
            "postgres://app:***@db:5432/control?sslmode=require"
        );
        assert_eq!(
            mask_password("postgres://app@db/control"),
            "postgres://app@db/control"
        );
        assert_eq!(
            mask_password("sqlite:///var/lib/x.db"),
            "sqlite:///var/lib/x.db"
        );
    }
}
