//! A destination as an organisation's admin gives it (kind, settings and credentials
//! JSON), the URLs an agent is given on its command line, and object keys read back
//! from storage: each must be refused cleanly when malformed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = dbcrate_storage::Location::parse(text, "--destination");
    for segment in text.split('/') {
        let _ = dbcrate_core::object_key::check_segment("object key", segment);
    }
    let _ = dbcrate_core::object_key::globals_key(text);
    // "kind\nsettings JSON\ncredentials JSON"
    let mut parts = text.splitn(3, '\n');
    let (Some(kind), Some(settings)) = (parts.next(), parts.next()) else {
        return;
    };
    let Ok(settings) = serde_json::from_str::<serde_json::Value>(settings) else {
        return;
    };
    let credentials = parts
        .next()
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok());
    if let Ok((location, _)) =
        dbcrate_storage::spec::from_settings(kind, &settings, credentials.as_ref())
    {
        let _ = dbcrate_storage::spec::object_location(&location, "db/2026/01/01/x.pgdump.zst.age");
    }
});
