//! Durations and shifts as the uploaders write them into treatments (minutes, milliseconds,
//! AndroidAPS's historic mix-ups), read into milliseconds. Shared by the profile timeline
//! (src/profiles/) and the state spans.

use serde_json::{Map, Value};

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: f64 = 60_000.0;

/// A finite number, or a numeric string (uploaders send both).
pub fn number(v: &Value) -> Option<f64> {
    let f = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    f.is_finite().then_some(f)
}

/// Which field a switch's duration was taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationSource {
    /// `duration`, minutes.
    Duration,
    /// `originalDuration`, ms: AndroidAPS's v3 uploads from Dec 2022 to Apr 2025 put the
    /// millisecond count into `duration` (and 60,000 times that into `durationInMilliseconds`)
    /// while `originalDuration` stayed right (AndroidAPS commit 9b90eea774 fixed it).
    OriginalDuration,
    /// `durationInMilliseconds`, ms, when there is no `duration`.
    DurationInMilliseconds,
    /// No duration: the switch holds until the next one.
    None,
}

impl DurationSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DurationSource::Duration => "duration",
            DurationSource::OriginalDuration => "originalDuration",
            DurationSource::DurationInMilliseconds => "durationInMilliseconds",
            DurationSource::None => "none",
        }
    }
}

/// A timeshift in ms. AndroidAPS sends milliseconds (its `PS.timeshift`, v1 and v3 alike);
/// Nightscout's careportal and the requirements use hours. Whole days are the most a shift
/// means, so a magnitude up to 24 is hours and anything larger milliseconds.
pub fn timeshift_ms(v: Option<&Value>) -> i64 {
    let Some(x) = v.and_then(number) else {
        return 0;
    };
    let ms = if x.abs() <= 24.0 {
        x * HOUR_MS as f64
    } else {
        x
    };
    ms.round() as i64
}

/// The duration in ms (None for "until the next switch") and the field it came from.
pub fn duration(doc: &Map<String, Value>) -> (Option<i64>, DurationSource) {
    let minutes = doc.get("duration").and_then(number);
    let original = doc.get("originalDuration").and_then(number);
    let in_ms = doc.get("durationInMilliseconds").and_then(number);
    if let (Some(m), Some(o)) = (minutes, original) {
        // The pre-2025 AndroidAPS v3 signature: `duration` is the ms count itself.
        if o > 0.0 && (m == o || in_ms == Some(o * MINUTE_MS)) {
            return (Some(o.round() as i64), DurationSource::OriginalDuration);
        }
    }
    let positive = |ms: f64| (ms >= 1.0).then(|| ms.round() as i64);
    match (minutes, in_ms) {
        (Some(m), _) => (positive(m * MINUTE_MS), DurationSource::Duration),
        (None, Some(ms)) => (positive(ms), DurationSource::DurationInMilliseconds),
        (None, None) => (None, DurationSource::None),
    }
}
