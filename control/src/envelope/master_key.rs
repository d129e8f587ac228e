//! The master keys: parsed from the deployment environment, never stored.
//!
//! Format (the same in `DBCRATE_MASTER_KEY` and in the file `DBCRATE_MASTER_KEY_FILE`
//! names, which is what a SOPS-decrypted env file or a systemd credential provides):
//! entries `ID:BASE64` separated by whitespace or commas, where BASE64 encodes exactly 32
//! random bytes (`head -c 32 /dev/urandom | base64`). The **first** entry is the active
//! key, used to wrap new DEKs; the others only unwrap, during a rotation.

use base64::Engine;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use zeroize::Zeroizing;

/// The variable holding the master keys themselves.
pub const MASTER_KEY_ENV: &str = "DBCRATE_MASTER_KEY";
/// The variable naming a file that holds them.
pub const MASTER_KEY_FILE_ENV: &str = "DBCRATE_MASTER_KEY_FILE";

/// What to tell an operator who has no key yet.
const HOW_TO_MAKE_ONE: &str =
    "generate one with `echo \"mk1:$(head -c 32 /dev/urandom | base64)\"` and keep it outside the database";

/// One master key and its id. Debug never shows the key; memory is wiped on drop.
pub struct MasterKey {
    id: String,
    key: Zeroizing<[u8; 32]>,
}

impl MasterKey {
    /// The key's id, recorded beside every DEK it wraps.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The key bytes. Only the envelope module uses them.
    pub(super) fn bytes(&self) -> &[u8; 32] {
        &self.key
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({}: <redacted>)", self.id)
    }
}

/// The configured master keys: one active, any number of others for unwrapping.
#[derive(Debug)]
pub struct MasterKeys {
    keys: Vec<MasterKey>,
}

impl MasterKeys {
    /// Reads the keys from `DBCRATE_MASTER_KEY` or `DBCRATE_MASTER_KEY_FILE` (exactly one
    /// of them must be set). Errors say what is wrong and how to fix it, never a key.
    pub fn from_env() -> Result<Self, String> {
        let inline = std::env::var(MASTER_KEY_ENV).ok().map(Zeroizing::new);
        let file = std::env::var_os(MASTER_KEY_FILE_ENV);
        match (inline, file) {
            (Some(_), Some(_)) => Err(format!(
                "both {MASTER_KEY_ENV} and {MASTER_KEY_FILE_ENV} are set: keep one"
            )),
            (Some(text), None) => Self::parse(&text).map_err(|e| format!("{MASTER_KEY_ENV}: {e}")),
            (None, Some(path)) => Self::from_file(Path::new(&path)),
            (None, None) => Err(format!(
                "no master key: set {MASTER_KEY_ENV} or {MASTER_KEY_FILE_ENV}; {HOW_TO_MAKE_ONE}"
            )),
        }
    }

    /// Reads the keys from a file that only its owner can read.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("{MASTER_KEY_FILE_ENV}: cannot read {shown}: {e}"))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(format!(
                "{MASTER_KEY_FILE_ENV}: {shown} is readable by group or others; \
                 run `chmod 600 {shown}`"
            ));
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| format!("{MASTER_KEY_FILE_ENV}: cannot read {shown}: {e}"))?,
        );
        Self::parse(&text).map_err(|e| format!("{MASTER_KEY_FILE_ENV} ({shown}): {e}"))
    }

    /// Parses `ID:BASE64` entries; the first is active.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut keys: Vec<MasterKey> = Vec::new();
        for (n, entry) in text
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let position = n + 1;
            let (id, encoded) = entry
                .split_once(':')
                .ok_or_else(|| format!("entry #{position} is not ID:BASE64; {HOW_TO_MAKE_ONE}"))?;
            let id_ok = !id.is_empty()
                && id.len() <= 32
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !id_ok {
                return Err(format!(
                    "entry #{position}: the id must be 1-32 letters, digits, '-' or '_'"
                ));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(format!("master key id {id} is given twice"));
            }
            let decoded = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(encoded))
                    .map_err(|_| format!("master key {id} is not valid base64"))?,
            );
            let mut key = Zeroizing::new([0u8; 32]);
            if decoded.len() != key.len() {
                return Err(format!(
                    "master key {id} is {} bytes; it must be exactly 32 random bytes",
                    decoded.len()
                ));
            }
            key.copy_from_slice(&decoded);
            keys.push(MasterKey {
                id: id.to_string(),
                key,
            });
        }
        if keys.is_empty() {
            return Err(format!("no key given; {HOW_TO_MAKE_ONE}"));
        }
        Ok(Self { keys })
    }

    /// The key new DEKs are wrapped under.
    pub fn active(&self) -> &MasterKey {
        &self.keys[0]
    }

    /// The key with `id`, if configured.
    pub fn get(&self, id: &str) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// A keyed hash (HMAC-SHA256 under a key derived from the active master key for
    /// `purpose`) of `data`: text people type (a sign-in name that may be a mistyped
    /// password) can then be counted and correlated without being stored, and without a
    /// plain hash a dictionary could reverse. It changes when the active key changes.
    pub fn keyed_hash(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        use ring::hmac;
        let master = hmac::Key::new(hmac::HMAC_SHA256, self.active().bytes());
        let mut label = b"dbcrate keyed hash v1\0".to_vec();
        label.extend_from_slice(purpose.as_bytes());
        let sub_key = hmac::sign(&master, &label);
        let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, sub_key.as_ref()), data);
        let mut out = [0u8; 32];
        out.copy_from_slice(mac.as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    #[test]
    fn keyed_hashes_depend_on_the_key_the_purpose_and_the_data() {
        let one = MasterKeys::parse(&format!("mk1:{K1}")).unwrap();
        let two = MasterKeys::parse(&format!("mk2:{K2}, mk1:{K1}")).unwrap();
        let h = one.keyed_hash("p", b"owner@example.com");
        assert_eq!(h, one.keyed_hash("p", b"owner@example.com"));
        assert_ne!(h, one.keyed_hash("q", b"owner@example.com"));
        assert_ne!(h, one.keyed_hash("p", b"owner@example.org"));
        assert_ne!(h, two.keyed_hash("p", b"owner@example.com"));
    }

    #[test]
    fn first_entry_is_active_and_others_unwrap() {
        let keys = MasterKeys::parse(&format!("mk2:{K2}, mk1:{K1}\n")).unwrap();
        assert_eq!(keys.active().id(), "mk2");
        assert_eq!(keys.get("mk1").unwrap().bytes()[1], 1);
        assert!(keys.get("mk3").is_none());
        let shown = format!("{keys:?}");
        assert!(shown.contains("mk1") && !shown.contains(K1) && shown.contains("redacted"));
    }

    #[test]
    fn bad_configurations_say_what_to_fix_without_the_key() {
        for (text, expect) in [
            ("", "no key given"),
            (K1, "not ID:BASE64"),
            ("mk1:!!!", "not valid base64"),
            ("mk1:AAEC", "must be exactly 32 random bytes"),
            (&format!("mk1:{K1} mk1:{K2}"), "given twice"),
            (&format!("m k:{K1}"), "not ID:BASE64"),
            (&format!("bad/id:{K1}"), "the id must be"),
        ] {
            let err = MasterKeys::parse(text).unwrap_err();
            assert!(err.contains(expect), "{text:?}: {err}");
            assert!(!err.contains(K1) && !err.contains(K2), "key echoed: {err}");
        }
    }

    #[test]
    fn key_files_must_be_private() {
        let dir = std::env::temp_dir().join(format!("dbcrate-mk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("master.key");
        std::fs::write(&path, format!("mk1:{K1}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = MasterKeys::from_file(&path).unwrap_err();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(MasterKeys::from_file(&path).unwrap().active().id(), "mk1");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
