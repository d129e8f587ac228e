//! Where an organisation's alerts go: a generic webhook (a JSON body signed with
//! HMAC-SHA256, see `signing`), a Slack-compatible incoming webhook, or e-mail over
//! SMTP (see `smtp`). A webhook URL carries its token in the path, so it is a
//! credential: sealed like the others, never shown again — the list shows only its
//! host. A webhook's signing key is made here and shown once. An e-mail channel's
//! settings (server, TLS mode, account, sender, recipients, a private CA) are stored in
//! the clear and its password sealed. Adding and removing a channel is audited.

use crate::audit::{self, AuditAction};
use crate::db::{end_write, Db};
use crate::envelope::MasterKeys;
use crate::error::{new_id, random_bytes, Error, Result};
use crate::secrets::{self, Owner};
use dbcrate_core::secret::SecretString;
use dbcrate_core::time::rfc3339;

/// The purpose a channel's URL is sealed under.
pub const URL_PURPOSE: &str = "alert_channel_url";
/// The purpose an e-mail channel's SMTP password is sealed under.
pub const SMTP_PASSWORD_PURPOSE: &str = "alert_channel_smtp_password";
/// The most recipients an e-mail channel has.
pub const MAX_RECIPIENTS: usize = 20;
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
    /// A message over SMTP.
    Email,
}

impl ChannelKind {
    /// The kind as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Email => "email",
        }
    }

    /// The kind stored as `text`.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "webhook" => Ok(Self::Webhook),
            "slack" => Ok(Self::Slack),
            "email" => Ok(Self::Email),
            _ => Err(Error::invalid("kind must be webhook, slack or email")),
        }
    }
}

/// Where a new channel sends.
#[derive(Debug)]
pub enum Target<'a> {
    /// A signed JSON POST to this URL (a credential).
    Webhook(&'a SecretString),
    /// A Slack-compatible POST to this URL (a credential).
    Slack(&'a SecretString),
    /// E-mail through this server, with this password (sealed) if it wants AUTH.
    Email(EmailSettings, Option<&'a SecretString>),
}

/// An e-mail channel's settings, as stored (nothing secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EmailSettings {
    /// The SMTP server's host name.
    pub host: String,
    /// Its port (587 for STARTTLS, 465 for implicit TLS).
    pub port: u16,
    /// `starttls` or `implicit`.
    pub security: String,
    /// The account, if the server wants AUTH.
    pub username: Option<String>,
    /// The sender address.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// A CA certificate (PEM) to trust besides the system's, for a private relay.
    pub ca_pem: Option<String>,
}

/// An address that can stand in a header and an SMTP command: something@something,
/// no spaces, angle brackets, quotes or line breaks.
fn address(field: &str, text: &str) -> Result<()> {
    let ok = text.len() <= 254
        && text
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>\",;".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{field} must be an e-mail address like ops@example.com"
        )))
    }
}

impl EmailSettings {
    /// Checks every field; an error names the one to fix.
    pub fn check(&self) -> Result<()> {
        crate::names::check_characters("smtp host", &self.host)?;
        if self.host.is_empty() || self.host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(Error::invalid(
                "smtp host must be a host name such as smtp.example.com",
            ));
        }
        if self.port == 0 {
            return Err(Error::invalid("smtp port must be 1-65535"));
        }
        self.security()?;
        if let Some(user) = &self.username {
            if user.is_empty() || user.chars().any(char::is_control) {
                return Err(Error::invalid("smtp username must be text on one line"));
            }
        }
        address("from", &self.from)?;
        if self.to.is_empty() || self.to.len() > MAX_RECIPIENTS {
            return Err(Error::invalid(format!(
                "to must list 1-{MAX_RECIPIENTS} addresses"
            )));
        }
        for to in &self.to {
            address("to", to)?;
        }
        if let Some(pem) = &self.ca_pem {
            use rustls::pki_types::pem::PemObject;
            let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| Error::invalid("ca_pem must be a PEM certificate"))?;
            if certs.is_empty() {
                return Err(Error::invalid("ca_pem must be a PEM certificate"));
            }
        }
        Ok(())
    }

    /// The TLS mode.
    pub fn security(&self) -> Result<super::smtp::Security> {
        match self.security.as_str() {
            "starttls" => Ok(super::smtp::Security::StartTls),
            "implicit" => Ok(super::smtp::Security::Implicit),
            _ => Err(Error::invalid("smtp security must be starttls or implicit")),
        }
    }
}

/// A channel to add.
#[derive(Debug)]
pub struct NewChannel<'a> {
    /// Its name in the organisation.
    pub name: &'a str,
    /// Where it sends.
    pub target: Target<'a>,
}

impl NewChannel<'_> {
    /// The kind it is.
    pub fn kind(&self) -> ChannelKind {
        match self.target {
            Target::Webhook(_) => ChannelKind::Webhook,
            Target::Slack(_) => ChannelKind::Slack,
            Target::Email(..) => ChannelKind::Email,
        }
    }
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
    let kind = new.kind();
    // (host, the sealed credential and its purpose, the stored settings)
    let (host, credential, settings) = match &new.target {
        Target::Webhook(url) | Target::Slack(url) => (
            checked_host(url.expose_secret())?,
            Some((url.expose_secret().as_bytes(), URL_PURPOSE)),
            serde_json::json!({}),
        ),
        Target::Email(email, password) => {
            email.check()?;
            if email.username.is_some() != password.is_some() {
                return Err(Error::invalid(
                    "smtp username and password go together: give both, or neither",
                ));
            }
            let settings = serde_json::to_value(email)
                .map_err(|e| Error::internal(format!("e-mail settings: {e}")))?;
            let sealed = password.map(|p| (p.expose_secret().as_bytes(), SMTP_PASSWORD_PURPOSE));
            (email.host.clone(), sealed, settings)
        }
    };
    let signing_key = match kind {
        ChannelKind::Webhook => {
            let bytes = random_bytes::<32>()?;
            Some(SecretString::new(format!(
                "{SIGNING_KEY_PREFIX}{}",
                dbcrate_core::hex::encode(bytes.as_slice())
            )))
        }
        ChannelKind::Slack | ChannelKind::Email => None,
    };
    let id = new_id("ach")?;
    let mut tx = db.begin().await?;
    let created: Result<()> = async {
        let stamp = rfc3339(now);
        let owner = Owner::Org(org_id);
        let secret = match credential {
            Some((plaintext, purpose)) => {
                Some(secrets::insert(&mut tx, keys, owner, purpose, plaintext, &stamp).await?)
            }
            None => None,
        };
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
            "INSERT INTO alert_channels (id, org_id, name, kind, host, settings, secret_id, \
             signing_secret_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(org_id)
        .bind(&name)
        .bind(kind.as_str())
        .bind(&host)
        .bind(settings.to_string())
        .bind(&secret)
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
        let details = serde_json::json!({ "name": name, "kind": kind.as_str(), "host": host });
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
        kind: kind.as_str().to_string(),
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
            "SELECT name, secret_id, signing_secret_id FROM alert_channels \
             WHERE id = $1 AND org_id = $2",
        )
        .bind(id)
        .bind(org_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((name, secret, signing_secret)) = found else {
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
        for secret in secret.iter().chain(signing_secret.iter()) {
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
