//! The signer's error: one line saying what failed and what to do, never a secret. It
//! is the shape the registry tool and the test kit use too
//! ([`dbcrate_core::failure`]): `main` only prints it and exits 1, so it needs no kind,
//! and an I/O error or a registry refusal stays its `source()`.

pub use dbcrate_core::failure::Failure as Error;

/// Shorthand.
pub type Result<T> = std::result::Result<T, Error>;
