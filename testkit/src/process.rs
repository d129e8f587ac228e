//! Server processes that stop when their handle is dropped.

use crate::user::send_signal;
use crate::{KitError, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running server whose output goes to a log file, stopped on drop with `stop_signal`
/// and, if it lingers, killed.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
    name: String,
    log: PathBuf,
    stop_signal: libc::c_int,
}

impl ServerProcess {
    /// Spawns `cmd` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(
        name: &str,
        mut cmd: Command,
        log: &Path,
        stop_signal: libc::c_int,
    ) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| KitError::io(format!("opening {}", log.display()), e))?;
        let err = file
            .try_clone()
            .map_err(|e| KitError::io("duplicating a log file handle", e))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .map_err(|e| KitError::io(format!("starting {name} ({cmd:?})"), e))?;
        Ok(Self {
            child,
            name: name.to_string(),
            log: log.to_path_buf(),
            stop_signal,
        })
    }

    /// Polls `ready` every 50 ms until it returns true, failing when the process exits
    /// first or `timeout` passes. The error carries the end of the server's log.
    pub(crate) fn wait_until(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            if ready() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.failure(&format!("exited with {status} before it was ready")));
            }
            if start.elapsed() > timeout {
                return Err(self.failure(&format!("was not ready within {timeout:?}")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process id.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// The log's text (for "address in use" checks and error messages).
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An error naming the server and quoting the last lines of its log.
    pub(crate) fn failure(&self, what: &str) -> KitError {
        let text = self.log_text();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        KitError::new(format!(
            "{} {what}; last lines of {}:\n{}",
            self.name,
            self.log.display(),
            tail.join("\n")
        ))
    }

    /// Stops the process with its stop signal (a clean shutdown), SIGKILL after 10 s.
    pub(crate) fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            send_signal(self.child.id(), self.stop_signal);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `cmd` to completion and returns its stdout; a non-zero exit becomes an error
/// that quotes stderr.
pub(crate) fn run(what: &str, cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| KitError::io(format!("{what}: could not run {cmd:?}"), e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(KitError::new(format!(
            "{what}: {:?} exited with {}: {}{}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        )))
    }
}

/// Fails the test, with `what` and the command's stderr, unless `out` is the output of
/// a successful run: the check the tests of every crate make on the tools they run.
#[track_caller]
pub fn assert_succeeded(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd` to its end and returns its output, after [`assert_succeeded`].
#[track_caller]
pub fn output_ok(what: &str, cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: could not run {cmd:?}: {e}"));
    assert_succeeded(what, &out);
    out
}

/// Fails the test unless `out` is the output of a failed run whose stderr names each of
/// `needles`; returns that stderr for further checks.
#[track_caller]
pub fn assert_failed_saying(out: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "succeeded; expected failure: {err}");
    for needle in needles {
        assert!(err.contains(needle), "no {needle:?} in: {err}");
    }
    err
}

/// The processes whose parent is `pid`, read from /proc.
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            // The field after the command (which is in parentheses and may hold spaces).
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    let after = stat.rsplit_once(')')?.1;
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}
