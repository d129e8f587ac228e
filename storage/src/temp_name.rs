//! Hidden names for objects being written to a directory or an SFTP host.
//!
//! Each write gets a name of its own (`.NAME.partial-PID-RANDOM`): a retried job can be
//! given the same final name in the same second, and what an earlier attempt left
//! behind (an SFTP temp file the agent may only empty, or any temp file of a killed
//! agent whose PID is now reused) must never stop the next attempt from starting.

use crate::error::{Error, Result};

/// The hidden name to write `name` under before it is published.
pub(crate) fn partial(name: &str) -> Result<String> {
    Ok(format!(
        ".{name}.partial-{}-{}",
        std::process::id(),
        random_hex(4)?
    ))
}

/// `n` random bytes from the OS, as hex.
pub(crate) fn random_hex(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| Error::storage(format!("the OS random source failed: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_write_gets_a_hidden_name_of_its_own() {
        let first = partial("db.pgdump.zst.age").unwrap();
        let second = partial("db.pgdump.zst.age").unwrap();
        let prefix = format!(".db.pgdump.zst.age.partial-{}-", std::process::id());
        assert!(first.starts_with(&prefix), "{first}");
        assert_eq!(first.len(), prefix.len() + 8);
        assert_ne!(first, second);
    }
}
