//! Reading an organisation's audit log: filters (time range, action, actor), pages by
//! sequence number, and the JSON-lines and CSV forms for export.
//!
//! Times are stored as RFC 3339 UTC with second precision (`2026-11-29T05:00:00Z`), so
//! comparing the text compares the times; filters must use the same form.

use crate::audit::{AuditRow, ROW_COLUMNS};
use crate::db::Db;
use crate::error::{Error, Result};

/// The most rows one page holds.
pub const MAX_PAGE: i64 = 1000;
/// Rows per page when the caller does not say.
pub const DEFAULT_PAGE: i64 = 100;

/// Which end of the log a page starts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// Oldest first, as the chain runs (the API and the exports; `after` continues).
    #[default]
    Chain,
    /// Newest first, as people read a log (the dashboard; `before` continues).
    NewestFirst,
}

/// Which rows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// At or after this time (RFC 3339 UTC, `YYYY-MM-DDTHH:MM:SSZ`).
    pub from: Option<String>,
    /// Before this time.
    pub to: Option<String>,
    /// Exactly this action (`member.add`, …).
    pub action: Option<String>,
    /// Exactly this actor (`user:…`, `api_token:…`, `system:…`).
    pub actor: Option<String>,
    /// Only rows after this sequence number (the cursor of the previous page).
    pub after: Option<i64>,
    /// Only rows before this sequence number (the cursor of the previous newest-first
    /// page).
    pub before: Option<i64>,
    /// The order of the page.
    pub order: Order,
}

fn is_utc_second(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

impl Filter {
    /// Checks the filter's values; bad ones are the caller's error, named.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [("from", &self.from), ("to", &self.to)] {
            if value.as_deref().is_some_and(|v| !is_utc_second(v)) {
                return Err(Error::invalid(format!(
                    "{name} must be a UTC time like 2026-11-29T05:00:00Z"
                )));
            }
        }
        for (name, value) in [("action", &self.action), ("actor", &self.actor)] {
            if value
                .as_deref()
                .is_some_and(|v| v.is_empty() || v.len() > 200)
            {
                return Err(Error::invalid(format!("{name} must be 1-200 characters")));
            }
        }
        for (name, value) in [("after", self.after), ("before", self.before)] {
            if value.is_some_and(|a| a < 0) {
                return Err(Error::invalid(format!(
                    "{name} must be a sequence number (0 or more)"
                )));
            }
        }
        Ok(())
    }
}

/// Up to `limit` matching rows of `org_id`, in the filter's order.
pub async fn page(db: &Db, org_id: &str, filter: &Filter, limit: i64) -> Result<Vec<AuditRow>> {
    filter.validate()?;
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(Error::invalid(format!("limit must be 1-{MAX_PAGE}")));
    }
    // Only the filters given go into the statement: a `($n = '' OR column = $n)` form
    // would keep the database from using the (org, action) index for the action filter.
    let mut sql =
        format!("SELECT {ROW_COLUMNS} FROM audit_log WHERE org_id = $1 AND seq > $2 AND seq < $3");
    let mut values: Vec<&str> = Vec::new();
    for (condition, value) in [
        ("at >=", &filter.from),
        ("at <", &filter.to),
        ("action =", &filter.action),
        ("actor =", &filter.actor),
    ] {
        if let Some(value) = value.as_deref() {
            values.push(value);
            sql.push_str(&format!(" AND {condition} ${}", values.len() + 3));
        }
    }
    let direction = match filter.order {
        Order::Chain => "",
        Order::NewestFirst => " DESC",
    };
    sql.push_str(&format!(
        " ORDER BY seq{direction} LIMIT ${}",
        values.len() + 4
    ));
    let mut query = sqlx::query_as(&sql)
        .bind(org_id)
        .bind(filter.after.unwrap_or(0))
        .bind(filter.before.unwrap_or(i64::MAX));
    for value in values {
        query = query.bind(value);
    }
    Ok(query.bind(limit).fetch_all(db.pool()).await?)
}

/// A row as a JSON object (details parsed back into JSON).
pub fn to_json(row: &AuditRow) -> serde_json::Value {
    let details: serde_json::Value = serde_json::from_str(&row.details)
        .unwrap_or(serde_json::Value::String(row.details.clone()));
    serde_json::json!({
        "seq": row.seq,
        "at": row.at,
        "actor": row.actor,
        "action": row.action,
        "target": row.target,
        "details": details,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    })
}

/// The CSV header line, matching [`csv_line`].
pub const CSV_HEADER: &str = "seq,at,actor,action,target,details,prev_hash,hash\r\n";

fn csv_field(out: &mut String, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

/// One row as an RFC 4180 CSV line (CRLF-terminated); `details` stays the stored JSON
/// text, so the hashes can be recomputed from the export.
pub fn csv_line(row: &AuditRow) -> String {
    let mut out = String::new();
    let seq = row.seq.to_string();
    let fields = [
        seq.as_str(),
        &row.at,
        &row.actor,
        &row.action,
        &row.target,
        &row.details,
        &row.prev_hash,
        &row.hash,
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(&mut out, field);
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_needs_it() {
        let row = AuditRow {
            org_id: "org_1".into(),
            seq: 7,
            at: "2026-11-29T05:00:00Z".into(),
            actor: "user:u".into(),
            action: "member.add".into(),
            target: "user:v".into(),
            details: r#"{"role":"admin","note":"a, \"b\""}"#.into(),
            prev_hash: "p".into(),
            hash: "h".into(),
        };
        assert_eq!(
            csv_line(&row),
            "7,2026-11-29T05:00:00Z,user:u,member.add,user:v,\
             \"{\"\"role\"\":\"\"admin\"\",\"\"note\"\":\"\"a, \\\"\"b\\\"\"\"\"}\",p,h\r\n"
        );
    }

    #[test]
    fn times_must_be_utc_seconds() {
        let bad = Filter {
            from: Some("2026-11-29 05:00".into()),
            ..Filter::default()
        };
        assert!(bad.validate().is_err());
        let good = Filter {
            from: Some("2026-11-29T05:00:00Z".into()),
            ..Filter::default()
        };
        assert!(good.validate().is_ok());
    }
}
