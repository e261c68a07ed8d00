//! REQ-OVRD-004: the states that change glucose targets or insulin delivery (Loop's
//! Temporary Override, temporary targets, Trio's Exercise overrides, a Profile Switch with a
//! percentage other than 100) in one shape, durations in milliseconds and targets in mg/dL
//! (docs/state-spans.md "GET /api/v4/adjustments", docs/overrides.md).

use serde_json::{Map, Value};

use super::durations::number;
use super::rules::{self, Effect};
use super::{Category, OriginKind, Span};

/// The categories an adjustment comes from.
pub const CATEGORIES: [Category; 3] = [
    Category::Override,
    Category::TemporaryTarget,
    Category::Profile,
];

/// Nightscout's mmol/L → mg/dL factor (lib/data/ddata.js scales temporary targets by 18).
const MMOL_TO_MGDL: f64 = 18.0;

/// A Profile Switch's percentage as applied: 100 when absent or not a positive number. The one
/// rule for the effective profile (src/profiles/switch.rs) and for which switches are
/// adjustments ([`adjusts`]); `metadata` may be the switch itself.
pub fn percentage(metadata: &Map<String, Value>) -> f64 {
    metadata
        .get("percentage")
        .and_then(number)
        .filter(|p| *p > 0.0)
        .unwrap_or(100.0)
}

/// Whether the span changes targets or insulin: every override and temporary target, and a
/// profile switch whose percentage is not 100.
pub fn adjusts(span: &Span) -> bool {
    match span.category {
        Category::Override | Category::TemporaryTarget => true,
        Category::Profile => percentage(&span.metadata) != 100.0,
        _ => false,
    }
}

fn rounded(v: f64) -> Value {
    crate::jsnum::num((v * 10_000.0).round() / 10_000.0)
}

/// Low and high target in mg/dL, or None when the state keeps the schedule's targets. Loop's
/// `correctionRange` is `[low, high]` in mg/dL; `targetBottom`/`targetTop` are in the
/// treatment's `units`, read as mmol/L when `units` says mmol or a value is below 20
/// (Nightscout's rule in lib/data/ddata.js).
fn targets(metadata: &Map<String, Value>) -> Option<(f64, f64)> {
    if let Some(Value::Array(range)) = metadata.get("correctionRange") {
        if let [lo, hi] = range.as_slice() {
            if let (Some(lo), Some(hi)) = (number(lo), number(hi)) {
                return Some((lo, hi));
            }
        }
    }
    // Loop's device status: `currentCorrectionRange: {minValue, maxValue}`, mg/dL.
    if let Some(Value::Object(range)) = metadata.get("currentCorrectionRange") {
        let lo = range.get("minValue").and_then(number);
        let hi = range.get("maxValue").and_then(number);
        if let (Some(lo), Some(hi)) = (lo, hi) {
            return Some((lo, hi));
        }
    }
    let lo = metadata.get("targetBottom").and_then(number);
    let hi = metadata.get("targetTop").and_then(number);
    let (lo, hi) = match (lo, hi) {
        (Some(l), Some(h)) => (l, h),
        (Some(v), None) | (None, Some(v)) => (v, v),
        (None, None) => return None,
    };
    let mmol = metadata
        .get("units")
        .and_then(Value::as_str)
        .is_some_and(|u| u.to_ascii_lowercase().contains("mmol"))
        || lo < 20.0
        || hi < 20.0;
    let scale = if mmol { MMOL_TO_MGDL } else { 1.0 };
    Some((lo * scale, hi * scale))
}

/// Insulin needs in percent of normal (100 = unchanged), or None when the state does not
/// change insulin: Loop's `insulinNeedsScaleFactor` × 100, a Profile Switch's percentage.
fn insulin_percent(span: &Span) -> Option<f64> {
    match span.category {
        Category::Profile => Some(percentage(&span.metadata)),
        // Loop: `insulinNeedsScaleFactor` on the treatment, `multiplier` in its device status.
        _ => ["insulinNeedsScaleFactor", "multiplier"]
            .iter()
            .find_map(|k| span.metadata.get(*k).and_then(number))
            .map(|f| f * 100.0),
    }
}

/// What the user named it: Loop's `reasonDisplay` or `reason` (its status: `name`), Trio's
/// `notes`, a temporary target's `reason`, the switch's profile.
fn name(span: &Span) -> Value {
    let keys: &[&str] = match span.category {
        Category::Profile => &["profile", "originalProfileName"],
        _ => &["reasonDisplay", "reason", "notes", "name"],
    };
    keys.iter()
        .find_map(|k| span.metadata.get(*k).filter(|v| v.is_string()).cloned())
        .unwrap_or(Value::Null)
}

/// What is in force now, at most one per category (the override, the temporary target and the
/// profile switch): of `spans` in force, newest first, the first of each category. Several can
/// be in force in one category when device statuses of two devices report overrides.
pub fn one_per_category(spans: Vec<Span>) -> Vec<Span> {
    let mut seen = Vec::new();
    spans
        .into_iter()
        .filter(|s| {
            let first = !seen.contains(&s.category);
            seen.push(s.category);
            first
        })
        .collect()
}

/// The adjustment of `span` (one [`adjusts`] accepts), from the treatment it comes from.
/// `kind` is the treatment's eventType; `plannedDurationMs` what the treatment asked for
/// (None: until something ends it), `durationMs` what the span lasted or lasts (None while open).
pub fn adjustment(span: &Span, treatment: Option<&Map<String, Value>>) -> Map<String, Value> {
    let kind = treatment
        .and_then(|t| t.get("eventType"))
        .and_then(Value::as_str)
        .unwrap_or(match span.category {
            Category::Profile => "Profile Switch",
            Category::TemporaryTarget => "Temporary Target",
            _ => "Temporary Override",
        });
    let planned = match span.origin_kind {
        OriginKind::Treatment => treatment
            .and_then(rules::classify)
            .and_then(|(_, e)| match e {
                Effect::Start { duration, .. } => duration,
                Effect::End => None,
            }),
        // Loop's status: `override.duration` in seconds (NightscoutKit OverrideStatus, a
        // TimeInterval); 0 or none is indefinite.
        OriginKind::DeviceStatus => span
            .metadata
            .get("duration")
            .and_then(number)
            .filter(|d| *d > 0.0)
            .map(|d| (d * 1000.0).round() as i64),
    };
    let targets = targets(&span.metadata);
    let mut out = Map::new();
    out.insert("id".into(), span.id.clone().into());
    out.insert("kind".into(), kind.into());
    out.insert("category".into(), span.category.name().into());
    out.insert("source".into(), span.source.clone().into());
    out.insert("name".into(), name(span));
    out.insert("startMills".into(), span.start.into());
    out.insert("endMills".into(), span.end.into());
    out.insert("durationMs".into(), span.end.map(|e| e - span.start).into());
    out.insert("plannedDurationMs".into(), planned.into());
    out.insert(
        "targetLow".into(),
        targets.map_or(Value::Null, |t| rounded(t.0)),
    );
    out.insert(
        "targetHigh".into(),
        targets.map_or(Value::Null, |t| rounded(t.1)),
    );
    out.insert(
        "insulinPercent".into(),
        insulin_percent(span).map_or(Value::Null, rounded),
    );
    out.insert("originalId".into(), span.origin.clone().into());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn meta(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn targets_in_mg_dl_from_each_client_shape() {
        let loop_range = meta(json!({"correctionRange": [140, 160], "targetTop": 1}));
        assert_eq!(targets(&loop_range), Some((140.0, 160.0)));
        let aaps = meta(json!({"targetTop": 140, "targetBottom": 120, "units": "mg/dl"}));
        assert_eq!(targets(&aaps), Some((120.0, 140.0)));
        let mmol = meta(json!({"targetTop": "8", "targetBottom": 7, "units": "mmol"}));
        assert_eq!(targets(&mmol), Some((126.0, 144.0)));
        // Nightscout reads a value below 20 as mmol/L whatever `units` says.
        let small = meta(json!({"targetTop": 5.5, "targetBottom": 5.5}));
        assert_eq!(targets(&small), Some((99.0, 99.0)));
        assert_eq!(targets(&meta(json!({"reason": "Pre-Meal"}))), None);
    }

    #[test]
    fn only_switches_with_a_positive_percentage_other_than_100_adjust() {
        for (p, scaled) in [
            (json!(150), true),
            (json!("80"), true),
            (json!(100), false),
            (json!(0), false),
            (json!(""), false),
            (Value::Null, false),
        ] {
            let m = meta(json!({ "percentage": p }));
            assert_eq!(percentage(&m) != 100.0, scaled, "{p}");
        }
    }
}
