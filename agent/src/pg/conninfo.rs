//! A libpq connection URL with its password taken out.
//!
//! pg_dump and pg_restore get the URL without the password on their command line (which
//! any local user can read in `ps`) and the password in `PGPASSWORD`, which only the
//! process's owner can read.

use crate::error::{Error, Result};
use dbcrate_core::secret::SecretString;

/// A parsed `postgres://` / `postgresql://` URL.
#[derive(Debug)]
pub struct DatabaseUrl {
    without_password: String,
    password: Option<SecretString>,
    database: String,
    host: String,
}

impl DatabaseUrl {
    /// Parses `url`; the password comes from the URL or else from `env_password`
    /// (`PGPASSWORD`). Errors never quote the URL, which may hold the password.
    pub fn parse(url: &str, env_password: Option<String>) -> Result<Self> {
        let rest = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
            .ok_or_else(|| {
                Error::invalid_input(
                    "--database-url must start with postgresql:// or postgres:// \
                     (e.g. postgresql://user@host:5432/dbname)",
                )
            })?;
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (user, url_password) = match userinfo {
            Some(info) => match info.split_once(':') {
                Some((u, p)) => (Some(u), Some(percent_decode(p, "password")?)),
                None => (Some(info), None),
            },
            None => (None, None),
        };
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (tail, None),
        };
        let mut database = percent_decode(path.trim_start_matches('/'), "database name")?;
        if let Some(q) = query {
            for pair in q.split('&') {
                if let Some(v) = pair.strip_prefix("dbname=") {
                    database = percent_decode(v, "database name")?;
                }
            }
        }
        if database.is_empty() {
            // libpq defaults the database to the user name.
            database = match user {
                Some(u) if !u.is_empty() => percent_decode(u, "user name")?,
                _ => {
                    return Err(Error::invalid_input(
                        "--database-url names no database: add /DBNAME after the host",
                    ))
                }
            };
        }
        let mut without_password = String::from("postgresql://");
        if let Some(u) = user {
            without_password.push_str(u);
            without_password.push('@');
        }
        without_password.push_str(hostport);
        without_password.push_str(tail);
        let host = hostport.to_string();
        let password = url_password
            .or(env_password)
            .filter(|p| !p.is_empty())
            .map(SecretString::new);
        Ok(Self {
            without_password,
            password,
            database,
            host,
        })
    }

    /// A URL from its parts (as a job's credentials give them), the password kept
    /// apart like any other.
    pub fn from_parts(
        host: &str,
        port: u16,
        dbname: &str,
        user: &str,
        sslmode: &str,
        password: Option<SecretString>,
    ) -> Result<Self> {
        let host_part = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let url = format!(
            "postgresql://{}@{host_part}:{port}/{}?sslmode={}",
            percent_encode(user),
            percent_encode(dbname),
            percent_encode(sslmode)
        );
        let mut parsed = Self::parse(&url, None)?;
        parsed.password = password.filter(|p| !p.expose_secret().is_empty());
        Ok(parsed)
    }

    /// The same server, user, password and settings, another database: the throwaway
    /// database of a restore drill.
    pub fn with_database(&self, name: &str) -> Result<Self> {
        let rest = self
            .without_password
            .strip_prefix("postgresql://")
            .unwrap_or(&self.without_password);
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let query: Vec<&str> = tail
            .split_once('?')
            .map_or("", |(_, q)| q)
            .split('&')
            .filter(|pair| !pair.is_empty() && !pair.starts_with("dbname="))
            .collect();
        let mut url = format!("postgresql://{authority}/{}", percent_encode(name));
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        let mut other = Self::parse(&url, None)?;
        other.password = self
            .password
            .as_ref()
            .map(|p| SecretString::new(p.expose_secret().to_owned()));
        Ok(other)
    }

    /// The URL without the password: safe for a command line and a log line.
    pub fn without_password(&self) -> &str {
        &self.without_password
    }

    /// The password, if any was given.
    pub fn password(&self) -> Option<&SecretString> {
        self.password.as_ref()
    }

    /// The database name (decoded).
    pub fn database(&self) -> &str {
        &self.database
    }

    /// `host[:port]` as written in the URL, for messages.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Points a pg_dump/pg_restore command at this database: the URL without the
    /// password as `--dbname`, the password (if any) in `PGPASSWORD`, which only the
    /// process's owner can read — never on the command line.
    pub fn configure(&self, cmd: &mut std::process::Command) {
        cmd.arg(format!("--dbname={}", self.without_password));
        match &self.password {
            Some(p) => cmd.env("PGPASSWORD", p.expose_secret()),
            None => cmd.env_remove("PGPASSWORD"),
        };
    }

    /// Replaces every occurrence of the password in `text` (a tool's stderr, say).
    pub fn redact(&self, text: &str) -> String {
        match &self.password {
            Some(p) if p.expose_secret().len() >= 3 => {
                text.replace(p.expose_secret(), "<redacted>")
            }
            _ => text.to_string(),
        }
    }
}

/// Percent-encodes everything but unreserved URL characters.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn percent_decode(s: &str, what: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    Error::invalid_input(format!(
                        "--database-url: bad percent-encoding in the {what}"
                    ))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Error::invalid_input(format!("--database-url: the {what} is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_database_on_the_same_server_keeps_the_rest() {
        let u = DatabaseUrl::parse(
            "postgresql://app:pw@[::1]:5433/shop?sslmode=require&dbname=other",
            None,
        )
        .unwrap();
        let drill = u.with_database("dbcrate_drill_1").unwrap();
        assert_eq!(
            drill.without_password(),
            "postgresql://app@[::1]:5433/dbcrate_drill_1?sslmode=require"
        );
        assert_eq!(drill.database(), "dbcrate_drill_1");
        assert_eq!(drill.password().unwrap().expose_secret(), "pw");
    }

    #[test]
    fn password_is_taken_out_of_the_url() {
        let u = DatabaseUrl::parse(
            "postgresql://app:p%40ss@db.example:5433/shop?sslmode=require",
            None,
        )
        .unwrap();
        assert_eq!(
            u.without_password(),
            "postgresql://app@db.example:5433/shop?sslmode=require"
        );
        assert_eq!(u.password().unwrap().expose_secret(), "p@ss");
        assert_eq!(u.database(), "shop");
        assert_eq!(
            u.redact("failed for p@ss here"),
            "failed for <redacted> here"
        );
    }

    #[test]
    fn password_from_the_environment_and_defaults() {
        let u = DatabaseUrl::parse("postgres://app@localhost", Some("envpw".into())).unwrap();
        assert_eq!(u.database(), "app");
        assert_eq!(u.password().unwrap().expose_secret(), "envpw");
        let u = DatabaseUrl::parse("postgres://localhost/x?dbname=y", None).unwrap();
        assert_eq!(u.database(), "y");
        assert!(u.password().is_none());
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        for bad in [
            "mysql://u:secretpw@h/db",
            "postgres://u:secretpw%zz@h/db",
            "postgres://h",
        ] {
            let err = DatabaseUrl::parse(bad, None).unwrap_err().to_string();
            assert!(!err.contains("secretpw"), "{err}");
        }
    }
}
