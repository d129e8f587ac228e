//! Parsing destination and object URLs, and the options that go with them.

use crate::error::{Error, Result};
use dbcrate_core::secret::SecretString;
use std::path::PathBuf;

/// A place in storage: a prefix (backup destination) or an object (restore source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `file:///absolute/path`
    File {
        /// The directory (destination) or file (source).
        path: PathBuf,
    },
    /// `s3://bucket/key-or-prefix`
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix (destination) or object key (source), without a leading slash.
        key: String,
    },
    /// `sftp://user@host:port/absolute/path`
    Sftp(SftpTarget),
}

/// Where on an SFTP host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SftpTarget {
    /// Login name.
    pub user: String,
    /// Host name or address.
    pub host: String,
    /// TCP port (22 by default).
    pub port: u16,
    /// Absolute path of the directory (destination) or file (source).
    pub path: String,
}

/// Settings for reaching storage, from the command line and the environment, or from
/// memory when the control plane hands a job its destination's credentials.
///
/// The in-memory credential fields, when set, replace the environment (S3), the key
/// file (SFTP) and the known_hosts file (SFTP): credentials held sealed by the control
/// plane then never touch a disk, a command line or an environment block. Not `Clone`
/// (secrets are not copied around); `Debug` shows the secrets as `<redacted>`.
#[derive(Debug, Default)]
pub struct StorageOptions {
    /// S3 endpoint URL; AWS's regional endpoint when absent.
    pub s3_endpoint: Option<String>,
    /// S3 region.
    pub s3_region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), as Garage and MinIO need.
    pub s3_path_style: bool,
    /// Private key file for SFTP.
    pub ssh_key: Option<PathBuf>,
    /// known_hosts file that pins SFTP host keys.
    pub known_hosts: Option<PathBuf>,
    /// Database size in bytes, to size S3 parts up front (0 = unknown).
    pub expected_size: u64,
    /// S3 access key id held in memory; with [`Self::s3_secret_access_key`] it is used
    /// instead of `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` (give both or neither).
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key held in memory (see [`Self::s3_access_key_id`]).
    pub s3_secret_access_key: Option<SecretString>,
    /// SSH private key (unencrypted OpenSSH key text) held in memory; used instead of
    /// the [`Self::ssh_key`] file when set.
    pub ssh_private_key: Option<SecretString>,
    /// The SFTP host's pinned public key, as one known_hosts line
    /// (`[host]:port ssh-ed25519 AAAA…`) or as `ssh-ed25519 AAAA…`; used instead of the
    /// [`Self::known_hosts`] file when set, and any other host key is refused.
    pub ssh_host_key: Option<String>,
    /// Where connections may go (the control plane sets it for every tenant's
    /// destination; see [`crate::reach`]); no limit when absent.
    pub reach: Option<std::sync::Arc<crate::reach::ReachPolicy>>,
}

impl Location {
    /// Parses `s3://…`, `sftp://…` or `file://…`. `what` names the flag for messages.
    pub fn parse(url: &str, what: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::invalid_input(format!(
                "{what}: {why} (expected s3://bucket/prefix, \
                 sftp://user@host:port/path or file:///path)"
            ))
        };
        if let Some(rest) = url.strip_prefix("file://") {
            if !rest.starts_with('/') {
                return Err(bad("a file URL needs an absolute path, file:///…"));
            }
            return Ok(Self::File {
                path: PathBuf::from(rest),
            });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("no bucket"));
            }
            return Ok(Self::S3 {
                bucket: bucket.to_string(),
                key: key.trim_start_matches('/').to_string(),
            });
        }
        if let Some(rest) = url.strip_prefix("sftp://") {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => return Err(bad("no path after the host")),
            };
            let (user, hostport) = authority
                .rsplit_once('@')
                .ok_or_else(|| bad("no user (sftp://USER@host/path)"))?;
            if user.contains(':') {
                return Err(bad(
                    "passwords in SFTP URLs are not supported; use --ssh-key",
                ));
            }
            let (host, port) = match hostport.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| bad("bad port"))?),
                None => (hostport, 22),
            };
            if user.is_empty() || host.is_empty() {
                return Err(bad("empty user or host"));
            }
            return Ok(Self::Sftp(SftpTarget {
                user: user.to_string(),
                host: host.trim_matches(['[', ']']).to_string(),
                port,
                path: path.to_string(),
            }));
        }
        Err(bad("unknown scheme"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_schemes() {
        assert_eq!(
            Location::parse("s3://b/pre/fix", "x").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                key: "pre/fix".into()
            }
        );
        assert_eq!(
            Location::parse("sftp://u@h:2222/srv/backups", "x").unwrap(),
            Location::Sftp(SftpTarget {
                user: "u".into(),
                host: "h".into(),
                port: 2222,
                path: "/srv/backups".into()
            })
        );
        assert_eq!(
            Location::parse("file:///var/backups", "x").unwrap(),
            Location::File {
                path: "/var/backups".into()
            }
        );
    }

    #[test]
    fn bad_urls_say_what_is_expected() {
        for bad in [
            "http://x",
            "s3://",
            "sftp://host/path",
            "sftp://u:pw@h/p",
            "file://rel",
            "sftp://u@h:x/p",
        ] {
            let err = Location::parse(bad, "--destination")
                .unwrap_err()
                .to_string();
            assert!(err.contains("--destination"), "{err}");
            assert!(
                !err.contains("pw"),
                "a URL with a password is echoed: {err}"
            );
        }
    }
}
