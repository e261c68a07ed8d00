//! The documents the benchmark sends and seeds: shaped as xDrip+ (entries) and Loop
//! (treatments, devicestatus) upload them, and turned into the stored form by nightlite's own
//! `prepare` and identifier rules, so a seeded row is byte for byte what the server would write.

use std::fmt::Write as _;

use nightlite::store::prepare::{self, NewDoc};
use nightlite::store::Collection;
use serde_json::Value;

use super::Res;

pub const ENTRY_DEVICE: &str = "xDrip-DexcomG6";
pub const LOOP_DEVICE: &str = "loop://iPhone";

/// A deterministic glucose trace (mg/dl) so seeded data looks like data.
pub fn sgv_at(i: u64) -> i64 {
    let x = i as f64;
    let v = 140.0 + 50.0 * (x / 97.0).sin() + 25.0 * (x / 13.0).cos();
    v.round() as i64
}

/// An sgv entry as xDrip+ posts it (without the fields the server adds).
pub fn entry_json(out: &mut String, date_ms: i64, i: u64) {
    let sgv = sgv_at(i);
    let delta = sgv - sgv_at(i.wrapping_sub(1));
    let _ = write!(
        out,
        r#"{{"device":"{ENTRY_DEVICE}","date":{date_ms},"dateString":"{}","sgv":{sgv},"delta":{delta}.0,"direction":"Flat","type":"sgv","filtered":{},"unfiltered":{},"rssi":100,"noise":1}}"#,
        nightlite::dates::to_iso(date_ms),
        sgv * 1000,
        sgv * 1000 + 250,
    );
}

/// A Loop treatment; the kind cycles with `i`.
pub fn treatment_json(out: &mut String, ms: i64, i: u64) {
    let at = nightlite::dates::to_iso(ms);
    let _ = match i % 4 {
        0 | 2 => write!(
            out,
            r#"{{"eventType":"Temp Basal","created_at":"{at}","timestamp":"{at}","enteredBy":"{LOOP_DEVICE}","temp":"absolute","rate":{}.{},"absolute":{}.{},"duration":30,"syncIdentifier":"{:016x}"}}"#,
            i % 3,
            i % 100,
            i % 3,
            i % 100,
            i
        ),
        1 => write!(
            out,
            r#"{{"eventType":"Correction Bolus","created_at":"{at}","timestamp":"{at}","enteredBy":"{LOOP_DEVICE}","insulin":{}.{},"type":"normal","programmed":{}.{},"duration":0,"syncIdentifier":"{:016x}"}}"#,
            i % 4,
            i % 20 * 5,
            i % 4,
            i % 20 * 5,
            i
        ),
        _ => write!(
            out,
            r#"{{"eventType":"Carb Correction","created_at":"{at}","enteredBy":"{LOOP_DEVICE}","carbs":{},"absorptionTime":180,"foodType":"meal"}}"#,
            10 + i % 60
        ),
    };
}

/// A Loop devicestatus (about 700 bytes, as Loop's are).
pub fn devicestatus_json(out: &mut String, ms: i64, i: u64) {
    let at = nightlite::dates::to_iso(ms);
    let mut predicted = String::new();
    for k in 0..24 {
        let _ = write!(
            predicted,
            "{}{}",
            if k == 0 { "" } else { "," },
            sgv_at(i * 5 + k)
        );
    }
    let _ = write!(
        out,
        r#"{{"device":"{LOOP_DEVICE}","created_at":"{at}","pump":{{"clock":"{at}","pumpID":"123456","manufacturer":"Medtronic","model":"723","battery":{{"percent":{}}},"reservoir":{}.5,"suspended":false,"bolusing":false}},"uploader":{{"name":"iPhone","battery":{}}},"loop":{{"name":"Loop","version":"3.2.3","timestamp":"{at}","iob":{{"timestamp":"{at}","iob":{}.{}}},"cob":{{"timestamp":"{at}","cob":{}}},"predicted":{{"startDate":"{at}","values":[{predicted}]}},"enacted":{{"timestamp":"{at}","rate":0.{},"duration":30,"received":true}},"recommendedBolus":0}}}}"#,
        100 - i % 100,
        300 - i % 300,
        100 - i % 90,
        i % 5,
        i % 100,
        i % 40,
        i % 10,
    );
}

/// The client JSON of one document of `coll`.
pub fn client_json(out: &mut String, coll: Collection, ms: i64, i: u64) {
    match coll {
        Collection::Treatments => treatment_json(out, ms, i),
        Collection::DeviceStatus => devicestatus_json(out, ms, i),
        _ => entry_json(out, ms, i),
    }
}

/// The row the server would store for a client document: its `doc` text with the server's
/// additions and identifier (src/store/prepare.rs, upsert.rs `derive_identifier`), and `mills`.
pub struct StoredRow {
    pub doc: String,
    pub mills: i64,
}

/// `String(doc.device)` as JavaScript writes it into the identifier key.
fn js_device(v: Option<&Value>) -> Option<String> {
    match v {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// Prepares one client document exactly as a v1 POST does and adds the derived identifier.
pub fn stored(coll: Collection, client: &str, now: i64) -> Res<Vec<StoredRow>> {
    let value: Value = serde_json::from_str(client)?;
    let docs = prepare::prepare(coll, value, coll.table(), now)?;
    docs.into_iter().map(finish).collect()
}

fn finish(mut d: NewDoc) -> Res<StoredRow> {
    if !d.has_client_identifier() {
        let device = js_device(d.doc.get("device"));
        let event = d
            .doc
            .get("eventType")
            .and_then(Value::as_str)
            .map(str::to_string);
        let ident = nightlite::ids::v3_identifier(device.as_deref(), d.mills, event.as_deref());
        d.doc.insert("identifier".into(), Value::String(ident));
    }
    Ok(StoredRow {
        doc: serde_json::to_string(&d.doc)?,
        mills: d.mills,
    })
}
