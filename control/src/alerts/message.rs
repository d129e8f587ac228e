//! What a delivery says, fixed when it is queued (a retry sends the same bytes): for a
//! webhook a JSON document, for a Slack-compatible channel `{"text": …}`, for e-mail
//! `{"subject": …, "text": …}` (the message is made from it at each attempt).

use dbcrate_core::time::rfc3339;
use serde_json::json;

/// Why a delivery is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The condition began.
    Open,
    /// It still holds (sent on a back-off, so no storm).
    Repeat,
    /// It ended.
    Clear,
    /// A person asked for a test notification.
    Test,
}

impl Event {
    /// As stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Repeat => "repeat",
            Self::Clear => "clear",
            Self::Test => "test",
        }
    }

    fn heading(self) -> &'static str {
        match self {
            Self::Open => "Alert",
            Self::Repeat => "Still wrong",
            Self::Clear => "Resolved",
            Self::Test => "Test",
        }
    }
}

/// The alert a delivery is about.
#[derive(Debug, Clone)]
pub struct AlertFacts<'a> {
    /// `alr_…` (empty for a test).
    pub id: &'a str,
    /// `backup_overdue`, … (`test` for a test).
    pub kind: &'a str,
    /// What it is about.
    pub subject: &'a str,
    /// One sentence.
    pub summary: &'a str,
    /// When it began.
    pub opened_at: i64,
    /// When it ended, if it did.
    pub cleared_at: Option<i64>,
}

/// The organisation, as named in messages.
#[derive(Debug, Clone, Copy)]
pub struct OrgFacts<'a> {
    /// `org_…`.
    pub id: &'a str,
    /// Its name.
    pub name: &'a str,
}

/// The body for a channel of `channel_kind` (`webhook` or `slack`).
pub fn body(channel_kind: &str, event: Event, alert: &AlertFacts<'_>, org: OrgFacts<'_>) -> String {
    if channel_kind == "email" {
        let subject = format!(
            "[dbcrate] {}: {} in {}",
            event.heading(),
            alert.kind,
            org.name
        );
        let mut text = format!(
            "{}\n\n{}\n\nOrganisation: {} ({})\nKind: {}\nAbout: {}\nOpened: {}\n",
            event.heading(),
            alert.summary,
            org.name,
            org.id,
            alert.kind,
            alert.subject,
            rfc3339(alert.opened_at)
        );
        if let Some(cleared) = alert.cleared_at {
            text.push_str(&format!("Cleared: {}\n", rfc3339(cleared)));
        }
        if !alert.id.is_empty() {
            text.push_str(&format!("Alert: {}\n", alert.id));
        }
        return json!({ "subject": subject, "text": text }).to_string();
    }
    if channel_kind == "slack" {
        let text = format!(
            "[dbcrate] {}: {} ({}, {} {})",
            event.heading(),
            alert.summary,
            org.name,
            alert.kind,
            alert.subject
        );
        return json!({ "text": text }).to_string();
    }
    json!({
        "event": event.as_str(),
        "alert": {
            "id": alert.id,
            "kind": alert.kind,
            "subject": alert.subject,
            "summary": alert.summary,
            "opened_at": rfc3339(alert.opened_at),
            "cleared_at": alert.cleared_at.map(rfc3339),
        },
        "org": { "id": org.id, "name": org.name },
    })
    .to_string()
}
