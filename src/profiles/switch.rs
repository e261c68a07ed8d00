//! A `Profile Switch` treatment, read as the uploaders write it (AndroidAPS v1 and v3, Nightscout's
//! careportal), with its units normalised. The stored treatment is never changed: everything
//! here is derived on read.

use serde_json::{Map, Value};

use super::document::{text, Profile};
pub use crate::spans::durations::{duration, timeshift_ms, DurationSource};
use crate::store::StoredDoc;

#[derive(Debug, Clone)]
pub struct ProfileSwitch {
    pub id: String,
    pub identifier: Option<String>,
    /// Storage order: of two switches in the same millisecond the later stored one wins.
    pub seq: i64,
    /// Start, epoch ms (the stored `mills`: `created_at`, or v3's `date`).
    pub mills: i64,
    /// The `profile` field as uploaded (AndroidAPS: the customized name, "Weekday (150%,-1h)").
    pub profile: Option<String>,
    /// AndroidAPS's `originalProfileName` (the store name without the customization).
    pub original_profile_name: Option<String>,
    /// 100 when absent or not a positive number.
    pub percentage: f64,
    /// The timeshift in ms; see [`timeshift_ms`].
    pub timeshift_ms: i64,
    /// None: until the next switch (Nightscout's duration 0).
    pub duration_ms: Option<i64>,
    pub duration_source: DurationSource,
    /// The parsed `profileJson`, when it holds a profile object (a JSON string, as AndroidAPS
    /// sends it, or an object).
    pub profile_json: Option<Profile>,
    /// `CircadianPercentageProfile` as uploaded (Nightscout's careportal; AndroidAPS never
    /// sends it).
    pub circadian_percentage_profile: Option<Value>,
    /// Who uploaded it: `enteredBy`, else `app`, else `device`.
    pub source: Option<String>,
}

impl ProfileSwitch {
    pub fn from_stored(d: &StoredDoc) -> ProfileSwitch {
        Self::from_json(&d.id, d.seq, d.mills, &d.doc)
    }

    pub fn from_json(id: &str, seq: i64, mills: i64, doc: &Map<String, Value>) -> ProfileSwitch {
        let text = |k: &str| text(doc, k);
        let (duration_ms, duration_source) = duration(doc);
        let profile_json = match doc.get("profileJson") {
            Some(Value::String(s)) => serde_json::from_str::<Value>(s)
                .ok()
                .and_then(|v| Profile::from_json(&v)),
            Some(v) => Profile::from_json(v),
            None => None,
        };
        ProfileSwitch {
            id: id.to_string(),
            identifier: text("identifier"),
            seq,
            mills,
            profile: text("profile"),
            original_profile_name: text("originalProfileName"),
            // One rule for the timeline and /api/v4/adjustments.
            percentage: crate::spans::adjust::percentage(doc),
            timeshift_ms: timeshift_ms(doc.get("timeshift")),
            duration_ms,
            duration_source,
            profile_json,
            circadian_percentage_profile: doc.get("CircadianPercentageProfile").cloned(),
            source: text("enteredBy")
                .or_else(|| text("app"))
                .or_else(|| text("device")),
        }
    }

    /// The nominal end (start + duration), None for a switch that holds until the next one.
    pub fn end(&self) -> Option<i64> {
        self.duration_ms.map(|d| self.mills.saturating_add(d))
    }

    /// Whether it is in force at `t` by its own start and duration (later switches aside).
    pub fn covers(&self, t: i64) -> bool {
        t >= self.mills && self.end().is_none_or(|e| t < e)
    }

    /// Holds until the next switch (no duration): no earlier switch can be in force after it.
    pub fn is_permanent(doc: &Map<String, Value>) -> bool {
        duration(doc).0.is_none()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn parse(v: Value) -> ProfileSwitch {
        ProfileSwitch::from_json("x", 1, 1_000, v.as_object().unwrap())
    }

    #[test]
    fn timeshift_hours_and_milliseconds() {
        assert_eq!(timeshift_ms(Some(&json!(-3_600_000))), -3_600_000);
        assert_eq!(timeshift_ms(Some(&json!(6))), 6 * HOUR_MS);
        assert_eq!(timeshift_ms(Some(&json!(-2))), -2 * HOUR_MS);
        assert_eq!(timeshift_ms(Some(&json!("1"))), HOUR_MS);
        assert_eq!(timeshift_ms(Some(&json!(0))), 0);
        assert_eq!(timeshift_ms(None), 0);
    }

    #[test]
    fn durations_from_every_uploader() {
        // AndroidAPS v3 since 2025-04: minutes and ms agree.
        let d = json!({"duration": 60, "durationInMilliseconds": 3_600_000, "originalDuration": 3_600_000});
        assert_eq!(
            duration(d.as_object().unwrap()),
            (Some(3_600_000), DurationSource::Duration)
        );
        // AndroidAPS v3 before: `duration` holds the ms count.
        let d = json!({"duration": 3_600_000, "durationInMilliseconds": 216_000_000_000_i64,
                       "originalDuration": 3_600_000});
        assert_eq!(
            duration(d.as_object().unwrap()),
            (Some(3_600_000), DurationSource::OriginalDuration)
        );
        // Careportal: minutes only; 0 or none means until the next switch.
        let d = json!({"duration": "90"});
        assert_eq!(duration(d.as_object().unwrap()).0, Some(5_400_000));
        assert_eq!(
            duration(json!({"duration": 0}).as_object().unwrap()).0,
            None
        );
        assert_eq!(
            duration(json!({}).as_object().unwrap()),
            (None, DurationSource::None)
        );
        assert_eq!(
            duration(
                json!({"durationInMilliseconds": 60_000})
                    .as_object()
                    .unwrap()
            )
            .0,
            Some(60_000)
        );
    }

    #[test]
    fn fields_are_read_without_changing_anything() {
        let s = parse(json!({
            "eventType": "Profile Switch", "profile": "Weekday (150%,-1h)",
            "originalProfileName": "Weekday", "percentage": 150, "timeshift": -3_600_000,
            "duration": 60, "app": "AAPS",
            "profileJson": "{\"units\":\"mg/dl\",\"basal\":[{\"time\":\"00:00\",\"value\":0.8}]}"
        }));
        assert_eq!(s.percentage, 150.0);
        assert_eq!(s.timeshift_ms, -3_600_000);
        assert_eq!(s.end(), Some(1_000 + 3_600_000));
        assert_eq!(s.source.as_deref(), Some("AAPS"));
        assert!(s.profile_json.is_some());
        assert!(s.covers(1_000) && !s.covers(3_601_000) && !s.covers(999));
        let bad = parse(json!({"percentage": -5, "profileJson": "{not json"}));
        assert_eq!(bad.percentage, 100.0);
        assert!(bad.profile_json.is_none());
    }
}
