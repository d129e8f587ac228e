//! An SFTP host, with its host key pinned by a known_hosts file.
//!
//! An unknown host key and a changed host key are both refused: a backup must never go
//! to a host that merely answers on the right address. The backup is written under a
//! hidden temp name in the target directory, flushed (every write acknowledged, then
//! fsync@openssh.com), closed, and renamed — OpenSSH's rename refuses to replace an
//! existing file, so a backup is never overwritten.

use crate::error::{Error, Result};
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

/// Checks the server's key against the known_hosts file.
struct KnownHostsCheck {
    host: String,
    port: u16,
    known_hosts: PathBuf,
}

impl client::Handler for KnownHostsCheck {
    type Error = SshError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> std::result::Result<bool, SshError> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            return Err(SshError::UnknownHostKey(
                "the host presented a certificate; pin its plain host key in known_hosts".into(),
            ));
        };
        match keys::check_known_hosts_path(&self.host, self.port, key, &self.known_hosts) {
            Ok(true) => Ok(true),
            Ok(false) => Err(SshError::UnknownHostKey(format!(
                "host key of {}:{} is unknown ({} {}) — not in {}; verify it and add it",
                self.host,
                self.port,
                key.algorithm(),
                key.fingerprint(Default::default()),
                self.known_hosts.display()
            ))),
            Err(keys::Error::KeyChanged { line }) => Err(SshError::HostKeyChanged(format!(
                "HOST KEY CHANGED for {}:{}: it does not match line {line} of {}; refusing to \
                 connect (possible man-in-the-middle)",
                self.host,
                self.port,
                self.known_hosts.display()
            ))),
            Err(e) => Err(SshError::Ssh(e.into())),
        }
    }
}

/// An open SFTP session and the SSH connection under it.
struct Connection {
    ssh: client::Handle<KnownHostsCheck>,
    sftp: SftpSession,
}

impl Connection {
    async fn open(options: &StorageOptions, target: &SftpTarget) -> Result<Self> {
        let key_path = options
            .ssh_key
            .as_ref()
            .ok_or_else(|| Error::invalid_input("SFTP needs --ssh-key FILE (a private key)"))?;
        let known_hosts = match &options.known_hosts {
            Some(p) => p.clone(),
            None => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".ssh/known_hosts"))
                .ok_or_else(|| Error::invalid_input("SFTP needs --known-hosts FILE"))?,
        };
        let key = keys::load_secret_key(key_path, None).map_err(|e| {
            Error::invalid_input(format!(
                "cannot load SSH key {} ({e}); it must be an unencrypted OpenSSH private key",
                key_path.display()
            ))
        })?;
        let (host, port) = (target.host.as_str(), target.port);
        let mut config = client::Config {
            inactivity_timeout: Some(Duration::from_secs(300)),
            keepalive_interval: Some(Duration::from_secs(30)),
            ..Default::default()
        };
        // Ask only for host-key types recorded for this host, so the server presents a
        // key we can check (else a host with ed25519 and ecdsa keys may present the one
        // that is not pinned, and be refused as unknown).
        let recorded =
            keys::known_hosts::known_host_keys_path(host, port, &known_hosts).unwrap_or_default();
        if !recorded.is_empty() {
            let algorithms: Vec<_> = recorded.iter().map(|(_, k)| k.algorithm()).collect();
            config.preferred.key = algorithms.into();
        }
        let check = KnownHostsCheck {
            host: host.into(),
            port,
            known_hosts,
        };
        let connect = client::connect(Arc::new(config), (host, port), check);
        let mut ssh = tokio::time::timeout(Duration::from_secs(30), connect)
            .await
            .map_err(|_| Error::storage(format!("SSH connection to {host}:{port} timed out")))?
            .map_err(|e| match e {
                SshError::Ssh(e) => Error::storage(format!("SSH connection to {host}:{port}: {e}")),
                refused => Error::storage(refused.to_string()),
            })?;
        let auth = ssh
            .authenticate_publickey(
                &target.user,
                PrivateKeyWithHashAlg::new(Arc::new(key), None),
            )
            .await
            .map_err(|e| Error::storage(format!("SSH authentication: {e}")))?;
        if !auth.success() {
            return Err(Error::storage(format!(
                "{host}:{port} refused the SSH key for user {}",
                target.user
            )));
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

    async fn close(self) {
        let _ = self.sftp.close().await;
        let _ = self
            .ssh
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }

    /// Creates every missing directory of `dir` (like `mkdir -p`).
    async fn create_dirs(&self, dir: &str) -> Result<()> {
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
        let connection = Connection::open(options, target).await?;
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        connection.create_dirs(dir).await?;
        if connection.sftp.try_exists(path).await.unwrap_or(false) {
            connection.close().await;
            return Err(Error::storage(format!(
                "{path} already exists on the SFTP host; dbcrate never overwrites a backup"
            )));
        }
        let temp = format!("{dir}/.{name}.partial-{}", std::process::id());
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
    /// alone), so an empty hidden `.NAME.partial-PID` file remains; it is never a
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
