//! How the retention planner's reasons are written into audit rows.
//!
//! An audit row is kept for good and read by people and tools, so each reason has a
//! fixed text here, pinned by the tests, rather than Rust's `Debug` form, which follows
//! whatever the planner's types are called. (Rows written with the `Debug` form stay as
//! they are and keep verifying: a deleted backup is kept by no rule, so its `kept_by`
//! list has always been empty in practice.)

use dbcrate_core::retention::Reason;

/// The stored text of one reason: a name, and after a colon the rank or the calendar
/// bucket (`last:1`, `daily:2024-03-09`, `weekly:2024-W10`, `monthly:2024-03`,
/// `yearly:2024`).
pub fn text(reason: &Reason) -> String {
    match reason {
        Reason::Last(rank) => format!("last:{rank}"),
        Reason::Daily(d) => format!("daily:{:04}-{:02}-{:02}", d.year, d.month, d.day),
        Reason::Weekly(w) => format!("weekly:{:04}-W{:02}", w.year, w.week),
        Reason::Monthly(m) => format!("monthly:{:04}-{:02}", m.year, m.month),
        Reason::Yearly(year) => format!("yearly:{year:04}"),
        Reason::Newest => "newest".into(),
        Reason::InFuture => "in_future".into(),
        Reason::NoRules => "no_rules".into(),
        Reason::RecentFailures => "recent_failures".into(),
        Reason::NotSucceeded => "not_succeeded".into(),
        Reason::DuplicateId => "duplicate_id".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::text;
    use dbcrate_core::retention::{Date, IsoWeek, Reason, YearMonth};

    /// Every reason's stored text (a new reason gets its text in [`text`], whose match
    /// is exhaustive). A change here changes what new audit rows say.
    #[test]
    fn each_reason_has_its_stored_text() {
        let table = [
            (Reason::Last(1), "last:1"),
            (
                Reason::Daily(Date {
                    year: 2024,
                    month: 3,
                    day: 9,
                }),
                "daily:2024-03-09",
            ),
            (
                Reason::Weekly(IsoWeek {
                    year: 2020,
                    week: 53,
                }),
                "weekly:2020-W53",
            ),
            (
                Reason::Monthly(YearMonth {
                    year: 2024,
                    month: 3,
                }),
                "monthly:2024-03",
            ),
            (Reason::Yearly(2024), "yearly:2024"),
            (Reason::Newest, "newest"),
            (Reason::InFuture, "in_future"),
            (Reason::NoRules, "no_rules"),
            (Reason::RecentFailures, "recent_failures"),
            (Reason::NotSucceeded, "not_succeeded"),
            (Reason::DuplicateId, "duplicate_id"),
        ];
        for (reason, stored) in table {
            assert_eq!(text(&reason), stored);
        }
    }
}
