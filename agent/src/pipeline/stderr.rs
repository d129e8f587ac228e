//! Keeps the end of a child's stderr for the error message, logging each line as it
//! comes (pg_dump's warnings are worth seeing even when it succeeds).

use std::io::{BufRead, BufReader, Read};
use tokio::task::JoinHandle;

/// Keep at most this much of a tool's stderr for the error message.
const KEEP: usize = 4096;

/// Collects `stream` on a blocking thread; the handle yields the last [`KEEP`] bytes.
/// `redact` removes secrets (the database password) from each line before it is kept or
/// logged.
pub fn collect(
    tool: &'static str,
    stream: impl Read + Send + 'static,
    redact: impl Fn(&str) -> String + Send + 'static,
) -> JoinHandle<String> {
    tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stream);
        let mut kept = String::new();
        let mut raw = Vec::new();
        while reader.read_until(b'\n', &mut raw).is_ok_and(|n| n > 0) {
            let line = redact(String::from_utf8_lossy(&raw).trim_end());
            raw.clear();
            tracing::warn!(tool, "{line}");
            kept.push_str(&line);
            kept.push('\n');
            if kept.len() > 2 * KEEP {
                let cut = kept.len() - KEEP;
                let cut = (cut..kept.len())
                    .find(|&i| kept.is_char_boundary(i))
                    .unwrap_or(cut);
                kept.drain(..cut);
            }
        }
        kept.trim().to_string()
    })
}
