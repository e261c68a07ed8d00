//! The stored profile document: a `store` of named profiles, the `defaultProfile` among them,
//! and `startDate`, from which it is the user's settings until a newer document starts.

use serde_json::{Map, Value};

use super::schedule::{number, Schedule};
use crate::store::StoredDoc;

/// A non-empty text field, trimmed.
pub(crate) fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The schedules a profile holds, by their field names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Basal,
    CarbRatio,
    Sens,
    TargetLow,
    TargetHigh,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Basal,
        Kind::CarbRatio,
        Kind::Sens,
        Kind::TargetLow,
        Kind::TargetHigh,
    ];

    /// The field name in Nightscout profiles.
    pub fn field(self) -> &'static str {
        match self {
            Kind::Basal => "basal",
            Kind::CarbRatio => "carbratio",
            Kind::Sens => "sens",
            Kind::TargetLow => "target_low",
            Kind::TargetHigh => "target_high",
        }
    }
}

/// One named profile (an entry of `store`, or a switch's `profileJson`).
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub units: Option<String>,
    pub timezone: Option<String>,
    /// Duration of insulin action, hours.
    pub dia: Option<f64>,
    schedules: [Option<Schedule>; 5],
}

impl Profile {
    /// None unless `v` is a JSON object.
    pub fn from_json(v: &Value) -> Option<Profile> {
        let obj = v.as_object()?;
        let text = |k: &str| text(obj, k);
        Some(Profile {
            units: text("units"),
            timezone: text("timezone"),
            dia: obj.get("dia").and_then(number),
            schedules: Kind::ALL.map(|k| obj.get(k.field()).and_then(Schedule::from_json)),
        })
    }

    pub fn schedule(&self, kind: Kind) -> Option<&Schedule> {
        self.schedules[kind as usize].as_ref()
    }
}

/// A stored profile document, as the timeline needs it.
#[derive(Debug, Clone)]
pub struct ProfileDoc {
    pub id: String,
    /// Storage order: of two documents with the same startDate the later stored one wins.
    pub seq: i64,
    /// `startDate` in epoch ms (the stored `mills`).
    pub mills: i64,
    pub default_profile: String,
    /// Document-level units, used where a profile has none.
    pub units: Option<String>,
    /// Named profiles in document order.
    pub store: Vec<(String, Profile)>,
}

impl ProfileDoc {
    /// A document as stored. One without a `store` object is itself a profile named "Default",
    /// as Nightscout converts such old documents (lib/profilefunctions.js convertToProfileStore).
    pub fn from_stored(d: &StoredDoc) -> ProfileDoc {
        Self::from_json(&d.id, d.seq, d.mills, &d.doc)
    }

    pub fn from_json(id: &str, seq: i64, mills: i64, doc: &Map<String, Value>) -> ProfileDoc {
        let units = doc.get("units").and_then(Value::as_str).map(str::to_string);
        let (default_profile, store) = match doc.get("store").and_then(Value::as_object) {
            Some(store) => (
                doc.get("defaultProfile")
                    .and_then(Value::as_str)
                    .unwrap_or("Default")
                    .to_string(),
                store
                    .iter()
                    .filter_map(|(name, p)| Some((name.clone(), Profile::from_json(p)?)))
                    .collect(),
            ),
            None => (
                "Default".to_string(),
                Profile::from_json(&Value::Object(doc.clone()))
                    .map(|p| vec![("Default".to_string(), p)])
                    .unwrap_or_default(),
            ),
        };
        ProfileDoc {
            id: id.to_string(),
            seq,
            mills,
            default_profile,
            units,
            store,
        }
    }

    pub fn profile(&self, name: &str) -> Option<&Profile> {
        self.store.iter().find(|(n, _)| n == name).map(|(_, p)| p)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    #[test]
    fn store_and_old_flat_documents() {
        let doc = json!({
            "defaultProfile": "Weekday",
            "startDate": "2026-04-20T00:00:00.000Z",
            "units": "mg/dl",
            "store": {
                "Weekday": {"dia": 5, "timezone": "Europe/Berlin",
                            "basal": [{"time": "00:00", "value": 0.8}]},
                "Broken": "not an object"
            }
        });
        let d = ProfileDoc::from_json("a", 1, 0, doc.as_object().unwrap());
        assert_eq!(d.default_profile, "Weekday");
        assert_eq!(d.store.len(), 1);
        let p = d.profile("Weekday").unwrap();
        assert_eq!(p.dia, Some(5.0));
        assert_eq!(p.schedule(Kind::Basal).unwrap().value_at(0), 0.8);
        assert!(p.schedule(Kind::Sens).is_none());

        let flat = json!({"dia": 3, "basal": 1.1, "carbratio": 12});
        let d = ProfileDoc::from_json("b", 2, 0, flat.as_object().unwrap());
        assert_eq!(d.default_profile, "Default");
        let p = d.profile("Default").unwrap();
        assert_eq!(p.schedule(Kind::CarbRatio).unwrap().value_at(100), 12.0);
    }
}
