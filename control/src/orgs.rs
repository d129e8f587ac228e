//! Organisations: each has its own age X25519 key pair. The public key (`age1…`) is
//! stored in plaintext for agents to encrypt to; the private key is an envelope-encrypted
//! secret, unwrapped only for customer-initiated operations, each audited.

use crate::audit::{self, AuditEvent};
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{new_id, Error, Result};
use crate::secrets;
use age::secrecy::ExposeSecret;
use dbcrate_core::secret::SecretString;
use sqlx::Row;

/// The purpose recorded with an organisation's private key.
pub const ORG_KEY_PURPOSE: &str = "org-private-key";

/// An organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    /// Its id (`org_…`).
    pub id: String,
    /// Its unique name.
    pub name: String,
    /// Its age recipient (`age1…`): what every backup is encrypted to.
    pub recipient: String,
}

/// Creates an organisation with a fresh key pair, in one transaction with its audit row.
pub async fn create(db: &Db, keys: &MasterKeys, name: &str, actor: &str, now: &str) -> Result<Org> {
    let mut conn = db.begin().await?;
    let created = create_in(&mut conn, keys, name, actor, now).await;
    end_write(conn, created).await
}

/// Creates an organisation inside the caller's transaction on `conn` (begun with
/// [`Db::begin`]): the org row, its sealed private key, and the audit row.
pub async fn create_in(
    conn: &mut sqlx::AnyConnection,
    keys: &MasterKeys,
    name: &str,
    actor: &str,
    now: &str,
) -> Result<Org> {
    let name = &crate::names::display_name("organisation name", name, 100)?;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let private = identity.to_string();
    let id = new_id("org")?;
    sqlx::query("INSERT INTO orgs (id, name, recipient, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&id)
        .bind(name)
        .bind(&recipient)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                Error::conflict(format!("an organisation named {name:?} exists already"))
            }
            _ => Error::from(e),
        })?;
    let secret_id = secrets::insert(
        conn,
        keys,
        secrets::Owner::Org(&id),
        ORG_KEY_PURPOSE,
        private.expose_secret().as_bytes(),
        now,
    )
    .await?;
    sqlx::query("UPDATE orgs SET private_key_secret_id = $1 WHERE id = $2")
        .bind(&secret_id)
        .bind(&id)
        .execute(&mut *conn)
        .await?;
    let details = serde_json::json!({ "name": name, "recipient": recipient }).to_string();
    audit::append_in(
        conn,
        &AuditEvent {
            org_id: &id,
            actor,
            action: "org.create",
            target: &format!("org:{id}"),
            details: &details,
        },
        now,
    )
    .await?;
    Ok(Org {
        id,
        name: name.to_string(),
        recipient,
    })
}

/// Looks an organisation up by id.
pub async fn get(db: &Db, org_id: &str) -> Result<Option<Org>> {
    let row = sqlx::query("SELECT id, name, recipient FROM orgs WHERE id = $1")
        .bind(org_id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row
        .map(|r| -> std::result::Result<Org, sqlx::Error> {
            Ok(Org {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                recipient: r.try_get(2)?,
            })
        })
        .transpose()?)
}

/// The organisation's private key as a standard age identity file
/// (`AGE-SECRET-KEY-1…`), for the owner's offline recovery copy. Audited as
/// `org.recovery_key.export`, plus the `secret.unwrap` it needs. The caller checks that
/// the owner has just passed a second factor.
pub async fn export_recovery_key(
    db: &Db,
    keys: &MasterKeys,
    org_id: &str,
    actor: &str,
    now: &str,
) -> Result<SecretString> {
    let secret_id: Option<String> =
        sqlx::query_scalar("SELECT private_key_secret_id FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_optional(db.pool())
            .await?
            .flatten();
    let secret_id =
        secret_id.ok_or_else(|| Error::not_found(format!("organisation {org_id} not found")))?;
    audit::append(
        db,
        &AuditEvent {
            org_id,
            actor,
            action: "org.recovery_key.export",
            target: &format!("org:{org_id}"),
            details: "{}",
        },
        now,
    )
    .await?;
    let key = secrets::unwrap(
        db,
        keys,
        secrets::SecretRef {
            owner: secrets::Owner::Org(org_id),
            id: &secret_id,
            purpose: ORG_KEY_PURPOSE,
        },
        actor,
        "recovery key export",
        now,
    )
    .await?;
    let key = zeroize::Zeroizing::new(
        String::from_utf8(key.to_vec())
            .map_err(|_| Error::internal("the stored organisation key is not text"))?,
    );
    Ok(SecretString::new(format!(
        "# dbcrate recovery key for organisation {org_id}\n# exported {now}\n{}\n",
        key.as_str()
    )))
}
