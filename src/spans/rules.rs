//! Which treatments start or end which state, as each client uploads them
//! (../shared/research/wave2.md A.4, A.5; docs/state-spans.md has the table).

use serde_json::{Map, Value};

use super::durations::{self, number};
use super::Category;

/// What one treatment does to its category.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// A state begins: `duration` None holds until something ends or replaces it.
    Start {
        state: String,
        duration: Option<i64>,
        metadata: Map<String, Value>,
    },
    /// Ends the state in force (a cancel, a resume, a sensor stop).
    End,
}

/// Trio uploads an indefinite override as an Exercise of 30 days.
const TRIO_INDEFINITE_MINUTES: f64 = 43_200.0;

fn text<'a>(doc: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    doc.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Who recorded a treatment, as a short client name.
pub fn source(doc: &Map<String, Value>) -> String {
    let entered = text(doc, "enteredBy").unwrap_or("");
    let app = text(doc, "app").unwrap_or("");
    let lower = entered.to_ascii_lowercase();
    if app.eq_ignore_ascii_case("AAPS") || lower.contains("androidaps") {
        "AAPS".into()
    } else if lower.starts_with("loop") {
        "Loop".into()
    } else if lower.starts_with("trio") {
        "Trio".into()
    } else if lower.starts_with("xdrip") {
        "xDrip+".into()
    } else if !entered.is_empty() {
        entered.to_string()
    } else if !app.is_empty() {
        app.to_string()
    } else if let Some(device) = text(doc, "device") {
        device.to_string()
    } else {
        "careportal".into()
    }
}

/// The fields of `doc` named in `keys` that it has, unchanged.
fn pick(doc: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .filter_map(|k| doc.get(*k).map(|v| (k.to_string(), v.clone())))
        .collect()
}

/// A duration in minutes (`duration`), else `durationInMilliseconds`; None when neither is a
/// positive number.
fn minutes_or_ms(doc: &Map<String, Value>) -> Option<i64> {
    durations::duration(doc).0
}

fn start(state: &str, duration: Option<i64>, metadata: Map<String, Value>) -> Effect {
    Effect::Start {
        state: state.into(),
        duration,
        metadata,
    }
}

/// Every eventType that can start or end a state (what the store selects when it derives
/// every span; [`classify`] looks at no other).
pub const EVENT_TYPES: &[&str] = &[
    "Profile Switch",
    "Temporary Override",
    "Temporary Target",
    "Temporary Target Cancel",
    "Temp Basal",
    "Temp Basal Start",
    "Temp Basal End",
    "Suspend Pump",
    "Pump Suspend",
    "Resume Pump",
    "Pump Resume",
    "OpenAPS Offline",
    "Sensor Start",
    "Sensor Change",
    "Sensor Stop",
    "Exercise",
    "Sleep",
    "Illness",
    "Sick",
];

/// The category a treatment feeds and what it does there; None for treatments that hold no
/// state (boluses, carbs, notes, ...).
pub fn classify(doc: &Map<String, Value>) -> Option<(Category, Effect)> {
    let event_type = text(doc, "eventType").filter(|e| EVENT_TYPES.contains(e))?;
    let by = source(doc);
    let effect = match event_type {
        "Profile Switch" => (
            Category::Profile,
            start(
                "Active",
                durations::duration(doc).0,
                pick(
                    doc,
                    &[
                        "profile",
                        "originalProfileName",
                        "percentage",
                        "timeshift",
                        "CircadianPercentageProfile",
                    ],
                ),
            ),
        ),
        "Temporary Override" => {
            // Loop: minutes; indefinite is no duration (and `durationType: indefinite`).
            let metadata = pick(
                doc,
                &[
                    "reason",
                    "reasonDisplay",
                    "insulinNeedsScaleFactor",
                    "correctionRange",
                    "targetTop",
                    "targetBottom",
                    "durationType",
                    "remoteAddress",
                ],
            );
            let indefinite = text(doc, "durationType") == Some("indefinite");
            let duration = if indefinite { None } else { minutes_or_ms(doc) };
            (Category::Override, start("Custom", duration, metadata))
        }
        "Exercise" if by == "Trio" => {
            // Trio's overrides: minutes, 43,200 for "indefinite", the preset's name in notes.
            let minutes = doc.get("duration").and_then(number);
            let duration = match minutes {
                Some(m) if m >= TRIO_INDEFINITE_MINUTES => None,
                _ => minutes_or_ms(doc),
            };
            let metadata = pick(doc, &["notes", "reason"]);
            (Category::Override, start("Custom", duration, metadata))
        }
        "Temporary Target" | "Temporary Target Cancel" => {
            let duration = minutes_or_ms(doc);
            if event_type == "Temporary Target Cancel" || duration.is_none() {
                // AndroidAPS and the careportal cancel with duration 0.
                (Category::TemporaryTarget, Effect::End)
            } else {
                let metadata = pick(doc, &["targetTop", "targetBottom", "units", "reason"]);
                (
                    Category::TemporaryTarget,
                    start("Active", duration, metadata),
                )
            }
        }
        "Temp Basal" | "Temp Basal Start" | "Temp Basal End" => {
            let duration = minutes_or_ms(doc);
            if event_type == "Temp Basal End" || duration.is_none() {
                (Category::TempBasal, Effect::End)
            } else {
                let metadata = pick(doc, &["rate", "absolute", "percent", "temp", "type"]);
                (Category::TempBasal, start("Active", duration, metadata))
            }
        }
        "Suspend Pump" | "Pump Suspend" => (
            Category::PumpMode,
            start("Suspended", None, pick(doc, &["reason", "notes"])),
        ),
        "Resume Pump" | "Pump Resume" => (Category::PumpMode, Effect::End),
        "OpenAPS Offline" => offline(doc)?,
        "Sensor Start" | "Sensor Change" => (
            Category::Sensor,
            start(
                "Active",
                None,
                pick(doc, &["sensorCode", "transmitterId", "notes"]),
            ),
        ),
        "Sensor Stop" => (Category::Sensor, Effect::End),
        "Exercise" | "Sleep" | "Illness" | "Sick" => {
            let category = match event_type {
                "Exercise" => Category::Exercise,
                "Sleep" => Category::Sleep,
                _ => Category::Illness,
            };
            // No duration: an instant, not a state that never ends.
            let duration = minutes_or_ms(doc).or(Some(0));
            let metadata = pick(doc, &["notes", "reason"]);
            (category, start("Active", duration, metadata))
        }
        _ => return None,
    };
    Some(effect)
}

/// AndroidAPS's running mode (`OpenAPS Offline` with `mode`): the pump suspended or
/// disconnected, or the loop not closed, for `originalDuration` ms (its `duration` may be a
/// placeholder 0).
fn offline(doc: &Map<String, Value>) -> Option<(Category, Effect)> {
    let mode = text(doc, "mode").unwrap_or("");
    let duration = doc
        .get("originalDuration")
        .and_then(number)
        .filter(|d| *d >= 1.0)
        .map(|d| d.round() as i64)
        .or_else(|| minutes_or_ms(doc));
    let metadata = pick(doc, &["mode", "reasons", "autoForced"]);
    let (category, state) = match mode {
        "DISCONNECTED_PUMP" => (Category::PumpConnectivity, "Disconnected"),
        "SUSPENDED_BY_PUMP" | "SUSPENDED_BY_USER" | "SUSPENDED_BY_DST" => {
            (Category::PumpMode, "Suspended")
        }
        "CLOSED_LOOP" | "CLOSED_LOOP_LGS" | "RESUME" => {
            return Some((Category::PumpMode, Effect::End))
        }
        "DISABLED_LOOP" | "OPEN_LOOP" | "SUPER_BOLUS" => (Category::PumpMode, "Manual"),
        // Nightscout's careportal: "OpenAPS Offline" with a duration in minutes.
        _ => (Category::PumpMode, "Offline"),
    };
    Some((category, start(state, duration, metadata)))
}
