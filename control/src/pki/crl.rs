//! Each organisation's certificate revocation list, signed by its CA.
//!
//! The CRL is regenerated when a revocation changes it and otherwise when it is an hour
//! old; it is valid for a day, so a stale copy is refused by agents and the TLS layer.
//! The signed DER is kept in `org_cas`, so replicas serve the same list and signing
//! (which unwraps the CA key, audited) happens rarely.

use super::ca::org_signing_ca;
use super::{at, rcgen_error};
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{Error, Result};
use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};

/// A CRL is re-signed when older than this.
pub const REFRESH_SECS: i64 = 3600;
/// A CRL is valid this long after signing.
pub const VALIDITY_SECS: i64 = 24 * 3600;

/// A revoked agent certificate: its serial (hex) and when it was revoked.
struct Revoked {
    serial: String,
    revoked_at: i64,
}

crate::rows::from_row!(Revoked { serial, revoked_at });

/// An organisation's stored CRL and when it was signed, if it has one.
struct StoredCrl {
    crl_der: Option<Vec<u8>>,
    crl_this_update: Option<i64>,
}

crate::rows::from_row!(StoredCrl {
    crl_der,
    crl_this_update
});

/// Signs a fresh CRL for the organisation and stores it.
pub async fn regenerate(
    db: &Db,
    keys: &MasterKeys,
    org_id: &str,
    reason: &str,
    now: i64,
) -> Result<Vec<u8>> {
    // The key is unwrapped (its own audited transaction) before the CRL's transaction:
    // on SQLite a second writing transaction inside the first would wait for itself.
    let ca = org_signing_ca(db, keys, org_id, "system", reason, now).await?;
    let mut tx = db.begin().await?;
    let signed: Result<Vec<u8>> = async {
        // Bumping the number first locks the organisation's CA row, so the list read
        // next includes every revocation committed before, and a concurrent
        // regeneration waits and then includes ours.
        let number: i64 = sqlx::query_scalar(
            "UPDATE org_cas SET crl_number = crl_number + 1 WHERE org_id = $1 RETURNING crl_number",
        )
        .bind(org_id)
        .fetch_one(&mut *tx)
        .await?;
        let revoked: Vec<Revoked> = sqlx::query_as(
            "SELECT serial, revoked_at FROM agent_certificates \
             WHERE org_id = $1 AND revoked_at IS NOT NULL ORDER BY serial",
        )
        .bind(org_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut revoked_certs = Vec::new();
        for Revoked { serial, revoked_at } in revoked {
            revoked_certs.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(
                    &dbcrate_core::hex::decode_array::<16>(&serial)
                        .ok_or_else(|| Error::internal("a stored serial is not 16 hex bytes"))?,
                ),
                revocation_time: at(revoked_at)?,
                reason_code: None,
                invalidity_date: None,
            });
        }
        let params = CertificateRevocationListParams {
            this_update: at(now - 60)?,
            next_update: at(now + VALIDITY_SECS)?,
            crl_number: SerialNumber::from(number as u64),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params
            .signed_by(ca.issuer())
            .map_err(rcgen_error("signing the CRL"))?;
        let der = crl.der().to_vec();
        sqlx::query(
            "UPDATE org_cas SET crl_der = $1, crl_this_update = $2, crl_next_update = $3 \
             WHERE org_id = $4",
        )
        .bind(&der)
        .bind(now)
        .bind(now + VALIDITY_SECS)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
        Ok(der)
    }
    .await;
    let der = end_write(tx, signed).await?;
    Ok(der)
}

/// The organisation's current CRL (DER), re-signed first when missing or old.
pub async fn current(db: &Db, keys: &MasterKeys, org_id: &str, now: i64) -> Result<Vec<u8>> {
    let stored: Option<StoredCrl> =
        sqlx::query_as("SELECT crl_der, crl_this_update FROM org_cas WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(db.pool())
            .await?;
    if let Some(stored) = stored {
        if let (Some(der), Some(at)) = (stored.crl_der, stored.crl_this_update) {
            if now - at < REFRESH_SECS {
                return Ok(der);
            }
        }
    }
    regenerate(db, keys, org_id, "CRL refresh", now).await
}

/// Every organisation CA's certificate (DER) with its current CRL (DER), for the TLS
/// layer's client verifier.
pub async fn all_current(db: &Db, keys: &MasterKeys, now: i64) -> Result<Vec<Vec<u8>>> {
    let orgs: Vec<String> = sqlx::query_scalar("SELECT org_id FROM org_cas ORDER BY org_id")
        .fetch_all(db.pool())
        .await?;
    let mut crls = Vec::new();
    for org in orgs {
        // One organisation's trouble must not lock every other organisation's agents
        // out: without its CRL, its own agents are refused (unknown revocation status
        // is denied), and the next reload tries again.
        match current(db, keys, &org, now).await {
            Ok(crl) => crls.push(crl),
            Err(e) => tracing::error!(org.id = %org, "no CRL for this organisation: {}", e.message),
        }
    }
    Ok(crls)
}
