//! Secret values that cannot leak by accident.
//!
//! A secret type has no `Clone`, no `Display` and no `Serialize`; its `Debug` prints
//! `<redacted>`; its memory is zeroed when it is dropped. Reading it takes an explicit
//! `expose_secret()`, which makes every use easy to find in review.
//!
//! On the wire (`crate::wire`) secrets deserialise straight into these types (no
//! plaintext `String` in between). Sending one is an opt-in per field,
//! `#[serde(serialize_with = "crate::secret::expose::…")]`, so a struct holding a secret
//! cannot be serialised into a log or an answer by accident.

use serde::de::{Deserialize, Deserializer, Visitor};
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

/// Whether two byte strings are equal, in time that depends only on their lengths: for
/// comparing a presented token or code with the expected one without leaking, through
/// timing, how much of it was right.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = SecretString;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretString, E> {
                Ok(SecretString::new(v.to_owned()))
            }
            // An owned string is taken over as it is: no copy is left behind.
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<SecretString, E> {
                Ok(SecretString::new(v))
            }
        }
        deserializer.deserialize_string(Text)
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

impl<const N: usize> SecretBytes<N> {
    /// `2 * N` hex digits (either case) decoded straight into zeroed-on-drop memory;
    /// `None` for anything else.
    pub fn from_hex(text: &str) -> Option<Self> {
        let digits = text.trim().as_bytes();
        if digits.len() != 2 * N {
            return None;
        }
        let mut secret = Self(Box::new([0u8; N]));
        for (byte, pair) in secret.0.iter_mut().zip(digits.chunks_exact(2)) {
            let high = (pair[0] as char).to_digit(16)?;
            let low = (pair[1] as char).to_digit(16)?;
            *byte = (high * 16 + low) as u8;
        }
        Some(secret)
    }
}

impl<const N: usize> SecretBytes<N> {
    /// The bytes as lower-case hex, in memory that is wiped on drop (no intermediate
    /// copies).
    pub fn to_hex(&self) -> Zeroizing<String> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = Zeroizing::new(String::with_capacity(2 * N));
        for byte in self.0.iter() {
            text.push(char::from(DIGITS[usize::from(byte >> 4)]));
            text.push(char::from(DIGITS[usize::from(byte & 0xf)]));
        }
        text
    }
}

/// SecretBytes travel as `2 * N` lower-case hex digits (a managed restore's file key).
impl<'de, const N: usize> Deserialize<'de> for SecretBytes<N> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Hex<const N: usize>;
        impl<const N: usize> Visitor<'_> for Hex<N> {
            type Value = SecretBytes<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{N} bytes as {} hex digits", 2 * N)
            }
            // The errors never quote the value.
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SecretBytes<N>, E> {
                SecretBytes::from_hex(v)
                    .ok_or_else(|| E::custom(format!("not {N} bytes as {} hex digits", 2 * N)))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<SecretBytes<N>, E> {
                let v = Zeroizing::new(v);
                self.visit_str(&v)
            }
        }
        deserializer.deserialize_string(Hex::<N>)
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

/// Serialisers that send a secret, for the wire fields that must carry one:
/// `#[serde(serialize_with = "dbcrate_core::secret::expose::string")]`.
pub mod expose {
    use super::{SecretBytes, SecretString};
    use serde::Serializer;

    /// The secret string as a JSON string.
    pub fn string<S: Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose_secret())
    }

    /// An optional secret string: the string, or null.
    pub fn option_string<S: Serializer>(
        secret: &Option<SecretString>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match secret {
            Some(secret) => s.serialize_some(secret.expose_secret()),
            None => s.serialize_none(),
        }
    }

    /// The secret bytes as lower-case hex (the form [`SecretBytes`] deserialises from);
    /// the hex text is wiped once written.
    pub fn hex<const N: usize, S: Serializer>(
        secret: &SecretBytes<N>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&secret.to_hex())
    }
}

/// A JSON value made from secrets, for an interface that takes JSON (the storage
/// settings parser): every string in it is wiped when it is dropped, and its `Debug`
/// is redacted.
pub struct SecretJson(serde_json::Value);

impl SecretJson {
    /// Takes ownership of `value`; its strings are wiped on drop.
    pub fn new(value: serde_json::Value) -> Self {
        Self(value)
    }

    /// The value itself. Never log it.
    pub fn expose_secret(&self) -> &serde_json::Value {
        &self.0
    }
}

/// Wipes every string in a JSON value, object keys aside.
fn wipe(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

impl Drop for SecretJson {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl fmt::Debug for SecretJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretJson(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn byte_strings_compare_whole() {
        assert!(super::same_bytes(b"abc", b"abc"));
        assert!(!super::same_bytes(b"abc", b"abd"));
        assert!(!super::same_bytes(b"abc", b"ab"));
        assert!(!super::same_bytes(b"", b"a"));
    }

    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let s = SecretString::new("hunter2".into());
        assert_eq!(format!("{s:?}"), "SecretString(<redacted>)");
        assert_eq!(s.expose_secret(), "hunter2");
        let b = SecretBytes::new([7u8; 16]);
        assert_eq!(format!("{b:?}"), "SecretBytes<16>(<redacted>)");
        assert_eq!(b.expose_secret(), &[7u8; 16]);
        let j = SecretJson::new(serde_json::json!({ "k": "hunter2" }));
        assert_eq!(format!("{j:?}"), "SecretJson(<redacted>)");
        assert_eq!(j.expose_secret()["k"], "hunter2");
    }

    #[test]
    fn secrets_deserialise_straight_into_their_types_and_are_sent_only_on_request() {
        #[derive(serde::Deserialize, serde::Serialize)]
        struct Sent {
            #[serde(serialize_with = "expose::string")]
            text: SecretString,
            #[serde(serialize_with = "expose::option_string")]
            maybe: Option<SecretString>,
            #[serde(serialize_with = "expose::hex")]
            key: SecretBytes<4>,
        }
        // An escaped string arrives owned; a plain one borrowed: both work.
        let json = r#"{"text":"pa\"ss","maybe":null,"key":"00A1ff10"}"#;
        let sent: Sent = serde_json::from_str(json).unwrap();
        assert_eq!(sent.text.expose_secret(), "pa\"ss");
        assert!(sent.maybe.is_none());
        assert_eq!(sent.key.expose_secret(), &[0x00, 0xa1, 0xff, 0x10]);
        let again = serde_json::to_string(&sent).unwrap();
        assert_eq!(again, r#"{"text":"pa\"ss","maybe":null,"key":"00a1ff10"}"#);
        let from_value: Sent = serde_json::from_value(serde_json::json!({
            "text": "owned", "maybe": "m", "key": "01020304",
        }))
        .unwrap();
        assert_eq!(from_value.maybe.unwrap().expose_secret(), "m");
        assert_eq!(from_value.text.expose_secret(), "owned");
        // A malformed key is refused without its value in the message.
        for bad in ["0011", "00112233aa", "zz112233", " "] {
            let err = serde_json::from_value::<SecretBytes<4>>(serde_json::json!(bad))
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains("not 4 bytes as 8 hex digits"), "{err}");
            assert!(bad.trim().is_empty() || !err.contains(bad), "{err}");
        }
        assert!(SecretBytes::<2>::from_hex("+1ab").is_none());
    }
}
