//! States that device statuses report (docs/state-spans.md "From device statuses"): the pump
//! suspended or not, and Loop's override. A status is a sample taken every few minutes, not an
//! event, so a span is a run of consecutive samples of one device reporting the same state:
//! the first sample starts it, the first sample of that device reporting another state (or
//! none) ends it, and the samples between only confirm it.
//!
//! The shapes, per client (docs/state-spans.md "From device statuses"; ../shared/research/
//! wave2.md A.5 and "Derivation from devicestatus"):
//! - Loop: `pump.suspended` (bool) and a top-level `override` `{name, timestamp, active,
//!   currentCorrectionRange: {minValue, maxValue}, duration, multiplier}`, `duration` in
//!   seconds and `timestamp` the override's start (LoopKit/NightscoutKit@aba31720
//!   `Models/DeviceStatus.swift`, `PumpStatus.swift`, `OverrideStatus.swift`).
//! - OpenAPS, Trio and AndroidAPS: `pump.status` `{status: "normal" | "suspended" |
//!   "bolusing", suspended: bool, bolusing: bool, timestamp}` (Trio's `PumpStatus`;
//!   Nightscout's lib/plugins/pump.js reads these three fields).
//!
//! None of these shapes says whether the loop is closed or open, or whether the pump is
//! connected: those PumpMode and PumpConnectivity states come from treatments only
//! (AndroidAPS's `OpenAPS Offline`, src/spans/rules.rs).

use serde_json::{Map, Value};

use super::derive::span_id;
use super::{Category, OriginKind, Span};

/// The categories device statuses feed.
pub const CATEGORIES: [Category; 2] = [Category::PumpMode, Category::Override];

/// A state a sample reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub state: String,
    /// Two samples with the same key report the same state (one span); Loop's override is
    /// told apart by its start and name, so a new override right after another is a new span.
    pub key: String,
    pub metadata: Map<String, Value>,
}

/// What one sample says about one category: `Some(None)` = reported, and no state holds
/// (the pump runs normally, no override); `None` = the sample says nothing about it.
pub type Report = Option<Option<Reading>>;

/// One sample of one device, as the derivation reads it.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Storage order of the devicestatus row (of two samples in the same millisecond the later
    /// stored one is the newer).
    pub seq: i64,
    pub mills: i64,
    /// The status's identifier, else its `_id`.
    pub origin: String,
    pub reading: Option<Reading>,
}

/// The `device` a status names ("" when none): runs are per device.
pub fn device(doc: &Map<String, Value>) -> String {
    doc.get("device")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The client that uploaded a status, from its `device` (`loop://iPhone`, `Trio`,
/// `openaps://…`).
pub fn source(device: &str) -> String {
    let lower = device.to_ascii_lowercase();
    if lower.starts_with("loop://") {
        "Loop".into()
    } else if lower.contains("trio") {
        "Trio".into()
    } else if lower.contains("androidaps") || lower.contains("aaps") {
        "AAPS".into()
    } else if lower.starts_with("openaps://") {
        "OpenAPS".into()
    } else if device.is_empty() {
        "devicestatus".into()
    } else {
        device.to_string()
    }
}

/// What `doc` reports for each category it says something about.
pub fn classify(doc: &Map<String, Value>) -> Vec<(Category, Option<Reading>)> {
    let device = device(doc);
    let mut out = Vec::new();
    if let Some(r) = pump_mode(doc, &device) {
        out.push((Category::PumpMode, r));
    }
    if let Some(r) = loop_override(doc, &device) {
        out.push((Category::Override, r));
    }
    out
}

fn with_device(mut metadata: Map<String, Value>, device: &str) -> Map<String, Value> {
    metadata.insert("device".into(), device.into());
    metadata
}

/// The pump suspended or running: Loop's `pump.suspended`, else `pump.status.suspended` or
/// `pump.status.status` (OpenAPS, Trio, AndroidAPS).
fn pump_mode(doc: &Map<String, Value>, device: &str) -> Report {
    let pump = doc.get("pump")?.as_object()?;
    let status = pump.get("status").and_then(Value::as_object);
    let flags = [
        pump.get("suspended").and_then(Value::as_bool),
        status
            .and_then(|s| s.get("suspended"))
            .and_then(Value::as_bool),
        status
            .and_then(|s| s.get("status"))
            .and_then(Value::as_str)
            .map(|s| s.eq_ignore_ascii_case("suspended")),
    ];
    let reported: Vec<bool> = flags.into_iter().flatten().collect();
    if reported.is_empty() {
        return None;
    }
    if !reported.contains(&true) {
        return Some(None);
    }
    Some(Some(Reading {
        state: "Suspended".into(),
        key: "Suspended".into(),
        metadata: with_device(Map::new(), device),
    }))
}

/// Loop's `override` block: `active: true` holds an override, `active: false` reports none.
fn loop_override(doc: &Map<String, Value>, device: &str) -> Report {
    let o = doc.get("override")?.as_object()?;
    if o.get("active").and_then(Value::as_bool) != Some(true) {
        return Some(None);
    }
    let text = |k: &str| o.get(k).map(|v| v.to_string()).unwrap_or_default();
    let metadata: Map<String, Value> = [
        "name",
        "multiplier",
        "currentCorrectionRange",
        "duration",
        "timestamp",
    ]
    .iter()
    .filter_map(|k| o.get(*k).map(|v| (k.to_string(), v.clone())))
    .collect();
    Some(Some(Reading {
        state: "Custom".into(),
        key: format!("{}|{}", text("timestamp"), text("name")),
        metadata: with_device(metadata, device),
    }))
}

/// The runs of one category and device, one sample at a time (in (mills, seq) order): only the
/// run in force is held.
pub struct RunFold {
    category: Category,
    device: String,
    current: Option<(Span, String)>,
}

impl RunFold {
    /// `current`: the run in force before the first sample pushed, with its key (the store
    /// resumes a fold from the sample before a change).
    pub fn new(category: Category, device: &str, current: Option<(Span, String)>) -> RunFold {
        RunFold {
            category,
            device: device.to_string(),
            current,
        }
    }

    /// Takes the next sample; returns the run it ended, if any.
    pub fn push(&mut self, s: &Sample) -> Option<Span> {
        let same = match (&self.current, &s.reading) {
            (Some((_, key)), Some(r)) => *key == r.key,
            _ => false,
        };
        if same {
            return None;
        }
        let next = s.reading.as_ref().map(|r| {
            let span = Span {
                id: span_id(self.category, &format!("devicestatus:{}", s.origin), 0),
                category: self.category,
                state: r.state.clone(),
                start: s.mills,
                end: None,
                source: source(&self.device),
                metadata: r.metadata.clone(),
                origin: s.origin.clone(),
                origin_seq: s.seq,
                origin_kind: OriginKind::DeviceStatus,
                superseded_by: None,
                superseded_at: None,
                ended_by: None,
                shadowed_by: None,
            };
            (span, r.key.clone())
        });
        let done = self.current.take().map(|(mut run, _)| {
            run.end = Some(s.mills);
            match &next {
                Some((n, _)) => {
                    run.superseded_by = Some(n.id.clone());
                    run.superseded_at = Some(s.mills);
                }
                None => run.ended_by = Some(s.origin.clone()),
            }
            run
        });
        self.current = next;
        done
    }

    /// The id of the run in force after the samples pushed so far.
    pub fn current_id(&self) -> Option<&str> {
        self.current.as_ref().map(|(s, _)| s.id.as_str())
    }

    /// The run still in force when the samples run out: open.
    pub fn finish(self) -> Option<Span> {
        self.current.map(|(s, _)| s)
    }
}
