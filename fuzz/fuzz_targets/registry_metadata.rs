//! What the signed registry serves, which an attacker on the path or in control of the
//! registry host can replace: root.json, manifest.json, minisign public keys and
//! signatures. Parsing (and verifying a parsed signature against a parsed key) must
//! refuse without a panic.
#![no_main]

use dbcrate_core::registry::metadata::{Manifest, Root};
use dbcrate_core::registry::minisign::{PublicKey, Signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Root::parse(data);
    let _ = Manifest::parse(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A key and a signature from one input: the first line block is the key.
    let (key, signature) = text.split_once("\n\n").unwrap_or((text, text));
    let key = PublicKey::parse(key);
    let signature = Signature::parse(signature);
    if let (Ok(key), Ok(signature)) = (key, signature) {
        let _ = signature.verify(&key, data, "fuzz input");
    }
});
