//! Reading a tool's output on a thread of its own, into a fixed set of buffers.
//!
//! When one thread both reads pg_dump's pipe and compresses, pg_dump stalls whenever the
//! compressor is busy: the pipe (64 KiB by default) fills in well under a millisecond.
//! Here a reader thread keeps the pipe drained into up to [`BUFFERS`] × [`BUFFER_SIZE`]
//! bytes while the compressor works, as the zstd command line's input thread does. The
//! buffers go round between the two threads, so memory stays bounded and nothing is
//! allocated per read. The pipe itself is also enlarged (see [`enlarge_pipe`]).
//!
//! A read returns what is in the pipe, which for pg_dump (writing through stdio) is
//! often a few kilobytes; a buffer therefore travels with the length read instead of
//! being cut to it, so that giving it back costs nothing (growing it back zeroed its
//! whole tail on every read: measured, 8% of a backup's CPU time at zstd level 1).

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::time::Duration;

/// Bytes per buffer: one `read` of the pipe fills at most this much.
pub const BUFFER_SIZE: usize = 256 << 10;
/// Buffers in flight between the reader and the compressor (4 MiB in all).
pub const BUFFERS: usize = 16;
/// The pipe size asked for: Linux's default ceiling for unprivileged processes
/// (`/proc/sys/fs/pipe-max-size`).
const PIPE_SIZE: libc::c_int = 1 << 20;

/// What [`ReadAhead::next_buffer_within`] found.
pub enum Waited {
    /// The next bytes read (or the read error).
    Read(io::Result<Filled>),
    /// Nothing was read in the time given; the input is still open.
    Silent,
    /// The input ended.
    End,
}

/// The consuming end: full buffers in the order they were read.
pub struct ReadAhead {
    full: Receiver<io::Result<Filled>>,
    empty: SyncSender<Vec<u8>>,
}

impl ReadAhead {
    /// Starts reading `input` on a new thread named `name`. The thread ends at end of
    /// input, at a read error (passed on), or when this end is dropped.
    pub fn start(name: &str, input: impl Read + Send + 'static) -> io::Result<Self> {
        let (full_tx, full) = sync_channel(BUFFERS);
        let (empty, empty_rx) = sync_channel(BUFFERS);
        for _ in 0..BUFFERS {
            empty
                .try_send(vec![0u8; BUFFER_SIZE])
                .expect("the channel holds every buffer");
        }
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || read_into(input, &empty_rx, &full_tx))?;
        Ok(Self { full, empty })
    }

    /// The next bytes read, or [`Waited::Silent`] when nothing more was read within
    /// `wait`, or [`Waited::End`]. Give a buffer back with [`ReadAhead::recycle`] once
    /// its bytes are used.
    pub fn next_buffer_within(&mut self, wait: Duration) -> Waited {
        match self.full.recv_timeout(wait) {
            Ok(read) => Waited::Read(read),
            Err(RecvTimeoutError::Timeout) => Waited::Silent,
            Err(RecvTimeoutError::Disconnected) => Waited::End,
        }
    }

    /// Returns a used buffer to the reader.
    pub fn recycle(&self, filled: Filled) {
        // The reader may have stopped; then the buffer is simply dropped.
        let _ = self.empty.try_send(filled.buffer);
    }
}

/// One of the reader's buffers, holding `len` bytes read; derefs to them.
pub struct Filled {
    buffer: Vec<u8>,
    len: usize,
}

impl std::ops::Deref for Filled {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.buffer[..self.len]
    }
}

/// The reader thread: fills empty buffers from `input` and passes them on with the
/// length read.
fn read_into(
    mut input: impl Read,
    empty: &Receiver<Vec<u8>>,
    full: &SyncSender<io::Result<Filled>>,
) {
    while let Ok(mut buffer) = empty.recv() {
        // Every buffer is BUFFER_SIZE long: made so, and never cut.
        let n = loop {
            match input.read(&mut buffer) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = full.send(Err(e));
                    return;
                }
            }
        };
        if n == 0 {
            return;
        }
        if full.send(Ok(Filled { buffer, len: n })).is_err() {
            return;
        }
    }
}

/// Asks the kernel for a 1 MiB pipe behind `pipe` (64 KiB by default), so pg_dump can
/// write ahead while the reader thread is descheduled. Best effort: a smaller pipe only
/// costs speed, so a refusal is logged at debug level and otherwise ignored.
#[allow(unsafe_code)]
pub fn enlarge_pipe(pipe: &impl std::os::fd::AsRawFd) {
    // SAFETY: F_SETPIPE_SZ on a descriptor we own; it only resizes the pipe's buffer.
    let set = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_SIZE) };
    if set < 0 {
        tracing::debug!(
            "the pipe stays at its default size: {}",
            io::Error::last_os_error()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads in odd-sized steps, then fails or ends.
    struct Source {
        data: Vec<u8>,
        at: usize,
        fail_at_end: bool,
    }

    impl Read for Source {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.data.len() {
                return match self.fail_at_end {
                    true => Err(io::Error::other("the pipe broke")),
                    false => Ok(0),
                };
            }
            let n = buf.len().min(777).min(self.data.len() - self.at);
            buf[..n].copy_from_slice(&self.data[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn source(len: usize, fail_at_end: bool) -> Source {
        Source {
            data: (0..len).map(|i| (i % 251) as u8).collect(),
            at: 0,
            fail_at_end,
        }
    }

    /// The next buffer, waiting as long as it takes (these sources never stall).
    fn next_buffer(r: &mut ReadAhead) -> Option<io::Result<Filled>> {
        loop {
            match r.next_buffer_within(Duration::from_secs(1)) {
                Waited::Read(read) => return Some(read),
                Waited::Silent => continue,
                Waited::End => return None,
            }
        }
    }

    fn drain(mut r: ReadAhead) -> (Vec<u8>, Option<io::Error>) {
        let mut out = Vec::new();
        while let Some(next) = next_buffer(&mut r) {
            match next {
                Ok(b) => {
                    out.extend_from_slice(&b);
                    r.recycle(b);
                }
                Err(e) => return (out, Some(e)),
            }
        }
        (out, None)
    }

    #[test]
    fn every_byte_arrives_in_order_through_more_reads_than_buffers() {
        let input = source(BUFFERS * 777 * 3 + 5, false);
        let expected = input.data.clone();
        let (out, error) = drain(ReadAhead::start("test", input).unwrap());
        assert!(error.is_none());
        assert_eq!(out, expected);
    }

    /// Reads of `sizes` bytes, in turn, then the end.
    struct Steps {
        sizes: Vec<usize>,
    }

    impl Read for Steps {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.sizes.is_empty() {
                return Ok(0);
            }
            let n = self.sizes.remove(0).min(buf.len());
            buf[..n].fill(7);
            Ok(n)
        }
    }

    #[test]
    fn a_buffer_given_back_after_a_short_read_holds_a_whole_read_again() {
        let mut sizes = vec![10; BUFFERS];
        sizes.extend([BUFFER_SIZE; BUFFERS]);
        let mut r = ReadAhead::start(
            "test",
            Steps {
                sizes: sizes.clone(),
            },
        )
        .unwrap();
        let mut got = Vec::new();
        while let Some(next) = next_buffer(&mut r) {
            let filled = next.unwrap();
            got.push(filled.len());
            r.recycle(filled);
        }
        assert_eq!(got, sizes);
    }

    #[test]
    fn a_read_error_is_passed_on_after_the_bytes_before_it() {
        let input = source(10_000, true);
        let expected = input.data.clone();
        let (out, error) = drain(ReadAhead::start("test", input).unwrap());
        assert_eq!(out, expected);
        assert_eq!(error.unwrap().to_string(), "the pipe broke");
    }

    #[test]
    fn the_reader_stops_when_the_consumer_goes_away() {
        let (tx, rx) = std::sync::mpsc::channel();
        struct Endless(std::sync::mpsc::Sender<()>);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                Ok(buf.len())
            }
        }
        impl Drop for Endless {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let mut r = ReadAhead::start("test", Endless(tx)).unwrap();
        assert!(next_buffer(&mut r).unwrap().is_ok());
        drop(r);
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("the reader dropped its input");
    }

    #[test]
    #[allow(unsafe_code)]
    fn a_pipe_can_be_enlarged_to_a_mebibyte() {
        let mut child = std::process::Command::new("true")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        enlarge_pipe(&stdout);
        use std::os::fd::AsRawFd;
        // SAFETY: F_GETPIPE_SZ on a pipe we hold.
        let size = unsafe { libc::fcntl(stdout.as_raw_fd(), libc::F_GETPIPE_SZ) };
        assert_eq!(size, PIPE_SIZE);
        child.wait().unwrap();
    }
}
