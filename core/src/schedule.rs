//! Backup schedules: a cron expression read in an IANA time zone, and the pure question
//! "which run is due now?".
//!
//! Planning is pure (see docs/architecture.md, "Components"): nothing here reads the
//! clock. The control plane's scheduler passes `now` and the last recorded fire time to
//! [`due`], creates at most one job for the answer, records it, and sleeps until
//! [`Schedule::next_after`].
//!
//! # Cron
//!
//! Five fields — minute, hour, day-of-month, month, day-of-week — with `*`, lists
//! `a,b`, ranges `a-b`, steps `*/n` and `a-b/n`, names `jan`…`dec` and `sun`…`sat`
//! (any case; `sun` ending a range is 7, so `fri-sun` works), and 0 or 7 for Sunday; or one of `@hourly`, `@daily` (`@midnight`),
//! `@weekly`, `@monthly`, `@yearly` (`@annually`). As in Vixie cron, when both day
//! fields are restricted a day matches if *either* does (`0 3 1 * mon` runs on the 1st
//! and on every Monday); a day field starting with `*` counts as unrestricted, so the
//! two are then combined with AND. `a/n` is refused (implementations disagree on it), as
//! are a step of 0, backwards ranges and day/month pairs that never occur (`30 feb`).
//! Runs fire at second 0 of the minute.
//!
//! # Time zones and daylight saving time
//!
//! Zone rules come from the tz database embedded in `jiff` (docs/dependencies.md), so
//! hosts without `/usr/share/zoneinfo` compute the same times; a zone name that the
//! database does not know is refused at parse time. Each matching local wall-clock time
//! fires **at most once**:
//!
//! - **Gap** (spring forward, e.g. Europe/Berlin 2026-03-29 02:00→03:00): a local time
//!   that does not exist fires at the first instant after the gap (03:00 CEST). A daily
//!   backup at 02:30 still happens that day, and the users who picked 02:30 get it as
//!   close to 02:30 as the clock allows; skipping would silently lose a day of backups.
//!   Several times inside one gap collapse into that one fire.
//! - **Fold** (fall back, e.g. Europe/Berlin 2026-10-25 03:00→02:00): a local time that
//!   occurs twice fires once, at its first occurrence (CEST). A daily backup must not
//!   run twice; the price is that `0 * * * *` has a two-hour pause that night.
//!
//! # Missed runs
//!
//! A control plane that was down for a week does not owe seven daily backups: [`due`]
//! returns only the latest missed fire, so one backup runs and the schedule continues.

mod cron;
#[cfg(test)]
mod tests;

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;

use cron::Cron;

/// How far ahead (and back) a search walks: one 400-year Gregorian cycle, after which
/// the calendar repeats, so any schedule that can fire is found (Feb 29 on a Sunday
/// recurs after 28 years or more). Each day costs a few bit tests, so even the walk
/// for a rare schedule is a few milliseconds.
const SEARCH_DAYS: i64 = 146_097;

/// Why a schedule was refused. The messages name the field and what it allows, because
/// they are shown to the customer who typed the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// One field is malformed or out of range.
    #[error("{field} field \"{text}\": {reason}")]
    Field {
        /// The field's name, e.g. `minute` or `day-of-week`.
        field: &'static str,
        /// The field as written.
        text: String,
        /// What is wrong and what the field allows.
        reason: String,
    },
    /// Not five fields (and not a macro).
    #[error(
        "cron expression \"{expr}\" has {found} fields; expected 5 (minute hour \
         day-of-month month day-of-week) or one of @hourly @daily @weekly @monthly @yearly"
    )]
    FieldCount {
        /// The expression as written.
        expr: String,
        /// How many whitespace-separated fields it has.
        found: usize,
    },
    /// An `@` name that is not one of the supported macros (`@reboot` included: the
    /// control plane has no notion of a reboot to fire on).
    #[error("unknown macro \"{0}\": use @hourly, @daily, @weekly, @monthly or @yearly")]
    UnknownMacro(String),
    /// The day-of-month never occurs in the chosen months (`0 0 30 2 *`).
    #[error(
        "day-of-month field \"{day_of_month}\" never occurs in month field \"{month}\": \
         the schedule would never fire"
    )]
    NeverFires {
        /// The day-of-month field as written.
        day_of_month: String,
        /// The month field as written.
        month: String,
    },
    /// The zone is not in the tz database.
    #[error("unknown time zone \"{0}\": use an IANA name such as \"Europe/Berlin\" or \"UTC\"")]
    UnknownZone(String),
}

/// A parsed cron expression and the time zone its wall-clock times are read in.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    expr: String,
    zone_name: String,
    zone: TimeZone,
}

impl Schedule {
    /// Parses `cron` (five fields or an `@` macro) in the IANA zone `zone`. Refuses bad
    /// fields, unknown zones and expressions that could never fire, with a message fit
    /// for the customer.
    pub fn parse(cron: &str, zone: &str) -> Result<Self, ScheduleError> {
        let parsed = Cron::parse(cron)?;
        let unknown = || ScheduleError::UnknownZone(zone.to_string());
        let tz = TimeZone::get(zone.trim()).map_err(|_| unknown())?;
        // jiff maps "Etc/Unknown" to a placeholder zone that has no IANA name.
        let zone_name = tz.iana_name().ok_or_else(unknown)?.to_string();
        Ok(Schedule {
            cron: parsed,
            expr: cron.trim().to_string(),
            zone_name,
            zone: tz,
        })
    }

    /// The expression as written (trimmed), for display and storage.
    pub fn cron(&self) -> &str {
        &self.expr
    }

    /// The zone's IANA name as the tz database spells it (`europe/berlin` is stored as
    /// `Europe/Berlin`).
    pub fn zone(&self) -> &str {
        &self.zone_name
    }

    /// The schedule's zone as a calendar for retention (local days, weeks, months and
    /// years at each instant, daylight-saving changes included).
    pub fn calendar(&self) -> ZoneCalendar {
        ZoneCalendar(self.zone.clone())
    }

    /// The first fire time strictly after `unix` (seconds since the epoch), so the
    /// scheduler knows how long to sleep. `None` only if there is none within the
    /// search bound (near the end of the representable calendar).
    pub fn next_after(&self, unix: i64) -> Option<i64> {
        let start = self.zone.to_datetime(Timestamp::from_second(unix).ok()?);
        // Local times before `start` map to instants at or before `unix` (the mapping
        // below never runs backwards), so the walk can begin at `start`'s minute.
        let (start_hour, start_minute) = (start.hour() as u32, start.minute() as u32);
        let mut date = start.date();
        for _ in 0..SEARCH_DAYS {
            if self.day_matches(date) {
                let first_day = date == start.date();
                for hour in bits(u64::from(self.cron.hours), 23) {
                    if first_day && hour < start_hour {
                        continue;
                    }
                    for minute in bits(self.cron.minutes, 59) {
                        if first_day && hour == start_hour && minute < start_minute {
                            continue;
                        }
                        let fire = self.instant(date, hour, minute)?;
                        if fire > unix {
                            return Some(fire);
                        }
                    }
                }
            }
            date = self.next_candidate_day(date)?;
        }
        None
    }

    /// The last fire time at or before `unix`, not looking further back than the local
    /// day before `not_before`'s.
    fn last_at_or_before(&self, unix: i64, not_before: i64) -> Option<i64> {
        let local = |t: i64| Some(self.zone.to_datetime(Timestamp::from_second(t).ok()?));
        // Start a day late: in a fold, local times after `unix`'s wall clock may map to
        // instants before it.
        let mut date = local(unix)?.date().tomorrow().ok()?;
        let stop = local(not_before)?.date().yesterday().ok()?;
        for _ in 0..SEARCH_DAYS {
            if date < stop {
                return None;
            }
            if self.day_matches(date) {
                for hour in bits(u64::from(self.cron.hours), 23).rev() {
                    for minute in bits(self.cron.minutes, 59).rev() {
                        let fire = self.instant(date, hour, minute)?;
                        if fire <= unix {
                            return Some(fire);
                        }
                    }
                }
            }
            date = date.yesterday().ok()?;
        }
        None
    }

    fn day_matches(&self, date: Date) -> bool {
        let weekday = date.weekday().to_sunday_zero_offset() as u32;
        self.cron
            .day_matches(date.month() as u32, date.day() as u32, weekday)
    }

    /// The next day worth looking at: tomorrow, or the 1st of next month when the
    /// schedule never fires in this month.
    fn next_candidate_day(&self, date: Date) -> Option<Date> {
        if self.cron.month_matches(date.month() as u32) {
            date.tomorrow().ok()
        } else {
            date.last_of_month().tomorrow().ok()
        }
    }

    /// The instant a local wall-clock time fires at, under the DST rules of the module
    /// docs. Never decreases as the local time increases, which both walks rely on.
    fn instant(&self, date: Date, hour: u32, minute: u32) -> Option<i64> {
        let dt = DateTime::new(
            date.year(),
            date.month(),
            date.day(),
            hour as i8,
            minute as i8,
            0,
            0,
        )
        .ok()?;
        let ts = match self.zone.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok()?,
            // The first occurrence: the offset in force before the clocks went back.
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt).ok()?,
            // The transition itself. Read with the later offset, `dt` lies before it.
            AmbiguousOffset::Gap { after, .. } => {
                let early = after.to_timestamp(dt).ok()?;
                self.zone.following(early).next()?.timestamp()
            }
        };
        Some(ts.as_second())
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.expr, self.zone_name)
    }
}

/// What the scheduler should run now. Given the last recorded fire time (or, before the
/// first run, the schedule's creation time) and `now`, returns the fire time of the one
/// run that is due — the latest one in `(last_fired, now]` — or `None` if none is.
/// Missed runs while the control plane was down run once, not once per missed slot:
/// a backup taken now covers them all. Record the returned time as the new
/// `last_fired`.
pub fn due(schedule: &Schedule, last_fired: i64, now: i64) -> Option<i64> {
    if now <= last_fired {
        return None;
    }
    schedule
        .last_at_or_before(now, last_fired)
        .filter(|&fire| fire > last_fired)
}

/// The set bits of `set` from 0 to `max`, in order.
fn bits(set: u64, max: u32) -> impl DoubleEndedIterator<Item = u32> {
    (0..=max).filter(move |b| set & (1 << b) != 0)
}

/// Local calendar fields in a time zone, for [`crate::retention::plan`].
#[derive(Debug, Clone)]
pub struct ZoneCalendar(TimeZone);

impl crate::retention::LocalCalendar for ZoneCalendar {
    fn local(&self, unix: i64) -> crate::time::UtcDateTime {
        match Timestamp::from_second(unix) {
            Ok(t) => {
                let d = self.0.to_datetime(t);
                crate::time::UtcDateTime {
                    year: i64::from(d.year()),
                    month: d.month() as u32,
                    day: d.day() as u32,
                    hour: d.hour() as u32,
                    minute: d.minute() as u32,
                    second: d.second() as u32,
                }
            }
            // Outside jiff's range (years beyond ±9999): UTC fields, as good as any.
            Err(_) => crate::time::UtcDateTime::from_unix(unix),
        }
    }
}
