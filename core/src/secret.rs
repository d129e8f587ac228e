//! Secret values that cannot leak by accident.
//!
//! A secret type has no `Clone`, no `Display` and no `Serialize`; its `Debug` prints
//! `<redacted>`; its memory is zeroed when it is dropped. Reading it takes an explicit
//! `expose_secret()`, which makes every use easy to find in review.

use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// A secret string: a password, an access key's secret, a private key in text form.
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Takes ownership of `value`; it is zeroed on drop.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The secret itself. Never log it or put it on a command line.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (an empty password, say), without exposing it.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

/// A fixed-size secret byte array, such as an age file key (16 bytes).
pub struct SecretBytes<const N: usize>(Box<[u8; N]>);

impl<const N: usize> SecretBytes<N> {
    /// Takes a copy of `bytes` into zeroed-on-drop memory; the caller zeroes its own copy.
    pub fn new(bytes: [u8; N]) -> Self {
        let mut bytes = bytes;
        let secret = Self(Box::new(bytes));
        bytes.zeroize();
        secret
    }

    /// The secret bytes. Never log them.
    pub fn expose_secret(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> Drop for SecretBytes<N> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<const N: usize> fmt::Debug for SecretBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes<{N}>(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = SecretString::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "SecretString(<redacted>)");
        assert_eq!(s.expose_secret(), "hunter2");
        let b = SecretBytes::new([7u8; 16]);
        assert_eq!(format!("{b:?}"), "SecretBytes<16>(<redacted>)");
        assert_eq!(b.expose_secret(), &[7u8; 16]);
    }
}
