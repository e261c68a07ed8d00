//! Date parsing: any string into parse_iso, parse_http_date and parse_value must return, not
//! panic (overflow included: fuzz builds keep debug assertions), and an ISO date in years
//! 0000-9999 must survive to_iso and back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nightlite::dates;

/// 0000-01-01 and 9999-12-31T23:59:59.999Z, the range to_iso writes as four-digit years.
const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_300_799_999;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Some(i) = dates::parse_iso(&s) {
        if (MIN_MS..=MAX_MS).contains(&i.ms) {
            let back = dates::parse_iso(&dates::to_iso(i.ms)).map(|j| j.ms);
            assert_eq!(back, Some(i.ms), "to_iso round trip of {s:?}");
        }
    }
    if let Some(ms) = dates::parse_http_date(&s) {
        let _ = dates::to_http_date(ms);
    }
    let _ = dates::parse_value(&serde_json::Value::String(s.to_string()));
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = dates::parse_value(&v);
        let _ = dates::ms_from_number(&v);
    }
});
