//! Databases an organisation backs up: how to reach them (host, port, database, user,
//! TLS mode), the password as a sealed secret, and the agent on whose host the dump
//! runs. Every change is audited; the password never appears in a row, an answer or an
//! audit detail.

use super::objects::Objects;
use crate::audit::{self, AuditAction};
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{is_id, new_id, Error, Result};
use crate::secrets::{self, Owner};
use dbcrate_core::secret::SecretString;
use dbcrate_core::time::rfc3339;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

/// The purpose recorded with a database password.
pub const PASSWORD_PURPOSE: &str = "database-password";
/// The TLS modes libpq knows, weakest first.
pub const TLS_MODES: [&str; 5] = ["disable", "prefer", "require", "verify-ca", "verify-full"];

/// A database to create.
#[derive(Debug)]
pub struct NewDatabase<'a> {
    /// Its name in dbcrate (also the folder its backups go into).
    pub name: &'a str,
    /// Host name or address, as the agent reaches it.
    pub host: &'a str,
    /// TCP port.
    pub port: i64,
    /// The database name on the server.
    pub dbname: &'a str,
    /// The user pg_dump connects as.
    pub username: &'a str,
    /// libpq's sslmode.
    pub tls_mode: &'a str,
    /// The password, if the server wants one.
    pub password: Option<&'a SecretString>,
    /// The agent that reaches it.
    pub agent_id: &'a str,
}

/// What an edit does with the stored password.
#[derive(Debug, Clone, Copy)]
pub enum PasswordChange<'a> {
    /// Leave it as it is (a form whose password field stayed empty).
    Keep,
    /// Seal this one instead; the old one is deleted.
    Set(&'a SecretString),
    /// The server wants none any more; the stored one is deleted.
    Remove,
}

impl PasswordChange<'_> {
    /// What the audit row says happened to the password.
    fn audited(self) -> &'static str {
        match self {
            Self::Keep => "kept",
            Self::Set(_) => "replaced",
            Self::Remove => "removed",
        }
    }
}

/// An edit of a database: everything but its name, which is the folder its backups go
/// into (existing backups keep their objects under it; a new name would split them).
#[derive(Debug, Clone, Copy)]
pub struct DatabaseEdit<'a> {
    /// Host name or address, as the agent reaches it.
    pub host: &'a str,
    /// TCP port.
    pub port: i64,
    /// The database name on the server.
    pub dbname: &'a str,
    /// The user pg_dump connects as.
    pub username: &'a str,
    /// libpq's sslmode.
    pub tls_mode: &'a str,
    /// The agent that reaches it.
    pub agent_id: &'a str,
    /// The password.
    pub password: PasswordChange<'a>,
}

/// A database as listed (never the password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseInfo {
    /// Its id (`dbs_…`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i64,
    /// Database on the server.
    pub dbname: String,
    /// User.
    pub username: String,
    /// sslmode.
    pub tls_mode: String,
    /// The agent that reaches it.
    pub agent_id: String,
    /// Whether a password is stored.
    pub has_password: bool,
    /// When it was added.
    pub created_at: i64,
}

fn check(new: &NewDatabase<'_>) -> Result<()> {
    for (field, value) in [
        ("name", new.name),
        ("host", new.host),
        ("dbname", new.dbname),
        ("username", new.username),
    ] {
        crate::names::check_characters(field, value)?;
    }
    dbcrate_core::object_key::check_segment("database name", new.name).map_err(|e| {
        Error::invalid(format!("{e}: the name becomes a folder in the destination"))
    })?;
    let plain = |what: &str, value: &str, max: usize| {
        if value.is_empty()
            || value.len() > max
            || value.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            Err(Error::invalid(format!(
                "{what} must be 1-{max} characters without spaces"
            )))
        } else {
            Ok(())
        }
    };
    plain("host", new.host, 253)?;
    plain("dbname", new.dbname, 63)?;
    plain("username", new.username, 63)?;
    if !(1..=65535).contains(&new.port) {
        return Err(Error::invalid("port must be 1-65535"));
    }
    if !TLS_MODES.contains(&new.tls_mode) {
        return Err(Error::invalid(format!(
            "tls_mode must be one of {}",
            TLS_MODES.join(", ")
        )));
    }
    if new.password.is_some_and(|p| p.expose_secret().len() > 1024) {
        return Err(Error::invalid("the password is longer than 1024 bytes"));
    }
    Ok(())
}

/// Adds a database, in one transaction with its sealed password and its audit row.
pub async fn create(
    db: &Db,
    keys: &MasterKeys,
    org_id: &str,
    new: &NewDatabase<'_>,
    actor: &str,
    now: i64,
) -> Result<DatabaseInfo> {
    check(new)?;
    let id = new_id("dbs")?;
    let mut tx = db.begin().await?;
    let created: Result<()> = async {
        check_agent(&mut tx, org_id, new.agent_id).await?;
        let secret_id = match new.password {
            Some(password) => Some(seal_password(&mut tx, keys, org_id, password, now).await?),
            None => None,
        };
        sqlx::query(
            "INSERT INTO databases (id, org_id, name, host, port, dbname, username, tls_mode, \
             password_secret_id, agent_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&id)
        .bind(org_id)
        .bind(new.name)
        .bind(new.host)
        .bind(new.port)
        .bind(new.dbname)
        .bind(new.username)
        .bind(new.tls_mode)
        .bind(&secret_id)
        .bind(new.agent_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                Error::conflict(format!("a database named {:?} exists already", new.name))
            }
            _ => Error::from(e),
        })?;
        let details = serde_json::json!({
            "name": new.name, "host": new.host, "port": new.port, "dbname": new.dbname,
            "username": new.username, "tls_mode": new.tls_mode, "agent": new.agent_id,
            "password": new.password.is_some(),
        });
        let (target, action) = (format!("database:{id}"), AuditAction::DatabaseCreate);
        audit::record_in(&mut tx, org_id, actor, action, &target, details, now).await
    }
    .await;
    end_write(tx, created).await?;
    get(db, org_id, &id)
        .await?
        .ok_or_else(|| Error::internal("the new database vanished"))
}

/// Refuses an agent that is not a live agent of `org_id`.
async fn check_agent(conn: &mut AnyConnection, org_id: &str, agent_id: &str) -> Result<()> {
    if !is_id(agent_id, "agt") {
        return Err(Error::invalid("agent_id is not an agent id (agt_…)"));
    }
    let agent: Option<Option<i64>> =
        sqlx::query_scalar("SELECT revoked_at FROM agents WHERE id = $1 AND org_id = $2")
            .bind(agent_id)
            .bind(org_id)
            .fetch_optional(&mut *conn)
            .await?;
    match agent {
        None => Err(Error::invalid("no such agent in this organisation")),
        Some(Some(_)) => Err(Error::invalid("that agent has been revoked")),
        Some(None) => Ok(()),
    }
}

/// Seals a database password for `org_id`; answers the secret's id.
async fn seal_password(
    conn: &mut AnyConnection,
    keys: &MasterKeys,
    org_id: &str,
    password: &SecretString,
    now: i64,
) -> Result<String> {
    let plaintext = password.expose_secret().as_bytes();
    let owner = Owner::Org(org_id);
    secrets::insert(
        conn,
        keys,
        owner,
        PASSWORD_PURPOSE,
        plaintext,
        &rfc3339(now),
    )
    .await
}

/// Changes where a database is reached, as whom, through which agent, and its
/// password, in one transaction with its audit row (which says what happened to the
/// password, never what it is). Another organisation's database is not found.
pub async fn update(
    db: &Db,
    keys: &MasterKeys,
    org_id: &str,
    id: &str,
    edit: &DatabaseEdit<'_>,
    actor: &str,
    now: i64,
) -> Result<DatabaseInfo> {
    let current = get(db, org_id, id)
        .await?
        .ok_or_else(|| Error::not_found("no such database"))?;
    let password = match edit.password {
        PasswordChange::Set(password) => Some(password),
        PasswordChange::Keep | PasswordChange::Remove => None,
    };
    check(&NewDatabase {
        name: &current.name,
        host: edit.host,
        port: edit.port,
        dbname: edit.dbname,
        username: edit.username,
        tls_mode: edit.tls_mode,
        password,
        agent_id: edit.agent_id,
    })?;
    let mut tx = db.begin().await?;
    let updated: Result<()> = async {
        check_agent(&mut tx, org_id, edit.agent_id).await?;
        let old_secret: Option<String> = sqlx::query_scalar(
            "SELECT password_secret_id FROM databases WHERE id = $1 AND org_id = $2",
        )
        .bind(id)
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("no such database"))?;
        let secret_id = match edit.password {
            PasswordChange::Keep => old_secret.clone(),
            PasswordChange::Set(password) => {
                Some(seal_password(&mut tx, keys, org_id, password, now).await?)
            }
            PasswordChange::Remove => None,
        };
        sqlx::query(
            "UPDATE databases SET host = $1, port = $2, dbname = $3, username = $4, \
             tls_mode = $5, agent_id = $6, password_secret_id = $7 WHERE id = $8 AND org_id = $9",
        )
        .bind(edit.host)
        .bind(edit.port)
        .bind(edit.dbname)
        .bind(edit.username)
        .bind(edit.tls_mode)
        .bind(edit.agent_id)
        .bind(&secret_id)
        .bind(id)
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
        if let Some(old) = old_secret.filter(|old| secret_id.as_ref() != Some(old)) {
            secrets::delete_in(&mut tx, org_id, &old).await?;
        }
        let details = serde_json::json!({
            "host": edit.host, "port": edit.port, "dbname": edit.dbname,
            "username": edit.username, "tls_mode": edit.tls_mode, "agent": edit.agent_id,
            "password": edit.password.audited(),
        });
        let (target, action) = (format!("database:{id}"), AuditAction::DatabaseUpdate);
        audit::record_in(&mut tx, org_id, actor, action, &target, details, now).await
    }
    .await;
    end_write(tx, updated).await?;
    get(db, org_id, id)
        .await?
        .ok_or_else(|| Error::internal("the edited database vanished"))
}

/// A row selected with [`COLUMNS`]; the password's secret id only tells whether there
/// is one.
impl sqlx::FromRow<'_, AnyRow> for DatabaseInfo {
    fn from_row(r: &AnyRow) -> std::result::Result<Self, sqlx::Error> {
        Ok(Self {
            id: r.try_get("id")?,
            name: r.try_get("name")?,
            host: r.try_get("host")?,
            port: r.try_get("port")?,
            dbname: r.try_get("dbname")?,
            username: r.try_get("username")?,
            tls_mode: r.try_get("tls_mode")?,
            agent_id: r.try_get("agent_id")?,
            has_password: r
                .try_get::<Option<String>, _>("password_secret_id")?
                .is_some(),
            created_at: r.try_get("created_at")?,
        })
    }
}

const COLUMNS: &str =
    "id, name, host, port, dbname, username, tls_mode, agent_id, password_secret_id, created_at";

/// The organisation's databases, selected with [`COLUMNS`].
const DATABASES: Objects = Objects {
    table: "databases",
    columns: COLUMNS,
    id_prefix: "dbs",
};

/// The organisation's databases, by name.
pub async fn list(db: &Db, org_id: &str) -> Result<Vec<DatabaseInfo>> {
    DATABASES.list(db, org_id).await
}

/// One database of the organisation (none for another organisation's).
pub async fn get(db: &Db, org_id: &str, id: &str) -> Result<Option<DatabaseInfo>> {
    DATABASES.get(db, org_id, id).await
}
