//! Where `/metrics` listens and who may read it: `DBCRATE_METRICS_LISTEN` (default
//! `127.0.0.1:9464`; `off` turns it off) and `DBCRATE_METRICS_TOKEN_FILE`, a file
//! holding the bearer token scrapers must send. The figures say which databases exist,
//! how big their backups are and which agents run where: an address other than
//! loopback without a token is refused at boot, with the fix.

use crate::error::{Error, Result};
use dbcrate_core::secret::SecretString;
use std::net::SocketAddr;

/// Where `/metrics` listens unless `DBCRATE_METRICS_LISTEN` says otherwise.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

/// The metrics listener's settings.
#[derive(Debug)]
pub struct MetricsSettings {
    /// The address, or `None` when turned off.
    pub listen: Option<SocketAddr>,
    /// The bearer token scrapers must send, if one is configured.
    pub token: Option<SecretString>,
}

/// Reads the settings from `listen` (the variable's text, `None` when unset) and the
/// token file's path; refuses a non-loopback address without a token.
pub fn metrics_settings(
    listen: Option<&str>,
    token_file: Option<&std::path::Path>,
) -> Result<MetricsSettings> {
    let text = listen
        .filter(|t| !t.is_empty())
        .unwrap_or(DEFAULT_METRICS_LISTEN);
    let listen = if text == "off" {
        None
    } else {
        Some(text.parse::<SocketAddr>().map_err(|_| {
            Error::internal(format!(
                "DBCRATE_METRICS_LISTEN={text:?} is not an address: use IP:PORT (e.g. \
                 127.0.0.1:9464) or off"
            ))
        })?)
    };
    let token = match token_file {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::internal(format!(
                    "DBCRATE_METRICS_TOKEN_FILE {}: cannot read it ({e})",
                    path.display()
                ))
            })?;
            let token = text.trim();
            if token.len() < 16 || token.contains(char::is_whitespace) {
                return Err(Error::internal(format!(
                    "DBCRATE_METRICS_TOKEN_FILE {} must hold one token of at least 16 \
                     characters without spaces (e.g. from `openssl rand -hex 32`)",
                    path.display()
                )));
            }
            Some(SecretString::new(token.to_string()))
        }
    };
    if let Some(addr) = listen {
        if !addr.ip().is_loopback() && token.is_none() {
            return Err(Error::internal(format!(
                "DBCRATE_METRICS_LISTEN={addr} is not a loopback address: set \
                 DBCRATE_METRICS_TOKEN_FILE to a file holding a bearer token scrapers must \
                 send, or listen on 127.0.0.1"
            )));
        }
    }
    Ok(MetricsSettings { listen, token })
}

#[cfg(test)]
mod tests {
    use super::metrics_settings;

    #[test]
    fn loopback_by_default_off_on_request_and_no_open_listener_without_a_token() {
        let default = metrics_settings(None, None).unwrap();
        assert_eq!(default.listen.unwrap().to_string(), "127.0.0.1:9464");
        assert!(metrics_settings(Some("off"), None)
            .unwrap()
            .listen
            .is_none());
        let open = metrics_settings(Some("0.0.0.0:9464"), None).unwrap_err();
        assert!(
            open.message.contains("DBCRATE_METRICS_TOKEN_FILE"),
            "{open:?}"
        );
        let bad = metrics_settings(Some("nine"), None).unwrap_err();
        assert!(bad.message.contains("IP:PORT"), "{bad:?}");

        let dir = std::env::temp_dir().join(format!("metrics-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "short\n").unwrap();
        let weak = metrics_settings(Some("0.0.0.0:9464"), Some(&file)).unwrap_err();
        assert!(weak.message.contains("at least 16"), "{weak:?}");
        std::fs::write(&file, "0123456789abcdef0123\n").unwrap();
        let guarded = metrics_settings(Some("0.0.0.0:9464"), Some(&file)).unwrap();
        assert_eq!(
            guarded.token.unwrap().expose_secret(),
            "0123456789abcdef0123"
        );
        assert!(!weak.message.contains("short"), "the token is never echoed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
