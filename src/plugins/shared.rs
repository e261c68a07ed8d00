//! What the device-status, reading and age plugins share: the document type, times in
//! milliseconds, Nightscout's notification levels (lib/levels.js), the sandbox's unit
//! helpers, moments (moment.js as the plugins use it) and the documents as Nightscout's data
//! loader holds them.

use serde_json::{json, Map, Value};

use crate::config::{Units, MMOL_TO_MGDL};
use crate::dates;
use crate::jsnum::js_round;

/// A JSON document as the plugins read and write it.
pub type Doc = Map<String, Value>;

pub(crate) const MIN: i64 = 60_000;
pub(crate) const HOUR: i64 = 60 * MIN;
pub(crate) const DAY: i64 = 24 * HOUR;

// Nightscout's notification levels (lib/levels.js).
pub(crate) const URGENT: i64 = 2;
pub(crate) const WARN: i64 = 1;
pub(crate) const INFO: i64 = 0;
pub(crate) const NONE: i64 = -3;

/// The CSS class of a level, as upbat and dbsize name it.
pub(crate) fn status_class(level: Option<i64>) -> &'static str {
    match level {
        Some(WARN) => "warn",
        Some(URGENT) => "urgent",
        _ => "current",
    }
}

/// sandbox.scaleMgdl: mg/dl, or mmol rounded to one decimal.
pub(crate) fn scale_mgdl(units: Units, mgdl: f64) -> f64 {
    if units == Units::Mmol && mgdl != 0.0 && !mgdl.is_nan() {
        js_round(mgdl / MMOL_TO_MGDL * 10.0) / 10.0
    } else {
        mgdl
    }
}

/// sandbox.roundBGToDisplayFormat.
pub(crate) fn round_bg(units: Units, bg: f64) -> f64 {
    match units {
        Units::Mmol => js_round(bg * 10.0) / 10.0,
        Units::MgDl => js_round(bg),
    }
}

/// A moment: epoch ms, or `None` for an invalid date.
pub(crate) type Mo = Option<i64>;

/// `moment(v)`: undefined is now, null or garbage is invalid.
pub(crate) fn moment(v: Option<&Value>, now: i64) -> Mo {
    match v {
        None => Some(now),
        Some(Value::Null) => None,
        Some(v) => dates::parse_value(v).map(|i| i.ms),
    }
}

/// `a.isAfter(b)`: false when either is invalid.
pub(crate) fn after(a: Mo, b: Mo) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a > b)
}

/// A moment as JSON.stringify writes it (toISOString; null when invalid).
pub(crate) fn mo_json(m: Mo) -> Value {
    m.map_or(Value::Null, |ms| Value::String(dates::to_iso(ms)))
}

pub(crate) fn obj(v: Value) -> Doc {
    match v {
        Value::Object(m) => m,
        _ => Doc::new(),
    }
}

pub(crate) fn get_obj<'a>(d: &'a Doc, key: &str) -> Option<&'a Doc> {
    d.get(key).and_then(Value::as_object)
}

/// A document's time: `mills`, else `created_at` (Nightscout's processForRuntime).
pub(crate) fn doc_mills(d: &Doc) -> Option<i64> {
    d.get("mills").and_then(dates::ms_from_number).or_else(|| {
        d.get("created_at")
            .and_then(dates::parse_value)
            .map(|i| i.ms)
    })
}

pub(crate) fn set_if(out: &mut Doc, key: &str, v: Option<&Value>) {
    if let Some(v) = v {
        out.insert(key.into(), v.clone());
    }
}

/// A status' `device`, or `default` when it names none.
pub(crate) fn device_uri(status: &Doc, default: &str) -> String {
    status
        .get("device")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(default)
        .to_string()
}

/// Documents oldest first (Nightscout sorts its in-memory lists by mills), each with `mills`.
pub fn oldest_first(docs: &[Doc]) -> Vec<(Doc, i64)> {
    oldest_first_owned(docs.to_vec())
}

/// [`oldest_first`] of documents the caller no longer needs (nothing is copied).
fn oldest_first_owned(docs: Vec<Doc>) -> Vec<(Doc, i64)> {
    let mut out: Vec<(Doc, i64)> = docs
        .into_iter()
        .rev()
        .filter_map(|mut d| {
            let ms = doc_mills(&d)?;
            if !d.contains_key("mills") {
                d.insert("mills".into(), ms.into());
            }
            Some((d, ms))
        })
        .collect();
    out.sort_by_key(|(_, ms)| *ms);
    out
}

/// Device statuses as Nightscout's data loader holds them: oldest first, with `mills`, and
/// the old `uploaderBattery` field turned into `uploader.battery`.
pub fn devicestatus(docs: &[Doc]) -> Vec<(Doc, i64)> {
    devicestatus_owned(docs.to_vec())
}

/// [`devicestatus`] of documents the caller no longer needs (device statuses are large:
/// a Loop's carries its predictions; nothing is copied).
pub fn devicestatus_owned(docs: Vec<Doc>) -> Vec<(Doc, i64)> {
    let mut out = oldest_first_owned(docs);
    for (d, _) in &mut out {
        if let Some(b) = d.shift_remove("uploaderBattery") {
            d.insert("uploader".into(), json!({ "battery": b }));
        }
    }
    out
}
