//! Retention plans checked against a table of cases (issue 7): GFS boundaries, time
//! zones, failures, ordering. Each case states the ids of the *successful* backups it
//! keeps; failed records are checked by the invariants instead (always `keep`, with
//! `NotSucceeded` only).

use super::*;
use crate::time::{parse_rfc3339, UtcDateTime};
use Outcome::{Failed as F, Succeeded as S};

fn at(text: &str) -> i64 {
    parse_rfc3339(text).unwrap_or_else(|| panic!("bad test time {text}"))
}

const fn rules(last: u32, daily: u32, weekly: u32, monthly: u32, yearly: u32) -> Rules {
    Rules {
        keep_last: last,
        keep_daily: daily,
        keep_weekly: weekly,
        keep_monthly: monthly,
        keep_yearly: yearly,
    }
}

struct Case {
    name: &'static str,
    rules: Rules,
    /// Seconds east of UTC.
    offset: i32,
    now: &'static str,
    backups: &'static [(&'static str, &'static str, Outcome)],
    /// Ids of successful backups kept, in any order.
    keep: &'static [&'static str],
}

const NOW: &str = "2030-01-01T00:00:00Z";

/// What most cases share, planned in UTC at [`NOW`] with no backups: a case states only
/// what it is about and takes the rest with `..UTC_NOW`.
const UTC_NOW: Case = Case {
    name: "",
    rules: rules(0, 0, 0, 0, 0),
    offset: 0,
    now: NOW,
    backups: &[],
    keep: &[],
};

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "empty input",
            rules: rules(3, 7, 4, 12, 2),
            ..UTC_NOW
        },
        Case {
            name: "keep_last only",
            rules: rules(2, 0, 0, 0, 0),
            backups: &[
                ("a", "2024-05-01T01:00:00Z", S),
                ("b", "2024-05-01T02:00:00Z", S),
                ("c", "2024-05-01T03:00:00Z", S),
                ("d", "2024-05-01T04:00:00Z", S),
            ],
            keep: &["c", "d"],
            ..UTC_NOW
        },
        Case {
            name: "unsorted input plans like sorted input",
            rules: rules(2, 0, 0, 0, 0),
            backups: &[
                ("c", "2024-05-01T03:00:00Z", S),
                ("a", "2024-05-01T01:00:00Z", S),
                ("d", "2024-05-01T04:00:00Z", S),
                ("b", "2024-05-01T02:00:00Z", S),
            ],
            keep: &["c", "d"],
            ..UTC_NOW
        },
        Case {
            name: "equal timestamps: the greater id is newer",
            rules: rules(1, 1, 0, 0, 0),
            backups: &[
                ("b", "2024-05-01T03:00:00Z", S),
                ("c", "2024-05-01T03:00:00Z", S),
                ("a", "2024-05-01T03:00:00Z", S),
            ],
            keep: &["c"],
            ..UTC_NOW
        },
        Case {
            name: "daily in UTC: one day",
            rules: rules(0, 2, 0, 0, 0),
            backups: &[
                ("d1", "2024-03-10T20:00:00Z", S),
                ("d2", "2024-03-10T21:30:00Z", S),
                ("d3", "2024-03-10T22:30:00Z", S),
                ("d4", "2024-03-10T23:30:00Z", S),
            ],
            keep: &["d4"],
            ..UTC_NOW
        },
        Case {
            name: "daily at +02:00: local midnight splits the same instants",
            rules: rules(0, 2, 0, 0, 0),
            offset: 7200,
            backups: &[
                ("d1", "2024-03-10T20:00:00Z", S), // 22:00 on the 10th
                ("d2", "2024-03-10T21:30:00Z", S), // 23:30 on the 10th
                ("d3", "2024-03-10T22:30:00Z", S), // 00:30 on the 11th
                ("d4", "2024-03-10T23:30:00Z", S), // 01:30 on the 11th
            ],
            keep: &["d2", "d4"],
            ..UTC_NOW
        },
        Case {
            name: "daily at -05:00: UTC's next day is still local today",
            rules: rules(0, 2, 0, 0, 0),
            offset: -5 * 3600,
            backups: &[
                ("e1", "2024-03-10T23:00:00Z", S), // 18:00 on the 10th
                ("e2", "2024-03-11T03:00:00Z", S), // 22:00 on the 10th
                ("e3", "2024-03-11T04:59:59Z", S), // 23:59:59 on the 10th
                ("e4", "2024-03-11T05:00:00Z", S), // 00:00 on the 11th
                ("e5", "2024-03-11T06:00:00Z", S), // 01:00 on the 11th
            ],
            keep: &["e3", "e5"],
            ..UTC_NOW
        },
        Case {
            name: "weekly across New Year: 2020-W53 runs to 2021-01-03",
            rules: rules(0, 0, 3, 0, 0),
            backups: &[
                ("w52", "2020-12-27T12:00:00Z", S), // Sunday, 2020-W52
                ("mon", "2020-12-28T12:00:00Z", S), // Monday, 2020-W53
                ("thu", "2020-12-31T12:00:00Z", S), // 2020-W53
                ("sun", "2021-01-03T12:00:00Z", S), // still 2020-W53
                ("w01", "2021-01-04T12:00:00Z", S), // 2021-W01
            ],
            keep: &["w01", "sun", "w52"],
            ..UTC_NOW
        },
        Case {
            name: "yearly splits where the ISO week does not",
            rules: rules(0, 0, 0, 0, 2),
            backups: &[
                ("w52", "2020-12-27T12:00:00Z", S),
                ("thu", "2020-12-31T12:00:00Z", S),
                ("sun", "2021-01-03T12:00:00Z", S),
                ("w01", "2021-01-04T12:00:00Z", S),
            ],
            keep: &["w01", "thu"],
            ..UTC_NOW
        },
        Case {
            name: "weekly at +01:00: Sunday 23:30 UTC is already Monday",
            rules: rules(0, 0, 2, 0, 0),
            offset: 3600,
            backups: &[
                ("sat", "2021-01-02T12:00:00Z", S),
                ("sun", "2021-01-03T23:30:00Z", S), // Monday 00:30, 2021-W01
                ("tue", "2021-01-05T12:00:00Z", S),
            ],
            keep: &["tue", "sat"],
            ..UTC_NOW
        },
        Case {
            name: "monthly across month ends and a leap February",
            rules: rules(0, 0, 0, 3, 0),
            backups: &[
                ("jan31", "2024-01-31T23:00:00Z", S),
                ("feb01", "2024-02-01T00:30:00Z", S),
                ("feb29", "2024-02-29T12:00:00Z", S),
                ("mar01", "2024-03-01T00:00:00Z", S),
            ],
            keep: &["mar01", "feb29", "jan31"],
            ..UTC_NOW
        },
        Case {
            name: "monthly at +01:00: 31 January 23:00 UTC is February",
            rules: rules(0, 0, 0, 3, 0),
            offset: 3600,
            backups: &[
                ("dec", "2023-12-15T12:00:00Z", S),
                ("jan31", "2024-01-31T23:00:00Z", S), // 1 February 00:00
                ("feb01", "2024-02-01T00:30:00Z", S),
                ("feb29", "2024-02-29T23:30:00Z", S), // 1 March 00:30
            ],
            keep: &["feb29", "feb01", "dec"],
            ..UTC_NOW
        },
        Case {
            name: "daily around a leap day",
            rules: rules(0, 3, 0, 0, 0),
            backups: &[
                ("feb28", "2024-02-28T23:59:59Z", S),
                ("feb29a", "2024-02-29T00:00:00Z", S),
                ("feb29b", "2024-02-29T23:59:59Z", S),
                ("mar01", "2024-03-01T00:00:00Z", S),
            ],
            keep: &["mar01", "feb29b", "feb28"],
            ..UTC_NOW
        },
        Case {
            name: "days without backups do not use up keep_daily",
            rules: rules(0, 2, 0, 0, 0),
            backups: &[
                ("old", "2024-01-01T12:00:00Z", S),
                ("older", "2023-06-01T12:00:00Z", S),
                ("oldest", "2023-01-01T12:00:00Z", S),
            ],
            keep: &["old", "older"],
            ..UTC_NOW
        },
        Case {
            name: "overlapping rules keep the union",
            rules: rules(2, 2, 2, 2, 2),
            backups: &[
                ("y23", "2023-06-15T12:00:00Z", S),
                ("m0", "2024-04-01T12:00:00Z", S),
                ("m1", "2024-04-10T12:00:00Z", S),
                ("w1", "2024-05-01T12:00:00Z", S),
                ("z", "2024-05-06T06:00:00Z", S),
                ("d1", "2024-05-06T12:00:00Z", S),
                ("x", "2024-05-07T06:00:00Z", S),
                ("n", "2024-05-07T12:00:00Z", S),
            ],
            // last: n, x; daily: n, d1; weekly: n (W19), w1 (W18);
            // monthly: n (May), m1 (April); yearly: n, y23. Not z (day and week
            // already used) nor m0 (April already used).
            keep: &["n", "x", "d1", "w1", "m1", "y23"],
            ..UTC_NOW
        },
        Case {
            name: "a single yearly rule still keeps the newest success",
            rules: rules(0, 0, 0, 0, 1),
            backups: &[
                ("a", "2024-05-01T01:00:00Z", S),
                ("b", "2024-05-02T01:00:00Z", S),
                ("c", "2024-05-03T01:00:00Z", S),
                ("f", "2024-04-30T01:00:00Z", F),
            ],
            keep: &["c"],
            ..UTC_NOW
        },
        Case {
            name: "all rules zero keeps everything",
            rules: rules(0, 0, 0, 0, 0),
            backups: &[
                ("a", "2024-05-01T01:00:00Z", S),
                ("b", "2024-05-02T01:00:00Z", S),
            ],
            keep: &["a", "b"],
            ..UTC_NOW
        },
        Case {
            name: "a run of failures after the newest success deletes nothing",
            rules: rules(1, 0, 0, 0, 0),
            backups: &[
                ("a", "2024-05-01T01:00:00Z", S),
                ("b", "2024-05-02T01:00:00Z", S),
                ("c", "2024-05-03T01:00:00Z", S),
                ("f1", "2024-05-04T01:00:00Z", F),
                ("f2", "2024-05-05T01:00:00Z", F),
                ("f3", "2024-05-06T01:00:00Z", F),
            ],
            keep: &["a", "b", "c"],
            ..UTC_NOW
        },
        Case {
            name: "one failure after the newest success is enough to hold",
            rules: rules(1, 0, 0, 0, 0),
            backups: &[
                ("a", "2024-05-01T01:00:00Z", S),
                ("b", "2024-05-02T01:00:00Z", S),
                ("f", "2024-05-02T01:00:01Z", F),
            ],
            keep: &["a", "b"],
            ..UTC_NOW
        },
        Case {
            name: "a failure tied with the newest success but ordered after it holds",
            rules: rules(1, 0, 0, 0, 0),
            backups: &[
                ("a", "2024-05-01T01:00:00Z", S),
                ("b", "2024-05-02T01:00:00Z", S),
                ("c", "2024-05-02T01:00:00Z", F),
            ],
            keep: &["a", "b"],
            ..UTC_NOW
        },
        Case {
            name: "failures older than the newest success do not hold",
            rules: rules(1, 0, 0, 0, 0),
            backups: &[
                ("a", "2024-05-01T01:00:00Z", S),
                ("f1", "2024-05-02T01:00:00Z", F),
                ("f2", "2024-05-03T01:00:00Z", F),
                ("b", "2024-05-04T01:00:00Z", S),
            ],
            keep: &["b"],
            ..UTC_NOW
        },
        Case {
            name: "only failures: nothing to delete",
            rules: rules(1, 0, 0, 0, 0),
            backups: &[
                ("f1", "2024-05-02T01:00:00Z", F),
                ("f2", "2024-05-03T01:00:00Z", F),
            ],
            keep: &[],
            ..UTC_NOW
        },
        Case {
            name: "a backup in the future is kept and the newest past one too",
            rules: rules(1, 0, 0, 0, 0),
            now: "2024-05-10T00:00:00Z",
            backups: &[
                ("a", "2024-05-01T01:00:00Z", S),
                ("b", "2024-05-02T01:00:00Z", S),
                ("skewed", "2024-05-10T00:00:01Z", S),
            ],
            keep: &["b", "skewed"],
            ..UTC_NOW
        },
        Case {
            name: "a backup exactly at now is not in the future",
            rules: rules(1, 0, 0, 0, 0),
            now: "2024-05-10T00:00:00Z",
            backups: &[
                ("a", "2024-05-01T01:00:00Z", S),
                ("b", "2024-05-10T00:00:00Z", S),
            ],
            keep: &["b"],
            ..UTC_NOW
        },
        Case {
            name: "a failure in the future still holds deletions",
            rules: rules(1, 0, 0, 0, 0),
            now: "2024-05-10T00:00:00Z",
            backups: &[
                ("a", "2024-05-01T01:00:00Z", S),
                ("b", "2024-05-02T01:00:00Z", S),
                ("f", "2024-06-01T00:00:00Z", F),
            ],
            keep: &["a", "b"],
            ..UTC_NOW
        },
        Case {
            name: "a duplicated id kept once is kept everywhere",
            rules: rules(1, 0, 0, 0, 0),
            backups: &[
                ("a", "2024-05-01T01:00:00Z", S),
                ("dup", "2024-05-02T01:00:00Z", S),
                ("dup", "2024-05-03T01:00:00Z", S),
            ],
            keep: &["dup"],
            ..UTC_NOW
        },
    ]
}

fn run(case: &Case) -> (Vec<Backup>, Plan) {
    let backups: Vec<Backup> = case
        .backups
        .iter()
        .map(|&(id, time, outcome)| Backup {
            id: id.to_owned(),
            finished_at: at(time),
            outcome,
        })
        .collect();
    let zone = FixedOffset::new(case.offset).expect("test offset");
    let plan = plan(&backups, &case.rules, &zone, at(case.now));
    (backups, plan)
}

/// The plan of the table's case `name`, for tests that look closer at its reasons.
fn plan_of(name: &str) -> Plan {
    let case = cases().into_iter().find(|c| c.name == name).expect(name);
    run(&case).1
}

#[test]
fn table() {
    let mut deleted_somewhere = false;
    for case in cases() {
        let (backups, plan) = run(&case);
        let name = case.name;
        check_invariants(name, &backups, &plan);

        let mut kept: Vec<&str> = plan
            .decisions
            .iter()
            .filter(|d| d.keep && !d.reasons.contains(&Reason::NotSucceeded))
            .map(|d| d.id.as_str())
            .collect();
        kept.sort_unstable();
        kept.dedup();
        let mut want = case.keep.to_vec();
        want.sort_unstable();
        assert_eq!(kept, want, "{name}: kept ids\n{plan:#?}");
        deleted_somewhere |= plan.deletions().next().is_some();
    }
    // Sanity: the table would catch a planner that never deletes.
    assert!(deleted_somewhere);
}

/// Rules that hold for every plan, whatever the case expects.
fn check_invariants(name: &str, backups: &[Backup], plan: &Plan) {
    assert_eq!(
        plan.decisions.len(),
        backups.len(),
        "{name}: one per record"
    );
    for d in &plan.decisions {
        assert_eq!(d.keep, !d.reasons.is_empty(), "{name}: {d:?}");
    }
    // Newest first, ties by id.
    for pair in plan.decisions.windows(2) {
        let key = |d: &Decision| (d.finished_at, d.id.clone());
        assert!(key(&pair[0]) >= key(&pair[1]), "{name}: order");
    }
    // Failed records are never deleted and carry only NotSucceeded.
    let failed = backups.iter().filter(|b| b.outcome == F).count();
    let marked: Vec<&Decision> = plan
        .decisions
        .iter()
        .filter(|d| d.reasons == [Reason::NotSucceeded])
        .collect();
    assert_eq!(marked.len(), failed, "{name}: failed records");
    // When anything is deleted, the newest success is kept and no failure is recent.
    if plan.deletions().next().is_some() {
        assert_eq!(plan.recent_failures, 0, "{name}");
        assert!(
            plan.decisions
                .iter()
                .any(|d| d.reasons.contains(&Reason::Newest)),
            "{name}: newest kept"
        );
    }
}

fn reasons_of<'p>(plan: &'p Plan, id: &str) -> &'p [Reason] {
    let decision = plan.decisions.iter().find(|d| d.id == id);
    &decision
        .unwrap_or_else(|| panic!("no decision for {id}"))
        .reasons
}

fn date(year: i64, month: u32, day: u32) -> Date {
    Date { year, month, day }
}

#[test]
fn a_backup_kept_for_several_reasons_lists_them_all() {
    let plan = plan_of("overlapping rules keep the union");
    assert_eq!(
        reasons_of(&plan, "n"),
        [
            Reason::Newest,
            Reason::Last(1),
            Reason::Daily(date(2024, 5, 7)),
            Reason::Weekly(IsoWeek {
                year: 2024,
                week: 19
            }),
            Reason::Monthly(YearMonth {
                year: 2024,
                month: 5
            }),
            Reason::Yearly(2024),
        ]
    );
    assert_eq!(reasons_of(&plan, "x"), [Reason::Last(2)]);
    assert_eq!(reasons_of(&plan, "d1"), [Reason::Daily(date(2024, 5, 6))]);
    assert_eq!(
        reasons_of(&plan, "w1"),
        [Reason::Weekly(IsoWeek {
            year: 2024,
            week: 18
        })]
    );
    assert_eq!(reasons_of(&plan, "y23"), [Reason::Yearly(2023)]);
    assert_eq!(reasons_of(&plan, "z"), []);
    assert_eq!(plan.deletions().collect::<Vec<_>>(), ["z", "m0"]);
}

#[test]
fn held_plans_say_why() {
    let plan = plan_of("a run of failures after the newest success deletes nothing");
    assert_eq!(plan.recent_failures, 3);
    assert_eq!(
        reasons_of(&plan, "c"),
        [Reason::Newest, Reason::Last(1), Reason::RecentFailures]
    );
    // Without the hold, a and b would go: RecentFailures is their only reason.
    assert_eq!(reasons_of(&plan, "a"), [Reason::RecentFailures]);
    assert_eq!(reasons_of(&plan, "f1"), [Reason::NotSucceeded]);
    assert_eq!(plan.deletions().count(), 0);
}

#[test]
fn other_safety_reasons() {
    let plan = plan_of("a backup in the future is kept and the newest past one too");
    assert_eq!(reasons_of(&plan, "skewed"), [Reason::InFuture]);
    assert_eq!(reasons_of(&plan, "b"), [Reason::Newest, Reason::Last(1)]);

    let plan = plan_of("all rules zero keeps everything");
    assert_eq!(reasons_of(&plan, "b"), [Reason::Newest, Reason::NoRules]);
    assert_eq!(reasons_of(&plan, "a"), [Reason::NoRules]);

    let plan = plan_of("a duplicated id kept once is kept everywhere");
    assert_eq!(plan.decisions[1].reasons, [Reason::DuplicateId]);
    assert_eq!(plan.deletions().collect::<Vec<_>>(), ["a"]);

    let plan = plan_of("only failures: nothing to delete");
    assert_eq!(plan.recent_failures, 2);
}

#[test]
fn iso_weeks_of_known_dates() {
    for (y, m, d, week_year, week) in [
        (2020, 12, 27, 2020, 52),
        (2020, 12, 28, 2020, 53),
        (2020, 12, 31, 2020, 53),
        (2021, 1, 3, 2020, 53),
        (2021, 1, 4, 2021, 1),
        (2005, 1, 1, 2004, 53),
        (2007, 1, 1, 2007, 1),
        (2008, 12, 29, 2009, 1),
        (2010, 1, 3, 2009, 53),
        (2024, 2, 29, 2024, 9),
        (2024, 12, 30, 2025, 1),
        (2026, 12, 31, 2026, 53),
        (1969, 12, 31, 1970, 1),
    ] {
        assert_eq!(
            date(y, m, d).iso_week(),
            IsoWeek {
                year: week_year,
                week
            },
            "{y}-{m}-{d}"
        );
    }
}

#[test]
fn calendars() {
    assert_eq!(FixedOffset::new(86_400), None);
    assert_eq!(FixedOffset::new(-86_400), None);
    assert_eq!(FixedOffset::new(-86_399).map(|z| z.secs()), Some(-86_399));
    let t = at("2024-03-10T22:30:00Z");
    assert_eq!(FixedOffset::UTC.local(t).day, 10);
    assert_eq!(FixedOffset::new(5400).expect("offset").local(t).day, 11);

    // A caller-supplied per-instant calendar: +01:00 before a switch, +02:00 after.
    let switch = at("2024-03-31T01:00:00Z");
    let zone = move |unix: i64| {
        let offset = if unix < switch { 3600 } else { 7200 };
        UtcDateTime::from_unix(unix + offset)
    };
    let backups = [
        Backup {
            id: "before".into(),
            finished_at: at("2024-03-30T22:30:00Z"), // 23:30 on the 30th
            outcome: S,
        },
        Backup {
            id: "after".into(),
            finished_at: at("2024-03-31T22:30:00Z"), // 00:30 on 1 April
            outcome: S,
        },
    ];
    let plan = plan(&backups, &rules(0, 0, 0, 2, 0), &zone, at(NOW));
    assert_eq!(
        reasons_of(&plan, "after"),
        [
            Reason::Newest,
            Reason::Monthly(YearMonth {
                year: 2024,
                month: 4
            })
        ]
    );
    assert_eq!(
        reasons_of(&plan, "before"),
        [Reason::Monthly(YearMonth {
            year: 2024,
            month: 3
        })]
    );
}

#[test]
fn extreme_timestamps_do_not_panic() {
    let backups: Vec<Backup> = [i64::MIN, -1, 0, i64::MAX - 1, i64::MAX]
        .iter()
        .enumerate()
        .map(|(i, &finished_at)| Backup {
            id: format!("b{i}"),
            finished_at,
            outcome: S,
        })
        .collect();
    for offset in [-86_399, 0, 86_399] {
        let zone = FixedOffset::new(offset).expect("offset");
        let plan = plan(&backups, &rules(1, 1, 1, 1, 1), &zone, i64::MAX);
        check_invariants("extremes", &backups, &plan);
        assert_eq!(reasons_of(&plan, "b4")[0], Reason::Newest);
    }
}
