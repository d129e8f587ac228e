//! minisign's key and signature formats, prehashed variant only.
//!
//! A public key is `base64("Ed" ‖ key id (8 bytes) ‖ Ed25519 key (32 bytes))`. A signature
//! file is four lines:
//!
//! ```text
//! untrusted comment: <anything; not signed>
//! base64("ED" ‖ key id ‖ Ed25519(BLAKE2b-512(file)))
//! trusted comment: <text>
//! base64(Ed25519(signature ‖ text))
//! ```
//!
//! `ED` is the prehashed algorithm that `minisign -V -H` demands; the legacy `Ed`
//! (signature over the raw file) is refused here, so a signature can never be verified
//! under the weaker rule. The global signature binds the trusted comment to the file
//! signature. We write exactly what stock minisign writes, so operators can check every
//! signed file with `minisign -V -H -p key.pub -m FILE` (a test does so).

use super::RegistryError;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use blake2::{Blake2b512, Digest};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use std::fmt;

/// The 8-byte id minisign gives a key pair; it names the key in every signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    /// Upper-case hex of the id read as a little-endian number, as minisign prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0.iter().rev() {
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A minisign public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    id: KeyId,
    key: VerifyingKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id)
    }
}

impl PublicKey {
    /// The public half of `secret`, under `id`.
    pub fn from_signing_key(id: KeyId, secret: &SigningKey) -> Self {
        Self {
            id,
            key: secret.verifying_key(),
        }
    }

    /// Parses the base64 line (`RW…`) or a whole `.pub` file (comment line + key line).
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let line = text
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .unwrap_or("");
        let bad = |why: &str| {
            RegistryError::BadKey(format!(
                "{why}; expected a minisign public key (RW… from the .pub file)"
            ))
        };
        let raw = B64.decode(line).map_err(|_| bad("not base64"))?;
        if raw.len() != 42 {
            return Err(bad(&format!("{} bytes instead of 42", raw.len())));
        }
        if &raw[..2] != b"Ed" {
            return Err(bad("not an Ed25519 key"));
        }
        let id = KeyId(raw[2..10].try_into().expect("8 bytes"));
        let key_bytes: [u8; 32] = raw[10..].try_into().expect("32 bytes");
        let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| bad("not a valid point"))?;
        Ok(Self { id, key })
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The raw Ed25519 public key: two listed keys with the same bytes are one holder,
    /// whatever ids they carry.
    pub fn ed25519_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The base64 line (`RW…`), which root.json lists and `--registry-root-key` takes.
    pub fn to_base64(&self) -> String {
        let mut raw = Vec::with_capacity(42);
        raw.extend_from_slice(b"Ed");
        raw.extend_from_slice(&self.id.0);
        raw.extend_from_slice(self.key.as_bytes());
        B64.encode(raw)
    }

    /// A `.pub` file as `minisign -G` writes it.
    pub fn to_file(&self) -> String {
        format!(
            "untrusted comment: minisign public key {}\n{}\n",
            self.id,
            self.to_base64()
        )
    }
}

/// One minisign signature (the contents of a `.minisig` file).
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    key_id: KeyId,
    signature: [u8; 64],
    trusted_comment: String,
    global_signature: [u8; 64],
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(by {})", self.key_id)
    }
}

fn prehash(data: &[u8]) -> [u8; 64] {
    Blake2b512::digest(data).into()
}

impl Signature {
    /// Signs `data` with `secret` (whose id is `id`) in the prehashed format, with
    /// `trusted_comment` (one line) bound to the signature.
    pub fn sign(id: KeyId, secret: &SigningKey, data: &[u8], trusted_comment: &str) -> Self {
        let trusted_comment = trusted_comment.replace(['\r', '\n'], " ");
        let signature = secret.sign(&prehash(data)).to_bytes();
        let mut global = signature.to_vec();
        global.extend_from_slice(trusted_comment.as_bytes());
        let global_signature = secret.sign(&global).to_bytes();
        Self {
            key_id: id,
            signature,
            trusted_comment,
            global_signature,
        }
    }

    /// Parses a `.minisig` file.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let bad =
            |why: &str| RegistryError::BadSignature(format!("malformed signature file: {why}"));
        let mut lines = text.lines().map(|l| l.trim_end_matches('\r'));
        let (Some(untrusted), Some(sig_line), Some(comment), Some(global_line)) =
            (lines.next(), lines.next(), lines.next(), lines.next())
        else {
            return Err(bad("fewer than four lines"));
        };
        if !untrusted.starts_with("untrusted comment:") {
            return Err(bad("the first line is not an untrusted comment"));
        }
        if lines.any(|l| !l.trim().is_empty()) {
            return Err(bad("text after the fourth line"));
        }
        let raw = B64
            .decode(sig_line.trim())
            .map_err(|_| bad("the signature line is not base64"))?;
        if raw.len() != 74 {
            return Err(bad("the signature line is not 74 bytes"));
        }
        match &raw[..2] {
            b"ED" => {}
            b"Ed" => {
                return Err(RegistryError::BadSignature(
                    "legacy (non-prehashed) minisign signature; sign with dbcrate-signer or \
                     `minisign -S -H`"
                        .into(),
                ))
            }
            _ => return Err(bad("unknown signature algorithm")),
        }
        let trusted_comment = comment
            .strip_prefix("trusted comment: ")
            .ok_or_else(|| bad("the third line is not a trusted comment"))?
            .to_string();
        let global = B64
            .decode(global_line.trim())
            .map_err(|_| bad("the global signature is not base64"))?;
        let global_signature: [u8; 64] = global
            .try_into()
            .map_err(|_| bad("the global signature is not 64 bytes"))?;
        Ok(Self {
            key_id: KeyId(raw[2..10].try_into().expect("8 bytes")),
            signature: raw[10..].try_into().expect("64 bytes"),
            trusted_comment,
            global_signature,
        })
    }

    /// The `.minisig` file text.
    pub fn to_file(&self) -> String {
        let mut raw = Vec::with_capacity(74);
        raw.extend_from_slice(b"ED");
        raw.extend_from_slice(&self.key_id.0);
        raw.extend_from_slice(&self.signature);
        format!(
            "untrusted comment: signature from dbcrate-signer secret key\n{}\ntrusted comment: {}\n{}\n",
            B64.encode(raw),
            self.trusted_comment,
            B64.encode(self.global_signature)
        )
    }

    /// The id of the key that made this signature.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The verified-with-the-signature comment.
    pub fn trusted_comment(&self) -> &str {
        &self.trusted_comment
    }

    /// Checks that `key` signed `data` and the trusted comment. `what` names the file in
    /// the error.
    pub fn verify(&self, key: &PublicKey, data: &[u8], what: &str) -> Result<(), RegistryError> {
        if key.id != self.key_id {
            return Err(RegistryError::BadSignature(format!(
                "{what} is signed by key {}, not by key {}",
                self.key_id, key.id
            )));
        }
        let sig = ed25519_dalek::Signature::from_bytes(&self.signature);
        key.key.verify_strict(&prehash(data), &sig).map_err(|_| {
            RegistryError::BadSignature(format!(
                "{what}: the signature by key {} does not match the file (tampered or \
                     truncated)",
                key.id
            ))
        })?;
        let mut global = self.signature.to_vec();
        global.extend_from_slice(self.trusted_comment.as_bytes());
        let global_sig = ed25519_dalek::Signature::from_bytes(&self.global_signature);
        key.key.verify_strict(&global, &global_sig).map_err(|_| {
            RegistryError::BadSignature(format!(
                "{what}: the trusted comment of the signature by key {} was altered",
                key.id
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> (KeyId, SigningKey) {
        (KeyId([seed; 8]), SigningKey::from_bytes(&[seed; 32]))
    }

    #[test]
    fn sign_parse_verify_round_trip() {
        let (id, sk) = key(1);
        let pk = PublicKey::from_signing_key(id, &sk);
        assert_eq!(PublicKey::parse(&pk.to_file()).unwrap(), pk);
        assert_eq!(PublicKey::parse(&pk.to_base64()).unwrap(), pk);
        let sig = Signature::sign(id, &sk, b"hello", "file:x");
        let parsed = Signature::parse(&sig.to_file()).unwrap();
        assert_eq!(parsed, sig);
        parsed.verify(&pk, b"hello", "x").unwrap();
        let err = parsed.verify(&pk, b"hellO", "x").unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        let other = PublicKey::from_signing_key(key(2).0, &key(2).1);
        assert!(parsed.verify(&other, b"hello", "x").is_err());
    }

    #[test]
    fn altered_trusted_comment_and_legacy_are_refused() {
        let (id, sk) = key(3);
        let pk = PublicKey::from_signing_key(id, &sk);
        let text = Signature::sign(id, &sk, b"data", "version 1").to_file();
        let altered = Signature::parse(&text.replace("version 1", "version 9")).unwrap();
        let err = altered.verify(&pk, b"data", "x").unwrap_err();
        assert!(err.to_string().contains("trusted comment"), "{err}");

        let line = text.lines().nth(1).unwrap();
        let mut raw = B64.decode(line).unwrap();
        raw[1] = b'd';
        let legacy = text.replace(line, &B64.encode(raw));
        let err = Signature::parse(&legacy).unwrap_err();
        assert!(err.to_string().contains("legacy"), "{err}");
        assert!(Signature::parse("untrusted comment: x\n").is_err());
        assert!(PublicKey::parse("RWQ=").is_err());
    }

    #[test]
    fn key_id_prints_like_minisign() {
        assert_eq!(
            KeyId([1, 2, 3, 4, 5, 6, 7, 0xab]).to_string(),
            "AB07060504030201"
        );
    }
}
