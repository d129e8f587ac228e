//! The age header a managed restore reads back from storage (a ranged read of the
//! object's first bytes, which whoever can write the destination controls): unwrapping
//! the file key must refuse anything malformed without a panic, a hang or a large
//! allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The fuzzing identity; its recipient made the corpus's well-formed headers.
/// It opens nothing but the corpus (made with `age -r age17879kuvxt0plardpwgz8v0qep3upsfp2hkxexlru3rv3sdx0yuyqg3qn5w`).
const IDENTITY: &str = "AGE-SECRET-KEY-155TECF9G95F7NMVGPD65N2E5QN4FEYAXN8DQC2TA9S8TN5G7V36QP093W4";

fuzz_target!(|data: &[u8]| {
    static ID: OnceLock<age::x25519::Identity> = OnceLock::new();
    let identity = ID.get_or_init(|| IDENTITY.parse().expect("the fuzzing identity parses"));
    let _ = dbcrate_core::file_key::unwrap_file_key(data, identity);
});
