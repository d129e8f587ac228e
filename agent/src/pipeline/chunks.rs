//! Adapters between synchronous encoders and the async side: a writer that sends
//! fixed-size chunks into a bounded channel, and byte counting/hashing wrappers.

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use tokio::sync::mpsc::Sender;

/// Collects writes into chunks of `size` bytes and hands each to `send`, which may block
/// (a bounded channel's back-pressure). Call only from a blocking thread.
pub struct ChunkSender<F> {
    buffer: BytesMut,
    size: usize,
    send: F,
}

impl<F: FnMut(Bytes) -> io::Result<()>> ChunkSender<F> {
    pub fn new(size: usize, send: F) -> Self {
        Self {
            buffer: BytesMut::with_capacity(size),
            size,
            send,
        }
    }
}

/// A [`ChunkSender`] into a tokio channel read by the async side.
pub fn to_async(
    tx: Sender<Bytes>,
    size: usize,
) -> ChunkSender<impl FnMut(Bytes) -> io::Result<()>> {
    ChunkSender::new(size, move |chunk| {
        tx.blocking_send(chunk).map_err(|_| {
            io::Error::new(io::ErrorKind::BrokenPipe, "storage stopped accepting data")
        })
    })
}

impl<F: FnMut(Bytes) -> io::Result<()>> Write for ChunkSender<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.size - self.buffer.len();
        let n = room.min(buf.len());
        self.buffer.extend_from_slice(&buf[..n]);
        if self.buffer.len() == self.size {
            let chunk = self.buffer.split().freeze();
            self.buffer.reserve(self.size);
            (self.send)(chunk)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            let chunk = self.buffer.split().freeze();
            (self.send)(chunk)?;
        }
        Ok(())
    }
}

/// Counts and hashes (SHA-256) everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer, the byte count and the digest.
    pub fn finish(self) -> (W, u64, [u8; 32]) {
        (self.inner, self.bytes, self.hasher.finalize().into())
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A read error of the underlying source (storage or pg_dump's pipe), kept apart from
/// decoding errors so that the message can say which side failed.
#[derive(Debug)]
pub struct SourceError(pub io::Error);

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::error::Error for SourceError {}

/// Counts and hashes everything read through it; read errors are tagged [`SourceError`].
pub struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The byte count and digest of everything read.
    pub fn finish(self) -> (u64, [u8; 32]) {
        (self.bytes, self.hasher.finalize().into())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self
            .inner
            .read(buf)
            .map_err(|e| io::Error::other(SourceError(e)))?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Whether `e` (or what it wraps) is a [`SourceError`].
pub fn source_error(e: &io::Error) -> Option<&SourceError> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<SourceError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sender_cuts_equal_chunks_and_flushes_the_rest() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let mut w = to_async(tx, 4);
        w.write_all(b"abcdefghij").unwrap();
        w.flush().unwrap();
        drop(w);
        let mut got = Vec::new();
        while let Ok(c) = rx.try_recv() {
            got.push(c);
        }
        assert_eq!(got, vec![&b"abcd"[..], &b"efgh"[..], &b"ij"[..]]);
    }

    #[test]
    fn hashing_writer_matches_sha256() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (inner, n, digest) = w.finish();
        assert_eq!((inner.as_slice(), n), (&b"abc"[..], 3));
        assert_eq!(
            dbcrate_core::hex::encode(&digest),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
