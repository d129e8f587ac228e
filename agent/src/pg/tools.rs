//! Finding the `pg_dump`/`pg_restore` that suits a server.
//!
//! pg_dump can dump servers of its own major and older, never newer; pg_restore reads
//! archives of its own major and older. So the agent prefers the tool whose major equals
//! the server's, accepts a newer one, and refuses an older one with a message that says
//! what to install. (The signed registry replaces the PATH lookup later.)

use crate::error::{Error, ErrorKind, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A located PostgreSQL client tool and its version.
#[derive(Debug, Clone)]
pub struct PgTool {
    /// Absolute path of the binary.
    pub path: PathBuf,
    /// The first line of `--version`, e.g. "pg_dump (PostgreSQL) 16.2".
    pub version: String,
    /// Its major version.
    pub major: u32,
}

impl PgTool {
    /// The `name` tool for a server of `server_major`: from `bin_dir` when given, else the
    /// best match among the directories of `PATH`.
    pub fn locate(name: &str, server_major: u32, bin_dir: Option<&Path>) -> Result<Self> {
        if let Some(dir) = bin_dir {
            let tool = Self::probe(&dir.join(name))?;
            return tool.check_against(server_major);
        }
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        let mut found: Vec<Self> = std::env::split_paths(&path_var)
            .map(|d| d.join(name))
            .filter(|p| p.is_file())
            .filter_map(|p| Self::probe(&p).ok())
            .collect();
        if found.is_empty() {
            return Err(Error::new(
                ErrorKind::PgTool,
                format!(
                    "no {name} on PATH: install the PostgreSQL {server_major} client tools \
                     or pass --pg-bin-dir DIR"
                ),
            ));
        }
        // Exact major first, else the oldest newer one, else (to report it) the newest
        // older one.
        let rank = |t: &Self| match t.major.cmp(&server_major) {
            std::cmp::Ordering::Equal => (0, 0),
            std::cmp::Ordering::Greater => (1, t.major),
            std::cmp::Ordering::Less => (2, u32::MAX - t.major),
        };
        found.sort_by_key(rank);
        found.swap_remove(0).check_against(server_major)
    }

    /// Runs `path --version` and reads the major from it.
    pub fn probe(path: &Path) -> Result<Self> {
        let out = Command::new(path).arg("--version").output().map_err(|e| {
            Error::new(
                ErrorKind::PgTool,
                format!("cannot run {}: {e}", path.display()),
            )
        })?;
        let text = String::from_utf8_lossy(&out.stdout);
        let version = text.lines().next().unwrap_or_default().trim().to_string();
        let major = parse_major(&version).ok_or_else(|| {
            Error::new(
                ErrorKind::PgTool,
                format!(
                    "{} --version printed {version:?}, not a PostgreSQL version",
                    path.display()
                ),
            )
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            version,
            major,
        })
    }

    fn check_against(self, server_major: u32) -> Result<Self> {
        if self.major < server_major {
            return Err(Error::new(
                ErrorKind::PgTool,
                format!(
                    "{} is PostgreSQL {} but the server is PostgreSQL {server_major}: an older \
                     client cannot handle a newer server; install the PostgreSQL \
                     {server_major} client tools or pass --pg-bin-dir",
                    self.path.display(),
                    self.major
                ),
            ));
        }
        Ok(self)
    }
}

/// The major of "pg_dump (PostgreSQL) 16.2 (Debian 16.2-1)" → 16; of "… 9.6.24" → 9.
fn parse_major(version_line: &str) -> Option<u32> {
    let rest = version_line.split(')').nth(1)?.trim();
    let number = rest.split_whitespace().next()?;
    number
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::parse_major;

    #[test]
    fn majors_of_real_version_lines() {
        assert_eq!(parse_major("pg_dump (PostgreSQL) 16.2"), Some(16));
        assert_eq!(
            parse_major("pg_dump (PostgreSQL) 13.16 (Debian 13.16-0+deb11u1)"),
            Some(13)
        );
        assert_eq!(parse_major("pg_restore (PostgreSQL) 18beta1"), Some(18));
        assert_eq!(parse_major("pg_dump (PostgreSQL) 9.6.24"), Some(9));
        assert_eq!(parse_major("something else"), None);
    }
}
