//! Time-based one-time passwords (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps), the
//! second factor of control-plane accounts.
//!
//! Pure functions: the caller passes the time and the last step a code was accepted
//! for, so replay protection (a code is good once) and clock skew (one step either
//! way) are decided here and tested without a clock. Enrolment, storage of the sealed
//! secret and the sign-in flow build on this.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Seconds per step.
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Steps of clock skew accepted either way.
pub const SKEW_STEPS: i64 = 1;

/// The code for `step` (RFC 4226 dynamic truncation), as a number below 10^DIGITS.
pub fn code_at(secret: &[u8], step: i64) -> u32 {
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this cannot happen.
        Err(_) => return u32::MAX,
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let value = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    value % 10u32.pow(DIGITS)
}

/// The step a Unix time falls in.
pub fn step_of(unix: i64) -> i64 {
    unix.div_euclid(STEP_SECS)
}

/// Checks `code` at time `now`: returns the step it matched, which the caller stores so
/// the same code (or an older one) is never accepted again. `None` for a wrong,
/// malformed, expired or replayed code.
pub fn verify(secret: &[u8], code: &str, now: i64, last_used_step: Option<i64>) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let wanted: u32 = code.parse().ok()?;
    let current = step_of(now);
    (current - SKEW_STEPS..=current + SKEW_STEPS)
        .filter(|step| last_used_step.is_none_or(|used| *step > used))
        .find(|step| code_at(secret, *step) == wanted)
}

/// The `otpauth://` URI an authenticator app reads (usually from a QR code).
pub fn otpauth_uri(account: &str, secret: &[u8]) -> String {
    let secret = data_encoding::BASE32_NOPAD.encode(secret);
    let account: String = account
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!(
        "otpauth://totp/dbcrate:{account}?secret={secret}&issuer=dbcrate&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8-digit codes; ours are their last 6 digits).
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_vectors() {
        for (time, eight_digits) in [
            (59, 94_287_082u32),
            (1_111_111_109, 7_081_804),
            (1_111_111_111, 14_050_471),
            (1_234_567_890, 89_005_924),
            (2_000_000_000, 69_279_037),
            (20_000_000_000, 65_353_130),
        ] {
            assert_eq!(
                code_at(RFC_SECRET, step_of(time)),
                eight_digits % 1_000_000,
                "T={time}"
            );
        }
    }

    #[test]
    fn skew_replay_and_malformed_codes() {
        let now = 1_234_567_890;
        let code = |step: i64| format!("{:06}", code_at(RFC_SECRET, step));
        let current = step_of(now);
        assert_eq!(verify(RFC_SECRET, &code(current), now, None), Some(current));
        assert_eq!(
            verify(RFC_SECRET, &code(current - 1), now, None),
            Some(current - 1)
        );
        assert_eq!(
            verify(RFC_SECRET, &code(current + 1), now, None),
            Some(current + 1)
        );
        assert_eq!(
            verify(RFC_SECRET, &code(current - 2), now, None),
            None,
            "too old"
        );
        assert_eq!(
            verify(RFC_SECRET, &code(current), now, Some(current)),
            None,
            "replayed"
        );
        assert_eq!(
            verify(RFC_SECRET, &code(current - 1), now, Some(current)),
            None,
            "older than used"
        );
        for bad in ["", "12345", "1234567", "12a456", "-12345"] {
            assert_eq!(verify(RFC_SECRET, bad, now, None), None, "{bad:?}");
        }
    }

    #[test]
    fn otpauth_uri_for_authenticator_apps() {
        assert_eq!(
            otpauth_uri("owner@example.com", RFC_SECRET),
            "otpauth://totp/dbcrate:owner@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=dbcrate&algorithm=SHA1&digits=6&period=30"
        );
    }
}
