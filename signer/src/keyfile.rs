//! Secret key files in minisign's own encrypted format.
//!
//! ```text
//! untrusted comment: <text>
//! base64("Ed" "Sc" "B2" ‖ salt (32) ‖ opslimit (u64 LE) ‖ memlimit (u64 LE)
//!        ‖ (key id (8) ‖ Ed25519 secret+public (64) ‖ BLAKE2b-256 checksum (32))
//!          XOR scrypt(passphrase, salt, params from opslimit/memlimit, 104 bytes))
//! ```
//!
//! Using minisign's format means `minisign -S -H -s KEY` can sign with our keys too (an
//! escape hatch if this binary is unavailable). The scrypt parameters follow libsodium's
//! `pickparams`; the default (1 GiB, N = 2^20) is minisign's own.

use crate::error::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use blake2::{Blake2b256, Digest};
use dbcrate_core::registry::minisign::{KeyId, PublicKey};
use dbcrate_core::secret::SecretString;
use ed25519_dalek::SigningKey;
use std::fmt;
use zeroize::Zeroizing;

/// minisign's default scrypt memory limit (1 GiB).
pub const DEFAULT_MEMLIMIT: u64 = 1 << 30;
/// The smallest memory limit accepted (16 MiB), for tests and small machines.
pub const MIN_MEMLIMIT: u64 = 16 << 20;

const ENCRYPTED_LEN: usize = 104;
const FILE_LEN: usize = 6 + 32 + 16 + ENCRYPTED_LEN;

/// A decrypted secret key. `Debug` shows only the id; the key is wiped on drop
/// (ed25519-dalek zeroizes `SigningKey`).
pub struct SecretKey {
    id: KeyId,
    signing: SigningKey,
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({}, <redacted>)", self.id)
    }
}

fn random<const N: usize>() -> Result<Zeroizing<[u8; N]>> {
    let mut out = Zeroizing::new([0u8; N]);
    getrandom::getrandom(out.as_mut())
        .map_err(|e| Error::new(format!("the OS random generator failed: {e}")))?;
    Ok(out)
}

/// libsodium's `pickparams` for scryptsalsa208sha256: (log2 N, r, p).
fn pick_params(opslimit: u64, memlimit: u64) -> (u8, u32, u32) {
    let opslimit = opslimit.max(32_768);
    let r: u64 = 8;
    let log_n_for = |max_n: u64| (1..63u8).find(|&l| (1u64 << l) > max_n / 2).unwrap_or(63);
    if opslimit < memlimit / 32 {
        let log_n = log_n_for(opslimit / (r * 4));
        (log_n, r as u32, 1)
    } else {
        let log_n = log_n_for(memlimit / (r * 128));
        let max_rp = ((opslimit / 4) / (1u64 << log_n)).min(0x3fff_ffff);
        (log_n, r as u32, (max_rp / r).max(1) as u32)
    }
}

fn keystream(
    passphrase: &SecretString,
    salt: &[u8],
    opslimit: u64,
    memlimit: u64,
) -> Result<Zeroizing<[u8; ENCRYPTED_LEN]>> {
    let (log_n, r, p) = pick_params(opslimit, memlimit);
    if log_n > 22 {
        return Err(Error::new(
            "the key file asks for more than 4 GiB of scrypt memory; refusing it",
        ));
    }
    let params = scrypt::Params::new(log_n, r, p)
        .map_err(|e| Error::new(format!("bad scrypt parameters in the key file: {e}")))?;
    let mut out = Zeroizing::new([0u8; ENCRYPTED_LEN]);
    scrypt::scrypt(
        passphrase.expose_secret().as_bytes(),
        salt,
        &params,
        out.as_mut(),
    )
    .map_err(|e| Error::new(format!("scrypt failed: {e}")))?;
    Ok(out)
}

fn checksum(id: &KeyId, keypair: &[u8; 64]) -> [u8; 32] {
    let mut h = Blake2b256::new();
    h.update(b"Ed");
    h.update(id.0);
    h.update(keypair);
    h.finalize().into()
}

impl SecretKey {
    /// A fresh key pair with a random id.
    pub fn generate() -> Result<Self> {
        let id = KeyId(*random::<8>()?);
        let seed = random::<32>()?;
        Ok(Self {
            id,
            signing: SigningKey::from_bytes(&seed),
        })
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey::from_signing_key(self.id, &self.signing)
    }

    /// The signing key, for [`dbcrate_core::registry::minisign::Signature::sign`].
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// The encrypted key file, scrypt at `memlimit` bytes.
    pub fn to_file(&self, passphrase: &SecretString, memlimit: u64, role: &str) -> Result<String> {
        let salt = random::<32>()?;
        let opslimit = memlimit / 32;
        let stream = keystream(passphrase, salt.as_ref(), opslimit, memlimit)?;
        let keypair = Zeroizing::new(self.signing.to_keypair_bytes());
        let mut plain = Zeroizing::new([0u8; ENCRYPTED_LEN]);
        plain[..8].copy_from_slice(&self.id.0);
        plain[8..72].copy_from_slice(keypair.as_ref());
        plain[72..].copy_from_slice(&checksum(&self.id, &keypair));
        let mut raw = Zeroizing::new(Vec::with_capacity(FILE_LEN));
        raw.extend_from_slice(b"EdScB2");
        raw.extend_from_slice(salt.as_ref());
        raw.extend_from_slice(&opslimit.to_le_bytes());
        raw.extend_from_slice(&memlimit.to_le_bytes());
        raw.extend(plain.iter().zip(stream.iter()).map(|(a, b)| a ^ b));
        Ok(format!(
            "untrusted comment: dbcrate-signer {role} secret key {} (minisign format)\n{}\n",
            self.id,
            B64.encode(raw.as_slice())
        ))
    }

    /// Decrypts a key file. `what` names it in errors.
    pub fn from_file(text: &str, passphrase: &SecretString, what: &str) -> Result<Self> {
        let line = text.lines().nth(1).unwrap_or("").trim();
        let raw = Zeroizing::new(B64.decode(line).map_err(|_| {
            Error::new(format!(
                "{what} is not a minisign secret key file (bad base64)"
            ))
        })?);
        if raw.len() != FILE_LEN || &raw[..6] != b"EdScB2" {
            return Err(Error::new(format!(
                "{what} is not an encrypted minisign secret key (Ed25519, scrypt, BLAKE2b)"
            )));
        }
        let salt = &raw[6..38];
        let opslimit = u64::from_le_bytes(raw[38..46].try_into().expect("8 bytes"));
        let memlimit = u64::from_le_bytes(raw[46..54].try_into().expect("8 bytes"));
        let stream = keystream(passphrase, salt, opslimit, memlimit)?;
        let mut plain = Zeroizing::new([0u8; ENCRYPTED_LEN]);
        for (i, b) in plain.iter_mut().enumerate() {
            *b = raw[54 + i] ^ stream[i];
        }
        let id = KeyId(plain[..8].try_into().expect("8 bytes"));
        let keypair = Zeroizing::new(<[u8; 64]>::try_from(&plain[8..72]).expect("64 bytes"));
        if checksum(&id, &keypair) != plain[72..] {
            return Err(Error::new(format!(
                "wrong passphrase for {what} (or the file is damaged)"
            )));
        }
        let signing = SigningKey::from_keypair_bytes(&keypair)
            .map_err(|_| Error::new(format!("{what} holds an inconsistent key pair")))?;
        Ok(Self { id, signing })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minisign_default_params() {
        assert_eq!(
            pick_params(DEFAULT_MEMLIMIT / 32, DEFAULT_MEMLIMIT),
            (20, 8, 1)
        );
        assert_eq!(pick_params(MIN_MEMLIMIT / 32, MIN_MEMLIMIT), (14, 8, 1));
    }

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let key = SecretKey::generate().unwrap();
        let pass = SecretString::new("correct horse".into());
        let file = key.to_file(&pass, MIN_MEMLIMIT, "root").unwrap();
        let back = SecretKey::from_file(&file, &pass, "k").unwrap();
        assert_eq!(back.public(), key.public());
        assert!(format!("{back:?}").contains("redacted"));
        let err =
            SecretKey::from_file(&file, &SecretString::new("wrong".into()), "k.key").unwrap_err();
        assert!(
            err.to_string().contains("wrong passphrase for k.key"),
            "{err}"
        );
    }
}
