//! How a webhook delivery proves where it comes from and when: the body and the
//! delivery's Unix time, HMAC-SHA256 under the channel's signing key, sent as
//! `X-Dbcrate-Signature: v1=<hex>` with `X-Dbcrate-Timestamp: <unix seconds>`. A
//! receiver recomputes it over `<timestamp>.<body>` with the key it was shown once, and
//! refuses a timestamp more than five minutes from its clock (a replayed delivery) —
//! `verify` is that check, for receivers written in Rust and for the tests.

use ring::hmac;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-dbcrate-signature";
/// The header carrying the Unix time the signature covers.
pub const TIMESTAMP_HEADER: &str = "x-dbcrate-timestamp";
/// The header carrying the delivery's id (the same on every retry of it).
pub const DELIVERY_HEADER: &str = "x-dbcrate-delivery";
/// How far a receiver should let a timestamp stray from its own clock.
pub const TOLERANCE_SECS: i64 = 300;

/// What is signed: `<timestamp>.<body>`.
fn signed_text(timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut text = format!("{timestamp}.").into_bytes();
    text.extend_from_slice(body);
    text
}

/// The signature header's value for `body` sent at `timestamp` under `key`.
pub fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, &signed_text(timestamp, body));
    format!("v1={}", dbcrate_core::hex::encode(tag.as_ref()))
}

/// Whether `signature` is `body`'s at `timestamp` under `key`, and `timestamp` is within
/// [`TOLERANCE_SECS`] of `now` (compared in constant time).
pub fn verify(key: &[u8], timestamp: i64, body: &[u8], signature: &str, now: i64) -> bool {
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return false;
    }
    let Some(hex) = signature.strip_prefix("v1=") else {
        return false;
    };
    let Some(tag) = dbcrate_core::hex::decode_array::<32>(hex) else {
        return false;
    };
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::verify(&key, &signed_text(timestamp, body), &tag).is_ok()
}

#[cfg(test)]
mod tests {
    use super::{sign, verify};

    #[test]
    fn a_signature_holds_for_its_body_and_time_only() {
        let key = b"dbcwh_0123";
        let body = br#"{"event":"open"}"#;
        let signature = sign(key, 1_800_000_000, body);
        assert!(signature.starts_with("v1=") && signature.len() == 3 + 64);
        assert!(verify(key, 1_800_000_000, body, &signature, 1_800_000_100));
        assert!(
            !verify(key, 1_800_000_000, body, &signature, 1_800_000_301),
            "replayed"
        );
        assert!(!verify(key, 1_800_000_001, body, &signature, 1_800_000_001));
        assert!(!verify(
            key,
            1_800_000_000,
            b"{}",
            &signature,
            1_800_000_000
        ));
        assert!(!verify(
            b"other",
            1_800_000_000,
            body,
            &signature,
            1_800_000_000
        ));
        assert!(!verify(key, 1_800_000_000, body, "v1=zz", 1_800_000_000));
    }
}
