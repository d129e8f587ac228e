//! The backup's CPU side: pg_dump's bytes → zstd → age → SHA-256 → chunks.

use super::chunks::{ChunkSender, CountingReader, HashingWriter};
use std::io::{self, Read, Write};

/// What the encoder produced.
#[derive(Debug, Clone)]
pub struct EncodeReport {
    /// Bytes read from pg_dump.
    pub plaintext_bytes: u64,
    /// Bytes of age ciphertext sent to storage.
    pub ciphertext_bytes: u64,
    /// SHA-256 of the ciphertext.
    pub sha256: [u8; 32],
}

/// Compresses and encrypts `input` into `out`.
///
/// age seals whatever it is given as a valid file, so the streams are finished only
/// when `input_succeeded` (which waits for pg_dump's exit status) says the input was
/// complete; otherwise this returns an error and nothing final is written.
pub fn encode(
    input: impl Read,
    recipients: &[age::x25519::Recipient],
    zstd_level: i32,
    out: ChunkSender,
    input_succeeded: impl FnOnce() -> bool,
) -> io::Result<EncodeReport> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| io::Error::other(format!("age: {e}")))?;
    let encrypted = encryptor.wrap_output(HashingWriter::new(out))?;
    // Never `auto_finish`: that would end the frame on an error path too.
    let mut compressor = zstd::stream::write::Encoder::new(encrypted, zstd_level)?;
    let mut input = CountingReader {
        inner: input,
        bytes: 0,
    };
    io::copy(&mut input, &mut compressor)?;
    if !input_succeeded() {
        return Err(io::Error::other("pg_dump did not finish successfully"));
    }
    let encrypted = compressor.finish()?;
    let hashed = encrypted.finish()?;
    let (mut out, ciphertext_bytes, sha256) = hashed.finish();
    out.flush()?;
    Ok(EncodeReport {
        plaintext_bytes: input.bytes,
        ciphertext_bytes,
        sha256,
    })
}
