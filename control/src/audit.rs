//! The audit log: one helper writes every row; rows chain per organisation by a keyed
//! hash.
//!
//! The schema offers no update, delete or replace path and database triggers refuse all
//! three (SQLite and PostgreSQL). Each row carries the hash of the organisation's
//! previous row and its own HMAC-SHA256 over every field under the audit chain key (a
//! sealed secret, see [`chain_key`]), so [`verify`] finds any row edited, deleted,
//! reordered or appended behind the application's back (with triggers disabled by a
//! database superuser, say) by anyone who lacks the master key. Removing the newest rows
//! of a chain leaves a shorter valid chain; exported chain heads
//! ([`crate::audit::heads`]) detect that.

pub mod action;
pub mod chain_key;
pub mod heads;
pub mod query;

pub use action::AuditAction;

use crate::db::{end_write, Db};
use chain_key::ChainKey;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The `prev_hash` of an organisation's first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The audit chain of account-level events (sign-in, second factors, password changes)
/// and of secrets that belong to a person rather than an organisation: a person may
/// belong to several organisations or none.
pub const INSTANCE_CHAIN: &str = "_instance";

/// The action of the instance-chain row that seals the unkeyed rows written before the
/// key existed.
pub const SEAL_ACTION: AuditAction = AuditAction::AuditChainKeyed;

/// What happened, by whom, to what. `details` is a JSON object with no secret in it.
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    /// The organisation whose chain the row joins.
    pub org_id: &'a str,
    /// Who acted (`user:…`, `agent:…`, `system`).
    pub actor: &'a str,
    /// What was done.
    pub action: AuditAction,
    /// On what (`secret:…`, `org:…`).
    pub target: &'a str,
    /// Further facts, as JSON.
    pub details: &'a str,
}

/// A stored row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// The organisation.
    pub org_id: String,
    /// Position in the organisation's chain, from 1.
    pub seq: i64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Who.
    pub actor: String,
    /// What, as stored: an [`AuditAction`]'s text, or an older binary's.
    pub action: String,
    /// On what.
    pub target: String,
    /// Further facts (JSON).
    pub details: String,
    /// The previous row's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}

/// Where and why a chain does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The sequence number (or position) where verification failed.
    pub seq: i64,
    /// What is wrong there.
    pub reason: String,
}

/// The row's fields, each length-prefixed, after the previous hash: what its hash covers.
fn row_message(prev_hash: &str, row: &AuditRow) -> Vec<u8> {
    let mut message = Vec::new();
    let seq = row.seq.to_string();
    for field in [
        prev_hash,
        &row.org_id,
        &seq,
        &row.at,
        &row.actor,
        &row.action,
        &row.target,
        &row.details,
    ] {
        message.extend_from_slice(&(field.len() as u64).to_be_bytes());
        message.extend_from_slice(field.as_bytes());
    }
    message
}

/// The unkeyed SHA-256 of rows written before the chain was keyed (migration 16).
fn unkeyed_row_hash(prev_hash: &str, row: &AuditRow) -> String {
    dbcrate_core::hex::encode(&Sha256::digest(row_message(prev_hash, row)))
}

/// The HMAC-SHA256 of a row under the audit chain key.
pub(crate) fn keyed_row_hash(key: &ChainKey, prev_hash: &str, row: &AuditRow) -> String {
    let mut message = b"dbcrate audit row v2\0".to_vec();
    message.extend_from_slice(&row_message(prev_hash, row));
    key.mac_hex(&message)
}

/// Where a row is written: in a transaction of its own ([`append`], retried when another
/// writer of the chain gets there first), or inside the caller's ([`append_in`]), to
/// commit or roll back with the change it records.
pub enum Writer<'c> {
    /// A transaction of its own on the database.
    Own(&'c Db),
    /// The caller's transaction.
    In(&'c mut sqlx::AnyConnection),
}

impl<'c> From<&'c Db> for Writer<'c> {
    fn from(db: &'c Db) -> Self {
        Self::Own(db)
    }
}

impl<'c> From<&'c mut sqlx::AnyConnection> for Writer<'c> {
    fn from(conn: &'c mut sqlx::AnyConnection) -> Self {
        Self::In(conn)
    }
}

impl<'c> From<&'c mut sqlx::Transaction<'_, sqlx::Any>> for Writer<'c> {
    fn from(tx: &'c mut sqlx::Transaction<'_, sqlx::Any>) -> Self {
        Self::In(tx)
    }
}

impl Writer<'_> {
    /// Appends `event` at time `at` where this says.
    pub async fn append(self, event: &AuditEvent<'_>, at: &str) -> Result<AuditRow, sqlx::Error> {
        match self {
            Self::Own(db) => append(db, event, at).await,
            Self::In(conn) => append_in(conn, event, at).await,
        }
    }
}

/// Appends an event with JSON `details` at Unix time `now`: the shape most callers have.
/// `to` is the database for a transaction of its own, or the caller's transaction (see
/// [`Writer`]).
pub async fn record<'c>(
    to: impl Into<Writer<'c>>,
    org_id: &str,
    actor: &str,
    action: AuditAction,
    target: &str,
    details: serde_json::Value,
    now: i64,
) -> crate::error::Result<()> {
    let event = AuditEvent {
        org_id,
        actor,
        action,
        target,
        details: &details.to_string(),
    };
    to.into()
        .append(&event, &dbcrate_core::time::rfc3339(now))
        .await?;
    Ok(())
}

/// [`record`] by the name that says the caller's transaction is meant.
pub use self::record as record_in;

/// Appends `event` at time `at` to its organisation's chain. Concurrent writers (other
/// replicas) conflict on the (org, seq) unique key, and the loser retries.
pub async fn append(db: &Db, event: &AuditEvent<'_>, at: &str) -> Result<AuditRow, sqlx::Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_append(db, event, at).await {
            Err(e) if attempt < 10 && is_conflict(&e) => continue,
            other => return other,
        }
    }
}

/// SQLite's primary result codes for a database busy with another writer and a locked
/// table; extended codes carry them in their low byte (517 is `SQLITE_BUSY_SNAPSHOT`).
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

/// Whether `e` is a clash with a concurrent writer that running the append's own
/// transaction again resolves, told by the database's error code (messages vary with
/// versions and locales): the (org, seq) unique key taken first by another writer, on
/// either engine; SQLite busy or locked, with any extended code; PostgreSQL
/// serialization failure (40001) or deadlock (40P01).
fn is_conflict(e: &sqlx::Error) -> bool {
    let sqlx::Error::Database(d) = e else {
        return false;
    };
    if d.is_unique_violation() {
        return true;
    }
    let code = d.code();
    let code = code.as_deref().unwrap_or("");
    if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        code.parse::<i32>()
            .is_ok_and(|c| matches!(c & 0xff, SQLITE_BUSY | SQLITE_LOCKED))
    } else if d
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        matches!(code, "40001" | "40P01")
    } else {
        false
    }
}

async fn try_append(db: &Db, event: &AuditEvent<'_>, at: &str) -> Result<AuditRow, sqlx::Error> {
    let mut conn = db.begin().await?;
    let inserted = append_in(&mut conn, event, at).await;
    end_write(conn, inserted).await
}

/// A chain's newest row: where the next one links.
struct ChainEnd {
    seq: i64,
    hash: String,
}

crate::rows::from_row!(ChainEnd { seq, hash });

/// Appends inside the caller's transaction on `conn` (from [`Db::begin`]),
/// so that the row commits or rolls back with the change it records.
pub async fn append_in(
    conn: &mut sqlx::AnyConnection,
    event: &AuditEvent<'_>,
    at: &str,
) -> Result<AuditRow, sqlx::Error> {
    // Writers of one chain take turns: on PostgreSQL a transaction-scoped advisory lock
    // per chain (two concurrent writers would otherwise read the same last row and one
    // would fail on the unique sequence number); SQLite's writing transactions are
    // serialised by BEGIN IMMEDIATE already.
    if conn.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))::text")
            .bind(event.org_id)
            .fetch_one(&mut *conn)
            .await?;
    }
    let last: Option<ChainEnd> = sqlx::query_as(
        "SELECT seq, hash FROM audit_log WHERE org_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(event.org_id)
    .fetch_optional(&mut *conn)
    .await?;
    let (seq, prev_hash) = match last {
        Some(end) => (end.seq + 1, end.hash),
        None => (1, GENESIS.to_string()),
    };
    let mut row = AuditRow {
        org_id: event.org_id.into(),
        seq,
        at: at.into(),
        actor: event.actor.into(),
        action: event.action.as_str().into(),
        target: event.target.into(),
        details: event.details.into(),
        prev_hash,
        hash: String::new(),
    };
    let key = chain_key::current(conn).await?;
    row.hash = keyed_row_hash(&key, &row.prev_hash, &row);
    sqlx::query(
        "INSERT INTO audit_log (org_id, seq, at, actor, action, target, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&row.org_id)
    .bind(row.seq)
    .bind(&row.at)
    .bind(&row.actor)
    .bind(&row.action)
    .bind(&row.target)
    .bind(&row.details)
    .bind(&row.prev_hash)
    .bind(&row.hash)
    .execute(&mut *conn)
    .await?;
    Ok(row)
}

/// The organisation's rows in chain order.
pub async fn rows(db: &Db, org_id: &str) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {ROW_COLUMNS} FROM audit_log WHERE org_id = $1 ORDER BY id"
    ))
    .bind(org_id)
    .fetch_all(db.pool())
    .await
}

/// The columns an [`AuditRow`] is read from.
pub const ROW_COLUMNS: &str = "org_id, seq, at, actor, action, target, details, prev_hash, hash";

crate::rows::from_row!(AuditRow {
    org_id,
    seq,
    at,
    actor,
    action,
    target,
    details,
    prev_hash,
    hash,
});

/// Verifies chains: holds the audit chain key and where each chain's unkeyed rows
/// (written before the chain was keyed) end.
#[derive(Debug)]
pub struct Verifier {
    key: std::sync::Arc<ChainKey>,
    unkeyed_heads: HashMap<String, (i64, String)>,
}

impl Verifier {
    /// The verifier for `db`, whose chain key this process opened at boot.
    pub async fn new(db: &Db) -> Result<Self, sqlx::Error> {
        let key = {
            let mut conn = db.pool().acquire().await?;
            chain_key::current(&mut conn).await?
        };
        let instance = rows(db, INSTANCE_CHAIN).await?;
        let unkeyed_heads = unkeyed_heads(&instance, &key);
        Ok(Self { key, unkeyed_heads })
    }

    /// Checks one chain's rows in insertion order: consecutive sequence numbers from 1,
    /// each row linked to the one before, each hash matching its fields under the chain
    /// key (or, for rows from before the key, the unkeyed hash, up to the row the seal
    /// names). Returns the number of rows, or where the chain breaks.
    pub fn verify_rows(&self, rows: &[AuditRow]) -> Result<usize, ChainBreak> {
        let mut prev = GENESIS.to_string();
        let unkeyed = rows.first().and_then(|r| self.unkeyed_heads.get(&r.org_id));
        for (i, row) in rows.iter().enumerate() {
            let expected_seq = i as i64 + 1;
            let fail = |reason: &str| ChainBreak {
                seq: row.seq,
                reason: reason.to_string(),
            };
            if row.seq != expected_seq {
                return Err(fail(&format!(
                    "expected sequence number {expected_seq}: a row was deleted or the rows reordered"
                )));
            }
            if row.prev_hash != prev {
                return Err(fail(
                    "does not link to the row before it: a row was deleted, inserted or reordered",
                ));
            }
            let expected = match unkeyed {
                Some((last_unkeyed, _)) if row.seq <= *last_unkeyed => {
                    unkeyed_row_hash(&row.prev_hash, row)
                }
                _ => keyed_row_hash(&self.key, &row.prev_hash, row),
            };
            if expected != row.hash {
                return Err(fail(
                    "its contents do not match its hash under the audit chain key: the row was \
                     edited, or written by someone without the master key",
                ));
            }
            if let Some((last_unkeyed, hash)) = unkeyed {
                if row.seq == *last_unkeyed && row.hash != *hash {
                    return Err(fail(
                        "the last row from before the chain was keyed differs from the one sealed",
                    ));
                }
            }
            prev = row.hash.clone();
        }
        if let Some((last_unkeyed, _)) = unkeyed {
            if (rows.len() as i64) < *last_unkeyed {
                return Err(ChainBreak {
                    seq: rows.len() as i64 + 1,
                    reason: format!(
                        "the chain ends before row {last_unkeyed}, which was there when it was \
                         keyed: rows were deleted"
                    ),
                });
            }
        }
        Ok(rows.len())
    }
}

/// Reads and verifies an organisation's chain.
pub async fn verify(db: &Db, org_id: &str) -> Result<Result<usize, ChainBreak>, sqlx::Error> {
    let verifier = Verifier::new(db).await?;
    Ok(verifier.verify_rows(&rows(db, org_id).await?))
}

/// Where each chain's unkeyed rows end (sequence and hash of the last one), from the
/// instance chain's first [`SEAL_ACTION`] row — if that row is itself keyed correctly.
/// A forged or edited seal gives no unkeyed rows at all, so every chain then fails.
pub fn unkeyed_heads(instance_rows: &[AuditRow], key: &ChainKey) -> HashMap<String, (i64, String)> {
    let mut heads = HashMap::new();
    let Some(seal) = instance_rows
        .iter()
        .find(|r| r.action == SEAL_ACTION.as_str())
    else {
        return heads;
    };
    if keyed_row_hash(key, &seal.prev_hash, seal) != seal.hash {
        return heads;
    }
    let details: serde_json::Value = serde_json::from_str(&seal.details).unwrap_or_default();
    for head in details["unkeyed_heads"].as_array().into_iter().flatten() {
        if let (Some(chain), Some(seq), Some(hash)) = (
            head["chain"].as_str(),
            head["seq"].as_i64(),
            head["hash"].as_str(),
        ) {
            heads.insert(chain.to_string(), (seq, hash.to_string()));
        }
    }
    heads
}

#[cfg(test)]
mod tests {
    use super::is_conflict;
    use sqlx::{AnyConnection, Connection};

    /// A connection through `sqlx::Any`, as the control plane's, that does not wait on a
    /// busy database.
    async fn open(path: &std::path::Path) -> AnyConnection {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut conn = AnyConnection::connect(&url).await.unwrap();
        run(&mut conn, "PRAGMA busy_timeout = 0").await.unwrap();
        conn
    }

    /// Runs `sql` on `conn`.
    async fn run(conn: &mut AnyConnection, sql: &str) -> Result<(), sqlx::Error> {
        sqlx::raw_sql(sql).execute(conn).await.map(drop)
    }

    /// A writer that finds the database taken (SQLITE_BUSY) or the sequence number taken
    /// (a unique violation) retries; any other database error does not.
    #[tokio::test]
    async fn conflicts_are_told_by_their_code() {
        let dir = std::env::temp_dir().join(format!(
            "dbcrate-audit-conflict-{}",
            dbcrate_core::hex::encode(&*crate::error::random_bytes::<8>().unwrap())
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.sqlite");
        let mut first = open(&path).await;
        let mut second = open(&path).await;
        run(&mut first, "CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .await
            .unwrap();
        let insert = "INSERT INTO t (id) VALUES (1)";
        run(&mut first, insert).await.unwrap();

        let taken = run(&mut second, insert).await.unwrap_err();
        assert!(is_conflict(&taken), "{taken}");

        run(&mut first, "BEGIN IMMEDIATE").await.unwrap();
        let busy = run(&mut second, "BEGIN IMMEDIATE").await.unwrap_err();
        assert!(is_conflict(&busy), "{busy}");
        run(&mut first, "ROLLBACK").await.unwrap();

        let other = run(&mut second, "INSERT INTO missing (id) VALUES (1)").await;
        let other = other.unwrap_err();
        assert!(!is_conflict(&other), "{other}");
        assert!(!is_conflict(&sqlx::Error::RowNotFound));

        let _ = first.close().await;
        let _ = second.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
