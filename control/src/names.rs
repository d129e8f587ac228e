//! The one check for text people type that the control plane stores and shows again:
//! names of organisations, tokens, agents, destinations, databases and schedules, and
//! e-mail addresses.
//!
//! Why one place: such text reaches audit rows, logs, CSV exports, dashboards and
//! terminals. A NUL is refused by PostgreSQL (after earlier steps may have run), a CR/LF
//! forges log and CSV lines, and bidirectional overrides (U+202E …) make a name display
//! as something else ("Trojan Source"). Every caller runs this before any side effect, so
//! a refused name has changed nothing, on either engine.
//!
//! The rules: surrounding whitespace is trimmed; the text is put in Unicode NFC (so two
//! spellings that look the same are one name); it must then be 1 to `max_chars`
//! characters with no control character (C0, DEL, C1), no bidirectional control, no
//! zero-width or other invisible formatting character, and no line or paragraph
//! separator. The error names the field and the offending character's code point.

use crate::error::{Error, Result};
use unicode_normalization::UnicodeNormalization;

/// Why a character is refused, if it is.
fn refused(c: char) -> Option<&'static str> {
    match c {
        c if c.is_control() => Some("a control character"),
        '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{061C}' => Some("a bidirectional control character"),
        '\u{200B}'..='\u{200D}'
        | '\u{2060}'..='\u{2064}'
        | '\u{FEFF}'
        | '\u{00AD}'
        | '\u{180E}'
        | '\u{FFF9}'..='\u{FFFB}' => Some("an invisible formatting character"),
        '\u{2028}' | '\u{2029}' => Some("a line or paragraph separator"),
        _ => None,
    }
}

/// `value` trimmed and in NFC, or a 422 naming `field` when it is empty, longer than
/// `max_chars` characters, or holds a character that is refused (see the module
/// documentation).
pub fn display_name(field: &str, value: &str, max_chars: usize) -> Result<String> {
    let text: String = value.trim().nfc().collect();
    check_characters(field, &text)?;
    let count = text.chars().count();
    if count == 0 || count > max_chars {
        return Err(Error::invalid(format!(
            "{field} must be 1-{max_chars} characters (it has {count})"
        )));
    }
    Ok(text)
}

/// Refuses `value` (a 422 naming `field`) if it holds a character that is refused (see
/// the module documentation); for text stored exactly as given, such as a database's
/// host or role name.
pub fn check_characters(field: &str, value: &str) -> Result<()> {
    match value
        .chars()
        .enumerate()
        .find_map(|(i, c)| refused(c).map(|why| (i + 1, c, why)))
    {
        Some((at, c, why)) => Err(Error::invalid(format!(
            "{field} holds {why} (U+{:04X}) at character {at}; use printable text only",
            c as u32
        ))),
        None => Ok(()),
    }
}

/// An e-mail address trimmed, in NFC and ASCII lower case (as sign-in looks it up), or a 422 naming `field`: it must
/// pass [`display_name`] (at most 254 characters), hold no whitespace, and look like
/// `local@domain.tld`.
pub fn email(field: &str, value: &str) -> Result<String> {
    let text = display_name(field, value, 254)?.to_ascii_lowercase();
    let valid = !text.chars().any(char::is_whitespace)
        && text
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if !valid {
        return Err(Error::invalid(format!(
            "{field} is not an e-mail address (like name@example.com)"
        )));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_normalised() {
        assert_eq!(display_name("name", "  web-1 ", 100).unwrap(), "web-1");
        // "é" as e + combining acute becomes the one precomposed character.
        assert_eq!(
            display_name("name", "Cafe\u{301}", 100).unwrap(),
            "Caf\u{e9}"
        );
        assert_eq!(
            display_name("name", "Büro Zürich", 100).unwrap(),
            "Büro Zürich"
        );
    }

    #[test]
    fn hostile_characters_are_refused_naming_the_field() {
        for bad in [
            "a\0b",
            "a\r\nb",
            "a\nb",
            "tab\there",
            "a\u{7f}",
            "a\u{85}b",
            "evil\u{202E}gpj.exe",
            "a\u{2066}b",
            "a\u{200B}b",
            "a\u{FEFF}b",
            "a\u{2028}b",
        ] {
            let err = display_name("agent name", bad, 100).unwrap_err();
            assert_eq!(err.code, crate::error::Code::InvalidInput, "{bad:?}");
            assert!(
                err.message.starts_with("agent name holds"),
                "{}",
                err.message
            );
            assert!(err.message.contains("U+"), "{}", err.message);
        }
    }

    #[test]
    fn lengths_are_in_characters() {
        assert!(display_name("name", "", 10).is_err());
        assert!(display_name("name", "   ", 10).is_err());
        assert!(display_name("name", &"é".repeat(10), 10).is_ok());
        let err = display_name("name", &"é".repeat(11), 10).unwrap_err();
        assert!(err.message.contains("1-10 characters"), "{}", err.message);
    }

    #[test]
    fn emails() {
        assert_eq!(
            email("email", " Bob@Example.COM ").unwrap(),
            "bob@example.com"
        );
        for bad in [
            "bob",
            "@example.com",
            "bob@example",
            "bo b@example.com",
            "bob@ex\u{202E}.com",
            "bob\n@example.com",
        ] {
            let err = email("email", bad).unwrap_err();
            assert!(
                err.message.starts_with("email "),
                "{bad:?}: {}",
                err.message
            );
        }
    }
}
