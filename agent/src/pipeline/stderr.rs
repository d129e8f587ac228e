//! Keeps the end of a child's stderr for the error message, logging each line as it
//! comes (pg_dump's warnings are worth seeing even when it succeeds).

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;

/// Keep at most this much of a tool's stderr for the error message.
const KEEP: usize = 4096;

/// Collects `stream` in the background; the handle yields the last [`KEEP`] bytes.
/// `redact` removes secrets (the database password) from each line before it is kept or
/// logged.
pub fn collect(
    tool: &'static str,
    stream: impl AsyncRead + Unpin + Send + 'static,
    redact: impl Fn(&str) -> String + Send + 'static,
) -> JoinHandle<String> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        let mut kept = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = redact(&line);
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
