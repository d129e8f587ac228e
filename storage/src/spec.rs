//! A destination described as data — a kind (`s3`, `sftp`, `directory`), non-secret
//! settings and secret credentials, both JSON — turned into a [`Location`] and
//! [`StorageOptions`]. The control plane stores destinations this way and hands them
//! to agents in a job's credentials; both sides read them with this one function.

use crate::error::{Error, Result};
use crate::location::SftpTarget;
use crate::{Location, StorageOptions};
use dbcrate_core::secret::SecretString;
use serde_json::Value;
use std::path::PathBuf;

fn text<'a>(v: &'a Value, key: &str, what: &str) -> Result<&'a str> {
    v[key]
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 1024)
        .ok_or_else(|| Error::invalid_input(format!("{what} needs {key} (text)")))
}

fn only_keys(v: &Value, allowed: &[&str], what: &str) -> Result<()> {
    let Some(map) = v.as_object() else {
        return Err(Error::invalid_input(format!(
            "{what} must be a JSON object"
        )));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(Error::invalid_input(format!(
            "{what}: unknown field {unknown:?}; allowed: {}",
            allowed.join(", ")
        )));
    }
    Ok(())
}

/// Where a destination is and how to reach it, from its settings and credentials.
pub fn from_settings(
    kind: &str,
    settings: &Value,
    credentials: Option<&Value>,
) -> Result<(Location, StorageOptions)> {
    let mut options = StorageOptions::default();
    let location = match kind {
        "s3" => {
            only_keys(
                settings,
                &["endpoint", "region", "bucket", "prefix", "path_style"],
                "s3 settings",
            )?;
            let creds = credentials.ok_or_else(|| {
                Error::invalid_input("s3 needs credentials: access_key_id and secret_access_key")
            })?;
            only_keys(
                creds,
                &["access_key_id", "secret_access_key"],
                "s3 credentials",
            )?;
            options.s3_endpoint = settings["endpoint"].as_str().map(String::from);
            if options
                .s3_endpoint
                .as_deref()
                .is_some_and(|e| !(e.starts_with("https://") || e.starts_with("http://")))
            {
                return Err(Error::invalid_input("endpoint must be an http(s):// URL"));
            }
            options.s3_region = settings["region"].as_str().map(String::from);
            options.s3_path_style = settings["path_style"].as_bool().unwrap_or(false);
            options.s3_access_key_id =
                Some(text(creds, "access_key_id", "s3 credentials")?.to_string());
            options.s3_secret_access_key = Some(SecretString::new(
                text(creds, "secret_access_key", "s3 credentials")?.to_string(),
            ));
            Location::S3 {
                bucket: text(settings, "bucket", "s3 settings")?.to_string(),
                key: settings["prefix"]
                    .as_str()
                    .unwrap_or("")
                    .trim_matches('/')
                    .to_string(),
            }
        }
        "sftp" => {
            only_keys(
                settings,
                &["host", "port", "user", "path", "host_key"],
                "sftp settings",
            )?;
            let creds = credentials
                .ok_or_else(|| Error::invalid_input("sftp needs credentials: private_key"))?;
            only_keys(creds, &["private_key"], "sftp credentials")?;
            let path = text(settings, "path", "sftp settings")?;
            if !path.starts_with('/') {
                return Err(Error::invalid_input("sftp path must be absolute"));
            }
            let port = settings["port"].as_u64().unwrap_or(22);
            let port = u16::try_from(port)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| Error::invalid_input("port must be 1-65535"))?;
            options.ssh_host_key = Some(text(settings, "host_key", "sftp settings")?.to_string());
            options.ssh_private_key = Some(SecretString::new(
                text(creds, "private_key", "sftp credentials")?.to_string(),
            ));
            Location::Sftp(SftpTarget {
                user: text(settings, "user", "sftp settings")?.to_string(),
                host: text(settings, "host", "sftp settings")?.to_string(),
                port,
                path: path.to_string(),
            })
        }
        "directory" => {
            only_keys(settings, &["path"], "directory settings")?;
            if credentials.is_some_and(|c| !c.is_null()) {
                return Err(Error::invalid_input("a directory takes no credentials"));
            }
            let path = text(settings, "path", "directory settings")?;
            if !path.starts_with('/') {
                return Err(Error::invalid_input("the directory path must be absolute"));
            }
            Location::File {
                path: PathBuf::from(path),
            }
        }
        other => {
            return Err(Error::invalid_input(format!(
                "kind {other:?} is not one of s3, sftp, directory"
            )))
        }
    };
    Ok((location, options))
}

/// The location of the object `key` (relative to the destination's prefix) inside the
/// destination `prefix`: what a restore reads.
pub fn object_location(prefix: &Location, key: &str) -> Location {
    let join = |base: &str| {
        let base = base.trim_end_matches('/');
        if base.is_empty() {
            key.to_string()
        } else {
            format!("{base}/{key}")
        }
    };
    match prefix {
        Location::File { path } => Location::File {
            path: path.join(key),
        },
        Location::S3 { bucket, key: p } => Location::S3 {
            bucket: bucket.clone(),
            key: join(p),
        },
        Location::Sftp(target) => Location::Sftp(SftpTarget {
            path: join(&target.path),
            ..target.clone()
        }),
    }
}
