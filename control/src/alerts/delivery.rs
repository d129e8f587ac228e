//! Sending queued deliveries, with retries: each attempt claims its delivery first (so
//! two replicas never send one twice), unwraps the channel's URL (and a webhook's
//! signing key, or an e-mail channel's SMTP password) for that send — audited like
//! every unwrap — and POSTs (or mails). A 2xx answer (an accepted message) delivers it;
//! anything else is retried after 30 s, 1, 2, 4 … minutes, up to
//! [`MAX_ATTEMPTS`], then it is failed, with the last error in the delivery log.

use super::channels::{EmailSettings, SIGNING_PURPOSE, SMTP_PASSWORD_PURPOSE, URL_PURPOSE};
use super::message::{self, AlertFacts, Event, OrgFacts};
use super::post::{post, POST_TIMEOUT};
use super::signing::{sign, DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use super::smtp::{self, Mail, SmtpSettings};
use crate::db::Db;
use crate::envelope::MasterKeys;
use crate::error::{new_id, Error, Result};
use crate::secrets::{self, Owner, SecretRef};
use dbcrate_core::secret::SecretString;
use dbcrate_core::time::rfc3339;
use dbcrate_storage::reach::ReachPolicy;

/// Attempts before a delivery is given up.
pub const MAX_ATTEMPTS: i64 = 8;
/// The wait before the first retry; each later one doubles it.
pub const FIRST_RETRY_SECS: i64 = 30;
/// Deliveries sent per call, so one tick stays short.
const BATCH: i64 = 50;
/// Who unwraps channel secrets, in the audit log.
const ACTOR: &str = "system:alerts";

/// The wait after failed attempt number `attempts` (1-based).
pub fn retry_after(attempts: i64) -> i64 {
    FIRST_RETRY_SECS.saturating_mul(1 << (attempts - 1).clamp(0, 20))
}

struct Due {
    id: String,
    org_id: String,
    channel_id: String,
    body: String,
    attempts: i64,
    next_attempt_at: i64,
}

const DUE_COLUMNS: &str = "id, org_id, channel_id, body, attempts, next_attempt_at";

crate::rows::from_row!(Due {
    id,
    org_id,
    channel_id,
    body,
    attempts,
    next_attempt_at
});

/// Sends the deliveries due at `now`; answers how many were delivered.
pub async fn deliver_due(
    db: &Db,
    keys: &MasterKeys,
    reach: &ReachPolicy,
    now: i64,
) -> Result<usize> {
    let due: Vec<Due> = sqlx::query_as(&format!(
        "SELECT {DUE_COLUMNS} FROM alert_deliveries \
         WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2"
    ))
    .bind(now)
    .bind(BATCH)
    .fetch_all(db.pool())
    .await?;
    let mut delivered = 0;
    for d in due {
        if send(db, keys, reach, &d, now).await? == Some(true) {
            delivered += 1;
        }
    }
    Ok(delivered)
}

/// Claims `d` for the length of one attempt (another replica skips it meanwhile) and
/// makes the attempt: `None` when someone else had claimed it, else whether it delivered.
async fn send(
    db: &Db,
    keys: &MasterKeys,
    reach: &ReachPolicy,
    d: &Due,
    now: i64,
) -> Result<Option<bool>> {
    let claimed = sqlx::query(
        "UPDATE alert_deliveries SET next_attempt_at = $1 \
         WHERE id = $2 AND state = 'pending' AND next_attempt_at = $3",
    )
    .bind(now + 2 * POST_TIMEOUT.as_secs() as i64)
    .bind(&d.id)
    .bind(d.next_attempt_at)
    .execute(db.pool())
    .await?;
    if claimed.rows_affected() != 1 {
        return Ok(None);
    }
    let outcome = attempt(db, keys, reach, d, now).await;
    Ok(Some(record(db, d, outcome, now).await?))
}

/// Sends the pending delivery `id` of `org_id` now, whatever its schedule (a test
/// notification a person is waiting for); `false` when there is no such pending one.
pub async fn send_now(
    db: &Db,
    keys: &MasterKeys,
    reach: &ReachPolicy,
    org_id: &str,
    id: &str,
    now: i64,
) -> Result<bool> {
    let found: Option<Due> = sqlx::query_as(&format!(
        "SELECT {DUE_COLUMNS} FROM alert_deliveries \
         WHERE id = $1 AND org_id = $2 AND state = 'pending'"
    ))
    .bind(id)
    .bind(org_id)
    .fetch_optional(db.pool())
    .await?;
    match found {
        Some(d) => Ok(send(db, keys, reach, &d, now).await?.is_some()),
        None => Ok(false),
    }
}

/// One attempt: `Ok(())` when the receiver answered 2xx.
async fn attempt(
    db: &Db,
    keys: &MasterKeys,
    reach: &ReachPolicy,
    d: &Due,
    now: i64,
) -> std::result::Result<(), String> {
    let channel: Option<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT kind, settings, secret_id, signing_secret_id FROM alert_channels \
         WHERE id = $1 AND org_id = $2",
    )
    .bind(&d.channel_id)
    .bind(&d.org_id)
    .fetch_optional(db.pool())
    .await
    .map_err(|e| format!("reading the channel: {e}"))?;
    let Some((kind, settings, secret, signing_secret)) = channel else {
        return Err("the channel was removed".into());
    };
    let stamp = rfc3339(now);
    let open = |id: &str, purpose: &'static str| {
        let id = id.to_string();
        let stamp = stamp.clone();
        async move {
            let secret = SecretRef {
                owner: Owner::Org(&d.org_id),
                id: &id,
                purpose,
            };
            secrets::unwrap(db, keys, secret, ACTOR, "alert delivery", &stamp)
                .await
                .map_err(|e| format!("unsealing the channel's {purpose}: {}", e.message))
        }
    };
    if kind == "email" {
        let email: EmailSettings = serde_json::from_str(&settings)
            .map_err(|e| format!("the channel's settings do not read: {e}"))?;
        let password = match &secret {
            Some(id) => {
                let bytes = open(id, SMTP_PASSWORD_PURPOSE).await?;
                let text = String::from_utf8(bytes.to_vec())
                    .map_err(|_| "the stored password is not text".to_string())?;
                Some(SecretString::new(text))
            }
            None => None,
        };
        let message: serde_json::Value = serde_json::from_str(&d.body)
            .map_err(|e| format!("the queued message does not read: {e}"))?;
        let smtp = SmtpSettings {
            security: email.security().map_err(|e| e.message)?,
            host: email.host,
            port: email.port,
            username: email.username,
            from: email.from,
            to: email.to,
            ca_pem: email.ca_pem,
        };
        let mail = Mail {
            subject: message["subject"].as_str().unwrap_or("dbcrate alert"),
            text: message["text"].as_str().unwrap_or_default(),
            id: &d.id,
            at: now,
        };
        return smtp::send(reach, &smtp, password.as_ref(), &mail).await;
    }
    let secret = secret.ok_or("the channel has no URL")?;
    let url = open(&secret, URL_PURPOSE).await?;
    let url = std::str::from_utf8(&url).map_err(|_| "the stored URL is not text".to_string())?;
    let mut headers = vec![(DELIVERY_HEADER, d.id.clone())];
    if let Some(signing) = signing_secret {
        let key = open(&signing, SIGNING_PURPOSE).await?;
        headers.push((TIMESTAMP_HEADER, now.to_string()));
        headers.push((SIGNATURE_HEADER, sign(&key, now, d.body.as_bytes())));
    }
    match post(reach, url, &headers, d.body.clone()).await? {
        status if (200..300).contains(&status) => Ok(()),
        status => Err(format!("the receiver answered {status}")),
    }
}

/// Writes an attempt's outcome; `true` when it delivered.
async fn record(
    db: &Db,
    d: &Due,
    outcome: std::result::Result<(), String>,
    now: i64,
) -> Result<bool> {
    let attempts = d.attempts + 1;
    match outcome {
        Ok(()) => {
            sqlx::query(
                "UPDATE alert_deliveries SET state = 'delivered', attempts = $1, delivered_at = $2, \
                 last_error = NULL WHERE id = $3",
            )
            .bind(attempts)
            .bind(now)
            .bind(&d.id)
            .execute(db.pool())
            .await?;
            Ok(true)
        }
        Err(why) => {
            let state = if attempts >= MAX_ATTEMPTS {
                "failed"
            } else {
                "pending"
            };
            tracing::warn!(delivery = %d.id, attempts, "an alert delivery failed: {why}");
            sqlx::query(
                "UPDATE alert_deliveries SET state = $1, attempts = $2, next_attempt_at = $3, \
                 last_error = $4 WHERE id = $5",
            )
            .bind(state)
            .bind(attempts)
            .bind(now + retry_after(attempts))
            .bind(&why)
            .bind(&d.id)
            .execute(db.pool())
            .await?;
            Ok(false)
        }
    }
}

/// Queues a test notification to channel `channel_id` of `org_id`; answers the
/// delivery's id (`None`: no such channel). Sent by the next delivery run.
pub async fn queue_test(
    db: &Db,
    org_id: &str,
    channel_id: &str,
    now: i64,
) -> Result<Option<String>> {
    let channel: Option<(String, String)> =
        sqlx::query_as("SELECT name, kind FROM alert_channels WHERE id = $1 AND org_id = $2")
            .bind(channel_id)
            .bind(org_id)
            .fetch_optional(db.pool())
            .await?;
    let Some((name, kind)) = channel else {
        return Ok(None);
    };
    let org_name: String = sqlx::query_scalar("SELECT name FROM orgs WHERE id = $1")
        .bind(org_id)
        .fetch_one(db.pool())
        .await?;
    let facts = AlertFacts {
        id: "",
        kind: "test",
        subject: channel_id,
        summary: "A test notification from dbcrate: this channel works.",
        opened_at: now,
        cleared_at: None,
    };
    let org = OrgFacts {
        id: org_id,
        name: &org_name,
    };
    let id = new_id("adl")?;
    sqlx::query(
        "INSERT INTO alert_deliveries (id, org_id, alert_id, channel_id, channel_name, event, \
         body, state, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, NULL, $3, $4, 'test', $5, 'pending', 0, $6, $6)",
    )
    .bind(&id)
    .bind(org_id)
    .bind(channel_id)
    .bind(&name)
    .bind(message::body(&kind, Event::Test, &facts, org))
    .bind(now)
    .execute(db.pool())
    .await
    .map_err(Error::from)?;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::{retry_after, MAX_ATTEMPTS};

    #[test]
    fn retries_double_from_half_a_minute() {
        let waits: Vec<i64> = (1..=MAX_ATTEMPTS).map(retry_after).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3840]);
    }
}
