//! The restore's CPU side: storage's bytes → SHA-256 → age → zstd → pg_restore, holding
//! back the end of the archive until everything is verified.
//!
//! Streaming decryption releases authenticated plaintext chunk by chunk, but truncation
//! or a wrong SHA-256 is only known at the very end. pg_restore commits its single
//! transaction once it has read the whole archive, so the last [`HOLD_BACK`] bytes are
//! withheld until age has verified the final chunk, zstd has ended its frame, the
//! source is exhausted and the digest matches. On any failure pg_restore never sees the
//! end of its archive, is killed, and its transaction rolls back.

use super::chunks::{source_error, HashingReader};
use crate::crypto::Decryption;
use crate::error::{Error, Result};
use std::io::{self, Read, Write};

/// Plaintext withheld from pg_restore until the backup is verified.
pub const HOLD_BACK: usize = 1 << 20;

/// What the decoder read and wrote.
#[derive(Debug, Clone)]
pub struct DecodeReport {
    /// Ciphertext bytes read from storage.
    pub ciphertext_bytes: u64,
    /// SHA-256 of that ciphertext.
    pub sha256: [u8; 32],
    /// Plaintext bytes given to pg_restore.
    pub plaintext_bytes: u64,
}

/// Writes through to `inner` all but the last `hold` bytes seen so far.
struct HoldBackWriter<W> {
    inner: W,
    held: Vec<u8>,
    hold: usize,
    written: u64,
}

impl<W: Write> HoldBackWriter<W> {
    fn release(mut self) -> io::Result<u64> {
        self.inner.write_all(&self.held)?;
        self.inner.flush()?;
        Ok(self.written + self.held.len() as u64)
    }
}

impl<W: Write> Write for HoldBackWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.held.extend_from_slice(buf);
        if self.held.len() > 2 * self.hold {
            let excess = self.held.len() - self.hold;
            self.inner.write_all(&self.held[..excess])?;
            self.held.drain(..excess);
            self.written += excess as u64;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decrypts and decompresses `input` into `out`, verifying everything before the last
/// bytes reach `out`.
pub fn decode(
    input: impl Read,
    decryption: &Decryption,
    expect_sha256: Option<[u8; 32]>,
    out: impl Write,
) -> Result<DecodeReport> {
    let mut source = HashingReader::new(input);
    let mut out = HoldBackWriter {
        inner: out,
        held: Vec::new(),
        hold: HOLD_BACK,
        written: 0,
    };
    {
        let decryptor =
            age::Decryptor::new_buffered(io::BufReader::new(&mut source)).map_err(|e| match e {
                age::DecryptError::Io(e) => classify(&e, "reading the age header"),
                e => Error::integrity(format!(
                    "this is not a valid age file: bad age header ({e})"
                )),
            })?;
        let plaintext = decryptor
            .decrypt(decryption.identities().into_iter())
            .map_err(|e| decryption.refusal(&e))?;
        let mut decompressor = zstd::stream::read::Decoder::new(plaintext)
            .map_err(|e| classify(&e, "starting zstd"))?;
        io::copy(&mut decompressor, &mut out).map_err(|e| match e.kind() {
            io::ErrorKind::BrokenPipe => Error::new(
                crate::error::ErrorKind::PgTool,
                "pg_restore stopped reading its input",
            ),
            _ => classify(&e, "decrypting and decompressing"),
        })?;
    }
    // age has verified its final chunk; nothing may follow it.
    let mut trailing = [0u8; 1];
    if source
        .read(&mut trailing)
        .map_err(|e| classify(&e, "reading the backup"))?
        != 0
    {
        return Err(Error::integrity(
            "the backup has data after the end of its age stream; it is corrupt",
        ));
    }
    let (ciphertext_bytes, sha256) = source.finish();
    if let Some(expected) = expect_sha256 {
        if expected != sha256 {
            return Err(Error::integrity(format!(
                "SHA-256 mismatch: the backup is {} but --expect-sha256 says {}",
                dbcrate_core::hex::encode(&sha256),
                dbcrate_core::hex::encode(&expected)
            )));
        }
    }
    let plaintext_bytes = out.release().map_err(|e| match e.kind() {
        io::ErrorKind::BrokenPipe => Error::new(
            crate::error::ErrorKind::PgTool,
            "pg_restore stopped reading its input",
        ),
        _ => Error::new(
            crate::error::ErrorKind::PgTool,
            format!("writing to pg_restore: {e}"),
        ),
    })?;
    Ok(DecodeReport {
        ciphertext_bytes,
        sha256,
        plaintext_bytes,
    })
}

/// A storage read failure is a storage error; anything else while decoding means the
/// backup itself is damaged.
pub fn classify(e: &io::Error, doing: &str) -> Error {
    match source_error(e) {
        Some(source) => Error::storage(format!("{doing}: reading the backup failed: {source}")),
        None => Error::integrity(format!(
            "{doing}: the backup is corrupt, truncated or tampered ({e})"
        )),
    }
}
