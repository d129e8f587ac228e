//! Sealing one secret: a fresh DEK encrypts it, the active master key wraps the DEK.

use super::master_key::MasterKeys;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use std::fmt;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 24;
const SECRET_DOMAIN: &[u8] = b"dbcrate secret v1";
const DEK_DOMAIN: &[u8] = b"dbcrate dek v1";

/// Which row a secret belongs to. Every field is bound into the AEAD's associated data,
/// so a ciphertext moved to another org, secret or purpose does not decrypt.
#[derive(Debug, Clone, Copy)]
pub struct SecretContext<'a> {
    /// The owning organisation's id.
    pub org_id: &'a str,
    /// The secret's own id (its row).
    pub secret_id: &'a str,
    /// What it is for (`org-private-key`, `database-password`, `s3-secret-key`, …).
    pub purpose: &'a str,
}

impl SecretContext<'_> {
    /// Length-prefixed fields after a domain label: unambiguous whatever the ids hold.
    fn aad(&self, domain: &[u8], master_key_id: Option<&str>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut push = |field: &[u8]| {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field);
        };
        push(domain);
        if let Some(id) = master_key_id {
            push(id.as_bytes());
        }
        push(self.org_id.as_bytes());
        push(self.secret_id.as_bytes());
        push(self.purpose.as_bytes());
        out
    }
}

/// Why a secret could not be sealed or opened. Messages never hold key material.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The DEK is wrapped under a master key that is not configured.
    #[error(
        "a secret is wrapped under master key {0}, which is not configured: add it back to \
         DBCRATE_MASTER_KEY (after the active key) or finish the rotation"
    )]
    UnknownMasterKey(String),
    /// Authentication failed: wrong key, wrong row, or the stored bytes were altered.
    #[error("{0} does not authenticate: it belongs to another row or was altered")]
    Corrupt(&'static str),
    /// The system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// A stored secret: what goes into the row. Nothing here can be read without a master
/// key.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// Id of the master key that wraps the DEK.
    pub master_key_id: String,
    /// Nonce ‖ DEK encrypted under that master key.
    pub wrapped_dek: Vec<u8>,
    /// Nonce ‖ the secret encrypted under the DEK. Never changes after sealing.
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SealedSecret(master key {}, {} bytes)",
            self.master_key_id,
            self.ciphertext.len()
        )
    }
}

impl SealedSecret {
    /// Encrypts `plaintext` under a fresh DEK wrapped by the active master key.
    pub fn seal(
        keys: &MasterKeys,
        context: SecretContext<'_>,
        plaintext: &[u8],
    ) -> Result<Self, EnvelopeError> {
        let mut dek = Zeroizing::new([0u8; 32]);
        getrandom::getrandom(dek.as_mut_slice()).map_err(|_| EnvelopeError::Random)?;
        let ciphertext = encrypt(&dek, &context.aad(SECRET_DOMAIN, None), plaintext)?;
        let (master_key_id, wrapped_dek) = wrap_dek(keys, context, &dek)?;
        Ok(Self {
            master_key_id,
            wrapped_dek,
            ciphertext,
        })
    }

    /// Decrypts the secret. The caller writes the audit row for this unwrap.
    pub fn open(
        &self,
        keys: &MasterKeys,
        context: SecretContext<'_>,
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let dek = self.unwrap_dek(keys, context)?;
        decrypt(&dek, &context.aad(SECRET_DOMAIN, None), &self.ciphertext)
            .map_err(|_| EnvelopeError::Corrupt("the secret"))
    }

    /// The same secret with its DEK wrapped under the active master key; the ciphertext
    /// is untouched. Already under the active key: returned as is.
    pub fn rewrap(
        &self,
        keys: &MasterKeys,
        context: SecretContext<'_>,
    ) -> Result<Self, EnvelopeError> {
        let active = keys.active();
        if self.master_key_id == active.id() {
            return Ok(self.clone());
        }
        let dek = self.unwrap_dek(keys, context)?;
        let (master_key_id, wrapped_dek) = wrap_dek(keys, context, &dek)?;
        Ok(Self {
            master_key_id,
            wrapped_dek,
            ciphertext: self.ciphertext.clone(),
        })
    }

    fn unwrap_dek(
        &self,
        keys: &MasterKeys,
        context: SecretContext<'_>,
    ) -> Result<Zeroizing<[u8; 32]>, EnvelopeError> {
        let master = keys
            .get(&self.master_key_id)
            .ok_or_else(|| EnvelopeError::UnknownMasterKey(self.master_key_id.clone()))?;
        let dek = decrypt(
            master.bytes(),
            &context.aad(DEK_DOMAIN, Some(&self.master_key_id)),
            &self.wrapped_dek,
        )
        .map_err(|_| EnvelopeError::Corrupt("the wrapped data key"))?;
        let mut key = Zeroizing::new([0u8; 32]);
        if dek.len() != key.len() {
            return Err(EnvelopeError::Corrupt("the wrapped data key"));
        }
        key.copy_from_slice(&dek);
        Ok(key)
    }
}

/// `dek` wrapped under the active master key: (that key's id, nonce ‖ ciphertext).
fn wrap_dek(
    keys: &MasterKeys,
    context: SecretContext<'_>,
    dek: &[u8; 32],
) -> Result<(String, Vec<u8>), EnvelopeError> {
    let active = keys.active();
    let wrapped = encrypt(
        active.bytes(),
        &context.aad(DEK_DOMAIN, Some(active.id())),
        dek,
    )?;
    Ok((active.id().to_string(), wrapped))
}

/// Nonce ‖ XChaCha20-Poly1305(key, nonce, plaintext, aad).
fn encrypt(key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut nonce).map_err(|_| EnvelopeError::Random)?;
    let cipher = XChaCha20Poly1305::new(key.into());
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| EnvelopeError::Random)?;
    let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn decrypt(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, ()> {
    if sealed.len() < NONCE_LEN {
        return Err(());
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    XChaCha20Poly1305::new(key.into())
        .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
        .map(Zeroizing::new)
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "mk1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "mk2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

    fn keys(text: &str) -> MasterKeys {
        MasterKeys::parse(text).unwrap()
    }

    fn ctx<'a>(org: &'a str, secret: &'a str, purpose: &'a str) -> SecretContext<'a> {
        SecretContext {
            org_id: org,
            secret_id: secret,
            purpose,
        }
    }

    #[test]
    fn round_trip_and_fresh_randomness() {
        let k = keys(K1);
        let c = ctx("org1", "s1", "database-password");
        let a = SealedSecret::seal(&k, c, b"hunter2").unwrap();
        let b = SealedSecret::seal(&k, c, b"hunter2").unwrap();
        assert_eq!(a.open(&k, c).unwrap().as_slice(), b"hunter2");
        assert_ne!(a.ciphertext, b.ciphertext, "nonce or DEK reused");
        assert_eq!(a.master_key_id, "mk1");
        assert!(!format!("{a:?}").contains("hunter2"));
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_does_not_open() {
        let k = keys(K1);
        let sealed = SealedSecret::seal(&k, ctx("org1", "s1", "database-password"), b"x").unwrap();
        for other in [
            ctx("org2", "s1", "database-password"),
            ctx("org1", "s2", "database-password"),
            ctx("org1", "s1", "s3-secret-key"),
            // Length prefixes: shifting bytes between fields is not the same row.
            ctx("org1s", "1", "database-password"),
        ] {
            assert_eq!(
                sealed.open(&k, other).unwrap_err(),
                EnvelopeError::Corrupt("the wrapped data key")
            );
        }
        // The secret's ciphertext under another row's (valid) DEK does not open either.
        let c2 = ctx("org1", "s2", "database-password");
        let mut mixed = SealedSecret::seal(&k, c2, b"y").unwrap();
        mixed.ciphertext = sealed.ciphertext.clone();
        assert_eq!(
            mixed.open(&k, c2).unwrap_err(),
            EnvelopeError::Corrupt("the secret")
        );
    }

    #[test]
    fn altered_bytes_and_wrong_keys_are_refused() {
        let k = keys(K1);
        let c = ctx("o", "s", "p");
        let mut sealed = SealedSecret::seal(&k, c, b"secret").unwrap();
        let last = sealed.ciphertext.len() - 1;
        sealed.ciphertext[last] ^= 1;
        assert!(sealed.open(&k, c).is_err());
        let sealed = SealedSecret::seal(&k, c, b"secret").unwrap();
        let other = keys(&K2.replace("mk2", "mk1"));
        assert!(
            sealed.open(&other, c).is_err(),
            "a different key with the same id opened it"
        );
    }

    #[test]
    fn rotation_rewraps_the_dek_only() {
        let c = ctx("org1", "s1", "org-private-key");
        let old = keys(K1);
        let sealed = SealedSecret::seal(&old, c, b"AGE-SECRET-KEY-1...").unwrap();
        // During rotation both keys are configured, the new one first (active).
        let both = keys(&format!("{K2} {K1}"));
        assert_eq!(
            sealed.open(&both, c).unwrap().as_slice(),
            b"AGE-SECRET-KEY-1..."
        );
        let rewrapped = sealed.rewrap(&both, c).unwrap();
        assert_eq!(
            rewrapped.ciphertext, sealed.ciphertext,
            "ciphertext must not change"
        );
        assert_ne!(rewrapped.wrapped_dek, sealed.wrapped_dek);
        assert_eq!(rewrapped.master_key_id, "mk2");
        assert_eq!(rewrapped.rewrap(&both, c).unwrap(), rewrapped, "idempotent");
        // Afterwards the old key is no longer needed…
        let new_only = keys(K2);
        assert_eq!(
            rewrapped.open(&new_only, c).unwrap().as_slice(),
            b"AGE-SECRET-KEY-1..."
        );
        // …while a secret not yet rewrapped names the missing key.
        let err = sealed.open(&new_only, c).unwrap_err();
        assert_eq!(err, EnvelopeError::UnknownMasterKey("mk1".into()));
        assert!(err.to_string().contains("DBCRATE_MASTER_KEY"));
    }
}
