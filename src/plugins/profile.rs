//! Profile values at a time, as Nightscout's lib/profilefunctions.js getValueByTime finds
//! them in a profile's schedules.
//!
//! **The seam.** The plugins never read a profile document: they call a [`ProfileFn`], which
//! is [`Profiles::value`]. Which profile is in force at a moment (document, Profile Switch,
//! the switch's `profileJson` or store name, percentage, timeshift) is decided by the
//! effective-profile rules of src/profiles/ (`profiles::timeline::select`, the same as API
//! v4's); the value is then read from that profile as stored, the way getValueByTime reads it
//! (minute rounding, seconds since local midnight, `parseFloat`), so that without a switch
//! every number is Nightscout's.

use std::collections::HashMap;

use serde_json::Value;

use super::Doc;
use crate::jsnum::{js_number, js_round, parse_float, parse_int, truthy};
use crate::profiles::schedule::Zone;
use crate::profiles::timeline::{select, ProfileSource};
use crate::store::StoredDoc;

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
        ProfileDoc::from_profile(store, None)
    }

    /// One profile object (a store entry or a switch's `profileJson`); without a `timezone`
    /// of its own it is read in `fallback_zone` (the default profile's).
    fn from_profile(store: Doc, fallback_zone: Option<&str>) -> ProfileDoc {
        // Without a zone (or one the system does not know) the schedule runs in UTC, the
        // server time Nightscout's hosts use.
        let name = store
            .get("timezone")
            .and_then(Value::as_str)
            .or(fallback_zone);
        let zone = Zone::resolve(name);
        ProfileDoc { store, zone }
    }

    fn timezone(&self) -> Option<&str> {
        self.store.get("timezone").and_then(Value::as_str)
    }
}

/// The profile documents and Profile Switch treatments that decide the profile in force, ready
/// for lookups at any moment of the plugins' window.
pub struct Profiles {
    docs: Vec<crate::profiles::ProfileDoc>,
    switches: Vec<crate::profiles::ProfileSwitch>,
    /// Per document id: its default profile, and its store's profiles by name.
    defaults: HashMap<String, ProfileDoc>,
    named: HashMap<(String, String), ProfileDoc>,
    /// Per switch id: its `profileJson`.
    json: HashMap<String, ProfileDoc>,
}

impl Profiles {
    /// From the documents and switches as `profiles::load_stored` reads them.
    pub fn new(docs: &[StoredDoc], switches: &[StoredDoc]) -> Profiles {
        let mut defaults = HashMap::new();
        let mut named = HashMap::new();
        for d in docs {
            let default = ProfileDoc::new(&d.doc);
            let zone = default.timezone().map(str::to_string);
            if let Some(Value::Object(store)) = d.doc.get("store") {
                for (name, p) in store {
                    if let Value::Object(p) = p {
                        let p = ProfileDoc::from_profile(p.clone(), zone.as_deref());
                        named.insert((d.id.clone(), name.clone()), p);
                    }
                }
            }
            defaults.insert(d.id.clone(), default);
        }
        let parsed: Vec<crate::profiles::ProfileDoc> = docs
            .iter()
            .map(crate::profiles::ProfileDoc::from_stored)
            .collect();
        // A profileJson without a zone is read in that of the default profile in force.
        let zone_at = |mills: i64| {
            crate::profiles::timeline::document_at(&parsed, mills)
                .and_then(|d| defaults.get(&d.id))
                .and_then(ProfileDoc::timezone)
                .map(str::to_string)
        };
        let json = switches
            .iter()
            .filter_map(|s| {
                let p = match s.doc.get("profileJson")? {
                    Value::String(text) => serde_json::from_str::<Value>(text).ok()?,
                    other => other.clone(),
                };
                let Value::Object(p) = p else { return None };
                let zone = zone_at(s.mills);
                Some((s.id.clone(), ProfileDoc::from_profile(p, zone.as_deref())))
            })
            .collect();
        Profiles {
            docs: parsed,
            switches: switches
                .iter()
                .map(crate::profiles::ProfileSwitch::from_stored)
                .collect(),
            defaults,
            named,
            json,
        }
    }

    /// Whether there is no profile document (Nightscout's "no profile").
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The value of `field` at `t` in the profile in force then, the switch's percentage and
    /// timeshift applied (basal × p/100, sens and carb ratio × 100/p, the schedule moved by
    /// the shift: docs/api-v4.md "Decisions").
    pub fn value(&self, t: i64, field: Field) -> Option<f64> {
        let sel = select(&self.docs, &self.switches, t)?;
        let doc_id = &sel.doc.id;
        let profile = match sel.source {
            ProfileSource::Default => self.defaults.get(doc_id),
            ProfileSource::Store => self.named.get(&(doc_id.clone(), sel.name.to_string())),
            ProfileSource::ProfileJson => sel.switch.and_then(|s| self.json.get(&s.id)),
        }?;
        let Some(switch) = sel.switch else {
            return profile_at(profile, t, field);
        };
        let value = lookup(profile, t, field, switch.timeshift_ms / 1000)?;
        let p = switch.percentage;
        Some(match field {
            _ if value == 0.0 || value.is_nan() => value,
            Field::Basal => value * p / 100.0,
            Field::Sens | Field::CarbRatio => value * 100.0 / p,
            _ => value,
        })
    }
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
    lookup(p, t, field, 0)
}

/// [`profile_at`] with the schedule moved `shift` seconds later in the day: the value at `t`
/// is the one the schedule has `shift` seconds earlier.
fn lookup(p: &ProfileDoc, t: i64, field: Field, shift: i64) -> Option<f64> {
    let minute = (js_round(t as f64 / 60_000.0) * 60_000.0) as i64;
    let container = p.store.get(field.key());
    let Some(Value::Array(entries)) = container else {
        return js_value(container);
    };
    let mut secs = (minute - p.zone.start_of_day_ms(minute)) / 1000;
    if shift != 0 {
        secs = (secs - shift).rem_euclid(86_400);
    }
    let secs = secs as f64;
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

    fn stored(id: &str, seq: i64, mills: i64, v: Value) -> StoredDoc {
        StoredDoc {
            seq,
            id: id.into(),
            doc: v.as_object().cloned().unwrap_or_default(),
            mills,
            srv_created: 0,
            srv_modified: 0,
            is_valid: true,
        }
    }

    #[test]
    fn switches_choose_the_profile_and_scale_it() {
        const H: i64 = 3_600_000;
        let day = 1_705_276_800_000; // 2024-01-15T00:00:00Z
        let docs = [stored(
            "p",
            1,
            0,
            json!({ "defaultProfile": "A", "store": {
                "A": { "dia": 4, "basal": [{ "time": "00:00", "value": 1 }, { "time": "06:00", "value": 2 }],
                       "sens": 50 },
                "B": { "dia": 5, "basal": 0.5, "sens": "40" },
            }}),
        )];
        let switches = [
            // From 02:00 on: A at 150 %, moved an hour later (AndroidAPS sends ms).
            stored(
                "s1",
                2,
                day + 2 * H,
                json!({ "eventType": "Profile Switch", "profile": "A (150%,1h)",
                "originalProfileName": "A", "percentage": 150, "timeshift": 3_600_000 }),
            ),
            // 10:00-11:00: AndroidAPS's profileJson (no zone: A's, none: UTC).
            stored(
                "s2",
                3,
                day + 10 * H,
                json!({ "eventType": "Profile Switch", "profile": "X",
                "duration": 60, "profileJson": "{\"dia\":6,\"basal\":3,\"sens\":30}" }),
            ),
            // 12:00-13:00: B from the store, no percentage.
            stored(
                "s3",
                4,
                day + 12 * H,
                json!({ "eventType": "Profile Switch", "profile": "B",
                "duration": 60 }),
            ),
        ];
        let p = Profiles::new(&docs, &switches);
        let at = |h: i64, f| p.value(day + h * H, f);
        // Before any switch: the default profile as stored.
        assert_eq!(at(1, Field::Basal), Some(1.0));
        // 06:30 under the shift reads 05:30: 1 × 1.5; 07:30 reads 06:30: 2 × 1.5.
        assert_eq!(p.value(day + 6 * H + H / 2, Field::Basal), Some(1.5));
        assert_eq!(p.value(day + 7 * H + H / 2, Field::Basal), Some(3.0));
        assert_eq!(at(8, Field::Sens), Some(50.0 * 100.0 / 150.0));
        assert_eq!(at(8, Field::Dia), Some(4.0));
        // The temporary profileJson, scaled by nothing (percentage 100).
        assert_eq!(at(10, Field::Basal), Some(3.0));
        assert_eq!(at(10, Field::Dia), Some(6.0));
        // When it ends the 150 % switch is back.
        assert_eq!(at(11, Field::Basal), Some(3.0));
        assert_eq!(at(11, Field::Dia), Some(4.0));
        assert_eq!(at(12, Field::Sens), Some(40.0));
        assert_eq!(at(12, Field::Dia), Some(5.0));
        assert!(Profiles::new(&[], &switches)
            .value(day, Field::Dia)
            .is_none());
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
