//! Local calendar fields of an instant and the GFS buckets (day, ISO week, month, year)
//! that retention groups backups by.
//!
//! Buckets are computed from the *local* wall-clock date of the schedule's time zone,
//! because "one backup per day" means the customer's day, not UTC's. The zone lookup is
//! the caller's job (see [`LocalCalendar`]) so that this crate stays free of a time-zone
//! database.

use crate::time::{civil_from_days, days_from_civil, UtcDateTime};

/// Turns an instant into the wall-clock calendar fields of the schedule's time zone.
///
/// A trait rather than a plain offset so that a caller with a real time-zone database
/// can supply the offset that applies *at each instant* (daylight saving changes it)
/// without changing [`plan`](super::plan). Today's caller passes a [`FixedOffset`];
/// any `Fn(i64) -> UtcDateTime` closure also works. The returned fields are local
/// wall-clock time; [`UtcDateTime`] is reused only as a plain calendar record.
pub trait LocalCalendar {
    /// Local calendar fields of `unix` (seconds since 1970-01-01T00:00:00Z).
    fn local(&self, unix: i64) -> UtcDateTime;
}

impl<F: Fn(i64) -> UtcDateTime> LocalCalendar for F {
    fn local(&self, unix: i64) -> UtcDateTime {
        self(unix)
    }
}

/// A constant offset from UTC, in seconds east of Greenwich (`+02:00` is `7200`).
///
/// The caller resolves the schedule's zone to the offset in force (for example at
/// `now`); a backup taken on the other side of a daylight-saving change is then
/// bucketed one hour off, which can move a backup within an hour of midnight into the
/// neighbouring day. That only changes *which* backup of two adjacent days is kept,
/// never how many, and goes away once a per-instant [`LocalCalendar`] is supplied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedOffset {
    secs: i32,
}

impl FixedOffset {
    /// UTC itself, the zone of schedules that name none.
    pub const UTC: Self = Self { secs: 0 };

    /// An offset of `secs` seconds east of UTC, or `None` when it is a day or more
    /// (no real zone comes close; such a value is a unit mistake, e.g. minutes × 60 twice).
    pub fn new(secs: i32) -> Option<Self> {
        (secs.unsigned_abs() < 86_400).then_some(Self { secs })
    }

    /// Seconds east of UTC.
    pub fn secs(&self) -> i32 {
        self.secs
    }
}

impl LocalCalendar for FixedOffset {
    fn local(&self, unix: i64) -> UtcDateTime {
        UtcDateTime::from_unix(unix.saturating_add(i64::from(self.secs)))
    }
}

/// A local calendar date, the daily bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of the month, 1–31.
    pub day: u32,
}

/// An ISO 8601 week, the weekly bucket: weeks start on Monday and belong to the
/// week-year that holds their Thursday, so 2021-01-03 is in week 53 of 2020.
///
/// ISO weeks (rather than "Sunday-started" or "days / 7") are used because every week
/// then has exactly seven days and none is split by New Year, so a week-year boundary
/// cannot keep two backups from one week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    /// ISO week-numbering year (may differ from the calendar year near 1 January).
    pub year: i64,
    /// Week number, 1–53.
    pub week: u32,
}

/// A local calendar month, the monthly bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
}

impl Date {
    /// The date part of local calendar fields.
    pub fn of(local: &UtcDateTime) -> Self {
        Self {
            year: local.year,
            month: local.month,
            day: local.day,
        }
    }

    /// The month this date falls in.
    pub fn year_month(&self) -> YearMonth {
        YearMonth {
            year: self.year,
            month: self.month,
        }
    }

    /// The ISO 8601 week this date falls in, computed from the date alone: find the
    /// Thursday of the date's Monday-started week; its calendar year is the week-year,
    /// and its distance from 1 January of that year gives the week number.
    pub fn iso_week(&self) -> IsoWeek {
        let days = days_from_civil(self.year, self.month, self.day);
        // 1970-01-01 (day 0) was a Thursday; Monday = 1 … Sunday = 7.
        let weekday = (days + 3).rem_euclid(7) + 1;
        let thursday = days - (weekday - 4);
        let (year, _, _) = civil_from_days(thursday);
        let week = (thursday - days_from_civil(year, 1, 1)) / 7 + 1;
        IsoWeek {
            year,
            week: week as u32,
        }
    }
}
