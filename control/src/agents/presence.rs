//! When each agent last called the agent listener, and the version it says it runs:
//! what the agent list shows and what "online" means.
//!
//! The agent listener notes an agent as seen on every call a live certificate makes
//! (the job long poll, heartbeats, renewals, its config), but writes at most every
//! [`SEEN_EVERY_SECS`] per agent, or when the version changes, so thousands of polling
//! agents do not turn every poll into a write. The version comes from the agent's
//! `User-Agent` (`dbcrate-agent/<version>`); anything else in that header is ignored,
//! never stored, so it cannot put markup or a long text into the list.

use crate::db::Db;
use crate::error::Result;

/// The shortest time between two writes of one agent's last-seen time.
pub const SEEN_EVERY_SECS: i64 = 30;

/// An agent counts as online while it was seen within this long: an idle agent calls at
/// least every poll interval (30 s by default) and a running job heartbeats more often,
/// so one late poll plus the write throttle does not mark it offline.
pub const ONLINE_WITHIN_SECS: i64 = 120;

/// The longest version text kept.
const MAX_VERSION_LEN: usize = 40;

/// The version in an agent's `User-Agent` (`dbcrate-agent/0.1.0`), if it is one: 1 to
/// 40 characters of letters, digits, `.`, `-` and `+`.
pub fn version_from_user_agent(header: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(header).ok()?;
    let version = text.strip_prefix(dbcrate_core::wire::AGENT_USER_AGENT_PREFIX)?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+');
    (!version.is_empty() && version.len() <= MAX_VERSION_LEN && version.chars().all(allowed))
        .then_some(version)
}

/// Whether an agent last seen at `last_seen_at` counts as online at `now`.
pub fn is_online(last_seen_at: Option<i64>, now: i64) -> bool {
    last_seen_at.is_some_and(|seen| now - seen <= ONLINE_WITHIN_SECS)
}

/// Notes that `agent_id` called at `now`, running `version` (when it said): written
/// when the last note is older than [`SEEN_EVERY_SECS`] or the version changed.
pub async fn seen(db: &Db, agent_id: &str, version: Option<&str>, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE agents SET last_seen_at = $1, version = COALESCE($2, version) \
         WHERE id = $3 AND revoked_at IS NULL \
         AND (last_seen_at IS NULL OR last_seen_at <= $4 \
              OR ($2 IS NOT NULL AND (version IS NULL OR version <> $2)))",
    )
    .bind(now)
    .bind(version)
    .bind(agent_id)
    .bind(now - SEEN_EVERY_SECS)
    .execute(db.pool())
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_agents_own_version_text_is_taken() {
        assert_eq!(
            version_from_user_agent(b"dbcrate-agent/0.1.0"),
            Some("0.1.0")
        );
        assert_eq!(
            version_from_user_agent(b"dbcrate-agent/1.2.3-rc.1+nix"),
            Some("1.2.3-rc.1+nix")
        );
        for refused in [
            &b"dbcrate-agent/"[..],
            b"dbcrate-agent/<b>1</b>",
            b"dbcrate-agent/1 2",
            b"curl/8.0",
            b"DBCRATE-AGENT/1.0",
            b"dbcrate-agent/\xff",
            "dbcrate-agent/1.0.0é".as_bytes(),
        ] {
            assert_eq!(version_from_user_agent(refused), None, "{refused:?}");
        }
        let long = format!("dbcrate-agent/{}", "1".repeat(MAX_VERSION_LEN + 1));
        assert_eq!(version_from_user_agent(long.as_bytes()), None);
    }

    #[test]
    fn online_means_seen_within_two_minutes() {
        assert!(!is_online(None, 1000));
        assert!(is_online(Some(1000 - ONLINE_WITHIN_SECS), 1000));
        assert!(!is_online(Some(1000 - ONLINE_WITHIN_SECS - 1), 1000));
    }
}
