//! Times as people read them: the UTC date and time, and how long ago or ahead that is.
//! Pages put both in a `<time>` element whose `datetime` carries the exact instant.

use maud::{html, Markup};

/// `2026-12-04 15:02 UTC`.
pub fn utc(unix: i64) -> String {
    let t = dbcrate_core::time::UtcDateTime::from_unix(unix);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year, t.month, t.day, t.hour, t.minute
    )
}

/// A span of seconds in the largest unit that fits: `45 s`, `3 min`, `5 h`, `2 days`.
fn span(secs: i64) -> String {
    match secs {
        ..=59 => format!("{secs} s"),
        60..=3599 => format!("{} min", secs / 60),
        3600..=172_799 => format!("{} h", secs / 3600),
        _ => format!("{} days", secs / 86_400),
    }
}

/// How `then` relates to `now`: `3 min ago`, `in 5 h`, `just now`.
pub fn relative(then: i64, now: i64) -> String {
    match now - then {
        -4..=4 => "just now".to_string(),
        past if past > 0 => format!("{} ago", span(past)),
        ahead => format!("in {}", span(-ahead)),
    }
}

/// `<time datetime="…">2026-12-04 15:02 UTC</time> (3 min ago)`.
pub fn time(then: i64, now: i64) -> Markup {
    html! {
        time datetime=(dbcrate_core::time::rfc3339(then)) { (utc(then)) }
        " (" (relative(then, now)) ")"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        assert_eq!(utc(1_764_860_520), "2025-12-04 15:02 UTC");
        assert_eq!(relative(100, 100), "just now");
        assert_eq!(relative(100, 145), "45 s ago");
        assert_eq!(relative(100, 100 + 3 * 60 + 5), "3 min ago");
        assert_eq!(relative(100 + 5 * 3600, 100), "in 5 h");
        assert_eq!(relative(0, 3 * 86_400), "3 days ago");
    }
}
