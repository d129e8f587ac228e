//! Envelope encryption of secrets (docs/architecture.md, "Trust boundaries").
//!
//! ```text
//! master key(s) ── from DBCRATE_MASTER_KEY / DBCRATE_MASTER_KEY_FILE, never a row
//!    │ wraps (XChaCha20-Poly1305, AAD = master key id ‖ org ‖ secret id ‖ purpose)
//!    ▼
//! per-secret DEK (random 32 bytes)
//!    │ encrypts (XChaCha20-Poly1305, AAD = org ‖ secret id ‖ purpose)
//!    ▼
//! secret ciphertext (a row)
//! ```
//!
//! Binding the org, the secret's id and its purpose into both AADs means a ciphertext or
//! a wrapped DEK copied to another row fails to decrypt. Rotating the master key re-wraps
//! DEKs only ([`SealedSecret::rewrap`]): secret ciphertexts stay byte-identical, and a
//! rotation stopped halfway leaves every secret readable as long as both keys are
//! configured. XChaCha20's 24-byte nonces are random, so no counter has to be kept.

mod master_key;
mod sealed;

pub use master_key::{MasterKey, MasterKeys, MASTER_KEY_ENV, MASTER_KEY_FILE_ENV};
pub use sealed::{EnvelopeError, SealedSecret, SecretContext};
