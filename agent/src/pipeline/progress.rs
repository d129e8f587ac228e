//! A running pipeline's byte count, shared with whoever reports progress (the job
//! runner's heartbeats): bytes stored so far for a backup, bytes read from storage so
//! far for a restore.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A counter the pipeline adds to and a reporter reads; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    /// Counts `n` more bytes.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The bytes counted so far.
    pub fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A reader that counts what passes through it.
pub(crate) struct Counted<R> {
    pub inner: R,
    pub progress: Progress,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_is_read_and_clones_share_the_count() {
        let progress = Progress::default();
        let mut reader = Counted {
            inner: &[7u8; 10_000][..],
            progress: progress.clone(),
        };
        let mut sink = Vec::new();
        reader.read_to_end(&mut sink).unwrap();
        assert_eq!(progress.bytes(), 10_000);
        progress.add(5);
        assert_eq!(reader.progress.bytes(), 10_005);
    }
}
