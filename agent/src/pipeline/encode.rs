//! The backup's CPU side, on threads of its own so that reading, compression and
//! encryption overlap (as `zstd | age` do in a shell): pg_dump's bytes → [read-ahead
//! buffers] → zstd (and its workers) → [channel] → age → SHA-256 → chunks for storage.

use super::chunks::{ChunkSender, HashingWriter};
use super::compression::Compression;
use super::read_ahead::{ReadAhead, Waited};
use bytes::Bytes;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender};
use std::time::Duration;

/// How long pg_dump may be silent (a lock wait, a slow query, a huge table's first rows)
/// before what it wrote so far is compressed to the end and sent on. libzstd's workers
/// hold finished jobs' output until they are next fed, and the chunking holds up to a
/// chunk, so without this a stalled dump's last megabytes would sit in memory unsent
/// and unreported for as long as the stall lasts. A flush ends the current zstd block
/// and job early, so it is kept for real silences, not the gaps between reads.
const FLUSH_WHEN_SILENT_FOR: Duration = Duration::from_secs(1);

/// What the compressor hands the encryptor.
pub enum Piece {
    /// Compressed bytes.
    Data(Bytes),
    /// The zstd frame is complete and pg_dump succeeded: the age stream may be finished.
    End,
}

/// Compresses `input` (pg_dump's stdout, read ahead) into pieces for [`encrypt`];
/// returns the bytes read. The zstd frame is ended, and [`Piece::End`] sent, only when
/// `input_succeeded` (which waits for pg_dump's exit status) says the input was
/// complete.
pub fn compress(
    mut input: ReadAhead,
    compression: Compression,
    out: SyncSender<Piece>,
    input_succeeded: impl FnOnce() -> bool,
) -> io::Result<u64> {
    let to_encryptor = out.clone();
    let pieces = ChunkSender::new(super::CHUNK_SIZE, move |chunk| {
        to_encryptor
            .send(Piece::Data(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "encryption stopped"))
    });
    // Never `auto_finish`: that would end the frame on an error path too.
    let mut compressor = zstd::stream::write::Encoder::new(pieces, compression.level)?;
    compression.configure(&mut compressor)?;
    let mut total = 0u64;
    loop {
        let buffer = match input.next_buffer_within(FLUSH_WHEN_SILENT_FOR) {
            Waited::Read(read) => {
                read.map_err(|e| io::Error::other(format!("reading pg_dump's output: {e}")))?
            }
            Waited::Silent => {
                compressor.flush()?;
                continue;
            }
            Waited::End => break,
        };
        compressor.write_all(&buffer)?;
        total += buffer.len() as u64;
        input.recycle(buffer);
    }
    if !input_succeeded() {
        return Err(io::Error::other("pg_dump did not finish successfully"));
    }
    let mut pieces = compressor.finish()?;
    pieces.flush()?;
    out.send(Piece::End)
        .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "encryption stopped"))?;
    Ok(total)
}

/// Encrypts the compressor's pieces to `recipients` into `out`; returns the ciphertext's
/// length and SHA-256. age seals whatever it is given as a valid file, so the stream is
/// finished only on [`Piece::End`]; if the compressor stops without it, this fails.
pub fn encrypt(
    pieces: Receiver<Piece>,
    recipients: &[age::x25519::Recipient],
    out: ChunkSender<impl FnMut(Bytes) -> io::Result<()>>,
) -> io::Result<(u64, [u8; 32])> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| io::Error::other(format!("age: {e}")))?;
    let mut encrypted = encryptor.wrap_output(HashingWriter::new(out))?;
    loop {
        match pieces.recv() {
            Ok(Piece::Data(bytes)) => encrypted.write_all(&bytes)?,
            Ok(Piece::End) => break,
            Err(_) => return Err(io::Error::other("compression stopped before the end")),
        }
    }
    let (mut out, ciphertext_bytes, sha256) = encrypted.finish()?.finish();
    out.flush()?;
    Ok((ciphertext_bytes, sha256))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::sync::mpsc::{channel, sync_channel, Receiver as StdReceiver};
    use std::time::{Duration, Instant};

    /// A pipe whose writer is the test: reads block until the test sends or hangs up.
    struct Pipe {
        from_test: StdReceiver<Vec<u8>>,
        pending: Vec<u8>,
    }

    impl Read for Pipe {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pending.is_empty() {
                match self.from_test.recv() {
                    Ok(bytes) => self.pending = bytes,
                    Err(_) => return Ok(0),
                }
            }
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            Ok(n)
        }
    }

    /// Compressible but not trivially: 8 MiB make several worker jobs.
    fn sample(len: usize) -> Vec<u8> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        (0..len)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if i % 3 == 0 {
                    b'a' + (state % 16) as u8
                } else {
                    b' '
                }
            })
            .collect()
    }

    #[test]
    fn output_of_finished_input_leaves_while_pg_dump_is_silent() {
        let input = sample(8 << 20);
        let (to_pipe, from_test) = channel();
        let reader = ReadAhead::start(
            "test-read-ahead",
            Pipe {
                from_test,
                pending: Vec::new(),
            },
        )
        .unwrap();
        let (out, pieces) = sync_channel(64);
        let compressing = std::thread::spawn(move || {
            compress(reader, Compression::new(3, Some(2)), out, || true)
        });
        to_pipe.send(input.clone()).unwrap();

        // The input now stalls (as pg_dump does on a lock or a slow query). Everything
        // given so far must reach the encryptor soon, not when more input comes.
        let mut decoded = zstd::stream::write::Decoder::new(Vec::new()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while decoded.get_ref().len() < input.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match pieces.recv_timeout(left) {
                Ok(Piece::Data(bytes)) => {
                    decoded.write_all(&bytes).unwrap();
                    decoded.flush().unwrap();
                }
                Ok(Piece::End) => panic!("the frame ended while the input was open"),
                Err(_) => panic!(
                    "only {} of {} bytes came out while the input was silent",
                    decoded.get_ref().len(),
                    input.len()
                ),
            }
        }
        assert_eq!(decoded.get_ref()[..], input[..]);

        drop(to_pipe);
        assert_eq!(compressing.join().unwrap().unwrap(), input.len() as u64);
        let mut ended = false;
        for piece in pieces.iter() {
            match piece {
                Piece::Data(bytes) => decoded.write_all(&bytes).unwrap(),
                Piece::End => ended = true,
            }
        }
        decoded.flush().unwrap();
        assert!(ended);
        assert_eq!(decoded.get_ref().len(), input.len());
    }
}
