//! Customer-sealed organisation keys: an organisation's age private key additionally
//! encrypted under a key only the customer holds.
//!
//! ```text
//! customer passphrase ── Argon2id (m, t, p and a random salt recorded in the blob)
//!    │ 32-byte key
//!    ▼
//! XChaCha20-Poly1305 (AAD = format tag ‖ org id ‖ org recipient) over the private key
//!    │ the blob (text)
//!    ▼
//! an ordinary envelope secret (purpose `org-private-key-customer-sealed`), so master-key
//! rotation re-wraps its DEK like any other and leaves this inner layer alone
//! ```
//!
//! With the organisation in this mode the database and the master key together open
//! only the blob; the private key needs the passphrase, which the control plane holds in
//! memory for one operation and never stores.

use crate::error::{random_bytes, Code, Error, Result};
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use dbcrate_core::secret::SecretString;
use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

/// The fewest characters a customer passphrase may have.
pub const MIN_PASSPHRASE_CHARS: usize = 16;
/// The most bytes a customer passphrase may have.
pub const MAX_PASSPHRASE_BYTES: usize = 1024;

/// Argon2id memory cost of new seals, in KiB (64 MiB).
pub const MEMORY_KIB: u32 = 64 * 1024;
/// Argon2id passes of new seals.
pub const ITERATIONS: u32 = 3;
/// Argon2id lanes of new seals.
pub const LANES: u32 = 1;

/// The most a stored blob may ask for (a row edited to ask for gigabytes is refused
/// rather than obeyed).
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MAX_ITERATIONS: u32 = 32;
const MAX_LANES: u32 = 16;

/// The blob's format tag, also bound into the AEAD's associated data.
const TAG: &str = "dbcrate-cs1";

/// A customer passphrase, held for one operation: zeroed on drop, `Debug` redacted, no
/// `Clone`, `Display` or `Serialize`.
pub struct Passphrase(SecretString);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

impl Passphrase {
    /// A passphrase as typed (compared after Unicode NFC normalisation, so the same
    /// words typed on another system match). Refuses an empty or oversized one.
    pub fn new(typed: SecretString) -> Result<Self> {
        if typed.is_empty() {
            return Err(Error::invalid("passphrase must not be empty"));
        }
        if typed.expose_secret().len() > MAX_PASSPHRASE_BYTES {
            return Err(Error::invalid(format!(
                "passphrase must be at most {MAX_PASSPHRASE_BYTES} bytes"
            )));
        }
        Ok(Self(SecretString::new(
            typed.expose_secret().nfc().collect(),
        )))
    }

    /// A second zeroed-on-drop copy, for a task on the blocking pool.
    pub(crate) fn duplicate(&self) -> Self {
        Self(SecretString::new(self.0.expose_secret().to_string()))
    }

    /// Checks that a passphrase is long enough to seal a key under.
    pub fn check_strength(&self) -> Result<()> {
        if self.0.expose_secret().chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(Error::invalid(format!(
                "passphrase must be at least {MIN_PASSPHRASE_CHARS} characters (several \
                 random words are easiest to keep)"
            )));
        }
        Ok(())
    }
}

/// Argon2id parameters, as recorded in a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub lanes: u32,
}

impl KdfParams {
    /// The parameters of new seals.
    pub const CURRENT: Self = Self {
        memory_kib: MEMORY_KIB,
        iterations: ITERATIONS,
        lanes: LANES,
    };
}

/// Why a blob did not open.
#[derive(Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The passphrase is not the one it was sealed under (or the blob was altered).
    WrongPassphrase,
    /// The blob is not in a form this version reads.
    Malformed(&'static str),
}

fn derive(passphrase: &Passphrase, salt: &[u8], params: KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(params.memory_kib, params.iterations, params.lanes, Some(32))
            .map_err(|_| Error::internal("unusable Argon2id parameters"))?,
    );
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(
            passphrase.0.expose_secret().as_bytes(),
            salt,
            key.as_mut_slice(),
        )
        .map_err(|_| Error::internal("Argon2id failed"))?;
    Ok(key)
}

fn aad(org_id: &str, recipient: &str) -> Vec<u8> {
    format!("{TAG}\0{org_id}\0{recipient}").into_bytes()
}

/// Seals `private_key` of organisation `org_id` (whose recipient is `recipient`) under
/// `passphrase` with [`KdfParams::CURRENT`]. CPU- and memory-heavy: call it on the
/// blocking pool.
pub fn seal(
    passphrase: &Passphrase,
    org_id: &str,
    recipient: &str,
    private_key: &[u8],
) -> Result<String> {
    seal_with(
        passphrase,
        org_id,
        recipient,
        private_key,
        KdfParams::CURRENT,
    )
}

/// [`seal`] with explicit parameters (within the limits [`open`] accepts).
pub fn seal_with(
    passphrase: &Passphrase,
    org_id: &str,
    recipient: &str,
    private_key: &[u8],
    params: KdfParams,
) -> Result<String> {
    let salt = random_bytes::<16>()?;
    let nonce = random_bytes::<24>()?;
    let key = derive(passphrase, salt.as_slice(), params)?;
    let cipher = XChaCha20Poly1305::new(key.as_slice().into());
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(nonce.as_slice()),
            Payload {
                msg: private_key,
                aad: &aad(org_id, recipient),
            },
        )
        .map_err(|_| Error::internal("sealing the organisation key failed"))?;
    Ok(format!(
        "{TAG}$argon2id$v=19$m={},t={},p={}${}${}${}",
        params.memory_kib,
        params.iterations,
        params.lanes,
        B64.encode(salt.as_slice()),
        B64.encode(nonce.as_slice()),
        B64.encode(ciphertext),
    ))
}

/// The parameters a blob records.
pub fn params_of(blob: &str) -> std::result::Result<KdfParams, OpenError> {
    parse(blob).map(|p| p.params)
}

struct Parsed {
    params: KdfParams,
    salt: Vec<u8>,
    nonce: Vec<u8>,
    ciphertext: Vec<u8>,
}

fn parse(blob: &str) -> std::result::Result<Parsed, OpenError> {
    let parts: Vec<&str> = blob.trim().split('$').collect();
    let [tag, alg, version, params, salt, nonce, ciphertext] = parts[..] else {
        return Err(OpenError::Malformed("wrong number of fields"));
    };
    if tag != TAG || alg != "argon2id" || version != "v=19" {
        return Err(OpenError::Malformed("unknown format"));
    }
    let mut memory_kib = None;
    let mut iterations = None;
    let mut lanes = None;
    for item in params.split(',') {
        let (name, value) = item
            .split_once('=')
            .ok_or(OpenError::Malformed("bad parameters"))?;
        let value: u32 = value
            .parse()
            .map_err(|_| OpenError::Malformed("bad parameters"))?;
        match name {
            "m" => memory_kib = Some(value),
            "t" => iterations = Some(value),
            "p" => lanes = Some(value),
            _ => return Err(OpenError::Malformed("bad parameters")),
        }
    }
    let (Some(memory_kib), Some(iterations), Some(lanes)) = (memory_kib, iterations, lanes) else {
        return Err(OpenError::Malformed("missing parameters"));
    };
    if memory_kib > MAX_MEMORY_KIB
        || !(1..=MAX_ITERATIONS).contains(&iterations)
        || !(1..=MAX_LANES).contains(&lanes)
    {
        return Err(OpenError::Malformed("parameters out of range"));
    }
    let decode = |s: &str| {
        B64.decode(s)
            .map_err(|_| OpenError::Malformed("bad base64"))
    };
    let parsed = Parsed {
        params: KdfParams {
            memory_kib,
            iterations,
            lanes,
        },
        salt: decode(salt)?,
        nonce: decode(nonce)?,
        ciphertext: decode(ciphertext)?,
    };
    if parsed.salt.len() < 16 || parsed.nonce.len() != 24 {
        return Err(OpenError::Malformed("bad salt or nonce"));
    }
    Ok(parsed)
}

/// Opens a blob [`seal`] made. CPU- and memory-heavy: call it on the blocking pool.
pub fn open(
    passphrase: &Passphrase,
    org_id: &str,
    recipient: &str,
    blob: &str,
) -> std::result::Result<Zeroizing<Vec<u8>>, OpenError> {
    let parsed = parse(blob)?;
    let key = derive(passphrase, &parsed.salt, parsed.params)
        .map_err(|_| OpenError::Malformed("parameters out of range"))?;
    let cipher = XChaCha20Poly1305::new(key.as_slice().into());
    cipher
        .decrypt(
            XNonce::from_slice(&parsed.nonce),
            Payload {
                msg: &parsed.ciphertext,
                aad: &aad(org_id, recipient),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| OpenError::WrongPassphrase)
}

/// The error for an operation that needs the organisation's private key while it is
/// customer-sealed and no passphrase was given.
pub fn passphrase_required(what: &str) -> Error {
    Error::new(
        Code::CustomerPassphraseRequired,
        format!(
            "this organisation's key is customer-sealed: {what} needs the organisation's \
             passphrase; send it as \"passphrase\" in the request body"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        memory_kib: 256,
        iterations: 1,
        lanes: 1,
    };

    fn pass(text: &str) -> Passphrase {
        Passphrase::new(SecretString::new(text.into())).unwrap()
    }

    #[test]
    fn round_trip_and_refusals() {
        let p = pass("correct horse battery staple");
        let blob = seal_with(&p, "org_1", "age1x", b"AGE-SECRET-KEY-1ABC", FAST).unwrap();
        assert!(!blob.contains("AGE-SECRET-KEY"));
        assert_eq!(params_of(&blob).unwrap(), FAST);
        let opened = open(&p, "org_1", "age1x", &blob).unwrap();
        assert_eq!(opened.as_slice(), b"AGE-SECRET-KEY-1ABC");
        // Two seals of the same key differ (random salt and nonce).
        assert_ne!(
            blob,
            seal_with(&p, "org_1", "age1x", b"AGE-SECRET-KEY-1ABC", FAST).unwrap()
        );
        let wrong = pass("correct horse battery stapler");
        assert_eq!(
            open(&wrong, "org_1", "age1x", &blob).unwrap_err(),
            OpenError::WrongPassphrase
        );
        // Bound to the organisation and its recipient.
        assert_eq!(
            open(&p, "org_2", "age1x", &blob).unwrap_err(),
            OpenError::WrongPassphrase
        );
        assert_eq!(
            open(&p, "org_1", "age1y", &blob).unwrap_err(),
            OpenError::WrongPassphrase
        );
        // NFC: a decomposed "é" is the same passphrase as a composed one.
        let composed = pass("caf\u{e9} caf\u{e9} caf\u{e9} caf\u{e9}");
        let decomposed = pass("cafe\u{301} cafe\u{301} cafe\u{301} cafe\u{301}");
        let blob = seal_with(&composed, "o", "r", b"k", FAST).unwrap();
        assert_eq!(open(&decomposed, "o", "r", &blob).unwrap().as_slice(), b"k");
    }

    #[test]
    fn bad_blobs_are_errors_not_panics() {
        let p = pass("correct horse battery staple");
        for blob in [
            "",
            "dbcrate-cs1",
            "x$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$AA",
            "dbcrate-cs1$argon2id$v=19$m=99999999,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$AA",
            "dbcrate-cs1$argon2id$v=19$m=256,t=0,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$AA",
            "dbcrate-cs1$argon2id$v=19$m=256,t=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$AA",
            "dbcrate-cs1$argon2id$v=19$m=256,t=1,p=1$!!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$AA",
            "dbcrate-cs1$argon2id$v=19$m=256,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAA$AA",
        ] {
            assert!(
                matches!(open(&p, "o", "r", blob), Err(OpenError::Malformed(_))),
                "{blob}"
            );
        }
        // Argon2 refuses a memory cost below its minimum: an error, not a panic.
        let low = "dbcrate-cs1$argon2id$v=19$m=1,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA$AA";
        assert!(open(&p, "o", "r", low).is_err());
    }

    #[test]
    fn passphrase_rules_and_redaction() {
        assert!(Passphrase::new(SecretString::new(String::new())).is_err());
        assert!(Passphrase::new(SecretString::new("x".repeat(MAX_PASSPHRASE_BYTES + 1))).is_err());
        let short = pass("fifteen chars!!");
        assert_eq!(short.check_strength().unwrap_err().code, Code::InvalidInput);
        let ok = pass("sixteen chars!!!");
        ok.check_strength().unwrap();
        assert_eq!(format!("{ok:?}"), "Passphrase(<redacted>)");
    }
}
