//! Quantities as people read them on the dashboard's pages: sizes in binary units and
//! durations in the unit that fits. A leaf, so every page may use it.

/// Bytes as people read them: `512 B`, `3.4 MiB`.
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// How long something took, in the unit that reads best.
pub fn duration(ms: Option<i64>) -> String {
    match ms {
        None => "unknown".into(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) if ms < 120_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{} min {} s", ms / 60_000, ms % 60_000 / 1000),
    }
}

#[cfg(test)]
mod tests {
    use super::{bytes, duration};

    #[test]
    fn bytes_read_in_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 + 400 * 1024), "3.4 MiB");
    }

    #[test]
    fn durations_read_in_the_unit_that_fits() {
        assert_eq!(duration(None), "unknown");
        assert_eq!(duration(Some(640)), "640 ms");
        assert_eq!(duration(Some(2500)), "2.5 s");
        assert_eq!(duration(Some(185_000)), "3 min 5 s");
    }
}
