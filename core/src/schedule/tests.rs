//! Expected times are written by hand in UTC and read with `crate::time`, not with
//! jiff, so a mistake in how this module uses jiff cannot hide in the expectations.

use super::*;
use crate::time::{parse_rfc3339, UtcDateTime};

fn at(text: &str) -> i64 {
    parse_rfc3339(text).unwrap_or_else(|| panic!("bad test time {text}"))
}

fn show(unix: i64) -> String {
    UtcDateTime::from_unix(unix).rfc3339()
}

/// The first `n` fire times strictly after `after`, in UTC.
fn fires(cron: &str, zone: &str, after: &str, n: usize) -> Vec<String> {
    let schedule = Schedule::parse(cron, zone).unwrap_or_else(|e| panic!("{cron}: {e}"));
    let mut t = at(after);
    (0..n)
        .map(|_| {
            t = schedule
                .next_after(t)
                .unwrap_or_else(|| panic!("{cron}: none"));
            show(t)
        })
        .collect()
}

#[test]
fn next_after_in_utc() {
    let cases: &[(&str, &str, &[&str])] = &[
        // Strictly after; a time between fires.
        (
            "*/15 * * * *",
            "2026-01-01T00:00:00Z",
            &["2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z"],
        ),
        (
            "*/15 * * * *",
            "2026-01-01T00:07:30Z",
            &["2026-01-01T00:15:00Z"],
        ),
        // List, range and step combined: minutes {0,5,10,11,12,30}.
        (
            "5,10-12,*/30 * * * *",
            "2026-01-01T00:04:59Z",
            &[
                "2026-01-01T00:05:00Z",
                "2026-01-01T00:10:00Z",
                "2026-01-01T00:11:00Z",
                "2026-01-01T00:12:00Z",
                "2026-01-01T00:30:00Z",
                "2026-01-01T01:00:00Z",
            ],
        ),
        // Range with a step; weekday range by name (2026-11-27 is a Friday).
        (
            "0 9-17/4 * * mon-fri",
            "2026-11-27T12:00:00Z",
            &[
                "2026-11-27T13:00:00Z",
                "2026-11-27T17:00:00Z",
                "2026-11-30T09:00:00Z",
            ],
        ),
        // Year end, month ends, a 31st that April lacks.
        (
            "0 0 * * *",
            "2026-12-31T23:59:59Z",
            &["2027-01-01T00:00:00Z"],
        ),
        (
            "30 23 31 * *",
            "2026-04-01T00:00:00Z",
            &["2026-05-31T23:30:00Z", "2026-07-31T23:30:00Z"],
        ),
        (
            "0 0 1 JAN,Jul *",
            "2026-02-01T00:00:00Z",
            &["2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z"],
        ),
        // Leap days only.
        (
            "0 12 29 2 *",
            "2026-01-01T00:00:00Z",
            &["2028-02-29T12:00:00Z", "2032-02-29T12:00:00Z"],
        ),
        (
            "0 0 28-29 feb *",
            "2027-03-01T00:00:00Z",
            &[
                "2028-02-28T00:00:00Z",
                "2028-02-29T00:00:00Z",
                "2029-02-28T00:00:00Z",
            ],
        ),
        // 7 and 0 are both Sunday (2026-11-29).
        (
            "0 0 * * 7",
            "2026-11-27T00:00:00Z",
            &["2026-11-29T00:00:00Z", "2026-12-06T00:00:00Z"],
        ),
        (
            "0 0 * * 0",
            "2026-11-27T00:00:00Z",
            &["2026-11-29T00:00:00Z"],
        ),
        (
            "0 0 * * fri-sun",
            "2026-11-26T00:00:00Z",
            &[
                "2026-11-27T00:00:00Z",
                "2026-11-28T00:00:00Z",
                "2026-11-29T00:00:00Z",
                "2026-12-04T00:00:00Z",
            ],
        ),
        (
            "0 0 * * 5-7",
            "2026-11-26T00:00:00Z",
            &[
                "2026-11-27T00:00:00Z",
                "2026-11-28T00:00:00Z",
                "2026-11-29T00:00:00Z",
                "2026-12-04T00:00:00Z",
            ],
        ),
        // Both day fields restricted: either matches (the 15th is a Sunday, the rest Fridays).
        (
            "0 0 15 * fri",
            "2026-11-01T00:00:00Z",
            &[
                "2026-11-06T00:00:00Z",
                "2026-11-13T00:00:00Z",
                "2026-11-15T00:00:00Z",
                "2026-11-20T00:00:00Z",
            ],
        ),
        // A day field starting with `*` is unrestricted: AND (1st/11th/21st/31st AND Friday).
        (
            "0 0 */10 * fri",
            "2026-11-01T00:00:00Z",
            &["2026-12-11T00:00:00Z"],
        ),
        (
            "0 0 1 * */7",
            "2026-11-01T00:00:00Z",
            &["2027-08-01T00:00:00Z"],
        ),
        // Macros.
        ("@hourly", "2026-11-27T10:59:59Z", &["2026-11-27T11:00:00Z"]),
        ("@daily", "2026-11-27T10:00:00Z", &["2026-11-28T00:00:00Z"]),
        (
            "@midnight",
            "2026-11-27T10:00:00Z",
            &["2026-11-28T00:00:00Z"],
        ),
        ("@weekly", "2026-11-27T10:00:00Z", &["2026-11-29T00:00:00Z"]),
        (
            "@monthly",
            "2026-11-27T10:00:00Z",
            &["2026-12-01T00:00:00Z"],
        ),
        ("@yearly", "2026-11-27T10:00:00Z", &["2027-01-01T00:00:00Z"]),
        (
            "@ANNUALLY",
            "2026-11-27T10:00:00Z",
            &["2027-01-01T00:00:00Z"],
        ),
    ];
    for (cron, after, want) in cases {
        assert_eq!(
            fires(cron, "UTC", after, want.len()),
            *want,
            "{cron} after {after}"
        );
    }
}

#[test]
fn daylight_saving_time() {
    // Europe/Berlin 2026: 03-29 01:00Z 02:00 CET -> 03:00 CEST; 10-25 01:00Z 03:00 CEST
    // -> 02:00 CET. America/New_York 2026: 03-08 07:00Z 02:00 EST -> 03:00 EDT; 11-01
    // 06:00Z 02:00 EDT -> 01:00 EST.
    let cases: &[(&str, &str, &str, &[&str])] = &[
        // Before and after the gap: 02:30 is CET, then CEST.
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2026-03-27T12:00:00Z",
            &[
                "2026-03-28T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:30:00Z",
            ],
        ),
        // Every time inside the gap collapses into one fire at 03:00 CEST; 03:00 itself too.
        (
            "Europe/Berlin",
            "*/15 2,3 * * *",
            "2026-03-29T00:50:00Z",
            &[
                "2026-03-29T01:00:00Z",
                "2026-03-29T01:15:00Z",
                "2026-03-29T01:30:00Z",
                "2026-03-29T01:45:00Z",
                "2026-03-30T00:00:00Z",
            ],
        ),
        // Fold: 02:30 fires at its first occurrence (CEST) only.
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2026-10-24T12:00:00Z",
            &["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"],
        ),
        // Hourly: 02:00 CEST fires, 02:00 CET does not, then 03:00 CET.
        (
            "Europe/Berlin",
            "0 * * * *",
            "2026-10-24T23:30:00Z",
            &[
                "2026-10-25T00:00:00Z",
                "2026-10-25T02:00:00Z",
                "2026-10-25T03:00:00Z",
            ],
        ),
        // Asked during the second pass of the fold: nothing more fires in it.
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2026-10-25T01:10:00Z",
            &["2026-10-26T01:30:00Z"],
        ),
        (
            "Europe/Berlin",
            "0 * * * *",
            "2026-10-25T01:10:00Z",
            &["2026-10-25T02:00:00Z"],
        ),
        (
            "America/New_York",
            "30 2 * * *",
            "2026-03-07T12:00:00Z",
            &["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"],
        ),
        (
            "America/New_York",
            "30 1 * * *",
            "2026-10-31T12:00:00Z",
            &["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"],
        ),
        (
            "America/New_York",
            "0 0 * * *",
            "2026-11-01T12:00:00Z",
            &["2026-11-02T05:00:00Z"],
        ),
        // Far beyond the zone file's explicit transitions (its POSIX rule): 2040-03-25.
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2040-03-24T12:00:00Z",
            &["2040-03-25T01:00:00Z", "2040-03-26T00:30:00Z"],
        ),
        // Name spelling is normalised by the tz database.
        (
            "europe/berlin",
            "0 12 1 7 *",
            "2026-01-01T00:00:00Z",
            &["2026-07-01T10:00:00Z"],
        ),
    ];
    for (zone, cron, after, want) in cases {
        assert_eq!(
            fires(cron, zone, after, want.len()),
            *want,
            "{cron} in {zone} after {after}"
        );
    }
}

#[test]
fn parse_errors_name_the_field_and_range() {
    let cases: &[(&str, &str)] = &[
        ("61 * * * *", "minute field \"61\": values are 0-59"),
        ("99999999999 * * * *", "minute field \"99999999999\": values are 0-59"),
        ("1,61 * * * *", "minute field \"1,61\": 61 is out of range; values are 0-59"),
        ("* 24 * * *", "hour field \"24\": values are 0-23"),
        // The first bad field in written order is the one reported.
        ("60 24 32 13 8", "minute field \"60\": values are 0-59"),
        ("0 0 32 13 8", "day-of-month field \"32\": values are 1-31"),
        ("* * 0 * *", "day-of-month field \"0\": values are 1-31"),
        ("* * * 13 *", "month field \"13\": values are 1-12 or jan-dec"),
        ("* * * * 8", "day-of-week field \"8\": values are 0-7 (0 and 7 are Sunday) or sun-sat"),
        ("* * * foo *", "month field \"foo\": \"foo\" is not a value; values are 1-12 or jan-dec"),
        ("* * * * monday", "day-of-week field \"monday\": \"monday\" is not a value; values are 0-7 (0 and 7 are Sunday) or sun-sat"),
        ("*/0 * * * *", "minute field \"*/0\": step \"0\" must be a number 1-59"),
        ("*/60 * * * *", "minute field \"*/60\": step \"60\" must be a number 1-59"),
        ("*/ * * * *", "minute field \"*/\": step \"\" must be a number 1-59"),
        ("*/+5 * * * *", "minute field \"*/+5\": step \"+5\" must be a number 1-59"),
        ("5/10 * * * *", "minute field \"5/10\": a step needs a range: write \"*/n\" or \"5-59/n\""),
        ("10-5 * * * *", "minute field \"10-5\": range 10-5 runs backwards; values are 0-59"),
        ("-1 * * * *", "minute field \"-1\": a range is missing a value; values are 0-59"),
        ("1,,2 * * * *", "minute field \"1,,2\": a list has an empty item"),
        ("* * * * mon-", "day-of-week field \"mon-\": a range is missing a value; values are 0-7 (0 and 7 are Sunday) or sun-sat"),
        ("* * *", "cron expression \"* * *\" has 3 fields; expected 5 (minute hour day-of-month month day-of-week) or one of @hourly @daily @weekly @monthly @yearly"),
        ("* * * * * *", "cron expression \"* * * * * *\" has 6 fields; expected 5 (minute hour day-of-month month day-of-week) or one of @hourly @daily @weekly @monthly @yearly"),
        ("", "cron expression \"\" has 0 fields; expected 5 (minute hour day-of-month month day-of-week) or one of @hourly @daily @weekly @monthly @yearly"),
        ("@reboot", "unknown macro \"@reboot\": use @hourly, @daily, @weekly, @monthly or @yearly"),
        ("0 0 30 2 *", "day-of-month field \"30\" never occurs in month field \"2\": the schedule would never fire"),
        ("0 0 31 apr,jun,sep,nov *", "day-of-month field \"31\" never occurs in month field \"apr,jun,sep,nov\": the schedule would never fire"),
    ];
    for (cron, want) in cases {
        match Schedule::parse(cron, "UTC") {
            Ok(_) => panic!("{cron:?} parsed"),
            Err(e) => assert_eq!(e.to_string(), *want, "{cron:?}"),
        }
    }
    // Odd but possible: Feb 29, and Feb 30 OR'd with Mondays.
    for cron in ["0 0 29 2 *", "0 0 30 2 mon", "0 0 30 1,2 *"] {
        assert!(Schedule::parse(cron, "UTC").is_ok(), "{cron:?}");
    }
}

#[test]
fn unknown_zones_are_refused() {
    for zone in [
        "Mars/Olympus_Mons",
        "",
        "Etc/Unknown",
        "Europe/Berlin/",
        "+02:00",
    ] {
        let err = Schedule::parse("0 3 * * *", zone).unwrap_err();
        assert_eq!(err, ScheduleError::UnknownZone(zone.to_string()));
        assert_eq!(
            err.to_string(),
            format!("unknown time zone \"{zone}\": use an IANA name such as \"Europe/Berlin\" or \"UTC\"")
        );
    }
    let s = Schedule::parse(" 0 3 * * * ", "Europe/Berlin").unwrap();
    assert_eq!((s.cron(), s.zone()), ("0 3 * * *", "Europe/Berlin"));
    assert_eq!(s.to_string(), "0 3 * * * (Europe/Berlin)");
}

#[test]
fn due_runs_one_missed_fire_not_all() {
    let daily = Schedule::parse("0 3 * * *", "UTC").unwrap();
    let five = Schedule::parse("*/5 * * * *", "UTC").unwrap();
    let berlin = Schedule::parse("30 2 * * *", "Europe/Berlin").unwrap();
    let cases: &[(&Schedule, &str, &str, Option<&str>)] = &[
        // Four weeks down: only the latest missed run.
        (
            &daily,
            "2026-11-01T03:00:00Z",
            "2026-11-29T10:00:00Z",
            Some("2026-11-29T03:00:00Z"),
        ),
        (
            &daily,
            "2026-11-01T03:00:00Z",
            "2026-11-29T02:59:59Z",
            Some("2026-11-28T03:00:00Z"),
        ),
        // Three years down, every five minutes.
        (
            &five,
            "2024-01-01T00:00:00Z",
            "2026-11-29T10:07:00Z",
            Some("2026-11-29T10:05:00Z"),
        ),
        // Due exactly at the fire time.
        (
            &daily,
            "2026-11-28T03:00:00Z",
            "2026-11-29T03:00:00Z",
            Some("2026-11-29T03:00:00Z"),
        ),
        // Nothing due: already fired, created after today's slot, clock behind.
        (&daily, "2026-11-29T03:00:00Z", "2026-11-29T10:00:00Z", None),
        (&daily, "2026-11-29T03:00:01Z", "2026-11-29T10:00:00Z", None),
        (&daily, "2026-11-29T03:00:00Z", "2026-11-29T02:00:00Z", None),
        (&five, "2026-11-29T10:05:00Z", "2026-11-29T10:09:59Z", None),
        // DST: the gap's fire is due at 03:00 CEST; the fold's second 02:30 is not due.
        (
            &berlin,
            "2026-03-28T01:30:00Z",
            "2026-03-29T01:00:00Z",
            Some("2026-03-29T01:00:00Z"),
        ),
        (
            &berlin,
            "2026-03-28T01:30:00Z",
            "2026-03-29T00:59:59Z",
            None,
        ),
        (
            &berlin,
            "2026-10-25T00:30:00Z",
            "2026-10-25T01:45:00Z",
            None,
        ),
        (
            &berlin,
            "2026-10-24T00:30:00Z",
            "2026-10-25T01:45:00Z",
            Some("2026-10-25T00:30:00Z"),
        ),
    ];
    for (schedule, last, now, want) in cases {
        let got = due(schedule, at(last), at(now)).map(show);
        assert_eq!(got.as_deref(), *want, "{schedule} last {last} now {now}");
        // Recording the answer leaves nothing else due.
        if let Some(fired) = got {
            assert_eq!(due(schedule, at(&fired), at(now)), None);
        }
    }
}

/// The backward walk of `due` agrees with the forward walk of `next_after` across both
/// DST changes: each fire is due exactly at its time and not a second earlier.
#[test]
fn due_agrees_with_next_after() {
    let cases = [
        ("*/20 * * * *", "Europe/Berlin", "2026-03-28T20:00:00Z", 48),
        ("*/20 * * * *", "Europe/Berlin", "2026-10-24T20:00:00Z", 48),
        ("30 1 * * *", "America/New_York", "2026-10-29T00:00:00Z", 6),
        ("0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", 3),
    ];
    for (cron, zone, from, n) in cases {
        let schedule = Schedule::parse(cron, zone).unwrap();
        let mut last = at(from);
        for _ in 0..n {
            let fire = schedule.next_after(last).unwrap();
            assert!(fire > last);
            assert_eq!(
                due(&schedule, last, fire - 1),
                None,
                "{cron} {}",
                show(fire)
            );
            assert_eq!(
                due(&schedule, last, fire),
                Some(fire),
                "{cron} {}",
                show(fire)
            );
            last = fire;
        }
    }
}

#[test]
fn next_after_ends_at_the_calendar_edge() {
    let s = Schedule::parse("0 0 1 1 *", "UTC").unwrap();
    assert_eq!(s.next_after(at("9999-06-01T00:00:00Z")), None);
    assert_eq!(s.next_after(i64::MAX), None);
    assert_eq!(due(&s, i64::MIN, i64::MAX), None);
}
