//! Agents of an organisation: one-time enrolment tokens, enrolment (token + CSR →
//! certificate), renewal, revocation. Every step is audited in the organisation's chain.
//!
//! Enrolment tokens are shown once (`dbce_…`), stored as SHA-256, bound to one
//! organisation, expire (default one hour) and work once: the token is marked used in
//! the same transaction that records the agent and its certificate, with a conditional
//! update, so two agents racing with one token cannot both enrol.

use crate::audit::{record, record_in, AuditAction};
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{is_id, new_id, Code, Error, Result};
use crate::pki::identity::AgentIdentity;
use crate::pki::{ca, crl, issue};
use crate::tokens::{new_token, token_hash};
use dbcrate_core::secret::SecretString;
use sqlx::AnyConnection;

pub mod presence;

/// What every enrolment token starts with.
pub const TOKEN_PREFIX: &str = "dbce_";
/// How long an enrolment token works unless the operator says otherwise.
pub const DEFAULT_TOKEN_LIFETIME_SECS: i64 = 3600;
/// The longest an enrolment token may work.
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 7 * 24 * 3600;

/// A new enrolment token.
#[derive(Debug)]
pub struct NewEnrolmentToken {
    /// Its id (`enr_…`).
    pub id: String,
    /// Its value, shown once.
    pub token: SecretString,
    /// When it stops working.
    pub expires_at: i64,
}

/// Creates an enrolment token for `org_id`.
pub async fn create_token(
    db: &Db,
    org_id: &str,
    name: &str,
    lifetime_secs: Option<i64>,
    actor: &str,
    now: i64,
) -> Result<NewEnrolmentToken> {
    let name = &crate::names::display_name("name", name, 100)
        .map_err(|e| Error::invalid(format!("{} (the token's name says which host)", e.message)))?;
    let lifetime = lifetime_secs.unwrap_or(DEFAULT_TOKEN_LIFETIME_SECS);
    if !(60..=MAX_TOKEN_LIFETIME_SECS).contains(&lifetime) {
        return Err(Error::invalid(format!(
            "expires_in_secs must be 60-{MAX_TOKEN_LIFETIME_SECS}"
        )));
    }
    let id = new_id("enr")?;
    let token = new_token(TOKEN_PREFIX)?;
    let mut conn = db.begin().await?;
    let stored: Result<()> = async {
        sqlx::query(
            "INSERT INTO enrolment_tokens (id, org_id, name, token_hash, created_by, created_at, \
             expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(org_id)
        .bind(name)
        .bind(token_hash(token.expose_secret()))
        .bind(actor)
        .bind(now)
        .bind(now + lifetime)
        .execute(&mut *conn)
        .await?;
        let details = serde_json::json!({ "name": name, "expires_at": now + lifetime });
        record_in(
            &mut conn,
            org_id,
            actor,
            AuditAction::AgentEnrolmentTokenCreate,
            &format!("enrolment_token:{id}"),
            details,
            now,
        )
        .await
    }
    .await;
    end_write(conn, stored).await?;
    Ok(NewEnrolmentToken {
        id,
        token,
        expires_at: now + lifetime,
    })
}

/// What an agent sends to enrol.
#[derive(Debug)]
pub struct EnrolRequest<'a> {
    /// The one-time token.
    pub token: &'a SecretString,
    /// Its CSR (PEM).
    pub csr_pem: &'a str,
    /// A name for the agent (its host name, say).
    pub name: &'a str,
    /// The organisation the agent expects to join, if it says.
    pub org_id: Option<&'a str>,
}

/// What an enrolled agent gets.
#[derive(Debug)]
pub struct Enrolled {
    /// Its organisation.
    pub org_id: String,
    /// Its id (`agt_…`).
    pub agent_id: String,
    /// Its certificate then the organisation CA (PEM).
    pub chain_pem: String,
    /// The deployment root (PEM), to check CRLs and the chain against.
    pub root_pem: String,
    /// When the certificate expires.
    pub not_after: i64,
}

/// An enrolment token as found by its hash.
struct EnrolmentToken {
    id: String,
    org_id: String,
    expires_at: i64,
    used_at: Option<i64>,
}

crate::rows::from_row!(EnrolmentToken {
    id,
    org_id,
    expires_at,
    used_at
});

fn refused(message: &str) -> Error {
    Error::new(Code::NotSignedIn, message)
}

/// The answer to a revoked agent: the code it stops on, and the whole message agents
/// older than that code compare.
fn revoked() -> Error {
    Error::new(
        Code::AgentRevoked,
        dbcrate_core::wire::codes::AGENT_REVOKED_MESSAGE,
    )
}

/// Enrols an agent. Every refusal for a known token is audited in its organisation.
pub async fn enrol(
    db: &Db,
    keys: &MasterKeys,
    request: &EnrolRequest<'_>,
    lifetime_secs: i64,
    now: i64,
) -> Result<Enrolled> {
    let EnrolmentToken {
        id: token_id,
        org_id,
        expires_at,
        used_at,
    } = sqlx::query_as(
        "SELECT id, org_id, expires_at, used_at FROM enrolment_tokens WHERE token_hash = $1",
    )
    .bind(token_hash(request.token.expose_secret()))
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| {
        refused("the enrolment token is not valid: create a new one in the control plane")
    })?;
    let target = format!("enrolment_token:{token_id}");
    let (org_ref, target_ref) = (&org_id, &target);
    let refuse = |reason: &'static str, error: Error| async move {
        let details = serde_json::json!({ "reason": reason });
        record(
            db,
            org_ref,
            "anonymous",
            AuditAction::AgentEnrolRefused,
            target_ref,
            details,
            now,
        )
        .await?;
        Err::<Enrolled, _>(error)
    };
    if used_at.is_some() {
        return refuse(
            "token used already",
            refused("the enrolment token was used already: create a new one"),
        )
        .await;
    }
    if now >= expires_at {
        return refuse(
            "token expired",
            refused("the enrolment token has expired: create a new one"),
        )
        .await;
    }
    if request.org_id.is_some_and(|wanted| wanted != org_id) {
        return refuse(
            "token of another organisation",
            refused("the enrolment token belongs to another organisation than --org names"),
        )
        .await;
    }
    let name = match crate::names::display_name("name", request.name, 200) {
        Ok(name) => name,
        Err(e) => return refuse("bad name", e).await,
    };
    let name = name.as_str();
    let csr = match issue::parse_csr(request.csr_pem) {
        Ok(csr) => csr,
        Err(e) => return refuse("bad CSR", e).await,
    };
    let agent_id = new_id("agt")?;
    let signing = ca::org_signing_ca(db, keys, &org_id, "system", "agent enrolment", now).await?;
    let issued = issue::sign(&signing, &csr, &org_id, &agent_id, now, lifetime_secs)?;
    let root_pem = ca::root_cert_pem(db, keys, now).await?;
    let mut conn = db.begin().await?;
    let stored: Result<()> = async {
        let used = sqlx::query(
            "UPDATE enrolment_tokens SET used_at = $1, agent_id = $2 WHERE id = $3 AND used_at IS NULL",
        )
        .bind(now)
        .bind(&agent_id)
        .bind(&token_id)
        .execute(&mut *conn)
        .await?;
        if used.rows_affected() != 1 {
            return Err(refused("the enrolment token was used already: create a new one"));
        }
        sqlx::query("INSERT INTO agents (id, org_id, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&agent_id)
            .bind(&org_id)
            .bind(name)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        insert_certificate(&mut conn, &org_id, &agent_id, &issued).await?;
        let details = serde_json::json!({
            "name": name, "token": token_id, "serial": issued.serial, "not_after": issued.not_after,
        });
        record_in(&mut conn, &org_id, &format!("agent:{agent_id}"), AuditAction::AgentEnrol, &format!("agent:{agent_id}"), details, now).await
    }
    .await;
    end_write(conn, stored).await?;
    Ok(Enrolled {
        org_id,
        agent_id,
        chain_pem: issued.chain_pem,
        root_pem,
        not_after: issued.not_after,
    })
}

async fn insert_certificate(
    conn: &mut AnyConnection,
    org_id: &str,
    agent_id: &str,
    issued: &issue::Issued,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO agent_certificates (serial, agent_id, org_id, not_before, not_after) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&issued.serial)
    .bind(agent_id)
    .bind(org_id)
    .bind(issued.not_before)
    .bind(issued.not_after)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// When an agent's certificate, and the agent, were revoked (if they were).
struct Revocations {
    certificate_revoked_at: Option<i64>,
    agent_revoked_at: Option<i64>,
}

crate::rows::from_row!(Revocations {
    certificate_revoked_at,
    agent_revoked_at
});

/// Refuses a verified certificate whose agent or serial has been revoked (the TLS
/// layer's CRL check is the first line; this one also covers the moments before a
/// replica reloads its CRLs).
pub async fn check_live(db: &Db, identity: &AgentIdentity) -> Result<()> {
    let revocations: Revocations = sqlx::query_as(
        "SELECT c.revoked_at AS certificate_revoked_at, a.revoked_at AS agent_revoked_at \
         FROM agent_certificates c \
         JOIN agents a ON a.id = c.agent_id \
         WHERE c.serial = $1 AND c.agent_id = $2 AND c.org_id = $3",
    )
    .bind(&identity.serial)
    .bind(&identity.agent_id)
    .bind(&identity.org_id)
    .fetch_optional(db.pool())
    .await?
    .ok_or_else(|| refused("this agent certificate is unknown here: re-enrol the agent"))?;
    if revocations.certificate_revoked_at.is_some() || revocations.agent_revoked_at.is_some() {
        return Err(revoked());
    }
    Ok(())
}

/// Issues a fresh certificate for a live agent's new key (CSR). The presented
/// certificate must be valid now: an expired one is never traded for a fresh one (the
/// agent listener refuses it on every request already; this holds for any caller).
pub async fn renew(
    db: &Db,
    keys: &MasterKeys,
    identity: &AgentIdentity,
    csr_pem: &str,
    lifetime_secs: i64,
    now: i64,
) -> Result<issue::Issued> {
    identity.check_valid_at(now)?;
    check_live(db, identity).await?;
    let csr = issue::parse_csr(csr_pem)?;
    let signing =
        ca::org_signing_ca(db, keys, &identity.org_id, "system", "agent renewal", now).await?;
    let issued = issue::sign(
        &signing,
        &csr,
        &identity.org_id,
        &identity.agent_id,
        now,
        lifetime_secs,
    )?;
    let mut conn = db.begin().await?;
    let stored: Result<()> = async {
        // Re-checked under the agent row's lock: a revocation committed since the check
        // above must not be followed by a fresh certificate the CRL does not list.
        let live = sqlx::query(
            "UPDATE agents SET name = name WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL",
        )
        .bind(&identity.agent_id)
        .bind(&identity.org_id)
        .execute(&mut *conn)
        .await?;
        if live.rows_affected() != 1 {
            return Err(revoked());
        }
        insert_certificate(&mut conn, &identity.org_id, &identity.agent_id, &issued).await?;
        let details = serde_json::json!({
            "previous_serial": identity.serial, "serial": issued.serial, "not_after": issued.not_after,
        });
        let agent = format!("agent:{}", identity.agent_id);
        record_in(&mut conn, &identity.org_id, &agent, AuditAction::AgentCertificateRenew, &agent, details, now).await
    }
    .await;
    end_write(conn, stored).await?;
    Ok(issued)
}

/// An agent as listed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AgentInfo {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it enrolled.
    pub created_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
    /// When its newest certificate expires.
    pub certificate_not_after: Option<i64>,
    /// When it last called the agent listener ([`presence`]), if ever.
    pub last_seen_at: Option<i64>,
    /// The version it last said it runs.
    pub version: Option<String>,
    /// The pg_dump of its newest recorded backup (`pg_dump (PostgreSQL) 17.2`).
    pub pg_dump_version: Option<String>,
}

crate::rows::from_row!(AgentInfo {
    id,
    name,
    created_at,
    revoked_at,
    certificate_not_after,
    last_seen_at,
    version,
    pg_dump_version,
});

/// The organisation's agents.
pub async fn list(db: &Db, org_id: &str) -> Result<Vec<AgentInfo>> {
    Ok(sqlx::query_as(
        "SELECT a.id, a.name, a.created_at, a.revoked_at, \
         (SELECT max(c.not_after) FROM agent_certificates c WHERE c.agent_id = a.id) \
         AS certificate_not_after, a.last_seen_at, a.version, \
         (SELECT b.pg_dump_version FROM jobs j JOIN backups b ON b.job_id = j.id \
          WHERE j.agent_id = a.id AND j.org_id = a.org_id AND j.state = 'succeeded' \
          ORDER BY j.created_at DESC, j.id DESC LIMIT 1) \
         AS pg_dump_version \
         FROM agents a WHERE a.org_id = $1 ORDER BY a.created_at, a.id",
    )
    .bind(org_id)
    .fetch_all(db.pool())
    .await?)
}

/// Revokes an agent: all its certificates go into the organisation's CRL, which is
/// re-signed at once. Audited.
pub async fn revoke(
    db: &Db,
    keys: &MasterKeys,
    org_id: &str,
    agent_id: &str,
    actor: &str,
    now: i64,
) -> Result<Vec<String>> {
    if !is_id(agent_id, "agt") {
        return Err(Error::not_found("no such agent"));
    }
    let mut conn = db.begin().await?;
    let revoked: Result<Vec<String>> = async {
        let updated = sqlx::query(
            "UPDATE agents SET revoked_at = $1 WHERE id = $2 AND org_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(agent_id)
        .bind(org_id)
        .execute(&mut *conn)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(Error::not_found("no such agent (or revoked already)"));
        }
        let serials: Vec<String> = sqlx::query_scalar(
            "SELECT serial FROM agent_certificates WHERE agent_id = $1 AND revoked_at IS NULL ORDER BY serial",
        )
        .bind(agent_id)
        .fetch_all(&mut *conn)
        .await?;
        sqlx::query("UPDATE agent_certificates SET revoked_at = $1 WHERE agent_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(agent_id)
            .execute(&mut *conn)
            .await?;
        let details = serde_json::json!({ "serials": serials });
        record_in(&mut conn, org_id, actor, AuditAction::AgentRevoke, &format!("agent:{agent_id}"), details, now).await?;
        Ok(serials)
    }
    .await;
    let serials = end_write(conn, revoked).await?;
    crl::regenerate(db, keys, org_id, "agent revocation", now).await?;
    Ok(serials)
}
