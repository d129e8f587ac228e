//! The URL of an SQLite database file, as the control plane's embedded default opens it.
//!
//! Why here: every test (and the demo) that runs a control plane on SQLite wrote the
//! same `format!`; the `mode=rwc` part (create the file when missing) is easy to drop.

use std::path::Path;

/// `sqlite://<file>?mode=rwc`: opens `file`, creating it when missing.
pub fn sqlite_url(file: &Path) -> String {
    format!("sqlite://{}?mode=rwc", file.display())
}
