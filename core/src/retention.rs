//! Retention planning: which backups of one schedule to keep and which to delete.
//!
//! [`plan`] is pure — backups, rules, a calendar and `now` in; a [`Plan`] out — so that
//! every rule below is a table-driven unit test. The control plane's executor does the
//! deletions and the audit rows; nothing here touches storage or the clock.
//!
//! # Rules (grandfather–father–son, as restic / rustic `forget`)
//!
//! Successful backups that are not in the future are walked newest first (ties on
//! `finished_at` broken by `id`, the greater id counting as newer, so the result does
//! not depend on input order). A backup is kept when any rule claims it:
//!
//! - `keep_last = N`: the N newest backups.
//! - `keep_daily = N`: the newest backup of each of the N most recent distinct local
//!   calendar days that have a backup. Days without a backup do not use up the count,
//!   so a schedule that stopped for a month still keeps N days of history.
//! - `keep_weekly`, `keep_monthly`, `keep_yearly`: the same with ISO 8601 weeks
//!   (Monday-started, week-year of the Thursday; see [`IsoWeek`]), months and years.
//!
//! A bucket counts as used once a backup in it is kept, and membership is checked
//! against the set of buckets used so far rather than "differs from the previous
//! backup's bucket" (restic's test): the two agree for a fixed offset, and the set
//! stays right if a per-instant zone ever makes local dates run backwards (a
//! daylight-saving change at midnight). A backup kept for several reasons lists them
//! all, so the audit row says every reason it survived.
//!
//! Calendar boundaries are those of the schedule's time zone, supplied by the caller as
//! a [`LocalCalendar`]; today that is a [`FixedOffset`] the caller resolved from the
//! zone, and the trait lets a later caller pass a real per-instant zone unchanged.
//!
//! # Safety rules (from issue 7: a run of failures must not erase history)
//!
//! A plan deletes a backup only when all of these hold; otherwise it keeps it and says
//! why:
//!
//! 1. **No rules means keep everything** ([`Reason::NoRules`]). All counts zero is what
//!    an unset retention looks like, and "delete all" is never a sane reading of it
//!    (restic refuses to run `forget` without a policy for the same reason).
//! 2. **The newest successful backup is always kept** ([`Reason::Newest`]), whatever the
//!    rules. Any non-zero rule keeps it anyway; this makes it true by construction.
//!    "Newest" means newest not in the future (rule 4).
//! 3. **Recent failures hold all deletions** ([`Reason::RecentFailures`]). A failure is
//!    *recent* when its record comes after the newest successful backup in the order
//!    above — i.e. the latest attempt(s) failed. One such failure is enough: the planner
//!    cannot tell a transient failure from the start of a long outage, and waiting for
//!    the next success costs one schedule interval of storage, while deleting during an
//!    outage erases history that nothing replaces. Failures older than the newest
//!    success do not hold anything. Failures in the future count (skew errs towards
//!    keeping). [`Plan::recent_failures`] says how many there are.
//! 4. **Backups in the future are kept** ([`Reason::InFuture`]) and take no part in the
//!    rules: `finished_at > now` means clock skew somewhere, and counting such a backup
//!    as "newest" would let rules delete the backups that really are the newest.
//! 5. **A duplicated id is deleted only if every entry with it would be** (otherwise
//!    [`Reason::DuplicateId`]): ids name objects, and a plan must never both keep and
//!    delete one object.
//!
//! Failed attempts have no object (a failed job never leaves one under a final name),
//! so they are not deletion candidates: each appears once with `keep = true` and
//! [`Reason::NotSucceeded`]. `keep == false` therefore means exactly "delete this
//! backup's object", and the executor's only destructive branch cannot be reached for a
//! record that has nothing to delete. Pruning failed *rows* is not retention's job.

mod calendar;
#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashSet};

pub use calendar::{Date, FixedOffset, IsoWeek, LocalCalendar, YearMonth};

/// How many backups of one schedule to keep. All zero keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rules {
    /// Keep the N newest successful backups.
    pub keep_last: u32,
    /// Keep the newest backup of each of the N most recent local days that have one.
    pub keep_daily: u32,
    /// Keep the newest backup of each of the N most recent ISO weeks that have one.
    pub keep_weekly: u32,
    /// Keep the newest backup of each of the N most recent months that have one.
    pub keep_monthly: u32,
    /// Keep the newest backup of each of the N most recent years that have one.
    pub keep_yearly: u32,
}

impl Rules {
    /// Whether every count is zero, which [`plan`] reads as "keep everything".
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// How a backup attempt ended. Only successes have an object in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The object was completed under its final name.
    Succeeded,
    /// The attempt failed; no object exists under a final name.
    Failed,
}

/// One backup attempt of the schedule, as recorded by the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// The record's id; the executor maps it to the object to delete.
    pub id: String,
    /// When the attempt finished, in seconds since the Unix epoch (UTC).
    pub finished_at: i64,
    /// Whether it produced an object.
    pub outcome: Outcome,
}

/// Why a backup is kept (or, for [`Reason::NotSucceeded`], why it is left alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Among the `keep_last` newest; the value is the rank, 1 = newest.
    Last(u32),
    /// Newest backup of this local day, within `keep_daily`.
    Daily(Date),
    /// Newest backup of this ISO week, within `keep_weekly`.
    Weekly(IsoWeek),
    /// Newest backup of this month, within `keep_monthly`.
    Monthly(YearMonth),
    /// Newest backup of this year, within `keep_yearly`.
    Yearly(i64),
    /// The newest successful backup not in the future; never deleted.
    Newest,
    /// Finished after `now` (clock skew); kept and ignored by the rules.
    InFuture,
    /// Every rule count is zero, which keeps everything.
    NoRules,
    /// The latest attempt(s) failed, so this plan deletes nothing.
    RecentFailures,
    /// A failed attempt: there is no object, so nothing to delete.
    NotSucceeded,
    /// Another entry with the same id is kept, so this one is too.
    DuplicateId,
}

/// What to do with one backup record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The record's id, as given.
    pub id: String,
    /// When it finished, as given; lets the audit row and the UI show it without a join.
    pub finished_at: i64,
    /// `false` means exactly "delete this backup's object"; everything else is `true`.
    pub keep: bool,
    /// Every reason it is kept, in a fixed order; empty exactly when `keep` is `false`.
    pub reasons: Vec<Reason>,
}

/// The outcome of [`plan`]: one decision per input record, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// One decision per input record, in the planner's order (newest first).
    pub decisions: Vec<Decision>,
    /// Failed attempts after the newest successful backup (all failures when there is
    /// no success yet). Non-zero means deletions are held; the UI should say so.
    pub recent_failures: usize,
}

impl Plan {
    /// Ids of the backups whose objects should be deleted.
    pub fn deletions(&self) -> impl Iterator<Item = &str> {
        self.decisions
            .iter()
            .filter(|d| !d.keep)
            .map(|d| d.id.as_str())
    }
}

/// Plans retention for the backups of one schedule. See the module docs for the rules.
///
/// `calendar` gives local calendar fields in the schedule's zone; `now` is seconds since
/// the Unix epoch, passed in so that the plan is a function of its arguments only.
pub fn plan(backups: &[Backup], rules: &Rules, calendar: &dyn LocalCalendar, now: i64) -> Plan {
    let mut order: Vec<&Backup> = backups.iter().collect();
    order.sort_by(|a, b| (b.finished_at, &b.id).cmp(&(a.finished_at, &a.id)));

    let succeeded = |b: &Backup| b.outcome == Outcome::Succeeded;
    let newest = order
        .iter()
        .position(|b| succeeded(b) && b.finished_at <= now);
    let recent_failures = order[..newest.unwrap_or(order.len())]
        .iter()
        .filter(|b| !succeeded(b))
        .count();

    let mut walk = Walk::new(rules);
    let mut decisions: Vec<Decision> = order
        .iter()
        .enumerate()
        .map(|(index, backup)| {
            let mut reasons = Vec::new();
            if !succeeded(backup) {
                reasons.push(Reason::NotSucceeded);
            } else if backup.finished_at > now {
                reasons.push(Reason::InFuture);
            } else {
                if newest == Some(index) {
                    reasons.push(Reason::Newest);
                }
                walk.claim(calendar.local(backup.finished_at), &mut reasons);
                if rules.is_empty() {
                    reasons.push(Reason::NoRules);
                }
                if recent_failures > 0 {
                    reasons.push(Reason::RecentFailures);
                }
            }
            Decision {
                id: backup.id.clone(),
                finished_at: backup.finished_at,
                keep: !reasons.is_empty(),
                reasons,
            }
        })
        .collect();

    let kept: HashSet<String> = decisions
        .iter()
        .filter(|d| d.keep)
        .map(|d| d.id.clone())
        .collect();
    for decision in decisions.iter_mut().filter(|d| !d.keep) {
        if kept.contains(&decision.id) {
            decision.keep = true;
            decision.reasons.push(Reason::DuplicateId);
        }
    }

    Plan {
        decisions,
        recent_failures,
    }
}

/// The state of the newest-first walk: how many backups `keep_last` has taken and
/// which buckets each GFS rule has used.
struct Walk<'r> {
    rules: &'r Rules,
    ranked: u32,
    days: BTreeSet<Date>,
    weeks: BTreeSet<IsoWeek>,
    months: BTreeSet<YearMonth>,
    years: BTreeSet<i64>,
}

impl<'r> Walk<'r> {
    fn new(rules: &'r Rules) -> Self {
        Self {
            rules,
            ranked: 0,
            days: BTreeSet::new(),
            weeks: BTreeSet::new(),
            months: BTreeSet::new(),
            years: BTreeSet::new(),
        }
    }

    /// Records the next (older) backup, finished at local time `local`, and pushes a
    /// reason for every rule that keeps it.
    fn claim(&mut self, local: crate::time::UtcDateTime, reasons: &mut Vec<Reason>) {
        self.ranked = self.ranked.saturating_add(1);
        if self.ranked <= self.rules.keep_last {
            reasons.push(Reason::Last(self.ranked));
        }
        let date = Date::of(&local);
        if take(&mut self.days, date, self.rules.keep_daily) {
            reasons.push(Reason::Daily(date));
        }
        let week = date.iso_week();
        if take(&mut self.weeks, week, self.rules.keep_weekly) {
            reasons.push(Reason::Weekly(week));
        }
        let month = date.year_month();
        if take(&mut self.months, month, self.rules.keep_monthly) {
            reasons.push(Reason::Monthly(month));
        }
        if take(&mut self.years, date.year, self.rules.keep_yearly) {
            reasons.push(Reason::Yearly(date.year));
        }
    }
}

/// Uses `bucket` if it is new and fewer than `limit` buckets are used; says whether it
/// did (the backup being walked is then the newest of that bucket, so it is kept).
fn take<T: Ord>(used: &mut BTreeSet<T>, bucket: T, limit: u32) -> bool {
    if used.contains(&bucket) || used.len() >= limit as usize {
        return false;
    }
    used.insert(bucket)
}
