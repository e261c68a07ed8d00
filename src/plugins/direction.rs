//! direction (lib/plugins/direction.js): the newest reading's trend arrow, while it is current.

use serde_json::Value;

use super::bgnow::Sgv;
use super::shared::{set_if, Doc, MIN};

/// The arrow Nightscout shows for a trend (direction.js dir2Char).
fn direction_char(direction: Option<&Value>) -> &'static str {
    match direction.and_then(Value::as_str) {
        Some("NONE") => "⇼",
        Some("TripleUp") => "⤊",
        Some("DoubleUp") => "⇈",
        Some("SingleUp") => "↑",
        Some("FortyFiveUp") => "↗",
        Some("Flat") => "→",
        Some("FortyFiveDown") => "↘",
        Some("SingleDown") => "↓",
        Some("DoubleDown") => "⇊",
        Some("TripleDown") => "⤋",
        Some("NOT COMPUTABLE") => "-",
        Some("RATE OUT OF RANGE") => "⇕",
        _ => "-",
    }
}

/// direction.js: the last reading's trend, only while that reading is current (15 minutes).
pub fn property(now: i64, sgvs: &[Sgv]) -> Option<Doc> {
    let last = sgvs.iter().rev().find(|s| s.mills <= now)?;
    if now - last.mills > 15 * MIN {
        return None;
    }
    let value = last.doc.get("direction");
    let label = direction_char(value);
    let mut out = Doc::new();
    out.insert("display".into(), Value::Null);
    set_if(&mut out, "value", value);
    out.insert("label".into(), label.into());
    let unit = label.encode_utf16().next().unwrap_or(0);
    out.insert("entity".into(), format!("&#{unit};").into());
    Some(out)
}
