//! Date parsing: any string into parse_iso, parse_http_date and parse_value must return, not
//! panic (overflow included: fuzz builds keep overflow checks), and an ISO date in years
//! 0000-9999 must survive to_iso and back. Besides the raw string, the first 48 bytes also
//! become six integers written into the shapes clients send (HTTP date, ISO), so extreme
//! fields are reached at once instead of by mutating digits one at a time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nightlite::dates;

/// 0000-01-01 and 9999-12-31T23:59:59.999Z, the range to_iso writes as four-digit years.
const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_300_799_999;

fn check_str(s: &str) {
    if let Some(i) = dates::parse_iso(s) {
        if (MIN_MS..=MAX_MS).contains(&i.ms) {
            let back = dates::parse_iso(&dates::to_iso(i.ms)).map(|j| j.ms);
            assert_eq!(back, Some(i.ms), "to_iso round trip of {s:?}");
        }
    }
    if let Some(ms) = dates::parse_http_date(s) {
        let _ = dates::to_http_date(ms);
    }
    let _ = dates::parse_value(&serde_json::Value::String(s.to_string()));
}

fuzz_target!(|data: &[u8]| {
    check_str(&String::from_utf8_lossy(data));
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = dates::parse_value(&v);
        let _ = dates::ms_from_number(&v);
    }
    if data.len() >= 48 {
        let n: Vec<i64> = data[..48]
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        // Small values most of the time, any value some of the time.
        let f = |i: usize| if n[i] & 1 == 0 { n[i] % 100 } else { n[i] };
        check_str(&format!(
            "Mon, {} Jan {} {}:{}:{} GMT",
            f(0),
            f(1),
            f(2),
            f(3),
            f(4)
        ));
        check_str(&format!(
            "{:04}-01-{:02}T{:02}:{:02}:00Z",
            f(1),
            f(0),
            f(2),
            f(3)
        ));
        let _ = dates::to_iso(n[5]);
        let _ = dates::to_http_date(n[5]);
        let _ = dates::ms_from_number(&serde_json::json!(f64::from_bits(n[5] as u64)));
    }
});
