//! The backup's CPU side, on threads of its own so that reading, compression and
//! encryption overlap (as `zstd | age` do in a shell): pg_dump's bytes → [read-ahead
//! buffers] → zstd (and its workers) → [channel] → age → SHA-256 → chunks for storage.

use super::chunks::{ChunkSender, HashingWriter};
use super::compression::Compression;
use super::read_ahead::ReadAhead;
use bytes::Bytes;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender};

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
    while let Some(read) = input.next_buffer() {
        let buffer =
            read.map_err(|e| io::Error::other(format!("reading pg_dump's output: {e}")))?;
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
