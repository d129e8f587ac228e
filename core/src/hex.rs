//! Lower-case hex, the form dbcrate prints digests, ids and file keys in.

/// `bytes` as lower-case hex.
pub fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exactly `2 * N` hex digits (either case, surrounding whitespace ignored) as `N`
/// bytes; `None` for anything else.
pub fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.trim();
    if text.len() != 2 * N || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        assert_eq!(encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(decode_array::<3>(" 00ABff\n"), Some([0x00, 0xab, 0xff]));
        assert_eq!(decode_array::<3>("00abf"), None);
        assert_eq!(decode_array::<3>("00abffee"), None);
        assert_eq!(decode_array::<2>("zz00"), None);
    }
}
