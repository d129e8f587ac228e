//! Stopping cleanly on SIGINT or SIGTERM.
//!
//! A signal during a backup aborts the upload (or removes the temp file) and stops
//! pg_dump; during a restore it stops pg_restore before it can commit. Completion itself
//! (the last S3 call or rename) is not interrupted: it is short, and stopping it halfway
//! would leave the outcome unknown. A second signal exits at once.
#![allow(unsafe_code)]

use tokio::sync::watch;

/// A flag the signal handler raises; pipelines watch it.
#[derive(Clone, Debug)]
pub struct Interrupt(Option<watch::Receiver<bool>>);

impl Interrupt {
    /// An interrupt that never fires (library use without signal handling).
    pub fn never() -> Self {
        Self(None)
    }

    /// Installs SIGINT and SIGTERM handlers: the first signal raises the flag, a second
    /// one exits with status 130. Call inside the runtime.
    pub fn from_signals() -> Self {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            for round in 0..2 {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                if round == 0 {
                    tracing::warn!("interrupted: cleaning up (signal again to exit at once)");
                    let _ = tx.send(true);
                } else {
                    std::process::exit(130);
                }
            }
        });
        Self(Some(rx))
    }

    /// Whether the flag is raised.
    pub fn is_raised(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Resolves when the flag is raised (never, for [`Interrupt::never`]).
    pub async fn raised(&mut self) {
        match &mut self.0 {
            Some(rx) => {
                if rx.wait_for(|raised| *raised).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

/// Asks process `pid` to terminate (SIGTERM). A process that already exited is not an
/// error; the caller stops signalling once it has reaped the child.
pub fn terminate(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory-safety preconditions; a stale pid yields ESRCH.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}
