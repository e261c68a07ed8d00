//! Profile values at a time, as Nightscout's lib/profilefunctions.js getValueByTime finds
//! them in a profile's schedules.
//!
//! **The seam.** The plugins never read a profile document: they call a [`ProfileFn`].
//! Today that is [`profile_at`] on the newest profile document's default profile (Nightscout's
//! loader keeps only the newest by startDate). The effective-profile timeline (profile
//! switches, percentage, timeshift; src/profiles/) replaces it by handing the plugins another
//! `ProfileFn`, without touching them.

use serde_json::Value;

use super::Doc;
use crate::jsnum::{js_number, js_round, parse_int, truthy};
use crate::profiles::schedule::Zone;

/// The schedules and values the plugins read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Dia,
    Sens,
    CarbRatio,
    CarbsHr,
    TargetLow,
    TargetHigh,
    Basal,
}

impl Field {
    fn key(self) -> &'static str {
        match self {
            Field::Dia => "dia",
            Field::Sens => "sens",
            Field::CarbRatio => "carbratio",
            Field::CarbsHr => "carbs_hr",
            Field::TargetLow => "target_low",
            Field::TargetHigh => "target_high",
            Field::Basal => "basal",
        }
    }
}

/// A profile value at a time (epoch ms) as getValueByTime returns it: `None` is undefined,
/// `Some(NaN)` a value parseFloat could not read, `Some(0.0)` also stands for null/"" (falsy,
/// and 0 in arithmetic).
pub type ProfileFn<'a> = dyn Fn(i64, Field) -> Option<f64> + 'a;

/// The profile a document holds, ready for lookups.
#[derive(Debug, Clone)]
pub struct ProfileDoc {
    store: Doc,
    zone: Zone,
}

impl ProfileDoc {
    /// The document's `store[defaultProfile]` (`{}` when it names none there); a document
    /// without `defaultProfile` is itself the profile (convertToProfileStore).
    pub fn new(doc: &Doc) -> ProfileDoc {
        let store = match doc.get("defaultProfile") {
            Some(name) if truthy(Some(name)) => {
                let name = match name {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                doc.get("store")
                    .and_then(|s| s.get(name.as_str()))
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default()
            }
            _ => doc.clone(),
        };
        // Without a zone (or one the system does not know) the schedule runs in UTC, the
        // server time Nightscout's hosts use.
        let zone = Zone::resolve(store.get("timezone").and_then(Value::as_str));
        ProfileDoc { store, zone }
    }
}

/// JavaScript's `parseFloat` of a string: the longest leading decimal number, else NaN.
fn parse_float(s: &str) -> f64 {
    let t = s.trim_start();
    if t.starts_with("Infinity") || t.starts_with("+Infinity") {
        return f64::INFINITY;
    }
    if t.starts_with("-Infinity") {
        return f64::NEG_INFINITY;
    }
    let end = t
        .bytes()
        .position(|b| !(b.is_ascii_digit() || b"+-.eE".contains(&b)))
        .unwrap_or(t.len());
    (1..=end)
        .rev()
        .find_map(|n| t[..n].parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

/// timeStringToSeconds of an entry's `time` ("HH:MM"), else its stored `timeAsSeconds`.
fn entry_seconds(e: &Doc) -> Option<f64> {
    let parsed = e.get("time").and_then(Value::as_str).and_then(|time| {
        let mut parts = time.split(':');
        let h = parse_int(parts.next()?)? as f64;
        let m = parse_int(parts.next().unwrap_or(""))? as f64;
        Some(h * 3600.0 + m * 60.0)
    });
    parsed.or_else(|| js_number(e.get("timeAsSeconds")))
}

/// `if (v) v = parseFloat(v)`: a falsy value stays as it is.
fn js_value(v: Option<&Value>) -> Option<f64> {
    match v? {
        Value::Null | Value::Bool(false) => Some(0.0),
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.is_empty() => Some(0.0),
        Value::String(s) => Some(parse_float(s)),
        Value::Array(a) => Some(match a.as_slice() {
            [] => f64::NAN,
            [one] => js_value(Some(one)).unwrap_or(f64::NAN),
            _ => f64::NAN,
        }),
        Value::Bool(true) | Value::Object(_) => Some(f64::NAN),
    }
}

/// getValueByTime: the value of `field` at `t`. Schedules are looked up at `t` rounded to
/// the minute, by the seconds elapsed since the local midnight in the profile's time zone
/// (on the day of a clock change those differ from the clock time, as in Nightscout); the
/// last entry starting at or before that counts.
pub fn profile_at(p: &ProfileDoc, t: i64, field: Field) -> Option<f64> {
    let minute = (js_round(t as f64 / 60_000.0) * 60_000.0) as i64;
    let container = p.store.get(field.key());
    let Some(Value::Array(entries)) = container else {
        return js_value(container);
    };
    let secs = ((minute - p.zone.start_of_day_ms(minute)) / 1000) as f64;
    let mut found: Option<Option<&Value>> = None;
    for e in entries.iter().filter_map(Value::as_object) {
        if entry_seconds(e).is_some_and(|s| secs >= s) {
            found = Some(e.get("value"));
        }
    }
    match found {
        Some(v) => js_value(v),
        // No entry matched: the array itself, which parseFloat reads as NaN.
        None => js_value(container),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> ProfileDoc {
        ProfileDoc::new(v.as_object().unwrap_or(&Doc::new()))
    }

    #[test]
    fn schedules_by_time_of_day_in_the_profile_zone() {
        let p = doc(json!({
            "defaultProfile": "Day",
            "startDate": "2024-01-01T00:00:00.000Z",
            "store": { "Day": {
                "dia": "4", "timezone": "Europe/Berlin", "units": "mg/dl",
                "carbs_hr": 20,
                "sens": [{ "time": "00:00", "value": 50 }, { "time": "06:00", "value": "40.5" }],
                "basal": [{ "time": "00:00", "value": 0.8 }, { "time": "22:30", "value": 0.6 }],
                "target_low": [{ "time": "00:00", "value": 90 }],
            }}
        }));
        // 2024-01-15T05:29:40Z is 06:29:40 in Berlin, rounded to 06:30: sens 40.5.
        assert_eq!(profile_at(&p, 1_705_296_580_000, Field::Sens), Some(40.5));
        // 04:59:29Z = 05:59:29 local → 05:59: still 50.
        assert_eq!(profile_at(&p, 1_705_294_769_000, Field::Sens), Some(50.0));
        // 21:30Z = 22:30 local: the late basal; 21:29:29Z rounds to 22:29: the earlier one.
        assert_eq!(profile_at(&p, 1_705_354_200_000, Field::Basal), Some(0.6));
        assert_eq!(profile_at(&p, 1_705_354_169_000, Field::Basal), Some(0.8));
        // Across midnight: 23:30Z = 00:30 local on the 16th → 0.8.
        assert_eq!(profile_at(&p, 1_705_361_400_000, Field::Basal), Some(0.8));
        assert_eq!(profile_at(&p, 0, Field::Dia), Some(4.0));
        assert_eq!(profile_at(&p, 0, Field::CarbsHr), Some(20.0));
        assert_eq!(profile_at(&p, 0, Field::CarbRatio), None);
    }

    #[test]
    fn dst_day_counts_elapsed_seconds_like_moment() {
        let p = doc(json!({
            "defaultProfile": "D",
            "store": { "D": {
                "timezone": "Europe/Berlin",
                "basal": [{ "time": "00:00", "value": 1 }, { "time": "04:00", "value": 2 }],
            }}
        }));
        // 2024-03-31T02:30Z is 04:30 CEST, but only 3.5 h after local midnight: Nightscout's
        // diff from startOf('day') still finds the 00:00 rate.
        assert_eq!(profile_at(&p, 1_711_852_200_000, Field::Basal), Some(1.0));
        // An hour later (4.5 h elapsed) the 04:00 rate.
        assert_eq!(profile_at(&p, 1_711_855_800_000, Field::Basal), Some(2.0));
    }

    #[test]
    fn old_format_and_odd_values() {
        // No defaultProfile: the document is the profile; no zone: UTC.
        let p = doc(json!({ "dia": 0, "carbratio": [{ "time": "08:00", "value": 10 }] }));
        assert_eq!(profile_at(&p, 0, Field::Dia), Some(0.0));
        // 00:00Z is before the only entry: the array itself, NaN.
        assert!(profile_at(&p, 0, Field::CarbRatio).is_some_and(f64::is_nan));
        assert_eq!(profile_at(&p, 8 * 3_600_000, Field::CarbRatio), Some(10.0));
        assert_eq!(parse_float(" 3.5abc"), 3.5);
        assert!(parse_float("abc").is_nan());
        assert_eq!(parse_int("08"), Some(8));
    }
}
