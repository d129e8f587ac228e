//! The deployment root CA and the organisations' intermediate CAs, created on first
//! need and kept as (certificate PEM, sealed key).
//!
//! Creation races between requests or replicas are settled by the primary keys: the
//! loser's insert fails and it loads the winner's CA. The CA parameters are rebuilt
//! from fixed templates when signing ([`org_ca_params`]), so the issuer name in every
//! certificate matches the CA certificate byte for byte.

use super::{at, rcgen_error};
use crate::audit::{self, AuditAction, AuditEvent};
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{new_id, Error, Result};
use crate::secrets::{self, Owner, SecretRef};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The purpose recorded with the root CA key.
pub const ROOT_KEY_PURPOSE: &str = "deployment-root-ca-key";
/// The purpose recorded with an organisation's CA key.
pub const ORG_CA_KEY_PURPOSE: &str = "agent-ca-key";
/// Root CA lifetime.
const ROOT_DAYS: i64 = 20 * 365;
/// Organisation CA lifetime.
const ORG_CA_DAYS: i64 = 10 * 365;

fn root_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("dbcrate deployment root {name}"),
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(1));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// The template of an organisation's CA (subject and usages), used to make it and to
/// sign with it.
pub fn org_ca_params(org_id: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, org_id);
    dn.push(DnType::CommonName, format!("dbcrate agents of {org_id}"));
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// A CA ready to sign: its certificate and its (unwrapped) key.
pub struct SigningCa {
    /// The CA certificate (PEM).
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for SigningCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningCa(<key redacted>)")
    }
}

impl SigningCa {
    /// Organisation `org_id`'s CA from its certificate and its unwrapped key (PEM).
    pub fn from_pem(org_id: &str, cert_pem: String, key_pem: &[u8]) -> Result<Self> {
        Ok(Self {
            cert_pem,
            issuer: Issuer::new(org_ca_params(org_id), key_from_secret(key_pem)?),
        })
    }

    /// The issuer, for rcgen's `signed_by`.
    pub fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }
}

fn key_from_secret(bytes: &[u8]) -> Result<KeyPair> {
    let pem =
        std::str::from_utf8(bytes).map_err(|_| Error::internal("a stored CA key is not PEM"))?;
    KeyPair::from_pem(pem).map_err(rcgen_error("a stored CA key does not load"))
}

/// A stored CA: its name (the root's only), certificate and the secret holding its key.
struct StoredRoot {
    name: String,
    cert_pem: String,
    key_secret_id: String,
}

crate::rows::from_row!(StoredRoot {
    name,
    cert_pem,
    key_secret_id
});

/// An organisation's stored CA: its certificate and the secret holding its key.
struct StoredOrgCa {
    cert_pem: String,
    key_secret_id: String,
}

crate::rows::from_row!(StoredOrgCa {
    cert_pem,
    key_secret_id
});

async fn load_root(db: &Db) -> Result<Option<StoredRoot>> {
    Ok(
        sqlx::query_as("SELECT name, cert_pem, key_secret_id FROM deployment_ca WHERE id = 1")
            .fetch_optional(db.pool())
            .await?,
    )
}

/// `params` valid from an hour before `now` for `days`: a new CA's validity.
fn valid_for(mut params: CertificateParams, now: i64, days: i64) -> Result<CertificateParams> {
    params.not_before = at(now - 3600)?;
    params.not_after = at(now + days * 86_400)?;
    Ok(params)
}

/// A CA made and to be stored: whose secret its key becomes, the row that names it and
/// what its creation is audited as.
struct NewCa<'a> {
    /// The key's owner (its audit chain too).
    owner: Owner<'a>,
    /// The purpose recorded with the key.
    key_purpose: &'a str,
    /// The CA row's insert, binding `named`, the certificate, the key's secret and the
    /// time, in that order.
    insert: &'a str,
    /// The root's name or the organisation's id.
    named: &'a str,
    /// The audit row's action and target.
    action: AuditAction,
    target: &'a str,
}

/// Seals the CA's key and stores its row and audit row, in one transaction. A
/// concurrent creation makes it fail on the row's primary key.
async fn store(
    db: &Db,
    keys: &MasterKeys,
    ca: &NewCa<'_>,
    key: &KeyPair,
    cert_pem: &str,
    stamp: &str,
) -> Result<()> {
    let key_pem = zeroize::Zeroizing::new(key.serialize_pem());
    let mut conn = db.begin().await?;
    let stored: Result<()> = async {
        let key_bytes = key_pem.as_bytes();
        let secret_id =
            secrets::insert(&mut conn, keys, ca.owner, ca.key_purpose, key_bytes, stamp).await?;
        sqlx::query(ca.insert)
            .bind(ca.named)
            .bind(cert_pem)
            .bind(&secret_id)
            .bind(stamp)
            .execute(&mut *conn)
            .await?;
        let event = AuditEvent {
            org_id: ca.owner.chain(),
            actor: "system",
            action: ca.action,
            target: ca.target,
            details: "{}",
        };
        audit::append_in(&mut conn, &event, stamp).await?;
        Ok(())
    }
    .await;
    end_write(conn, stored).await
}

/// The deployment root certificate (PEM), creating the root CA on first use.
pub async fn root_cert_pem(db: &Db, keys: &MasterKeys, now: i64) -> Result<String> {
    if let Some(root) = load_root(db).await? {
        return Ok(root.cert_pem);
    }
    let name = new_id("root")?;
    let key = KeyPair::generate().map_err(rcgen_error("generating the root CA key"))?;
    let cert = valid_for(root_params(&name), now, ROOT_DAYS)?
        .self_signed(&key)
        .map_err(rcgen_error("self-signing the root CA"))?;
    let stamp = dbcrate_core::time::rfc3339(now);
    let root = NewCa {
        owner: Owner::Instance,
        key_purpose: ROOT_KEY_PURPOSE,
        insert: "INSERT INTO deployment_ca (id, name, cert_pem, key_secret_id, created_at) \
                 VALUES (1, $1, $2, $3, $4)",
        named: &name,
        action: AuditAction::PkiRootCaCreate,
        target: &format!("ca:{name}"),
    };
    let created = store(db, keys, &root, &key, &cert.pem(), &stamp).await;
    // When another request or replica made it first, ours failed on the key: use theirs.
    match (load_root(db).await?, created) {
        (Some(root), _) => Ok(root.cert_pem),
        (None, Err(e)) => Err(e),
        (None, Ok(())) => Err(Error::internal(
            "the deployment root CA could not be created",
        )),
    }
}

async fn load_org_ca(db: &Db, org_id: &str) -> Result<Option<StoredOrgCa>> {
    Ok(
        sqlx::query_as("SELECT cert_pem, key_secret_id FROM org_cas WHERE org_id = $1")
            .bind(org_id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Creates the organisation's CA if it has none, signed by the root (whose key is
/// unwrapped, audited, for this).
async fn create_org_ca(db: &Db, keys: &MasterKeys, org_id: &str, now: i64) -> Result<()> {
    root_cert_pem(db, keys, now).await?;
    let StoredRoot {
        name,
        key_secret_id: root_secret,
        ..
    } = load_root(db)
        .await?
        .ok_or_else(|| Error::internal("the deployment root CA is missing"))?;
    let stamp = dbcrate_core::time::rfc3339(now);
    let root_secret = SecretRef {
        owner: Owner::Instance,
        id: &root_secret,
        purpose: ROOT_KEY_PURPOSE,
    };
    let reason = format!("creating the agent CA of {org_id}");
    let root_key = secrets::unwrap(db, keys, root_secret, "system", &reason, &stamp).await?;
    let root_issuer = Issuer::new(root_params(&name), key_from_secret(&root_key)?);
    let key = KeyPair::generate().map_err(rcgen_error("generating an organisation CA key"))?;
    let cert = valid_for(org_ca_params(org_id), now, ORG_CA_DAYS)?
        .signed_by(&key, &root_issuer)
        .map_err(rcgen_error("signing an organisation CA"))?;
    let org_ca = NewCa {
        owner: Owner::Org(org_id),
        key_purpose: ORG_CA_KEY_PURPOSE,
        insert: "INSERT INTO org_cas (org_id, cert_pem, key_secret_id, created_at, crl_number) \
                 VALUES ($1, $2, $3, $4, 0)",
        named: org_id,
        action: AuditAction::PkiOrgCaCreate,
        target: &format!("org:{org_id}"),
    };
    let created = store(db, keys, &org_ca, &key, &cert.pem(), &stamp).await;
    // A concurrent creation wins the primary key; ours is rolled back and theirs used.
    match (load_org_ca(db, org_id).await?, created) {
        (Some(_), _) => Ok(()),
        (None, result) => result,
    }
}

/// The organisation's CA certificate (PEM), creating the CA on first use.
pub async fn org_ca_cert_pem(db: &Db, keys: &MasterKeys, org_id: &str, now: i64) -> Result<String> {
    Ok(ensure_org_ca(db, keys, org_id, now).await?.cert_pem)
}

/// The organisation's CA (certificate PEM, key secret id), created first if it has none.
async fn ensure_org_ca(db: &Db, keys: &MasterKeys, org_id: &str, now: i64) -> Result<StoredOrgCa> {
    if let Some(found) = load_org_ca(db, org_id).await? {
        return Ok(found);
    }
    create_org_ca(db, keys, org_id, now).await?;
    load_org_ca(db, org_id)
        .await?
        .ok_or_else(|| Error::internal(format!("the agent CA of {org_id} could not be created")))
}

/// The organisation's CA with its key unwrapped (audited with `reason`), to sign
/// certificates or CRLs.
pub async fn org_signing_ca(
    db: &Db,
    keys: &MasterKeys,
    org_id: &str,
    actor: &str,
    reason: &str,
    now: i64,
) -> Result<SigningCa> {
    let StoredOrgCa {
        cert_pem,
        key_secret_id: secret_id,
    } = ensure_org_ca(db, keys, org_id, now).await?;
    let stamp = dbcrate_core::time::rfc3339(now);
    let secret = SecretRef {
        owner: Owner::Org(org_id),
        id: &secret_id,
        purpose: ORG_CA_KEY_PURPOSE,
    };
    let key = secrets::unwrap(db, keys, secret, actor, reason, &stamp).await?;
    SigningCa::from_pem(org_id, cert_pem, &key)
}
