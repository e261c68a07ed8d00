//! Tandem pump events (Source's decoded event log, research/bridges.md §6) as documents:
//!
//! | eventCode | event | becomes |
//! |---|---|---|
//! | 256, 399, 372, 480 | CGM reading (G6, G7, Libre 2, Libre 3) | entry; `glucoseValueStatus` 1 is 401 (high), 2 is 39 (low) |
//! | 64 + 20 | bolus requested (carbs, BG) + completed (insulin), joined on `bolusId` | `Meal Bolus` or `Correction Bolus` at the completion |
//! | 279 | basal delivery (milliunits/h), every 5 min or on change | `Temp Basal` lasting until the next one |
//! | 11, 12 | pumping suspended, resumed | `Suspend Pump`, `Resume Pump` |
//! | 81, 20, 64, 11, 12, 33 | daily basal (IOB, battery), IOB, insulin left | one device status per read |
//!
//! Property names are matched as tconnectsync matches them (case aside, a trailing `Raw`
//! aside). Times are the pump's zoneless wall clock read in the configured zone; a CGM
//! reading's own time (`egvTimeStamp`, seconds since 2008-01-01 on the same clock) is its
//! date, since backfilled readings are logged later than they were taken.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use super::engine::{local_iso, sgv_entry, Batch};
use super::tandem::DEVICE;

/// 2008-01-01T00:00:00, the pump's epoch.
const TANDEM_EPOCH_S: i64 = 1_199_145_600;
const CGM_CODES: [i64; 4] = [256, 399, 372, 480];
/// How long a basal rate lasts when no later one is known yet (the pump logs one every 5
/// minutes); the next read replaces it with the real duration, under the same identifier.
const LAST_BASAL_MIN: f64 = 5.0;

struct Event<'a> {
    code: i64,
    group: i64,
    seq: i64,
    /// Epoch ms and the zone's offset then.
    at: (i64, i32),
    props: &'a Map<String, Value>,
}

/// A property name as compared: lower case, without a trailing `raw`.
fn normal(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    lower.strip_suffix("raw").unwrap_or(&lower).to_string()
}

impl Event<'_> {
    fn prop(&self, name: &str) -> Option<f64> {
        let want = normal(name);
        self.props
            .iter()
            .find(|(k, _)| normal(k) == want)
            .and_then(|(_, v)| v.as_f64())
            .filter(|x| x.is_finite())
    }
}

/// A zoneless wall-clock time (epoch ms as if it were UTC) in `zone`: epoch ms and offset.
/// A time the clock skipped is read as after the change, a repeated one as the first pass
/// (as tconnectsync's arrow does).
pub fn in_zone(zone: &jiff::tz::TimeZone, wall_ms: i64) -> Option<(i64, i32)> {
    let civil = jiff::Timestamp::from_millisecond(wall_ms)
        .ok()?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .datetime();
    let z = zone.to_ambiguous_zoned(civil).compatible().ok()?;
    Some((z.timestamp().as_millisecond(), z.offset().seconds() / 60))
}

/// `2026-05-14T00:01:31` (or with a fake `Z`) as epoch ms read as UTC.
fn wall_ms(s: &str) -> Option<i64> {
    let read = crate::dates::parse_iso(s).or_else(|| crate::dates::parse_iso(&format!("{s}Z")))?;
    Some(read.ms + i64::from(read.offset_min) * 60_000)
}

fn parse<'a>(zone: &jiff::tz::TimeZone, v: &'a Value) -> Option<Event<'a>> {
    Some(Event {
        code: v["eventCode"].as_i64()?,
        group: v["sequenceGroup"].as_i64().unwrap_or(0),
        seq: v["sequenceNumber"].as_i64()?,
        at: in_zone(zone, wall_ms(v["pumpDateTime"].as_str()?)?)?,
        props: v["eventProperties"].as_object()?,
    })
}

/// `x` as a JSON number, rounded to what the pump resolves (0.001 U).
fn units(x: f64) -> Value {
    crate::jsnum::num((x * 1000.0).round() / 1000.0)
}

struct Builder<'a> {
    serial: &'a str,
    batch: Batch,
}

impl Builder<'_> {
    fn identifier(&self, e: &Event) -> String {
        crate::ids::derived_uuid(&format!("tandem/{}/{}/{}", self.serial, e.group, e.seq))
    }

    fn treatment(&mut self, e: &Event, at: (i64, i32), fields: Value) {
        let mut doc = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        doc.insert("created_at".into(), local_iso(at.0, at.1).into());
        doc.insert("enteredBy".into(), DEVICE.into());
        doc.insert("identifier".into(), self.identifier(e).into());
        self.batch.treatments.push(Value::Object(doc));
    }

    fn reading(&mut self, zone: &jiff::tz::TimeZone, e: &Event) {
        let sgv = match e.prop("glucoseValueStatus").unwrap_or(0.0) as i64 {
            0 => e.prop("currentGlucoseDisplayValue").filter(|v| *v > 0.0),
            1 => Some(401.0),
            2 => Some(39.0),
            _ => None,
        };
        let Some(sgv) = sgv else { return };
        let at = e
            .prop("egvTimeStamp")
            .filter(|s| *s > 0.0)
            .and_then(|s| in_zone(zone, (TANDEM_EPOCH_S + s as i64) * 1000))
            .unwrap_or(e.at);
        let mut entry = sgv_entry(DEVICE, at.0, crate::jsnum::num(sgv), at.1, None);
        entry["identifier"] = self.identifier(e).into();
        self.batch.entries.push(entry);
    }
}

/// The documents of a pump's events.
pub fn batch(zone: &jiff::tz::TimeZone, serial: &str, model: &str, raw: &[Value]) -> Batch {
    let mut events: Vec<Event> = raw.iter().filter_map(|v| parse(zone, v)).collect();
    events.sort_by_key(|e| (e.group, e.seq));
    let mut b = Builder {
        serial,
        batch: Batch::default(),
    };
    // Requests (carbs, BG) by bolus id, for the completions that follow them.
    let requests: HashMap<i64, &Event> = events
        .iter()
        .filter(|e| e.code == 64)
        .filter_map(|e| Some((e.prop("bolusId")? as i64, e)))
        .collect();
    let basals: Vec<&Event> = events.iter().filter(|e| e.code == 279).collect();
    let mut status = PumpState::default();
    for e in &events {
        match e.code {
            c if CGM_CODES.contains(&c) => b.reading(zone, e),
            20 => {
                status.iob(e, e.prop("IOB"));
                let Some(insulin) = e.prop("insulinDelivered").filter(|u| *u > 0.0) else {
                    continue;
                };
                let request = e.prop("bolusId").and_then(|id| requests.get(&(id as i64)));
                let carbs = request
                    .and_then(|r| r.prop("carbAmount"))
                    .filter(|c| *c > 0.0);
                let bg = request.and_then(|r| r.prop("BG")).filter(|g| *g > 0.0);
                let mut f = json!({
                    "eventType": if carbs.is_some() { "Meal Bolus" } else { "Correction Bolus" },
                    "insulin": units(insulin),
                });
                if let Some(c) = carbs {
                    f["carbs"] = crate::jsnum::num(c);
                }
                if let Some(g) = bg {
                    f["glucose"] = crate::jsnum::num(g);
                    f["units"] = "mg/dl".into();
                }
                b.treatment(e, e.at, f);
            }
            64 => status.iob(e, e.prop("IOB")),
            279 => {
                let Some(rate) = e.prop("commandedRate").filter(|r| *r >= 0.0) else {
                    continue;
                };
                let next = basals.iter().find(|n| (n.group, n.seq) > (e.group, e.seq));
                let minutes = next.map_or(LAST_BASAL_MIN, |n| (n.at.0 - e.at.0) as f64 / 60_000.0);
                let rate = units(rate / 1000.0);
                let f = json!({"eventType": "Temp Basal", "rate": rate, "absolute": rate,
                    "duration": crate::jsnum::num(minutes.max(0.0))});
                b.treatment(e, e.at, f);
            }
            11 | 12 => {
                status.reservoir(e, e.prop("insulinAmount"));
                let kind = if e.code == 11 {
                    "Suspend Pump"
                } else {
                    "Resume Pump"
                };
                b.treatment(e, e.at, json!({ "eventType": kind }));
            }
            33 => status.reservoir(e, e.prop("insulinVolume")),
            81 => {
                status.iob(e, e.prop("iob"));
                let msb = e.prop("batteryChargePercentMsb");
                let lsb = e.prop("batteryChargePercentLsb");
                if let (Some(m), Some(l)) = (msb, lsb) {
                    // tconnectsync's reading of the two bytes.
                    let percent = ((256.0 * (m - 14.0) + l) / 768.0).round().clamp(0.0, 100.0);
                    status.note(e);
                    status.battery = Some(json!({"percent": crate::jsnum::num(percent)}));
                    if let Some(mv) = e.prop("batteryLipoMilliVolts").filter(|v| *v > 0.0) {
                        status.battery_voltage = Some(mv / 1000.0);
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(doc) = status.document(&b, model) {
        b.batch.devicestatus.push(doc);
    }
    b.batch
}

/// The newest IOB, battery and insulin left among the events read.
#[derive(Default)]
struct PumpState {
    /// The newest event that said something: its identity and time.
    newest: Option<((i64, i64), (i64, i32))>,
    iob: Option<(f64, (i64, i32))>,
    battery: Option<Value>,
    battery_voltage: Option<f64>,
    reservoir: Option<f64>,
}

impl PumpState {
    fn note(&mut self, e: &Event) {
        self.newest = Some(((e.group, e.seq), e.at));
    }

    fn iob(&mut self, e: &Event, v: Option<f64>) {
        if let Some(v) = v.filter(|v| *v >= 0.0) {
            self.note(e);
            self.iob = Some((v, e.at));
        }
    }

    fn reservoir(&mut self, e: &Event, v: Option<f64>) {
        if let Some(v) = v.filter(|v| *v >= 0.0) {
            self.note(e);
            self.reservoir = Some(v);
        }
    }

    fn document(self, b: &Builder, model: &str) -> Option<Value> {
        let ((group, seq), at) = self.newest?;
        let clock = local_iso(at.0, at.1);
        let mut pump = json!({"clock": clock, "manufacturer": "Tandem"});
        if !model.is_empty() {
            pump["model"] = model.into();
        }
        if let Some((iob, t)) = self.iob {
            pump["iob"] = json!({"iob": units(iob), "timestamp": local_iso(t.0, t.1)});
        }
        if let Some(mut battery) = self.battery {
            if let Some(v) = self.battery_voltage {
                battery["voltage"] = crate::jsnum::num(v);
            }
            pump["battery"] = battery;
        }
        if let Some(r) = self.reservoir {
            pump["reservoir"] = units(r);
        }
        let identifier =
            crate::ids::derived_uuid(&format!("tandem/{}/{group}/{seq}/status", b.serial));
        Some(json!({"device": DEVICE, "created_at": clock, "pump": pump,
            "identifier": identifier}))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ev(code: i64, seq: i64, time: &str, props: Value) -> Value {
        json!({"deviceAssignmentId": "a", "eventCode": code, "sequenceGroup": 0,
            "sequenceNumber": seq, "pumpDateTime": time, "eventProperties": props,
            "estimatedDateTime": format!("{time}Z")})
    }

    #[test]
    fn events_become_documents_in_the_pump_s_zone() {
        let zone = jiff::tz::TimeZone::get("America/New_York").unwrap();
        let ms = |s: &str| crate::dates::parse_iso(s).unwrap().ms;
        let events = [
            // research/bridges.md §6's example: 579571288 is 2026-05-14T00:01:28 local.
            ev(
                399,
                441314,
                "2026-05-14T00:01:31",
                json!({"glucoseValueStatus": 0,
                "currentGlucoseDisplayValue": 167, "egvTimeStamp": 579571288}),
            ),
            ev(
                279,
                441311,
                "2026-05-14T00:01:00",
                json!({"commandedRateSource": 3,
                "commandedRate": 1279}),
            ),
            ev(
                279,
                441320,
                "2026-05-14T00:06:00",
                json!({"commandedRate": 1000}),
            ),
            ev(
                64,
                442680,
                "2026-05-14T00:10:00",
                json!({"bolusId": 1583, "carbAmount": 20,
                "bg": 116, "IOB": 1.2}),
            ),
            ev(
                20,
                442700,
                "2026-05-14T00:12:00",
                json!({"completionStatusRaw": 3,
                "bolusId": 1583, "insulinDelivered": 3.53, "IOB": 4.7}),
            ),
            ev(
                11,
                442701,
                "2026-05-14T00:20:00",
                json!({"insulinAmount": 120}),
            ),
            ev(
                12,
                442702,
                "2026-05-14T00:50:00",
                json!({"insulinAmount": 119}),
            ),
            ev(
                399,
                442703,
                "2026-05-14T00:51:00",
                json!({"glucoseValueStatus": 1,
                "currentGlucoseDisplayValue": 0, "egvTimeStamp": 0}),
            ),
        ];
        let b = batch(&zone, "1111111", "Tandem Mobi", &events);
        assert_eq!(b.entries.len(), 2);
        let e = &b.entries[0];
        assert_eq!(
            (e["sgv"].as_i64(), e["date"].as_i64()),
            (Some(167), Some(ms("2026-05-14T04:01:28Z")))
        );
        assert_eq!(e["dateString"], "2026-05-14T00:01:28.000-04:00");
        assert_eq!(b.entries[1]["sgv"], 401, "high");
        let kinds: Vec<&str> = b
            .treatments
            .iter()
            .map(|t| t["eventType"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "Temp Basal",
                "Temp Basal",
                "Meal Bolus",
                "Suspend Pump",
                "Resume Pump"
            ]
        );
        let basal = &b.treatments[0];
        assert_eq!(
            (basal["absolute"].as_f64(), basal["duration"].as_i64()),
            (Some(1.279), Some(5))
        );
        assert_eq!(b.treatments[1]["duration"], 5, "the last one, for now");
        let bolus = &b.treatments[2];
        assert_eq!(bolus["insulin"].as_f64(), Some(3.53));
        assert_eq!(
            (bolus["carbs"].as_i64(), bolus["glucose"].as_i64()),
            (Some(20), Some(116))
        );
        assert_eq!(bolus["created_at"], "2026-05-14T00:12:00.000-04:00");
        let ds = &b.devicestatus[0]["pump"];
        assert_eq!(
            (ds["iob"]["iob"].as_f64(), ds["reservoir"].as_i64()),
            (Some(4.7), Some(119))
        );
        // The same events again: the same identifiers.
        let again = batch(&zone, "1111111", "Tandem Mobi", &events);
        assert_eq!(again.treatments[2]["identifier"], bolus["identifier"]);
        let other_pump = batch(&zone, "2222222", "", &events);
        assert_ne!(other_pump.treatments[2]["identifier"], bolus["identifier"]);
    }
}
