//! A real SMTP server for the e-mail alert tests: aiosmtpd (PyPI, provisioned by
//! `scripts/provision-testdeps`) run by Debian's python3, with a certificate from a
//! test CA, STARTTLS required before anything else (or TLS from the first byte), and
//! AUTH required. Every message it accepts is kept, with whether it came over TLS and
//! authenticated, for the test to read. A missing aiosmtpd is an error naming the
//! provisioning command: the test fails, it is never skipped.

use crate::deps::Deps;
use crate::ports::free_port;
use crate::process::ServerProcess;
use crate::tempdir::TempDir;
use crate::test_ca::TestCa;
use crate::{KitError, Result};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The server script (a file in the kit, so it reads as Python).
const SCRIPT: &str = include_str!("smtp_server.py");

/// How the server does TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain until STARTTLS, which it requires before AUTH and MAIL (submission, 587).
    StartTls,
    /// TLS from the first byte (SMTPS, 465).
    Implicit,
}

/// A running SMTP server; stopped on drop.
#[derive(Debug)]
pub struct SmtpServer {
    port: u16,
    ca_pem: String,
    out: PathBuf,
    _process: ServerProcess,
    _dir: TempDir,
}

/// The account the server accepts.
pub const SMTP_USER: &str = "alerts@example.com";
/// Its password.
pub const SMTP_PASSWORD: &str = "an smtp password";

impl SmtpServer {
    /// Starts a server on loopback doing `tls`, with a certificate for `localhost` and
    /// `127.0.0.1` from a fresh test CA.
    pub fn start(tls: SmtpTls) -> Result<Self> {
        Self::start_with(&Deps::from_env(), tls)
    }

    /// As [`SmtpServer::start`], with the python from `deps`.
    pub fn start_with(deps: &Deps, tls: SmtpTls) -> Result<Self> {
        let python = deps.tool("aiosmtpd-python")?;
        let dir = TempDir::new("smtp")?;
        let ca = TestCa::new("dbcrate test SMTP CA");
        let leaf = ca.server("localhost", "dbcrate test SMTP server");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).map_err(|e| KitError::io(format!("writing {name}"), e))?;
            Ok::<_, KitError>(path)
        };
        let script = write("smtp_server.py", SCRIPT)?;
        let cert = write("cert.pem", &leaf.cert_pem)?;
        let key = write("key.pem", &leaf.key_pem)?;
        let out = dir.path().join("messages");
        std::fs::create_dir(&out).map_err(|e| KitError::io("creating the mail directory", e))?;
        let port = free_port()?;
        let mode = match tls {
            SmtpTls::StartTls => "starttls",
            SmtpTls::Implicit => "implicit",
        };
        let mut cmd = Command::new(&python);
        cmd.arg(&script)
            .args(["127.0.0.1", &port.to_string(), mode])
            .arg(&cert)
            .arg(&key)
            .args([SMTP_USER, SMTP_PASSWORD])
            .arg(&out);
        let log = dir.path().join("smtp.log");
        let mut process = ServerProcess::spawn("aiosmtpd", cmd, &log, libc::SIGTERM)?;
        process.wait_until(Duration::from_secs(30), || {
            std::fs::read_to_string(&log).is_ok_and(|text| text.contains("ready"))
        })?;
        Ok(Self {
            port,
            ca_pem: ca.cert_pem(),
            out,
            _process: process,
            _dir: dir,
        })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate (PEM) its certificate chains to (for `localhost`).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The messages accepted so far, oldest first: `mail_from`, `rcpt_tos`, `data`,
    /// `tls`, `authenticated`.
    pub fn messages(&self) -> Result<Vec<Value>> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .map_err(|e| KitError::io("reading the mail directory", e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| KitError::io(format!("reading {}", p.display()), e))?;
                serde_json::from_str(&text)
                    .map_err(|e| KitError::new(format!("{}: {e}", p.display())))
            })
            .collect()
    }

    /// Waits up to `timeout` until at least `count` messages arrived.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Result<Vec<Value>> {
        let started = Instant::now();
        loop {
            let got = self.messages()?;
            if got.len() >= count {
                return Ok(got);
            }
            if started.elapsed() > timeout {
                return Err(KitError::new(format!(
                    "{} of {count} messages arrived within {timeout:?}",
                    got.len()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
