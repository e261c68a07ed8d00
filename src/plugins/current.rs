//! The current properties from the store: the windows of recent documents the plugins read
//! (as Nightscout's data loader holds them) and every property computed from them, for
//! /api/v2/properties, /pebble and the alarm task.

use rusqlite::Connection;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::bwp::Notice;
use super::{Doc, Inputs, Profiles, EVENT_TYPES};
use crate::error::Result;
use crate::store::recent::{self, EntryKind};
use crate::store::treatment_math;
use crate::store::{RawDoc, StoredDoc};
use crate::Config;

/// Readings: Nightscout holds two days; bgnow needs only the newest (four 5-minute buckets),
/// this many leaves room for several uploaders and stray future-dated entries.
const ENTRIES_WINDOW_MS: i64 = 2 * 86_400_000;
const ENTRIES_LIMIT: usize = 100;
/// Device statuses read whole: loop and openaps look back six hours, the others less.
const DEVICESTATUS_WINDOW_MS: i64 = 6 * 3_600_000;
/// Nightscout's data loader and cache hold a day of device statuses (DEVICESTATUS_DAYS, which
/// env.js keeps at 1). COB asks iob.calcTotal for the insulin activity at each carb entry's
/// past decay times, and there a device status within 30 minutes answers instead of the
/// treatments; of the statuses older than the whole ones only their IOB reports are read
/// ([`with_older_iob`]).
pub const DEVICESTATUS_DAY_MS: i64 = 24 * 3_600_000;
const DEVICESTATUS_LIMIT: usize = 2_000;
/// Site/sensor/insulin/battery changes: Nightscout looks back 62 days.
const TREATMENTS_WINDOW_MS: i64 = 62 * 86_400_000;
/// IOB, COB, basal and BWP: Nightscout's in-memory treatments, the last 2.5 days.
pub const PLUGIN_TREATMENTS_WINDOW_MS: i64 = 60 * 3_600_000;

/// A stored document as Nightscout's in-memory lists hold it: `_id` first, and `mills`.
pub fn runtime_doc(d: StoredDoc) -> Doc {
    let mut out = Map::with_capacity(d.doc.len() + 2);
    out.insert("_id".into(), Value::String(d.id));
    out.extend(d.doc);
    out.entry("mills").or_insert_with(|| d.mills.into());
    out
}

/// Reads the windows and computes every property (on the blocking pool).
pub fn read_all(
    conn: &Connection,
    config: &Config,
    db_path: &std::path::Path,
    now: i64,
) -> Result<Doc> {
    Ok(read_with_notice(conn, config, db_path, now)?.0)
}

/// [`read_all`] and what the bolus wizard preview asks of the alarms (None with `bwp` in
/// DISABLE).
pub fn read_with_notice(
    conn: &Connection,
    config: &Config,
    db_path: &std::path::Path,
    now: i64,
) -> Result<(Doc, Option<Notice>)> {
    let docs = |v: Vec<StoredDoc>| -> Vec<Doc> { v.into_iter().map(runtime_doc).collect() };
    let entries = docs(recent::entries(
        conn,
        EntryKind::Sgv,
        now - ENTRIES_WINDOW_MS,
        ENTRIES_LIMIT,
    )?);
    let devicestatus = docs(recent::devicestatus(
        conn,
        now - DEVICESTATUS_WINDOW_MS,
        DEVICESTATUS_LIMIT,
    )?);
    let treatments = docs(recent::latest_treatments(
        conn,
        EVENT_TYPES,
        now - TREATMENTS_WINDOW_MS,
        now,
    )?);
    let mut all = super::compute(&Inputs {
        now,
        config,
        entries: &entries,
        devicestatus: &devicestatus,
        treatments: &treatments,
        db_size_bytes: crate::store::disk::db_size(db_path),
    });
    let math = MathInputs::read(conn, now)?;
    let (raw, recent, profiles) = (math.raw, math.treatments, math.profiles);
    let ds = with_older_iob(conn, devicestatus, now - DEVICESTATUS_WINDOW_MS, now)?;
    let notice = super::extend_with(&mut all, config, now, recent, &ds, &profiles);
    whole_treatments(&mut all, &raw)?;
    Ok((all, notice))
}

/// The treatments and profiles the treatment math reads, for /api/v2/properties and /pebble.
pub struct MathInputs {
    /// Nightscout's in-memory window of treatments as stored text, newest first.
    pub raw: Vec<RawDoc>,
    /// The same, each with only the fields the math reads ([`math_fields`]).
    pub treatments: Vec<Doc>,
    pub profiles: Profiles,
}

impl MathInputs {
    pub fn read(conn: &Connection, now: i64) -> Result<MathInputs> {
        let raw = treatment_math::treatments_since(conn, now - PLUGIN_TREATMENTS_WINDOW_MS)?;
        let treatments = raw.iter().map(math_fields).collect::<Result<Vec<Doc>>>()?;
        Ok(MathInputs {
            raw,
            treatments,
            profiles: plugin_profiles(conn, now)?,
        })
    }
}

/// The device statuses the treatment math reads, as [`super::devicestatus`] gives them:
/// `recent` (newest first, read whole from `since` on) and the rest of Nightscout's day
/// ([`older_iob`]).
pub fn with_older_iob(
    conn: &Connection,
    mut recent: Vec<Doc>,
    since: i64,
    now: i64,
) -> Result<Vec<(Doc, i64)>> {
    recent.extend(older_iob(conn, since, now)?);
    Ok(super::shared::devicestatus_owned(recent))
}

/// The device statuses of Nightscout's day before `since`, newest first, each with its IOB
/// reports only ([`iob_fields`]): iob.js reads nothing else of them.
pub fn older_iob(conn: &Connection, since: i64, now: i64) -> Result<Vec<Doc>> {
    let older = treatment_math::devicestatus_between(
        conn,
        now - DEVICESTATUS_DAY_MS,
        since,
        DEVICESTATUS_LIMIT,
    )?;
    older.iter().map(iob_fields).collect()
}

/// What iob.fromDeviceStatus reads of a status' part (`openaps`, `loop`, `pump`).
#[derive(Deserialize)]
struct IobPart<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    iob: Option<&'a RawValue>,
}

/// What iob.fromDeviceStatus reads of a device status.
#[derive(Deserialize)]
struct IobFields<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    device: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    connect: Option<&'a RawValue>,
    #[serde(default, borrow)]
    openaps: Option<IobPart<'a>>,
    #[serde(rename = "loop", default, borrow)]
    loop_: Option<IobPart<'a>>,
    #[serde(default, borrow)]
    pump: Option<IobPart<'a>>,
}

/// A device status as iob.js reads it: `_id`, `device`, `connect`, the `iob` of `openaps`,
/// `loop` and `pump` (each part kept as an object, without its other fields), `mills`. A Loop
/// status carries its predictions and an OpenAPS one its predBGs: those are skipped, not
/// built. A document serde cannot read that way (a part that is not an object, a duplicated
/// key) is parsed whole.
pub fn iob_fields(d: &RawDoc) -> Result<Doc> {
    let Ok(f) = serde_json::from_str::<IobFields>(&d.doc) else {
        return Ok(runtime_doc(StoredDoc::parse(d.clone())?));
    };
    let mut out = Doc::new();
    out.insert("_id".into(), Value::String(d.id.clone()));
    for (key, raw) in [("device", f.device), ("connect", f.connect)] {
        if let Some(raw) = raw {
            out.insert(key.into(), serde_json::from_str(raw.get())?);
        }
    }
    for (key, part) in [("openaps", f.openaps), ("loop", f.loop_), ("pump", f.pump)] {
        let Some(part) = part else {
            continue;
        };
        let mut o = Doc::new();
        if let Some(raw) = part.iob {
            o.insert("iob".into(), serde_json::from_str(raw.get())?);
        }
        out.insert(key.into(), Value::Object(o));
    }
    out.insert("mills".into(), d.mills.into());
    Ok(out)
}

/// The fields of a treatment the math reads (iob, cob, basal, bwp), each as stored; `null`
/// kept apart from absent (`isNaN(null)` is false, `isNaN(undefined)` true).
#[derive(Deserialize)]
struct MathFields<'a> {
    #[serde(rename = "eventType", default, borrow, deserialize_with = "present")]
    event_type: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    insulin: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    carbs: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    duration: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    absolute: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    percent: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    relative: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    mills: Option<&'a RawValue>,
}

fn present<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// A treatment as the math reads it: `_id`, the fields of [`MathFields`], `mills`. Parsing
/// only those (the rest of the text is skipped, not built into values) is most of what the
/// treatment math costs a request (docs/PERFORMANCE.md). A document serde cannot read that
/// way (a duplicated key) is parsed whole.
pub fn math_fields(d: &RawDoc) -> Result<Doc> {
    let Ok(f) = serde_json::from_str::<MathFields>(&d.doc) else {
        return Ok(runtime_doc(StoredDoc::parse(d.clone())?));
    };
    let mut out = Doc::new();
    out.insert("_id".into(), Value::String(d.id.clone()));
    let fields = [
        ("eventType", f.event_type),
        ("insulin", f.insulin),
        ("carbs", f.carbs),
        ("duration", f.duration),
        ("absolute", f.absolute),
        ("percent", f.percent),
        ("relative", f.relative),
        ("mills", f.mills),
    ];
    for (key, raw) in fields {
        if let Some(raw) = raw {
            out.insert(key.into(), serde_json::from_str(raw.get())?);
        }
    }
    out.entry("mills").or_insert_with(|| d.mills.into());
    Ok(out)
}

/// Where the properties show a treatment whole (Nightscout shows its in-memory document).
const SHOWN: &[&[&str]] = &[
    &["iob", "lastBolus"],
    &["cob", "lastCarbs"],
    &["cob", "treatmentCOB", "lastCarbs"],
    &["bwp", "recentCarbs"],
    &["basal", "current", "treatment"],
    &["basal", "current", "combobolustreatment"],
];

/// Replaces each treatment the properties show (read by [`math_fields`]) by its whole
/// document, keeping what the plugins added to it (basal's `endmills`) after its fields.
fn whole_treatments(props: &mut Doc, raw: &[RawDoc]) -> Result<()> {
    for path in SHOWN {
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let mut at = Some(&mut *props);
        for key in parents {
            at = at
                .and_then(|o| o.get_mut(*key))
                .and_then(Value::as_object_mut);
        }
        let Some(slot) = at.and_then(|o| o.get_mut(*last)) else {
            continue;
        };
        let Some(light) = slot.as_object() else {
            continue;
        };
        let id = light.get("_id").and_then(Value::as_str);
        let Some(d) = raw.iter().find(|d| Some(d.id.as_str()) == id) else {
            continue;
        };
        let mut whole = runtime_doc(StoredDoc::parse(d.clone())?);
        for (k, v) in light {
            if !whole.contains_key(k) {
                whole.insert(k.clone(), v.clone());
            }
        }
        *slot = Value::Object(whole);
    }
    Ok(())
}

/// The profile documents and Profile Switches in force over the plugins' window.
pub fn plugin_profiles(conn: &Connection, now: i64) -> Result<Profiles> {
    let (docs, switches) =
        crate::profiles::load_stored(conn, now - PLUGIN_TREATMENTS_WINDOW_MS, now)?;
    Ok(Profiles::new(&docs, &switches))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn raw(id: &str, doc: &str) -> RawDoc {
        RawDoc {
            seq: 1,
            id: id.into(),
            doc: doc.into(),
            mills: 5,
            srv_created: 0,
            srv_modified: 0,
            is_valid: true,
        }
    }

    #[test]
    fn older_statuses_keep_only_their_iob_reports() {
        let loop_status = raw(
            "l",
            r#"{"device":"loop://iPhone","created_at":"x","loop":{"timestamp":"t","iob":{"iob":1.5,"timestamp":"t"},"predicted":{"values":[1,2,3]}},"pump":{"reservoir":50}}"#,
        );
        let light = iob_fields(&loop_status).unwrap_or_default();
        assert_eq!(
            serde_json::to_string(&light).unwrap_or_default(),
            r#"{"_id":"l","device":"loop://iPhone","loop":{"iob":{"iob":1.5,"timestamp":"t"}},"pump":{},"mills":5}"#
        );
        // null parts are absent to iob.js as to serde; a part that is not an object is
        // parsed whole.
        let odd = iob_fields(&raw("o", r#"{"openaps":"x","loop":null,"connect":{}}"#))
            .unwrap_or_default();
        assert_eq!(odd.get("openaps"), Some(&json!("x")));
        assert_eq!(odd.get("loop"), Some(&Value::Null));
        // iob.js reads the same IOB from both forms.
        let whole = runtime_doc(StoredDoc::parse(loop_status).unwrap_or_else(|_| unreachable!()));
        let at = |d: Doc| super::super::iob::from_devicestatus(5, &[(d, 5)]);
        assert_eq!(at(light), at(whole));
    }

    #[test]
    fn the_math_reads_a_few_fields_and_shows_whole_documents() {
        let t = raw(
            "a",
            r#"{"eventType":"Temp Basal","enteredBy":"x","absolute":null,"percent":-50,"insulin":"1.50","notes":{"n":[1]}}"#,
        );
        let light = math_fields(&t).unwrap_or_default();
        // null stays null, absent stays absent, number text as stored.
        assert_eq!(
            serde_json::to_string(&light).unwrap_or_default(),
            r#"{"_id":"a","eventType":"Temp Basal","insulin":"1.50","absolute":null,"percent":-50,"mills":5}"#
        );
        // A duplicated key: parsed whole (the last one wins, as serde_json's map keeps it).
        let dup =
            math_fields(&raw("b", r#"{"carbs":1,"carbs":2,"notes":"n"}"#)).unwrap_or_default();
        assert_eq!(dup.get("carbs"), Some(&json!(2)));
        assert_eq!(dup.get("notes"), Some(&json!("n")));

        let mut props = Doc::new();
        let mut shown = light.clone();
        shown.insert("endmills".into(), json!(9));
        props.insert(
            "basal".into(),
            json!({ "current": { "treatment": shown, "combobolustreatment": null } }),
        );
        whole_treatments(&mut props, &[t]).unwrap_or_default();
        let whole = &props["basal"]["current"]["treatment"];
        let keys: Vec<&String> = whole
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            [
                "_id",
                "eventType",
                "enteredBy",
                "absolute",
                "percent",
                "insulin",
                "notes",
                "mills",
                "endmills"
            ]
        );
        assert_eq!(whole["notes"], json!({ "n": [1] }));
    }
}
