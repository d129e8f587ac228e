//! An SFTP host, with its host key pinned by a known_hosts file or by one key held in
//! memory ([`StorageOptions::ssh_host_key`]), and a private key from a file or memory.
//!
//! An unknown host key and a changed host key are both refused: a backup must never go
//! to a host that merely answers on the right address. The backup is written under a
//! hidden temp name in the target directory, flushed (every write acknowledged, then
//! fsync@openssh.com), closed, and renamed — OpenSSH's rename refuses to replace an
//! existing file, so a backup is never overwritten.

use crate::error::{Error, FailureClass, Result};
use crate::location::SftpTarget;
use crate::StorageOptions;
use bytes::Bytes;
use russh::client;
use russh::keys::{self, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh_sftp::client::fs::File;
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::OpenFlags;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

/// Why the SSH layer refused, in words for the operator.
#[derive(Debug)]
pub enum SshError {
    /// No line in known_hosts for this host (and key type).
    UnknownHostKey(String),
    /// known_hosts has another key for this host.
    HostKeyChanged(String),
    /// Anything else from russh.
    Ssh(russh::Error),
}

impl From<russh::Error> for SshError {
    fn from(e: russh::Error) -> Self {
        Self::Ssh(e)
    }
}

impl std::fmt::Display for SshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownHostKey(m) | Self::HostKeyChanged(m) => f.write_str(m),
            Self::Ssh(e) => write!(f, "{e}"),
        }
    }
}

/// How the server's host key is checked: against a known_hosts file, or against one
/// key pinned in memory ([`StorageOptions::ssh_host_key`]).
pub(crate) enum HostKeyCheck {
    /// A known_hosts file.
    KnownHosts {
        host: String,
        port: u16,
        known_hosts: PathBuf,
    },
    /// Exactly this key; anything else is refused.
    Pinned {
        host: String,
        port: u16,
        key: keys::PublicKey,
    },
}

impl client::Handler for HostKeyCheck {
    type Error = SshError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> std::result::Result<bool, SshError> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Err(SshError::UnknownHostKey(
                "the host presented a certificate; pin its plain host key".into(),
            ));
        };
        let (host, port, known_hosts) = match self {
            Self::Pinned {
                host,
                port,
                key: pinned,
            } => {
                if key.key_data() == pinned.key_data() {
                    return Ok(true);
                }
                return Err(SshError::HostKeyChanged(format!(
                    "HOST KEY MISMATCH for {host}:{port}: it presented {} {}, the \
                     destination pins {} {}; refusing to connect (possible \
                     man-in-the-middle, or the pinned key is wrong)",
                    key.algorithm(),
                    key.fingerprint(Default::default()),
                    pinned.algorithm(),
                    pinned.fingerprint(Default::default()),
                )));
            }
            Self::KnownHosts {
                host,
                port,
                known_hosts,
            } => (host, *port, known_hosts),
        };
        match keys::check_known_hosts_path(host, port, key, &*known_hosts) {
            Ok(true) => Ok(true),
            Ok(false) => Err(SshError::UnknownHostKey(format!(
                "host key of {host}:{port} is unknown ({} {}) — not in {}; verify it and add it",
                key.algorithm(),
                key.fingerprint(Default::default()),
                known_hosts.display()
            ))),
            Err(keys::Error::KeyChanged { line }) => Err(SshError::HostKeyChanged(format!(
                "HOST KEY CHANGED for {host}:{port}: it does not match line {line} of {}; \
                 refusing to connect (possible man-in-the-middle)",
                known_hosts.display()
            ))),
            Err(e) => Err(SshError::Ssh(e.into())),
        }
    }
}

/// Parses a pinned host key: one known_hosts line (`[host]:port TYPE BASE64 [comment]`,
/// `host TYPE BASE64`) or just `TYPE BASE64`. A host field, when present and not
/// hashed, must name `host`/`port` (a pin for another host is a configuration mistake).
pub(crate) fn parse_pinned_host_key(line: &str, host: &str, port: u16) -> Result<keys::PublicKey> {
    let bad = |why: &str| {
        Error::invalid_input(format!(
            "the pinned SSH host key is not usable: {why} (expected one known_hosts line \
             such as \"[{host}]:{port} ssh-ed25519 AAAA…\" or \"ssh-ed25519 AAAA…\", \
             e.g. from ssh-keyscan -p {port} {host})"
        ))
    };
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.first().is_some_and(|f| f.starts_with('@')) {
        return Err(bad(
            "markers such as @cert-authority or @revoked are not supported",
        ));
    }
    let looks_like_type =
        |f: &str| f.starts_with("ssh-") || f.starts_with("ecdsa-") || f.starts_with("sk-");
    let at = fields
        .iter()
        .position(|f| looks_like_type(f))
        .ok_or_else(|| bad("no key type such as ssh-ed25519"))?;
    if at > 1 {
        return Err(bad("unexpected fields before the key type"));
    }
    if at == 1 {
        let patterns = fields[0];
        let wanted = if port == 22 {
            vec![host.to_string(), format!("[{host}]:22")]
        } else {
            vec![format!("[{host}]:{port}")]
        };
        let hashed = patterns.starts_with('|');
        if !hashed && !patterns.split(',').any(|p| wanted.iter().any(|w| w == p)) {
            return Err(bad(&format!(
                "the line is for {patterns}, not for {}",
                wanted.join(" or ")
            )));
        }
    }
    let key_type = fields[at];
    let data = fields
        .get(at + 1)
        .ok_or_else(|| bad("the base64 key after the key type is missing"))?;
    let key = keys::parse_public_key_base64(data)
        .map_err(|e| bad(&format!("the base64 key does not parse ({e})")))?;
    if key.algorithm().as_str() != key_type {
        return Err(bad(&format!(
            "the line says {key_type} but the key is {}",
            key.algorithm()
        )));
    }
    Ok(key)
}

/// An open SFTP session and the SSH connection under it.
pub(crate) struct Connection {
    ssh: client::Handle<HostKeyCheck>,
    /// The SFTP session.
    pub(crate) sftp: SftpSession,
}

impl Connection {
    /// Connects, checks the host key, authenticates and starts SFTP.
    pub(crate) async fn open(options: &StorageOptions, target: &SftpTarget) -> Result<Self> {
        let key = match (&options.ssh_private_key, &options.ssh_key) {
            (Some(text), _) => {
                keys::decode_secret_key(text.expose_secret(), None).map_err(|e| {
                    Error::invalid_input(format!(
                        "the SSH private key given in memory does not load ({e}); it must be \
                     an unencrypted OpenSSH private key"
                    ))
                })?
            }
            (None, Some(key_path)) => keys::load_secret_key(key_path, None).map_err(|e| {
                Error::invalid_input(format!(
                    "cannot load SSH key {} ({e}); it must be an unencrypted OpenSSH private key",
                    key_path.display()
                ))
            })?,
            (None, None) => {
                return Err(Error::invalid_input(
                    "SFTP needs --ssh-key FILE (a private key)",
                ))
            }
        };
        let (host, port) = (target.host.as_str(), target.port);
        let mut config = client::Config {
            inactivity_timeout: Some(Duration::from_secs(300)),
            keepalive_interval: Some(Duration::from_secs(30)),
            ..Default::default()
        };
        let check = match &options.ssh_host_key {
            Some(line) => {
                let pinned = parse_pinned_host_key(line, host, port)?;
                // Ask for the pinned key's type, so the server presents that key.
                config.preferred.key = vec![pinned.algorithm()].into();
                HostKeyCheck::Pinned {
                    host: host.into(),
                    port,
                    key: pinned,
                }
            }
            None => {
                let known_hosts = match &options.known_hosts {
                    Some(p) => p.clone(),
                    None => std::env::var_os("HOME")
                        .map(|h| PathBuf::from(h).join(".ssh/known_hosts"))
                        .ok_or_else(|| Error::invalid_input("SFTP needs --known-hosts FILE"))?,
                };
                // Ask only for host-key types recorded for this host, so the server
                // presents a key we can check (else a host with ed25519 and ecdsa keys
                // may present the one that is not pinned, and be refused as unknown).
                let recorded = keys::known_hosts::known_host_keys_path(host, port, &known_hosts)
                    .unwrap_or_default();
                if !recorded.is_empty() {
                    let algorithms: Vec<_> = recorded.iter().map(|(_, k)| k.algorithm()).collect();
                    config.preferred.key = algorithms.into();
                }
                HostKeyCheck::KnownHosts {
                    host: host.into(),
                    port,
                    known_hosts,
                }
            }
        };
        // Under a reach policy, connect only to the addresses it checked (a name cannot
        // re-resolve elsewhere between the check and the connection).
        let addrs: Vec<std::net::SocketAddr> = match &options.reach {
            Some(policy) => policy.resolve(host, port).await?,
            None => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| Error::unreachable(format!("cannot resolve {host}: {e}")))?
                .collect(),
        };
        let connect = client::connect(Arc::new(config), addrs.as_slice(), check);
        let mut ssh = tokio::time::timeout(Duration::from_secs(30), connect)
            .await
            .map_err(|_| Error::unreachable(format!("SSH connection to {host}:{port} timed out")))?
            .map_err(|e| match e {
                SshError::Ssh(e) => {
                    Error::unreachable(format!("SSH connection to {host}:{port}: {e}"))
                }
                refused => Error::storage(refused.to_string()).classed(FailureClass::Tls),
            })?;
        let auth = ssh
            .authenticate_publickey(
                &target.user,
                PrivateKeyWithHashAlg::new(Arc::new(key), None),
            )
            .await
            .map_err(|e| {
                Error::storage(format!("SSH authentication: {e}")).classed(FailureClass::Auth)
            })?;
        if !auth.success() {
            return Err(Error::storage(format!(
                "{host}:{port} refused the SSH key for user {}; add the key's public half \
                 to that user's authorized_keys, or give the key that is there",
                target.user
            ))
            .classed(FailureClass::Auth));
        }
        let channel = ssh
            .channel_open_session()
            .await
            .map_err(|e| Error::storage(format!("opening an SSH channel: {e}")))?;
        channel
            .request_subsystem(true, "sftp")
            .await
            .map_err(|e| Error::storage(format!("starting the SFTP subsystem: {e}")))?;
        let sftp = SftpSession::new(channel.into_stream())
            .await
            .map_err(|e| Error::storage(format!("SFTP handshake: {e}")))?;
        // fsync of a large file can take longer than the 10 s default.
        sftp.set_timeout(300);
        Ok(Self { ssh, sftp })
    }

    /// Ends the SFTP session and the SSH connection.
    pub(crate) async fn close(self) {
        let _ = self.sftp.close().await;
        let _ = self
            .ssh
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }

    /// Creates every missing directory of `dir` (like `mkdir -p`).
    pub(crate) async fn create_dirs(&self, dir: &str) -> Result<()> {
        let mut path = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            path.push('/');
            path.push_str(part);
            if !self.sftp.try_exists(&path).await.unwrap_or(false) {
                self.sftp.create_dir(&path).await.map_err(|e| {
                    Error::storage(format!(
                        "cannot create directory {path} on the SFTP host: {e}"
                    ))
                })?;
            }
        }
        Ok(())
    }
}

/// A backup being written over SFTP.
pub struct SftpSink {
    connection: Connection,
    file: Option<File>,
    temp: String,
    target: String,
    url: String,
}

impl SftpSink {
    /// Connects and creates the temp file for `path`.
    pub async fn create(options: &StorageOptions, target: &SftpTarget, path: &str) -> Result<Self> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let temp = format!("{dir}/{}", crate::temp_name::partial(name)?);
        let connection = Connection::open(options, target).await?;
        connection.create_dirs(dir).await?;
        if connection.sftp.try_exists(path).await.unwrap_or(false) {
            connection.close().await;
            return Err(Error::storage(format!(
                "{path} already exists on the SFTP host; dbcrate never overwrites a backup"
            )));
        }
        let file = connection
            .sftp
            .open_with_flags(
                &temp,
                OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE,
            )
            .await
            .map_err(|e| Error::storage(format!("cannot create {temp} on the SFTP host: {e}")))?;
        let url = format!(
            "sftp://{}@{}:{}{path}",
            target.user, target.host, target.port
        );
        Ok(Self {
            connection,
            file: Some(file),
            temp,
            target: path.to_string(),
            url,
        })
    }

    /// Appends a chunk.
    pub async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| Error::storage("SFTP file already closed"))?;
        file.write_all(&chunk)
            .await
            .map_err(|e| Error::storage(format!("writing {} over SFTP: {e}", self.temp)))
    }

    /// Flushes (all writes acknowledged, then fsync), closes, checks the size, renames.
    pub async fn commit(mut self, expected_len: u64) -> Result<String> {
        match self.publish(expected_len).await {
            Ok(()) => {
                let url = std::mem::take(&mut self.url);
                self.connection.close().await;
                Ok(url)
            }
            Err(e) => {
                self.abort().await;
                Err(e.note("nothing was stored (an empty hidden .partial file remains)"))
            }
        }
    }

    async fn publish(&mut self, expected_len: u64) -> Result<()> {
        let fail = |doing: &str, e: &dyn std::fmt::Display| {
            Error::storage(format!("{doing} over SFTP: {e}"))
        };
        if let Some(mut file) = self.file.take() {
            file.flush()
                .await
                .map_err(|e| fail("flushing the backup", &e))?;
            file.shutdown()
                .await
                .map_err(|e| fail("closing the backup", &e))?;
        }
        let size = self
            .connection
            .sftp
            .metadata(&self.temp)
            .await
            .map_err(|e| fail("reading the backup's size", &e))?
            .size
            .unwrap_or(0);
        if size != expected_len {
            return Err(Error::storage(format!(
                "the SFTP host stored {size} bytes, expected {expected_len}"
            )));
        }
        if self
            .connection
            .sftp
            .try_exists(&self.target)
            .await
            .unwrap_or(false)
        {
            return Err(Error::storage(format!(
                "{} appeared on the SFTP host during the backup; not overwriting it",
                self.target
            )));
        }
        self.connection
            .sftp
            .rename(&self.temp, &self.target)
            .await
            .map_err(|e| fail(&format!("renaming to {}", self.target), &e))
    }

    /// Closes the temp file and empties it. It is not removed: the agent calls no
    /// delete or remove operation on storage at all (deleting is the control plane's
    /// alone), so an empty hidden `.NAME.partial-PID-RANDOM` file remains; it is never a
    /// backup and may be removed by anyone who can.
    pub async fn abort(mut self) {
        if let Some(mut file) = self.file.take() {
            let _ = file.shutdown().await;
        }
        if let Ok(mut file) = self
            .connection
            .sftp
            .open_with_flags(&self.temp, OpenFlags::WRITE | OpenFlags::TRUNCATE)
            .await
        {
            let _ = file.shutdown().await;
        }
        self.connection.close().await;
    }
}

/// Reads a file over SFTP; the connection lives as long as the reader.
struct SftpReader {
    file: File,
    _connection: Connection,
}

impl AsyncRead for SftpReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_read(cx, buf)
    }
}

/// Opens `target.path` on the SFTP host for reading.
pub async fn open(
    options: &StorageOptions,
    target: &SftpTarget,
) -> Result<Box<dyn AsyncRead + Send + Unpin>> {
    let connection = Connection::open(options, target).await?;
    let file = connection.sftp.open(&target.path).await.map_err(|e| {
        Error::storage(format!("cannot open {} on the SFTP host: {e}", target.path))
    })?;
    Ok(Box::new(SftpReader {
        file,
        _connection: connection,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIHh2q+oi7VB5yL1SMNX1QTu1zI3w0kpYYnIqlAmTXEVo";

    #[test]
    fn pinned_host_key_forms() {
        let bare = format!("ssh-ed25519 {KEY}");
        let line = format!("[db.example]:2222 ssh-ed25519 {KEY} comment");
        let a = parse_pinned_host_key(&bare, "db.example", 2222).unwrap();
        let b = parse_pinned_host_key(&line, "db.example", 2222).unwrap();
        assert_eq!(a.key_data(), b.key_data());
        let port22 = format!("db.example,10.0.0.1 ssh-ed25519 {KEY}");
        parse_pinned_host_key(&port22, "db.example", 22).unwrap();
        let hashed = format!("|1|abc=|def= ssh-ed25519 {KEY}");
        parse_pinned_host_key(&hashed, "db.example", 22).unwrap();
    }

    #[test]
    fn unusable_pins_say_why() {
        for (pin, why) in [
            ("", "no key type"),
            ("ssh-ed25519", "missing"),
            ("ssh-ed25519 !!!", "does not parse"),
            (&format!("ssh-rsa {KEY}") as &str, "says ssh-rsa"),
            (
                &format!("[other]:2222 ssh-ed25519 {KEY}"),
                "not for [db.example]:2222",
            ),
            (&format!("@revoked db.example ssh-ed25519 {KEY}"), "markers"),
            (&format!("a b ssh-ed25519 {KEY}"), "unexpected fields"),
        ] {
            let err = parse_pinned_host_key(pin, "db.example", 2222).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
            assert!(err.to_string().contains(why), "{pin:?}: {err}");
        }
    }
}
