//! Checking this agent's certificate against its organisation's CRL.
//!
//! The CRL is verified the way the TLS layer would: webpki walks the agent's own chain
//! (certificate → organisation CA → the deployment root stored at enrolment) and checks
//! the CRL's signature against the issuing CA, its freshness, and whether it lists our
//! serial. A CRL that does not verify (altered, signed by another CA, expired, garbage)
//! is refused and changes nothing; one that verifies and lists us stops the agent.
//!
//! CRLs are also kept in order: the agent remembers the newest CRL it accepted (its CRL
//! number, then its thisUpdate: the floor, in the identity directory) and refuses an
//! older one, which a replay could otherwise use to hide a later revocation while it is
//! still within its validity.

use super::identity::Identity;
use crate::error::{Error, ErrorKind, Reason, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use webpki::{
    BorrowedCertRevocationList, CertRevocationList, ExpirationPolicy, KeyUsage,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_parser::num_bigint::BigUint;

/// What a verified CRL says about us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not listed.
    Good,
    /// Listed: this agent must stop.
    Revoked,
}

fn certs(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::identity(format!("the stored {what}: {e}")))
}

/// Checks `crl_der` for our certificate (`chain_pem`: certificate then organisation CA)
/// under the deployment root `root_pem`, at `now` (Unix seconds).
pub fn check(chain_pem: &str, root_pem: &str, crl_der: &[u8], now: i64) -> Result<Verdict> {
    let chain = certs(chain_pem, "certificate")?;
    let roots = certs(root_pem, "deployment root")?;
    let (Some(leaf), Some(root)) = (chain.first(), roots.first()) else {
        return Err(Error::identity(
            "the stored identity has no certificate or no root",
        ));
    };
    let refused = |e: webpki::Error| {
        Error::new(
            ErrorKind::Integrity,
            format!(
                "refusing the CRL the control plane sent: it does not verify ({e:?}); nothing \
                 changes, the agent checks again next interval"
            ),
        )
    };
    let crl = BorrowedCertRevocationList::from_der(crl_der).map_err(refused)?;
    let crl = CertRevocationList::from(crl);
    let crls = [&crl];
    let options = RevocationOptionsBuilder::new(&crls)
        .map_err(|_| Error::identity("no CRL to check"))?
        .with_depth(RevocationCheckDepth::EndEntity)
        .with_status_policy(UnknownStatusPolicy::Deny)
        .with_expiration_policy(ExpirationPolicy::Enforce)
        .build();
    let anchor = webpki::anchor_from_trusted_cert(root)
        .map_err(|e| Error::identity(format!("the stored deployment root: {e:?}")))?;
    let leaf = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| Error::identity(format!("the stored certificate: {e:?}")))?;
    let algorithms = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(now.max(0) as u64));
    match leaf.verify_for_usage(
        algorithms,
        &[anchor],
        &chain[1..],
        time,
        KeyUsage::client_auth(),
        Some(options),
        None,
    ) {
        Ok(_) => Ok(Verdict::Good),
        Err(webpki::Error::CertRevoked) => Ok(Verdict::Revoked),
        Err(webpki::Error::CertExpired { .. }) => Err(Error::because(
            Reason::Expired,
            "this agent's certificate has expired: re-enrol with `dbcrate-agent enroll`",
        )),
        Err(e) => Err(refused(e)),
    }
}

/// Where a verified CRL stands among its issuer's CRLs: its CRL number (RFC 5280 §5.2.3,
/// increasing with each CRL), then its thisUpdate. Ordered by number first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "StoredPosition", into = "StoredPosition")]
pub struct CrlPosition {
    number: BigUint,
    this_update: i64,
}

/// How a [`CrlPosition`] is stored: the number in decimal (as `openssl crl -text` shows
/// it; up to 20 bytes, more than any integer type holds).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredPosition {
    crl_number: String,
    this_update: i64,
}

impl TryFrom<StoredPosition> for CrlPosition {
    type Error = String;

    fn try_from(stored: StoredPosition) -> std::result::Result<Self, String> {
        let valid =
            !stored.crl_number.is_empty() && stored.crl_number.bytes().all(|b| b.is_ascii_digit());
        let number = stored
            .crl_number
            .parse::<BigUint>()
            .ok()
            .filter(|_| valid)
            .ok_or_else(|| format!("crl_number {:?} is not a number", stored.crl_number))?;
        Ok(Self {
            number,
            this_update: stored.this_update,
        })
    }
}

impl From<CrlPosition> for StoredPosition {
    fn from(position: CrlPosition) -> Self {
        Self {
            crl_number: position.number.to_string(),
            this_update: position.this_update,
        }
    }
}

impl CrlPosition {
    /// The position of `crl_der`, which must have verified already: only a CRL its CA
    /// signed may move the floor.
    fn of(crl_der: &[u8]) -> Result<Self> {
        use x509_parser::prelude::FromDer;
        let unreadable = |why: String| {
            Error::new(
                ErrorKind::Integrity,
                format!("refusing the CRL the control plane sent: {why}; nothing changes"),
            )
        };
        let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(crl_der)
            .map_err(|e| unreadable(format!("it cannot be read ({e})")))?;
        let number = crl.crl_number().cloned().ok_or_else(|| {
            unreadable("it has no CRL number, so it cannot be told from an older one".into())
        })?;
        Ok(Self {
            number,
            this_update: crl.last_update().timestamp(),
        })
    }

    /// "CRL number N (thisUpdate T)".
    fn describe(&self) -> String {
        format!(
            "CRL number {} (thisUpdate {})",
            self.number,
            dbcrate_core::time::rfc3339(self.this_update)
        )
    }
}

/// [`check`], then the order of CRLs: a CRL older than `floor` (the newest this agent
/// accepted) is refused, whatever it says. Returns the verdict and the CRL's position.
pub fn check_in_order(
    chain_pem: &str,
    root_pem: &str,
    crl_der: &[u8],
    now: i64,
    floor: Option<&CrlPosition>,
) -> Result<(Verdict, CrlPosition)> {
    // Verified first: only a CRL our CA signed is read for its number.
    let verdict = check(chain_pem, root_pem, crl_der, now)?;
    let position = CrlPosition::of(crl_der)?;
    if let Some(floor) = floor.filter(|floor| position < **floor) {
        return Err(Error::because(
            Reason::StaleCrl,
            format!(
                "refusing the CRL the control plane sent: {} is older than {}, the newest \
                 this agent accepted; an older CRL could hide a later revocation (a replay), \
                 so what it says is ignored and the agent keeps the last verdict, checking \
                 again next interval",
                position.describe(),
                floor.describe()
            ),
        ));
    }
    Ok((verdict, position))
}

/// [`check_in_order`] against the identity's floor, which a newer CRL then raises (on
/// disk, atomically). What `run` does at each CRL interval.
pub fn check_and_remember(identity: &mut Identity, crl_der: &[u8], now: i64) -> Result<Verdict> {
    let (verdict, position) = check_in_order(
        &identity.chain_pem,
        &identity.root_pem,
        crl_der,
        now,
        identity.crl_floor.as_ref(),
    )
    .map_err(|e| with_floor_hint(e, &identity.dir.join(super::identity::CRL_FLOOR)))?;
    if let Err(e) = identity.raise_crl_floor(position) {
        // The verdict stands (a revoked agent still stops); the floor holds in memory.
        tracing::error!("{e}; the CRL floor holds until this agent restarts");
    }
    Ok(verdict)
}

/// A refusal of a stale CRL, with the way out if the control plane is the one that went
/// back (`floor_file`: where the floor is kept); any other failure as it is.
fn with_floor_hint(e: Error, floor_file: &std::path::Path) -> Error {
    if e.reason() != Some(Reason::StaleCrl) {
        return e;
    }
    e.note(&format!(
        "if the control plane's database was restored from an older backup, this stops once \
         its CRL number passes the floor in {} (removing that file accepts any validly \
         signed CRL again)",
        floor_file.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::identity;
    use dbcrate_core::secret::SecretString;
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
        ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
        RevokedCertParams, SerialNumber,
    };

    /// A deployment root, an organisation CA under it and an agent certificate under
    /// that, shaped as the control plane makes them.
    struct Pki {
        root_pem: String,
        chain_pem: String,
        org: Issuer<'static, KeyPair>,
        serial: [u8; 16],
    }

    fn ca_params(name: &str, path_len: u8) -> CertificateParams {
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
    }

    fn pki() -> Pki {
        let root_key = KeyPair::generate().unwrap();
        let root_params = ca_params("test root", 1);
        let root_cert = root_params.self_signed(&root_key).unwrap();
        let root = Issuer::new(root_params, root_key);
        let org_key = KeyPair::generate().unwrap();
        let org_params = ca_params("agents of test", 0);
        let org_cert = org_params.signed_by(&org_key, &root).unwrap();
        let org = Issuer::new(org_params, org_key);
        let serial = [0x42; 16];
        let mut leaf = CertificateParams::default();
        leaf.distinguished_name.push(DnType::CommonName, "agent");
        leaf.is_ca = IsCa::ExplicitNoCa;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        leaf.serial_number = Some(SerialNumber::from_slice(&serial));
        leaf.use_authority_key_identifier_extension = true;
        let leaf_cert = leaf.signed_by(&KeyPair::generate().unwrap(), &org).unwrap();
        Pki {
            root_pem: root_cert.pem(),
            chain_pem: format!("{}{}", leaf_cert.pem(), org_cert.pem()),
            org,
            serial,
        }
    }

    impl Pki {
        /// A CRL signed by the organisation CA, valid for a day from `this_update`,
        /// listing this agent if `revoked`.
        fn crl(&self, number: SerialNumber, this_update: i64, revoked: bool) -> Vec<u8> {
            let at = |unix: i64| {
                rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(unix as u64)
            };
            let revoked_certs = if revoked {
                vec![RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&self.serial),
                    revocation_time: at(this_update),
                    reason_code: None,
                    invalidity_date: None,
                }]
            } else {
                vec![]
            };
            CertificateRevocationListParams {
                this_update: at(this_update),
                next_update: at(this_update + 86_400),
                crl_number: number,
                issuing_distribution_point: None,
                revoked_certs,
                key_identifier_method: KeyIdMethod::Sha256,
            }
            .signed_by(&self.org)
            .unwrap()
            .der()
            .to_vec()
        }

        fn check(&self, crl: &[u8], now: i64, floor: Option<&CrlPosition>) -> Result<Verdict> {
            check_in_order(&self.chain_pem, &self.root_pem, crl, now, floor).map(|(v, _)| v)
        }

        fn position(&self, crl: &[u8], now: i64) -> CrlPosition {
            check_in_order(&self.chain_pem, &self.root_pem, crl, now, None)
                .unwrap()
                .1
        }

        /// This PKI's agent identity stored under `data`, loaded as `run` loads it.
        fn identity(&self, data: &std::path::Path) -> Identity {
            let key = SecretString::new("unused".into());
            let link = identity::tests::link();
            identity::create(data, &key, &self.chain_pem, &self.root_pem, &link).unwrap();
            identity::load(data).unwrap()
        }
    }

    fn n(number: u64) -> SerialNumber {
        SerialNumber::from(number)
    }

    fn now() -> i64 {
        dbcrate_core::time::unix_now()
    }

    fn refused_as_older(result: Result<Verdict>, needle: &str) {
        let err = result.expect_err("an older CRL must be refused");
        assert_eq!(err.kind(), ErrorKind::Integrity, "{err}");
        assert_eq!(err.reason(), Some(Reason::StaleCrl), "{err}");
        let text = err.to_string();
        assert!(text.contains("older than"), "{text}");
        assert!(text.contains(needle), "expected {needle:?} in: {text}");
    }

    #[test]
    fn a_crl_with_a_lower_number_is_refused_after_a_higher_one() {
        let (pki, now) = (pki(), now());
        let five = pki.crl(n(5), now - 60, false);
        let floor = pki.position(&five, now);
        // The same CRL again (the control plane serves one for up to an hour): accepted.
        assert_eq!(pki.check(&five, now, Some(&floor)).unwrap(), Verdict::Good);
        // A newer one: accepted, and it is ahead.
        let six = pki.crl(n(6), now - 30, false);
        assert_eq!(pki.check(&six, now, Some(&floor)).unwrap(), Verdict::Good);
        assert!(pki.position(&six, now) > floor);
        // Signed by the right CA and within its validity, but numbered lower: refused,
        // even with a later thisUpdate.
        for this_update in [now - 120, now - 10] {
            let four = pki.crl(n(4), this_update, false);
            assert_eq!(pki.check(&four, now, None).unwrap(), Verdict::Good);
            refused_as_older(pki.check(&four, now, Some(&floor)), "CRL number 4");
        }
    }

    #[test]
    fn the_same_number_with_an_earlier_this_update_is_refused() {
        let (pki, now) = (pki(), now());
        let floor = pki.position(&pki.crl(n(5), now - 60, false), now);
        let earlier = pki.crl(n(5), now - 600, false);
        refused_as_older(pki.check(&earlier, now, Some(&floor)), "CRL number 5");
        let later = pki.crl(n(5), now - 10, false);
        assert_eq!(pki.check(&later, now, Some(&floor)).unwrap(), Verdict::Good);
    }

    #[test]
    fn crl_numbers_compare_as_numbers_up_to_twenty_bytes() {
        let (pki, now) = (pki(), now());
        let at = now - 60;
        let pos = |number: SerialNumber| pki.position(&pki.crl(number, at, false), now);
        assert!(pos(n(0x100)) > pos(n(0xff)));
        assert!(pos(n(10)) > pos(n(9)));
        let big = SerialNumber::from_slice(&[0x7f; 20]);
        let smaller = SerialNumber::from_slice(&[0x7f; 19]);
        assert!(pos(big.clone()) > pos(smaller.clone()));
        assert!(pos(smaller) > pos(n(u64::MAX)));
        // Stored and read back (decimal text), it is the same position.
        let stored = serde_json::to_string(&pos(big.clone())).unwrap();
        assert!(stored.contains("\"crl_number\":\""), "{stored}");
        assert_eq!(
            serde_json::from_str::<CrlPosition>(&stored).unwrap(),
            pos(big)
        );
        for bad in [
            r#"{"crl_number":"-1","this_update":0}"#,
            r#"{"crl_number":"","this_update":0}"#,
            r#"{"crl_number":"0x10","this_update":0}"#,
            r#"{"crl_number":"1","this_update":0,"extra":1}"#,
        ] {
            assert!(serde_json::from_str::<CrlPosition>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_crl_that_does_not_verify_never_moves_the_floor() {
        let (pki, stranger, now) = (pki(), pki(), now());
        let data = dbcrate_testkit::TempDir::new("crl-floor").unwrap();
        let mut identity = pki.identity(data.path());
        // Another CA's CRL with a huge number: refused, and the floor is not raised by
        // it (else any signer could lock out the real CRLs).
        let foreign = stranger.crl(n(1_000_000), now - 60, false);
        let err = check_and_remember(&mut identity, &foreign, now).unwrap_err();
        assert!(err.to_string().contains("does not verify"), "{err}");
        assert_eq!(identity.crl_floor, None);
        let ours = pki.crl(n(3), now - 60, false);
        assert_eq!(
            check_and_remember(&mut identity, &ours, now).unwrap(),
            Verdict::Good
        );
        assert_eq!(identity.crl_floor, Some(pki.position(&ours, now)));
    }

    #[test]
    fn a_replayed_older_crl_cannot_hide_a_revocation_even_after_a_restart() {
        let (pki, now) = (pki(), now());
        let data = dbcrate_testkit::TempDir::new("crl-floor").unwrap();
        let mut identity = pki.identity(data.path());
        let before = pki.crl(n(6), now - 120, false);
        let listing_us = pki.crl(n(7), now - 60, true);
        assert_eq!(
            check_and_remember(&mut identity, &before, now).unwrap(),
            Verdict::Good
        );
        assert_eq!(
            check_and_remember(&mut identity, &listing_us, now).unwrap(),
            Verdict::Revoked
        );
        // The agent stops; started again, it reads the floor back from its identity.
        let floor_file = identity.dir.join("crl-floor.json");
        let mut identity = identity::load(data.path()).unwrap();
        assert_eq!(identity.crl_floor, Some(pki.position(&listing_us, now)));
        let stored = std::fs::read(&floor_file).unwrap();
        // The CRL from before the revocation is still signed and fresh, but older: it
        // is refused, not taken as "not revoked", and the floor stays.
        let err = check_and_remember(&mut identity, &before, now).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity);
        assert_eq!(err.reason(), Some(Reason::StaleCrl));
        let text = err.to_string();
        assert!(text.contains("CRL number 6"), "{text}");
        assert!(text.contains("older than CRL number 7"), "{text}");
        assert!(text.contains(&floor_file.display().to_string()), "{text}");
        assert_eq!(std::fs::read(&floor_file).unwrap(), stored);
        assert_eq!(
            check_and_remember(&mut identity, &listing_us, now).unwrap(),
            Verdict::Revoked
        );
    }

    #[test]
    fn the_floor_hint_follows_the_reason_not_the_words() {
        let floor = std::path::Path::new("/data/identity/crl-floor.json");
        let stale = with_floor_hint(Error::because(Reason::StaleCrl, "stale"), floor);
        assert!(
            stale.to_string().contains("/data/identity/crl-floor.json"),
            "{stale}"
        );
        assert_eq!(stale.reason(), Some(Reason::StaleCrl));
        // The words alone, without the reason: no hint.
        let worded = Error::integrity("CRL number 6 is older than CRL number 7");
        assert_eq!(
            with_floor_hint(worded, floor).to_string(),
            "CRL number 6 is older than CRL number 7"
        );
    }
}
