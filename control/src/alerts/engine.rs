//! Turns conditions into alerts and alerts into queued deliveries, once per
//! housekeeping tick. One open alert per kind and subject (a unique index holds it
//! across replicas); an alert still open is told again on a back-off
//! ([`repeat_after`]: an hour, then doubling to a day), so there is no storm; when its
//! condition ends it is closed and a recovery notice goes out. An event (a failed job)
//! is opened and closed at once, told once, and never again.

use super::conditions::{self, AlertKind, Condition};
use super::message::{self, AlertFacts, Event, OrgFacts};
use crate::db::{end_write, Db};
use crate::error::{new_id, Result};
use std::collections::HashSet;

/// How long after its last notice an open alert is told again, after `repeats` repeats.
pub fn repeat_after(repeats: i64) -> i64 {
    let doubled = 3600_i64.saturating_mul(1 << repeats.clamp(0, 10));
    doubled.min(86_400)
}

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tick {
    /// Alerts opened (events included).
    pub opened: usize,
    /// Open alerts told again.
    pub repeated: usize,
    /// Alerts closed because their condition ended.
    pub cleared: usize,
}

struct OpenAlert {
    id: String,
    org_id: String,
    kind: String,
    subject: String,
    summary: String,
    opened_at: i64,
    last_sent_at: i64,
    repeats: i64,
}

crate::rows::from_row!(OpenAlert {
    id,
    org_id,
    kind,
    subject,
    summary,
    opened_at,
    last_sent_at,
    repeats
});

/// Reconciles the conditions at `now` with the open alerts; queues a delivery to each of
/// the organisation's channels for every alert opened, repeated or cleared.
pub async fn tick(db: &Db, now: i64) -> Result<Tick> {
    let conditions = conditions::current(db, now).await?;
    let open: Vec<OpenAlert> = sqlx::query_as(
        "SELECT id, org_id, kind, subject, summary, opened_at, last_sent_at, repeats \
         FROM alerts WHERE cleared_at IS NULL",
    )
    .fetch_all(db.pool())
    .await?;
    let mut done = Tick::default();
    let holding: HashSet<(&str, &str, &str)> = conditions
        .iter()
        .map(|c| (c.org_id.as_str(), c.kind.as_str(), c.subject.as_str()))
        .collect();
    for c in &conditions {
        let existing = open
            .iter()
            .find(|a| a.org_id == c.org_id && a.kind == c.kind.as_str() && a.subject == c.subject);
        match existing {
            Some(alert) if now >= alert.last_sent_at + repeat_after(alert.repeats) => {
                if repeat(db, alert, now).await? {
                    done.repeated += 1;
                }
            }
            Some(_) => {}
            None => {
                if open_alert(db, c, now).await? {
                    done.opened += 1;
                }
            }
        }
    }
    for alert in &open {
        let gone = !holding.contains(&(
            alert.org_id.as_str(),
            alert.kind.as_str(),
            alert.subject.as_str(),
        ));
        if gone && clear(db, alert, now).await? {
            done.cleared += 1;
        }
    }
    Ok(done)
}

/// Opens an alert for `c` (closed at once for an event) and queues its notices;
/// `false` when another replica, or an earlier tick for an event, got there first.
async fn open_alert(db: &Db, c: &Condition, now: i64) -> Result<bool> {
    let id = new_id("alr")?;
    let recovers = c.kind.recovers();
    let mut tx = db.begin().await?;
    let opened: Result<bool> = async {
        if !recovers {
            let told: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM alerts WHERE org_id = $1 AND kind = $2 AND subject = $3",
            )
            .bind(&c.org_id)
            .bind(c.kind.as_str())
            .bind(&c.subject)
            .fetch_one(&mut *tx)
            .await?;
            if told > 0 {
                return Ok(false);
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO alerts (id, org_id, kind, subject, summary, opened_at, cleared_at, \
             last_sent_at, repeats) VALUES ($1, $2, $3, $4, $5, $6, $7, $6, 0)",
        )
        .bind(&id)
        .bind(&c.org_id)
        .bind(c.kind.as_str())
        .bind(&c.subject)
        .bind(&c.summary)
        .bind(now)
        .bind((!recovers).then_some(now))
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => return Ok(false),
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let facts = AlertFacts {
            id: &id,
            kind: c.kind.as_str(),
            subject: &c.subject,
            summary: &c.summary,
            opened_at: now,
            cleared_at: None,
        };
        enqueue(&mut tx, &c.org_id, Some(&id), Event::Open, &facts, now).await?;
        Ok(true)
    }
    .await;
    end_write(tx, opened).await
}

async fn repeat(db: &Db, alert: &OpenAlert, now: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    let repeated: Result<bool> = async {
        let updated = sqlx::query(
            "UPDATE alerts SET last_sent_at = $1, repeats = repeats + 1 \
             WHERE id = $2 AND cleared_at IS NULL AND last_sent_at = $3",
        )
        .bind(now)
        .bind(&alert.id)
        .bind(alert.last_sent_at)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        let facts = facts_of(alert, None);
        enqueue(
            &mut tx,
            &alert.org_id,
            Some(&alert.id),
            Event::Repeat,
            &facts,
            now,
        )
        .await?;
        Ok(true)
    }
    .await;
    end_write(tx, repeated).await
}

async fn clear(db: &Db, alert: &OpenAlert, now: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    let cleared: Result<bool> = async {
        let updated =
            sqlx::query("UPDATE alerts SET cleared_at = $1 WHERE id = $2 AND cleared_at IS NULL")
                .bind(now)
                .bind(&alert.id)
                .execute(&mut *tx)
                .await?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        let recovers = AlertKind::from_name(&alert.kind).is_none_or(AlertKind::recovers);
        if recovers {
            let facts = facts_of(alert, Some(now));
            enqueue(
                &mut tx,
                &alert.org_id,
                Some(&alert.id),
                Event::Clear,
                &facts,
                now,
            )
            .await?;
        }
        Ok(true)
    }
    .await;
    end_write(tx, cleared).await
}

fn facts_of(alert: &OpenAlert, cleared_at: Option<i64>) -> AlertFacts<'_> {
    AlertFacts {
        id: &alert.id,
        kind: &alert.kind,
        subject: &alert.subject,
        summary: &alert.summary,
        opened_at: alert.opened_at,
        cleared_at,
    }
}

/// Queues one delivery of `event` about `facts` to each channel of `org_id`, inside the
/// caller's transaction; answers the deliveries' ids.
pub(super) async fn enqueue(
    conn: &mut sqlx::AnyConnection,
    org_id: &str,
    alert_id: Option<&str>,
    event: Event,
    facts: &AlertFacts<'_>,
    now: i64,
) -> Result<Vec<String>> {
    let org_name: String = sqlx::query_scalar("SELECT name FROM orgs WHERE id = $1")
        .bind(org_id)
        .fetch_one(&mut *conn)
        .await?;
    let channels: Vec<(String, String, String)> =
        sqlx::query_as("SELECT id, name, kind FROM alert_channels WHERE org_id = $1 ORDER BY name")
            .bind(org_id)
            .fetch_all(&mut *conn)
            .await?;
    let org = OrgFacts {
        id: org_id,
        name: &org_name,
    };
    let mut ids = Vec::new();
    for (channel_id, channel_name, kind) in channels {
        let id = new_id("adl")?;
        sqlx::query(
            "INSERT INTO alert_deliveries (id, org_id, alert_id, channel_id, channel_name, event, \
             body, state, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, $8)",
        )
        .bind(&id)
        .bind(org_id)
        .bind(alert_id)
        .bind(&channel_id)
        .bind(&channel_name)
        .bind(event.as_str())
        .bind(message::body(&kind, event, facts, org))
        .bind(now)
        .execute(&mut *conn)
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::repeat_after;

    #[test]
    fn repeats_back_off_from_an_hour_to_a_day() {
        let waits: Vec<i64> = (0..7).map(repeat_after).collect();
        assert_eq!(waits, [3600, 7200, 14_400, 28_800, 57_600, 86_400, 86_400]);
        assert_eq!(repeat_after(-1), 3600);
        assert_eq!(repeat_after(i64::MAX), 86_400);
    }
}
