//! UTC calendar arithmetic for object keys, without a date library.

/// A UTC instant broken into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcDateTime {
    /// Year (proleptic Gregorian).
    pub year: i64,
    /// Month, 1–12.
    pub month: u32,
    /// Day of the month, 1–31.
    pub day: u32,
    /// Hour, 0–23.
    pub hour: u32,
    /// Minute, 0–59.
    pub minute: u32,
    /// Second, 0–59.
    pub second: u32,
}

/// Seconds since 1970-01-01T00:00:00Z now (0 if the clock is before that).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `unix` as RFC 3339 (`YYYY-MM-DDTHH:MM:SSZ`), the form audit rows and API answers
/// carry.
pub fn rfc3339(unix: i64) -> String {
    UtcDateTime::from_unix(unix).rfc3339()
}

impl UtcDateTime {
    /// The calendar fields of `secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }

    /// The current time.
    pub fn now() -> Self {
        Self::from_unix(unix_now())
    }

    /// RFC 3339, `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// ISO 8601 basic format, `YYYYMMDDTHHMMSSZ`.
    pub fn basic(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Parses exactly `YYYY-MM-DDTHH:MM:SSZ` (the form [`UtcDateTime::rfc3339`] writes) into
/// seconds since the Unix epoch. Other RFC 3339 forms (offsets, fractions) are refused so
/// that signed metadata has one spelling of each instant.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || b[19] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = &text[range];
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month as u32, day as u32);
    // Reject 2023-02-30 and friends: the day must survive the round trip.
    if civil_from_days(days) != (year, month as u32, day as u32) {
        return None;
    }
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// (year, month, day) to days since 1970-01-01, the inverse of [`civil_from_days`].
/// Crate-visible so that retention can number days and ISO weeks without a date library.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's
/// `civil_from_days` (exact for the whole proleptic Gregorian calendar). Crate-visible
/// for the same reason as [`days_from_civil`].
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(UtcDateTime::from_unix(0).basic(), "19700101T000000Z");
        assert_eq!(UtcDateTime::from_unix(-1).basic(), "19691231T235959Z");
        // 2024-02-29T12:34:56Z, a leap day.
        assert_eq!(
            UtcDateTime::from_unix(1_709_210_096).basic(),
            "20240229T123456Z"
        );
        assert_eq!(
            UtcDateTime::from_unix(1_672_531_200).basic(),
            "20230101T000000Z"
        );
        assert_eq!(
            UtcDateTime::from_unix(1_709_210_096).rfc3339(),
            "2024-02-29T12:34:56Z"
        );
    }

    #[test]
    fn parse_round_trips_and_refuses_other_forms() {
        for secs in [0, -1, 1_709_210_096, 1_672_531_200, 4_102_444_800] {
            let text = UtcDateTime::from_unix(secs).rfc3339();
            assert_eq!(parse_rfc3339(&text), Some(secs), "{text}");
        }
        for bad in [
            "2024-02-30T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00+00:00",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00.5Z",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
