//! Organisations: each has its own age X25519 key pair. The public key (`age1…`) is
//! stored in plaintext for agents to encrypt to; the private key is an envelope-encrypted
//! secret, unwrapped only for customer-initiated operations, each audited.

use crate::accounts::throttle::Attempt;
use crate::audit::{AuditAction, AuditEvent, Writer};
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{new_id, Code, Error, Result};
use crate::secrets;
use crate::secrets::customer_seal::{self, Passphrase};
use age::secrecy::ExposeSecret;
use dbcrate_core::secret::SecretString;

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

crate::rows::from_row!(Org {
    id,
    name,
    recipient
});

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
    let details = serde_json::json!({ "name": name, "recipient": recipient });
    audit_org(&mut *conn, &id, actor, AuditAction::OrgCreate, details, now).await?;
    Ok(Org {
        id,
        name: name.to_string(),
        recipient,
    })
}

/// Audits `action` on the organisation itself (target `org:<id>`) at `now`, in a
/// transaction of its own or the caller's (see [`Writer`]).
async fn audit_org<'c>(
    to: impl Into<Writer<'c>>,
    org_id: &str,
    actor: &str,
    action: AuditAction,
    details: serde_json::Value,
    now: &str,
) -> Result<()> {
    let event = AuditEvent {
        org_id,
        actor,
        action,
        target: &format!("org:{org_id}"),
        details: &details.to_string(),
    };
    to.into().append(&event, now).await?;
    Ok(())
}

/// Looks an organisation up by id.
pub async fn get(db: &Db, org_id: &str) -> Result<Option<Org>> {
    Ok(
        sqlx::query_as("SELECT id, name, recipient FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// The organisation's private key as a standard age identity file
/// (`AGE-SECRET-KEY-1…`), for the owner's offline recovery copy. Audited as
/// `org.recovery_key.export`, plus the `secret.unwrap` it needs. The caller checks that
/// the owner has just passed a second factor. A customer-sealed key is refused
/// (`customer_passphrase_required`): see [`export_recovery_key_with`].
pub async fn export_recovery_key(
    db: &Db,
    keys: &MasterKeys,
    org_id: &str,
    actor: &str,
    now: &str,
) -> Result<SecretString> {
    export_recovery_key_with(db, keys, org_id, None, actor, now).await
}

/// [`export_recovery_key`] with the customer passphrase a customer-sealed key needs
/// (ignored in managed mode).
pub async fn export_recovery_key_with(
    db: &Db,
    keys: &MasterKeys,
    org_id: &str,
    passphrase: Option<&Passphrase>,
    actor: &str,
    now: &str,
) -> Result<SecretString> {
    let mode = key_row(db, org_id).await?.mode;
    if mode == KeyMode::CustomerSealed && passphrase.is_none() {
        return Err(customer_seal::passphrase_required("recovery key export"));
    }
    let details = serde_json::json!({ "key_mode": mode.as_str() });
    let action = AuditAction::OrgRecoveryKeyExport;
    audit_org(db, org_id, actor, action, details, now).await?;
    let key = unlock_private_key(
        db,
        keys,
        org_id,
        passphrase,
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

/// The purpose recorded with a customer-sealed organisation key (the private key under
/// the customer's passphrase, see [`crate::secrets::customer_seal`]).
pub const ORG_KEY_SEALED_PURPOSE: &str = "org-private-key-customer-sealed";

/// Wrong customer passphrases allowed per person and organisation in the throttle
/// window before further tries are refused.
pub const PASSPHRASE_TRIES_PER_PERSON: i64 = 5;
/// Wrong customer passphrases allowed per organisation (all people together).
pub const PASSPHRASE_TRIES_PER_ORG: i64 = 10;

/// How an organisation's private key is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// Envelope-encrypted under the master key: managed restores and exports work with
    /// the control plane's keys alone.
    Managed,
    /// Also sealed under a passphrase only the customer holds: restores and exports need
    /// it, each time.
    CustomerSealed,
}

impl KeyMode {
    /// The mode as stored and shown (`managed`, `customer_sealed`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Managed => "managed",
            Self::CustomerSealed => "customer_sealed",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        match text {
            "managed" => Ok(Self::Managed),
            "customer_sealed" => Ok(Self::CustomerSealed),
            _ => Err(Error::internal("unknown organisation key mode")),
        }
    }
}

/// The organisation's key row: its recipient, the secret holding its private key, and
/// the mode.
struct KeyRow {
    recipient: String,
    secret_id: String,
    mode: KeyMode,
}

/// The key columns of an organisation's row, as stored.
struct StoredKey {
    recipient: String,
    private_key_secret_id: Option<String>,
    key_mode: String,
}

crate::rows::from_row!(StoredKey {
    recipient,
    private_key_secret_id,
    key_mode
});

async fn key_row(db: &Db, org_id: &str) -> Result<KeyRow> {
    let stored: StoredKey =
        sqlx::query_as("SELECT recipient, private_key_secret_id, key_mode FROM orgs WHERE id = $1")
            .bind(org_id)
            .fetch_optional(db.pool())
            .await?
            .ok_or_else(|| Error::not_found(format!("organisation {org_id} not found")))?;
    Ok(KeyRow {
        recipient: stored.recipient,
        secret_id: stored
            .private_key_secret_id
            .ok_or_else(|| Error::internal("the organisation has no private key"))?,
        mode: KeyMode::parse(&stored.key_mode)?,
    })
}

/// How the organisation's private key is kept.
pub async fn key_mode(db: &Db, org_id: &str) -> Result<KeyMode> {
    Ok(key_row(db, org_id).await?.mode)
}

/// The organisation's private key (an `AGE-SECRET-KEY-1…` line) for one operation
/// (`reason`, audited with the unwrap). A customer-sealed key needs `passphrase`:
/// without it the answer is `customer_passphrase_required`; a wrong one is counted
/// against the throttle, audited (`org.key.customer_seal.wrong_passphrase`) and answered
/// `customer_passphrase_invalid`. In managed mode the passphrase is not needed and not
/// looked at.
pub async fn unlock_private_key(
    db: &Db,
    keys: &MasterKeys,
    org_id: &str,
    passphrase: Option<&Passphrase>,
    actor: &str,
    reason: &str,
    now: &str,
) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let row = key_row(db, org_id).await?;
    let purpose = match row.mode {
        KeyMode::Managed => ORG_KEY_PURPOSE,
        KeyMode::CustomerSealed => ORG_KEY_SEALED_PURPOSE,
    };
    let secret = secrets::SecretRef {
        owner: secrets::Owner::Org(org_id),
        id: &row.secret_id,
        purpose,
    };
    if row.mode == KeyMode::Managed {
        return secrets::unwrap(db, keys, secret, actor, reason, now).await;
    }
    let passphrase = passphrase.ok_or_else(|| customer_seal::passphrase_required(reason))?;
    let unix =
        dbcrate_core::time::parse_rfc3339(now).ok_or_else(|| Error::internal("bad timestamp"))?;
    let person_key = format!("customer-passphrase:{org_id}:{actor}");
    let org_key = format!("customer-passphrase:{org_id}");
    let attempt = Attempt::begin(
        db,
        &[
            (&person_key, PASSPHRASE_TRIES_PER_PERSON),
            (&org_key, PASSPHRASE_TRIES_PER_ORG),
        ],
        unix,
    )
    .await?;
    let blob = secrets::unwrap(db, keys, secret, actor, reason, now).await?;
    let blob = String::from_utf8(blob.to_vec())
        .map_err(|_| Error::internal("the customer-sealed organisation key is not text"))?;
    let opened = open_blocking(passphrase, org_id, &row.recipient, blob).await?;
    match opened {
        Ok(key) => {
            attempt.succeeded(db).await?;
            Ok(key)
        }
        Err(customer_seal::OpenError::WrongPassphrase) => {
            let details = serde_json::json!({ "reason": reason });
            let action = AuditAction::OrgCustomerSealWrongPassphrase;
            audit_org(db, org_id, actor, action, details, now).await?;
            Err(Error::new(
                Code::CustomerPassphraseInvalid,
                "that is not the organisation's passphrase (attempts are limited; after \
                 several wrong ones, wait 15 minutes)",
            ))
        }
        Err(customer_seal::OpenError::Malformed(what)) => Err(Error::internal(format!(
            "the customer-sealed organisation key is damaged: {what}"
        ))),
    }
}

/// Runs [`customer_seal::open`] on the blocking pool (Argon2id takes a fraction of a
/// second and 64 MiB).
async fn open_blocking(
    passphrase: &Passphrase,
    org_id: &str,
    recipient: &str,
    blob: String,
) -> Result<std::result::Result<zeroize::Zeroizing<Vec<u8>>, customer_seal::OpenError>> {
    // The passphrase moves into the task as a copy that is zeroed on drop.
    let pass = passphrase.duplicate();
    let (org_id, recipient) = (org_id.to_string(), recipient.to_string());
    tokio::task::spawn_blocking(move || customer_seal::open(&pass, &org_id, &recipient, &blob))
        .await
        .map_err(|_| Error::internal("opening the organisation key failed"))
}

/// Switches the organisation to customer-sealed mode: its private key is sealed under
/// `passphrase` (at least [`customer_seal::MIN_PASSPHRASE_CHARS`] characters), and in
/// one transaction the sealed copy replaces the plain envelope secret (deleted), the
/// mode changes and `org.key.customer_seal.enable` is audited (never the passphrase).
/// The caller checks that an owner with a recent second factor asks.
pub async fn enable_customer_seal(
    db: &Db,
    keys: &MasterKeys,
    org_id: &str,
    passphrase: &Passphrase,
    actor: &str,
    now: &str,
) -> Result<()> {
    passphrase.check_strength()?;
    let row = key_row(db, org_id).await?;
    if row.mode == KeyMode::CustomerSealed {
        return Err(Error::conflict(
            "this organisation's key is customer-sealed already",
        ));
    }
    let private =
        unlock_private_key(db, keys, org_id, None, actor, "customer seal enable", now).await?;
    check_pair(&private, &row.recipient)?;
    let pass = passphrase.duplicate();
    let (org, recipient) = (org_id.to_string(), row.recipient.clone());
    let blob =
        tokio::task::spawn_blocking(move || customer_seal::seal(&pass, &org, &recipient, &private))
            .await
            .map_err(|_| Error::internal("sealing the organisation key failed"))??;
    let params = customer_seal::KdfParams::CURRENT;
    let details = serde_json::json!({
        "kdf": "argon2id",
        "memory_kib": params.memory_kib,
        "iterations": params.iterations,
        "lanes": params.lanes,
    });
    replace_key(
        db,
        keys,
        org_id,
        (&row.secret_id, KeyMode::Managed),
        (blob.as_bytes(), KeyMode::CustomerSealed),
        (AuditAction::OrgCustomerSealEnable, details),
        actor,
        now,
    )
    .await
}

/// Switches a customer-sealed organisation back to managed mode, given its passphrase:
/// the private key goes back under the envelope alone, in one transaction with the
/// deletion of the sealed copy and the `org.key.customer_seal.disable` audit row.
pub async fn disable_customer_seal(
    db: &Db,
    keys: &MasterKeys,
    org_id: &str,
    passphrase: &Passphrase,
    actor: &str,
    now: &str,
) -> Result<()> {
    let row = key_row(db, org_id).await?;
    if row.mode == KeyMode::Managed {
        return Err(Error::conflict(
            "this organisation's key is not customer-sealed",
        ));
    }
    let private = unlock_private_key(
        db,
        keys,
        org_id,
        Some(passphrase),
        actor,
        "customer seal disable",
        now,
    )
    .await?;
    check_pair(&private, &row.recipient)?;
    replace_key(
        db,
        keys,
        org_id,
        (&row.secret_id, KeyMode::CustomerSealed),
        (&private, KeyMode::Managed),
        (AuditAction::OrgCustomerSealDisable, serde_json::json!({})),
        actor,
        now,
    )
    .await
}

/// The private key must be the recipient's (a mismatch would seal away a key that opens
/// nothing).
fn check_pair(private: &[u8], recipient: &str) -> Result<()> {
    let identity: age::x25519::Identity = std::str::from_utf8(private)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| Error::internal("the stored organisation key does not parse"))?;
    if identity.to_public().to_string() != recipient {
        return Err(Error::internal(
            "the stored organisation key does not match its recipient",
        ));
    }
    Ok(())
}

/// In one transaction: stores `new` as the org's key secret, points the org at it with
/// its mode (guarded by the old secret and mode, so two switches cannot both win),
/// deletes the old secret, and writes the audit row.
#[allow(clippy::too_many_arguments)]
async fn replace_key(
    db: &Db,
    keys: &MasterKeys,
    org_id: &str,
    old: (&str, KeyMode),
    new: (&[u8], KeyMode),
    audit_row: (AuditAction, serde_json::Value),
    actor: &str,
    now: &str,
) -> Result<()> {
    let purpose = match new.1 {
        KeyMode::Managed => ORG_KEY_PURPOSE,
        KeyMode::CustomerSealed => ORG_KEY_SEALED_PURPOSE,
    };
    let mut tx = db.begin().await?;
    let done: Result<()> = async {
        let secret_id = secrets::insert(
            &mut tx,
            keys,
            secrets::Owner::Org(org_id),
            purpose,
            new.0,
            now,
        )
        .await?;
        let updated = sqlx::query(
            "UPDATE orgs SET private_key_secret_id = $1, key_mode = $2 \
             WHERE id = $3 AND private_key_secret_id = $4 AND key_mode = $5",
        )
        .bind(&secret_id)
        .bind(new.1.as_str())
        .bind(org_id)
        .bind(old.0)
        .bind(old.1.as_str())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(Error::conflict(
                "the organisation's key changed meanwhile; look at its mode and try again",
            ));
        }
        secrets::delete_in(&mut tx, org_id, old.0).await?;
        let (action, details) = audit_row;
        audit_org(&mut tx, org_id, actor, action, details, now).await
    }
    .await;
    end_write(tx, done).await
}
