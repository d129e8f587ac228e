//! What alerts there were and what was sent: the API's alert list and delivery log.

use crate::db::Db;
use crate::error::Result;

/// An alert as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRecord {
    /// `alr_…`.
    pub id: String,
    /// `backup_overdue`, `agent_offline`, `job_failed`.
    pub kind: String,
    /// What it is about (`dbs_…`, `agt_…`, `job_…`).
    pub subject: String,
    /// One sentence.
    pub summary: String,
    /// When it began.
    pub opened_at: i64,
    /// When it ended (at once for an event).
    pub cleared_at: Option<i64>,
    /// How often it was told again.
    pub repeats: i64,
}

crate::rows::from_row!(AlertRecord {
    id,
    kind,
    subject,
    summary,
    opened_at,
    cleared_at,
    repeats
});

/// A delivery as the log shows it (not its body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// `adl_…`.
    pub id: String,
    /// The alert, if not a test.
    pub alert_id: Option<String>,
    /// The channel's name when it was queued.
    pub channel_name: String,
    /// `open`, `repeat`, `clear` or `test`.
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub state: String,
    /// Attempts made.
    pub attempts: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was queued.
    pub created_at: i64,
    /// When it was delivered.
    pub delivered_at: Option<i64>,
}

crate::rows::from_row!(DeliveryRecord {
    id,
    alert_id,
    channel_name,
    event,
    state,
    attempts,
    last_error,
    created_at,
    delivered_at
});

const DELIVERY_COLUMNS: &str = "id, alert_id, channel_name, event, state, attempts, last_error, \
    created_at, delivered_at";

/// The organisation's newest `limit` alerts, open or not, newest first.
pub async fn alerts(db: &Db, org_id: &str, limit: i64) -> Result<Vec<AlertRecord>> {
    Ok(sqlx::query_as(
        "SELECT id, kind, subject, summary, opened_at, cleared_at, repeats FROM alerts \
         WHERE org_id = $1 ORDER BY opened_at DESC, id LIMIT $2",
    )
    .bind(org_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// The organisation's newest `limit` deliveries, newest first.
pub async fn deliveries(db: &Db, org_id: &str, limit: i64) -> Result<Vec<DeliveryRecord>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE org_id = $1 \
         ORDER BY created_at DESC, id LIMIT $2"
    ))
    .bind(org_id)
    .bind(limit)
    .fetch_all(db.pool())
    .await?)
}

/// One delivery of the organisation.
pub async fn delivery(db: &Db, org_id: &str, id: &str) -> Result<Option<DeliveryRecord>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE org_id = $1 AND id = $2"
    ))
    .bind(org_id)
    .bind(id)
    .fetch_optional(db.pool())
    .await?)
}
