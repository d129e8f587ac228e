//! How a backup is compressed: the zstd level and how many of libzstd's own worker
//! threads compress.
//!
//! With no workers, zstd compresses on the thread that feeds it; with one or more, the
//! feeding thread only hands libzstd its input and the workers compress jobs of a few
//! window sizes each in parallel. Compression then never holds up the reading of
//! pg_dump's pipe, and on a host with spare cores it is not the bottleneck. Each worker
//! costs memory: its compression context and its job's input and output buffers, which
//! is why jobs are kept at [`JOB_SIZE`] (docs/benchmarks.md gives the measured peak RSS
//! per level and worker count).

use std::io;

/// Upper bound of `--zstd-threads`: past a few workers one pg_dump cannot feed them.
pub const MAX_THREADS: u32 = 8;

/// The workers used when none are set: one per core the process may use, at most
/// [`DEFAULT_THREADS_CAP`], so a big host does not spend memory on idle workers.
const DEFAULT_THREADS_CAP: u32 = 4;

/// Bytes of input per worker job. libzstd's default is four windows (8 MiB at level 3,
/// 16 MiB at level 9), and every worker holds a job's input and output: measured on
/// text at level 9 with two workers, 4 MiB jobs peaked at 61 MiB RSS, 2 MiB at 51 MiB
/// and 1 MiB at 45 MiB, taking 1.74, 1.77 and 2.09 s, with outputs within 1.5% of each
/// other. Jobs overlap by part of a window, so matches across them are still found.
pub const JOB_SIZE: u32 = 2 << 20;

/// How much of the input before a job its worker reads first, so that matches reach
/// back across the job's start: the window >> (9 - this). libzstd's default at level 9
/// is a quarter of the 4 MiB window: 1 MiB, half the size of the 2 MiB job itself,
/// which every worker hashes before its own input. A sixteenth (256 KiB) measured 16% faster on
/// text at level 9 with two workers (1.45 s against 1.73 s, medians of 3) and 8% on
/// pgbench, with outputs no larger (19.7 MiB against 20.1; 2.54 against 2.60); half
/// that again (4) was no faster and gave a 3% larger output on text.
const OVERLAP_LOG: u32 = 5;

/// Level and workers of one backup's compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// zstd level, 1 to 19.
    pub level: i32,
    /// libzstd worker threads; 0 compresses on the feeding thread.
    pub threads: u32,
}

impl Compression {
    /// `level` with `threads` workers, or the default for this host when `None`.
    pub fn new(level: i32, threads: Option<u32>) -> Self {
        Self {
            level,
            threads: threads.unwrap_or_else(default_threads),
        }
    }

    /// Applies the workers (and their job size and overlap) to `encoder`, whose level
    /// is set.
    pub fn configure<W: io::Write>(
        &self,
        encoder: &mut zstd::stream::write::Encoder<'_, W>,
    ) -> io::Result<()> {
        encoder.multithread(self.threads)?;
        if self.threads > 0 {
            encoder.set_parameter(zstd::zstd_safe::CParameter::JobSize(JOB_SIZE))?;
            encoder.set_parameter(zstd::zstd_safe::CParameter::OverlapSizeLog(OVERLAP_LOG))?;
        }
        Ok(())
    }
}

/// One worker per core the process may use (its CPU affinity and cgroup quota count),
/// capped at [`DEFAULT_THREADS_CAP`].
pub fn default_threads() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1)
        .min(DEFAULT_THREADS_CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_uses_the_cores_up_to_the_cap() {
        let cores = std::thread::available_parallelism().unwrap().get() as u32;
        assert_eq!(default_threads(), cores.min(DEFAULT_THREADS_CAP));
        assert!(default_threads() >= 1);
        assert_eq!(Compression::new(9, Some(0)).threads, 0);
        assert_eq!(Compression::new(9, None).threads, default_threads());
    }

    #[test]
    fn workers_write_one_frame_of_several_jobs_that_decompresses_to_the_input() {
        use std::io::Write;
        let input: Vec<u8> = (0..3 * JOB_SIZE as usize + 12345)
            .map(|i| ((i / 7) % 253) as u8)
            .collect();
        for threads in [0, 1, 3] {
            let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 9).unwrap();
            Compression::new(9, Some(threads))
                .configure(&mut encoder)
                .unwrap();
            encoder.write_all(&input).unwrap();
            let frame = encoder.finish().unwrap();
            assert!(frame.len() < input.len() / 10, "{threads}: {}", frame.len());
            assert_eq!(
                zstd::decode_all(&frame[..]).unwrap(),
                input,
                "{threads} workers"
            );
        }
    }
}
