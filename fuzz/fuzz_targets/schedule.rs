//! A schedule as a customer types it: a cron expression and an IANA time zone. Parsing
//! must refuse bad input, and the next fire time of anything it accepts must come back
//! (or be `None`) without a panic or a hang, from any instant.
#![no_main]

use dbcrate_core::schedule::Schedule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (when, text) = data.split_at(8);
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let (cron, zone) = text.split_once('\n').unwrap_or((text, "UTC"));
    if let Ok(schedule) = Schedule::parse(cron, zone) {
        // Any instant a caller could pass, including the calendar's ends.
        let unix = i64::from_le_bytes(when.try_into().expect("eight bytes"));
        let _ = schedule.next_after(unix);
        let _ = schedule.next_after(unix % 8_000_000_000);
    }
});
