//! Random secrets for throwaway servers, read from the kernel's generator.

use crate::{KitError, Result};
use std::io::Read;

/// `bytes` random bytes as lower-case hex (so `2 * bytes` characters).
pub(crate) fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| KitError::io("reading /dev/urandom", e))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
