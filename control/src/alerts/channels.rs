//! Where an organisation's alerts go: a generic webhook (a JSON body signed with
//! HMAC-SHA256, see `signing`) or a Slack-compatible incoming webhook. A webhook URL
//! carries its token in the path, so it is a credential: sealed like the others, never
//! shown again — the list shows only its host. A webhook's signing key is made here and
//! shown once. Adding and removing a channel is audited.

use crate::audit::{self, AuditAction};
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{new_id, random_bytes, Error, Result};
use crate::secrets::{self, Owner};
use dbcrate_core::secret::SecretString;
use dbcrate_core::time::rfc3339;

/// The purpose a channel's URL is sealed under.
pub const URL_PURPOSE: &str = "alert_channel_url";
/// The purpose a webhook's signing key is sealed under.
pub const SIGNING_PURPOSE: &str = "alert_channel_signing_key";
/// What a signing key starts with, so people can tell it from other secrets.
pub const SIGNING_KEY_PREFIX: &str = "dbcwh_";

/// How a channel is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    /// A JSON body, signed (`X-Dbcrate-Signature`).
    Webhook,
    /// `{"text": …}`, as Slack's (and compatible tools') incoming webhooks take it.
    Slack,
}

impl ChannelKind {
    /// The kind as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
        }
    }

    /// The kind stored as `text`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "webhook" => Ok(Self::Webhook),
            "slack" => Ok(Self::Slack),
            _ => Err(Error::invalid("kind must be webhook or slack")),
        }
    }
}

/// A channel to add.
#[derive(Debug)]
pub struct NewChannel<'a> {
    /// Its name in the organisation.
    pub name: &'a str,
    /// Webhook or Slack.
    pub kind: ChannelKind,
    /// Where deliveries are posted (a credential).
    pub url: &'a SecretString,
}

/// A channel as listed: never its URL or key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    /// `ach_…`.
    pub id: String,
    /// Its name.
    pub name: String,
    /// `webhook` or `slack`.
    pub kind: String,
    /// The host deliveries go to.
    pub host: String,
    /// When it was added.
    pub created_at: i64,
}

crate::rows::from_row!(ChannelInfo {
    id,
    name,
    kind,
    host,
    created_at
});

/// The host of an acceptable delivery URL: `https://` anywhere, or `http://` only to a
/// loopback address (a relay on the same host: a token in a URL must not cross a
/// network in the clear).
pub fn checked_host(url: &str) -> Result<String> {
    let bad = || {
        Error::invalid("url must be https://HOST/… (http:// only for 127.0.0.1, ::1 or localhost)")
    };
    let uri: hyper::Uri = url.parse().map_err(|_| bad())?;
    let host = uri.host().ok_or_else(bad)?.trim_matches(['[', ']']);
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") => Ok(host.to_string()),
        Some("http") if loopback => Ok(host.to_string()),
        _ => Err(bad()),
    }
}

/// Adds a channel to `org_id` as `actor`. Answers it and, for a webhook, its signing
/// key, shown this once.
pub async fn create(
    db: &Db,
    keys: &MasterKeys,
    org_id: &str,
    new: &NewChannel<'_>,
    actor: &str,
    now: i64,
) -> Result<(ChannelInfo, Option<SecretString>)> {
    let name = crate::names::display_name("name", new.name, 100)?;
    let host = checked_host(new.url.expose_secret())?;
    let signing_key = match new.kind {
        ChannelKind::Webhook => {
            let bytes = random_bytes::<32>()?;
            Some(SecretString::new(format!(
                "{SIGNING_KEY_PREFIX}{}",
                dbcrate_core::hex::encode(bytes.as_slice())
            )))
        }
        ChannelKind::Slack => None,
    };
    let id = new_id("ach")?;
    let mut tx = db.begin().await?;
    let created: Result<()> = async {
        let stamp = rfc3339(now);
        let owner = Owner::Org(org_id);
        let url_secret = secrets::insert(
            &mut tx,
            keys,
            owner,
            URL_PURPOSE,
            new.url.expose_secret().as_bytes(),
            &stamp,
        )
        .await?;
        let signing_secret = match &signing_key {
            Some(key) => Some(
                secrets::insert(
                    &mut tx,
                    keys,
                    owner,
                    SIGNING_PURPOSE,
                    key.expose_secret().as_bytes(),
                    &stamp,
                )
                .await?,
            ),
            None => None,
        };
        let inserted = sqlx::query(
            "INSERT INTO alert_channels (id, org_id, name, kind, host, url_secret_id, \
             signing_secret_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(org_id)
        .bind(&name)
        .bind(new.kind.as_str())
        .bind(&host)
        .bind(&url_secret)
        .bind(&signing_secret)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                return Err(Error::conflict("an alert channel with this name exists"));
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let details = serde_json::json!({ "name": name, "kind": new.kind.as_str(), "host": host });
        let target = format!("alert_channel:{id}");
        audit::record_in(
            &mut tx,
            org_id,
            actor,
            AuditAction::AlertChannelCreate,
            &target,
            details,
            now,
        )
        .await
    }
    .await;
    end_write(tx, created).await?;
    let info = ChannelInfo {
        id,
        name,
        kind: new.kind.as_str().to_string(),
        host,
        created_at: now,
    };
    Ok((info, signing_key))
}

/// The organisation's channels, by name.
pub async fn list(db: &Db, org_id: &str) -> Result<Vec<ChannelInfo>> {
    Ok(sqlx::query_as(
        "SELECT id, name, kind, host, created_at FROM alert_channels WHERE org_id = $1 \
         ORDER BY name",
    )
    .bind(org_id)
    .fetch_all(db.pool())
    .await?)
}

/// Removes channel `id` of `org_id` and its sealed secrets (audited); `false` when there
/// is no such channel. Its delivery log stays; deliveries still pending are dropped.
pub async fn delete(db: &Db, org_id: &str, id: &str, actor: &str, now: i64) -> Result<bool> {
    let mut tx = db.begin().await?;
    let deleted: Result<bool> = async {
        let found: Option<(String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT name, url_secret_id, signing_secret_id FROM alert_channels \
             WHERE id = $1 AND org_id = $2",
        )
        .bind(id)
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((name, url_secret, signing_secret)) = found else {
            return Ok(false);
        };
        sqlx::query("DELETE FROM alert_channels WHERE id = $1 AND org_id = $2")
            .bind(id)
            .bind(org_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE alert_deliveries SET state = 'failed', last_error = 'the channel was removed' \
             WHERE channel_id = $1 AND state = 'pending'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
        for secret in url_secret.iter().chain(signing_secret.iter()) {
            secrets::delete_in(&mut tx, org_id, secret).await?;
        }
        let target = format!("alert_channel:{id}");
        let details = serde_json::json!({ "name": name });
        audit::record_in(
            &mut tx,
            org_id,
            actor,
            AuditAction::AlertChannelDelete,
            &target,
            details,
            now,
        )
        .await?;
        Ok(true)
    }
    .await;
    end_write(tx, deleted).await
}

#[cfg(test)]
mod tests {
    use super::checked_host;

    #[test]
    fn urls_are_https_or_loopback_http() {
        assert_eq!(
            checked_host("https://hooks.example.com/services/T0/B0/xyz").unwrap(),
            "hooks.example.com"
        );
        assert_eq!(
            checked_host("http://127.0.0.1:8080/hook").unwrap(),
            "127.0.0.1"
        );
        assert_eq!(checked_host("http://[::1]:8080/hook").unwrap(), "::1");
        for bad in [
            "http://hooks.example.com/x",
            "ftp://example.com/",
            "hooks.example.com/x",
            "https:///nohost",
            "",
        ] {
            assert!(checked_host(bad).is_err(), "{bad}");
        }
    }
}
