//! The 5-field cron grammar (Vixie cron's), parsed into bit sets.
//!
//! Bit sets keep matching a constant-time test per field, so walking a schedule day by
//! day stays cheap even for rare expressions such as Feb 29.

use super::ScheduleError;

/// One field's name, bounds and (for month and weekday) its three-letter names.
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    /// Names and their values, matched case-insensitively.
    names: &'static [(&'static str, u32)],
    /// How the allowed values are described in errors.
    allowed: &'static str,
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    allowed: "values are 0-59",
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    allowed: "values are 0-23",
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    allowed: "values are 1-31",
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
    allowed: "values are 1-12 or jan-dec",
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    // 7 is Sunday too; folded onto 0 after parsing.
    max: 7,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
    allowed: "values are 0-7 (0 and 7 are Sunday) or sun-sat",
};

/// The most days each month can have (February in a leap year), to refuse Feb 30.
const MAX_DAYS: [u32; 13] = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// A parsed cron expression: one bit per allowed value of each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Cron {
    pub(super) minutes: u64,
    pub(super) hours: u32,
    /// Bits 1–31.
    days: u32,
    /// Bits 1–12.
    months: u16,
    /// Bits 0–6, Sunday = 0.
    weekdays: u8,
    /// Whether the field starts with `*`: Vixie cron's test for "unrestricted", which
    /// decides between AND and OR of the two day fields.
    day_star: bool,
    weekday_star: bool,
}

impl Cron {
    /// Parses five whitespace-separated fields or one of the `@` macros.
    pub(super) fn parse(expr: &str) -> Result<Self, ScheduleError> {
        let expr = expr.trim();
        let expanded = match expr.strip_prefix('@') {
            Some(name) => match name.to_ascii_lowercase().as_str() {
                "hourly" => "0 * * * *",
                "daily" | "midnight" => "0 0 * * *",
                "weekly" => "0 0 * * 0",
                "monthly" => "0 0 1 * *",
                "yearly" | "annually" => "0 0 1 1 *",
                _ => return Err(ScheduleError::UnknownMacro(expr.to_string())),
            },
            None => expr,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(ScheduleError::FieldCount {
                expr: expr.to_string(),
                found: fields.len(),
            });
        };
        let cron = Cron {
            minutes: parse_field(minute, &MINUTE)?,
            hours: parse_field(hour, &HOUR)? as u32,
            days: parse_field(day, &DAY_OF_MONTH)? as u32,
            months: parse_field(month, &MONTH)? as u16,
            // Fold 7 onto 0: both are Sunday.
            weekdays: {
                let bits = parse_field(weekday, &DAY_OF_WEEK)?;
                ((bits | (bits >> 7)) & 0x7f) as u8
            },
            day_star: day.starts_with('*'),
            weekday_star: weekday.starts_with('*'),
        };
        // With the AND rule the day-of-month must exist in some chosen month; with the
        // OR rule the weekday alone can fire. Refuse "30 2" rather than never firing.
        let and_rule = cron.day_star || cron.weekday_star;
        let possible = (1..=12u32).any(|m| {
            cron.months & (1 << m) != 0
                && (1..=MAX_DAYS[m as usize]).any(|d| cron.days & (1 << d) != 0)
        });
        if and_rule && !possible {
            return Err(ScheduleError::NeverFires {
                day_of_month: day.to_string(),
                month: month.to_string(),
            });
        }
        Ok(cron)
    }

    /// Whether a calendar day (month 1–12, day 1–31, weekday 0–6 with Sunday 0) is one
    /// the schedule fires on. When both day fields are restricted, either may match
    /// (Vixie cron); when one starts with `*`, both must.
    pub(super) fn day_matches(&self, month: u32, day: u32, weekday: u32) -> bool {
        if !self.month_matches(month) {
            return false;
        }
        let by_day = self.days & (1 << day) != 0;
        let by_weekday = self.weekdays & (1 << weekday) != 0;
        if self.day_star || self.weekday_star {
            by_day && by_weekday
        } else {
            by_day || by_weekday
        }
    }

    /// Whether any day of month `month` (1–12) can match.
    pub(super) fn month_matches(&self, month: u32) -> bool {
        self.months & (1 << month) != 0
    }
}

/// Parses one field (`*`, lists, ranges, steps, names) into a bit set of its values.
fn parse_field(text: &str, spec: &FieldSpec) -> Result<u64, ScheduleError> {
    let err = |reason: String| ScheduleError::Field {
        field: spec.name,
        text: text.to_string(),
        reason,
    };
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(err("a list has an empty item".to_string()));
        }
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let (low, high) = if range == "*" {
            (spec.min, spec.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, mut b) = (value(a, text, spec)?, value(b, text, spec)?);
            // `fri-sun` means Friday to Sunday: `sun` ending a range is 7, not 0.
            if spec.max == 7 && b == 0 && b_is_name(range) {
                b = 7;
            }
            if a > b {
                return Err(err(format!(
                    "range {range} runs backwards; {}",
                    spec.allowed
                )));
            }
            (a, b)
        } else {
            let v = value(range, text, spec)?;
            if step.is_some() {
                return Err(err(format!(
                    "a step needs a range: write \"*/n\" or \"{v}-{}/n\"",
                    spec.max
                )));
            }
            (v, v)
        };
        let step = match step {
            None => 1,
            Some(s) => {
                let largest = spec.max - spec.min;
                match s.parse::<u32>() {
                    Ok(n)
                        if s.bytes().all(|c| c.is_ascii_digit()) && (1..=largest).contains(&n) =>
                    {
                        n
                    }
                    _ => return Err(err(format!("step \"{s}\" must be a number 1-{largest}"))),
                }
            }
        };
        for v in (low..=high).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

/// Whether the end of range `a-b` is written as a name rather than a number.
fn b_is_name(range: &str) -> bool {
    range
        .rsplit('-')
        .next()
        .is_some_and(|b| b.bytes().all(|c| c.is_ascii_alphabetic()))
}

/// One value: a number in the field's bounds or one of its names.
fn value(token: &str, field: &str, spec: &FieldSpec) -> Result<u32, ScheduleError> {
    let reason = if token.is_empty() {
        format!("a range is missing a value; {}", spec.allowed)
    } else if token.bytes().all(|c| c.is_ascii_digit()) {
        match token.parse::<u32>() {
            Ok(v) if (spec.min..=spec.max).contains(&v) => return Ok(v),
            _ if token == field => spec.allowed.to_string(),
            _ => format!("{token} is out of range; {}", spec.allowed),
        }
    } else if let Some(&(_, v)) = spec
        .names
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(token))
    {
        return Ok(v);
    } else {
        format!("\"{token}\" is not a value; {}", spec.allowed)
    };
    Err(ScheduleError::Field {
        field: spec.name,
        text: field.to_string(),
        reason,
    })
}
