//! Which user the test servers run as.
//!
//! initdb and postgres refuse to run as root, and sshd should not hold root in a test,
//! so when the tests run as root (as CI does) those servers run as `nobody`. Otherwise
//! they run as the invoking user, who then is also the SFTP login.
#![allow(unsafe_code)]

use crate::{KitError, Result};
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// The account a server process runs under.
#[derive(Debug, Clone)]
pub(crate) struct ServiceUser {
    /// Login name (the SFTP user name).
    pub name: String,
    uid: u32,
    gid: u32,
    /// Whether the kit must switch to this user (it is running as root).
    switch: bool,
}

/// The effective user id of this process.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

impl ServiceUser {
    /// `nobody` when running as root, else the current user.
    pub(crate) fn for_servers() -> Result<Self> {
        let euid = effective_uid();
        let passwd = std::fs::read_to_string("/etc/passwd")
            .map_err(|e| KitError::io("reading /etc/passwd", e))?;
        let entry = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| {
                f.len() >= 4
                    && if euid == 0 {
                        f[0] == "nobody"
                    } else {
                        f[2].parse::<u32>().ok() == Some(euid)
                    }
            });
        let Some(f) = entry else {
            return Err(KitError::new(if euid == 0 {
                "no user `nobody` in /etc/passwd: the test servers must run unprivileged \
                 when tests run as root; create it with `useradd --system nobody`"
                    .to_string()
            } else {
                format!("uid {euid} has no entry in /etc/passwd; sshd needs one to log in")
            }));
        };
        let parse = |s: &str| {
            s.parse::<u32>()
                .map_err(|_| KitError::new(format!("malformed /etc/passwd entry for {}", f[0])))
        };
        Ok(Self {
            name: f[0].to_string(),
            uid: parse(f[2])?,
            gid: parse(f[3])?,
            switch: euid == 0,
        })
    }

    /// Makes `cmd` run as this user.
    pub(crate) fn apply(&self, cmd: &mut Command) {
        if self.switch {
            // std drops supplementary groups when a root process sets a uid.
            cmd.uid(self.uid).gid(self.gid);
        }
    }

    /// Hands `path` to this user so that its server can write there.
    pub(crate) fn give(&self, path: &Path) -> Result<()> {
        if self.switch {
            chown(path, Some(self.uid), Some(self.gid))
                .map_err(|e| KitError::io(format!("chown {}", path.display()), e))?;
        }
        Ok(())
    }
}

/// Sends `signal` to process `pid`; errors (already gone) are ignored.
pub(crate) fn send_signal(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory-safety preconditions; a stale pid only yields ESRCH.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}
