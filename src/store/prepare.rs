//! Nightscout's rules for what an accepted v1 document becomes before it is stored (its
//! lib/server/{entries,treatments,devicestatus,profile,food,activity}.js), and the identity
//! each document carries into [`super::upsert`]. Every other field is kept exactly as sent.

use serde_json::{Map, Value};

use super::collection::Collection;
use crate::dates;
use crate::error::{Error, Result};
use crate::ids;
use crate::jsnum;

/// A document ready to be written.
#[derive(Debug, Clone)]
pub struct NewDoc {
    pub doc: Map<String, Value>,
    /// The document's time in epoch ms (see schema.sql `mills`).
    pub mills: i64,
    /// A client `_id` in ObjectId form: the document to update, or the id to create it under.
    pub id: Option<String>,
}

impl NewDoc {
    /// True when the client named the document's identity itself.
    pub fn has_client_identifier(&self) -> bool {
        self.doc
            .get("identifier")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    }
}

/// Prepares one document of a v1 POST/PUT. `label` names it in error messages
/// (`treatments[2]`). Treatments with a preBolus split into two documents.
pub fn prepare(coll: Collection, value: Value, label: &str, now: i64) -> Result<Vec<NewDoc>> {
    let Value::Object(mut doc) = value else {
        return Err(Error::bad_request(format!(
            "{label}: expected a JSON object"
        )));
    };
    check_finite(&doc, label)?;
    let id = take_id(coll, &mut doc, label)?;
    match coll {
        Collection::Entries => prepare_entry(doc, id, label, now).map(|d| vec![d]),
        Collection::Treatments => prepare_treatment(doc, id, label, now),
        Collection::DeviceStatus => {
            let (mills, _) = normalize_created_at(&mut doc, label, now)?;
            Ok(vec![NewDoc { doc, mills, id }])
        }
        Collection::Profile => {
            default_created_at(&mut doc, now);
            let mills = doc
                .get("startDate")
                .and_then(dates::parse_value)
                .or_else(|| doc.get("created_at").and_then(dates::parse_value))
                .map_or(now, |i| i.ms);
            Ok(vec![NewDoc { doc, mills, id }])
        }
        Collection::Food | Collection::Activity | Collection::Settings => {
            default_created_at(&mut doc, now);
            let mills = doc
                .get("created_at")
                .and_then(dates::parse_value)
                .map_or(now, |i| i.ms);
            Ok(vec![NewDoc { doc, mills, id }])
        }
    }
}

/// Removes `_id` and the server-owned fields from the document. An ObjectId `_id` is returned;
/// for entries and treatments any other string (Loop's and Trio's UUIDs) becomes the
/// `identifier`, as Nightscout does; elsewhere it is refused, as Nightscout does.
fn take_id(coll: Collection, doc: &mut Map<String, Value>, label: &str) -> Result<Option<String>> {
    for server_field in ["srvCreated", "srvModified", "isValid"] {
        doc.remove(server_field);
    }
    let id = match doc.remove("_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) if ids::is_object_id(&s) => Some(s.to_ascii_lowercase()),
        Some(Value::String(s)) if matches!(coll, Collection::Entries | Collection::Treatments) => {
            if !doc.contains_key("identifier") {
                doc.insert("identifier".into(), Value::String(s));
            }
            None
        }
        Some(other) => {
            return Err(Error::bad_request(format!(
                "{label}._id: must be a 24-character hex string or omitted, got {other}"
            )))
        }
    };
    match doc.get("identifier") {
        None | Some(Value::String(_)) => {}
        Some(Value::Null) => {
            doc.remove("identifier");
        }
        Some(other) => {
            return Err(Error::bad_request(format!(
                "{label}.identifier: must be a string, got {other}"
            )))
        }
    }
    Ok(id)
}

fn default_created_at(doc: &mut Map<String, Value>, now: i64) {
    if !doc.contains_key("created_at") {
        doc.insert("created_at".into(), Value::String(dates::to_iso(now)));
    }
}

/// created_at becomes UTC ISO with milliseconds (missing: now); utcOffset records the offset it
/// was written in unless the client sent one. Returns (ms, offset).
fn normalize_created_at(doc: &mut Map<String, Value>, label: &str, now: i64) -> Result<(i64, i32)> {
    let instant = match doc.get("created_at") {
        // Nightscout: `if (!t.created_at) t.created_at = now`.
        None | Some(Value::Null) | Some(Value::Bool(false)) => dates::Instant {
            ms: now,
            offset_min: 0,
        },
        Some(Value::String(s)) if s.is_empty() => dates::Instant {
            ms: now,
            offset_min: 0,
        },
        Some(v) => dates::parse_value(v).ok_or_else(|| {
            Error::bad_request(format!(
                "{label}.created_at: {v} is not an ISO-8601 date or epoch milliseconds"
            ))
        })?,
    };
    doc.insert(
        "created_at".into(),
        Value::String(dates::to_iso(instant.ms)),
    );
    if !doc.contains_key("utcOffset") {
        doc.insert("utcOffset".into(), Value::from(instant.offset_min));
    }
    Ok((instant.ms, instant.offset_min))
}

fn prepare_entry(
    mut doc: Map<String, Value>,
    id: Option<String>,
    label: &str,
    now: i64,
) -> Result<NewDoc> {
    let from_string = doc
        .get("dateString")
        .and_then(Value::as_str)
        .and_then(dates::parse_iso);
    let ms = match doc.get("date") {
        Some(v @ Value::Number(_)) => dates::ms_from_number(v),
        // Digits in a string: stored as the number they are so date queries find them.
        Some(v @ Value::String(_)) => dates::parse_value(v).map(|i| i.ms),
        None | Some(Value::Null) => Some(from_string.map_or(now, |i| i.ms)),
        Some(_) => None,
    }
    .ok_or_else(|| {
        Error::bad_request(format!(
            "{label}.date: must be epoch milliseconds, got {}",
            doc.get("date").map(Value::to_string).unwrap_or_default()
        ))
    })?;
    if !matches!(doc.get("date"), Some(Value::Number(_))) {
        doc.insert("date".into(), Value::from(ms));
    }
    normalise_entry_times(&mut doc, from_string, ms);
    Ok(NewDoc { doc, mills: ms, id })
}

/// As Nightscout's lib/server/entries.js: `sysTime` is the instant of `dateString` (else of
/// `date`) in UTC, a parsable `dateString` is rewritten to that same UTC form and its offset
/// goes to `utcOffset` (xDrip+'s `…+0100` becomes `…Z` with utcOffset 60). Unlike Nightscout,
/// an unparsable dateString is kept (Nightscout stores null) and, without a dateString, a
/// client's utcOffset is kept (Nightscout writes 0).
fn normalise_entry_times(
    doc: &mut Map<String, Value>,
    from_string: Option<dates::Instant>,
    ms: i64,
) {
    let sys_time = dates::to_iso(from_string.map_or(ms, |i| i.ms));
    if let Some(i) = from_string {
        doc.insert("dateString".into(), Value::String(sys_time.clone()));
        doc.insert("utcOffset".into(), Value::from(i.offset_min));
    } else if !doc.contains_key("utcOffset") {
        doc.insert("utcOffset".into(), Value::from(0));
    }
    doc.insert("sysTime".into(), Value::String(sys_time));
}

/// Refuses a document that holds a number no double can carry (`1e400`, `-1e309`, a 400-digit
/// integer): strict JSON decoders reject its echo (`1e+400`) and arithmetic on it (alarms,
/// statistics) reads infinity. The error names the field after `label` (`entries[0].sgv`,
/// `boluses[2].insulin`). [`prepare`] checks here to name the document in its message; every
/// stored document passes here once more, in upsert's insert_row and update_row, so v3 and
/// Socket.IO's dbUpdate are covered by the same check.
pub fn check_finite(doc: &Map<String, Value>, label: &str) -> Result<()> {
    fn walk(v: &Value, path: &mut String) -> Option<String> {
        match v {
            Value::Number(n) if !n.as_f64().is_some_and(f64::is_finite) => Some(format!(
                "{path}: must be a finite number (at most about ±1.8e308)"
            )),
            Value::Object(m) => walk_map(m, path),
            Value::Array(a) => a.iter().enumerate().find_map(|(i, v)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(v, path);
                path.truncate(len);
                found
            }),
            _ => None,
        }
    }
    fn walk_map(m: &Map<String, Value>, path: &mut String) -> Option<String> {
        m.iter().find_map(|(k, v)| {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(k);
            let found = walk(v, path);
            path.truncate(len);
            found
        })
    }
    let mut path = label.to_string();
    match walk_map(doc, &mut path) {
        Some(msg) => Err(Error::bad_request(msg)),
        None => Ok(()),
    }
}

/// Nightscout's treatment prepareData: numeric coercion, empty fields dropped, eventTime,
/// preBolus split, announcements flagged.
fn prepare_treatment(
    mut doc: Map<String, Value>,
    id: Option<String>,
    label: &str,
    now: i64,
) -> Result<Vec<NewDoc>> {
    let (mut ms, _) = normalize_created_at(&mut doc, label, now)?;

    const NUMERIC: [&str; 10] = [
        "glucose",
        "targetTop",
        "targetBottom",
        "carbs",
        "insulin",
        "duration",
        "percent",
        "absolute",
        "relative",
        "preBolus",
    ];
    let mut numbers: Map<String, Value> = Map::new();
    for field in NUMERIC {
        let Some(v) = doc.get(field) else { continue };
        match jsnum::js_number(Some(v)) {
            Some(f) => {
                if !matches!(v, Value::Number(_)) {
                    doc.insert(field.into(), jsnum::num(f));
                }
                numbers.insert(field.into(), jsnum::num(f));
            }
            None => {
                return Err(Error::bad_request(format!(
                    "{label}.{field}: {v} is not a number"
                )))
            }
        }
    }
    let num = |f: &str| numbers.get(f).and_then(Value::as_f64).unwrap_or(0.0);

    if let Some(t) = doc.get("eventTime").filter(|v| !v.is_null()) {
        let i = dates::parse_value(t)
            .ok_or_else(|| Error::bad_request(format!("{label}.eventTime: {t} is not a date")))?;
        ms = i.ms;
        doc.insert("created_at".into(), Value::String(dates::to_iso(ms)));
    }
    doc.remove("eventTime");

    let pre_bolus = num("preBolus");
    // Minutes between the bolus and the meal; a day either way is already absurd.
    if pre_bolus.abs() > 1440.0 {
        return Err(Error::bad_request(format!(
            "{label}.preBolus: {pre_bolus} minutes is out of range (-1440..1440)"
        )));
    }
    let mut pre_bolus_carbs = None;
    if pre_bolus != 0.0 && num("carbs") != 0.0 {
        pre_bolus_carbs = doc.remove("carbs");
    }
    if doc.get("eventType").and_then(Value::as_str) == Some("Announcement") {
        doc.insert("isAnnouncement".into(), Value::Bool(true));
    }
    for field in [
        "targetTop",
        "targetBottom",
        "carbs",
        "insulin",
        "percent",
        "relative",
        "preBolus",
    ] {
        if doc.contains_key(field) && num(field) == 0.0 {
            doc.remove(field);
        }
    }
    if doc
        .get("notes")
        .is_some_and(|n| n.is_null() || n.as_str() == Some(""))
    {
        doc.remove("notes");
    }
    if doc.contains_key("glucose") && num("glucose") == 0.0 {
        for f in ["glucose", "glucoseType", "units"] {
            doc.remove(f);
        }
    }

    let mut out = vec![];
    if let Some(carbs) = pre_bolus_carbs {
        // The carbs are eaten preBolus minutes later: Nightscout stores them as their own
        // treatment at that time.
        #[allow(clippy::cast_possible_truncation)]
        let at = ms + (pre_bolus * 60_000.0) as i64;
        let mut pb = Map::new();
        pb.insert("created_at".into(), Value::String(dates::to_iso(at)));
        if let Some(e) = doc.get("eventType") {
            pb.insert("eventType".into(), e.clone());
        }
        pb.insert("carbs".into(), carbs);
        if let Some(n) = doc.get("notes") {
            pb.insert("notes".into(), n.clone());
        }
        out.push(NewDoc {
            doc: pb,
            mills: at,
            id: None,
        });
    }
    out.insert(0, NewDoc { doc, mills: ms, id });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn non_finite_numbers_are_refused_naming_the_field() {
        let parse = |s: &str| -> Value { serde_json::from_str(s).unwrap() };
        for (body, field) in [
            (r#"{"type":"sgv","sgv":1e400,"date":1}"#, "entries[0].sgv"),
            (r#"{"type":"sgv","sgv":-1e309,"date":1}"#, "entries[0].sgv"),
            (
                r#"{"a":{"b":[1,{"c":1e999}]},"date":1}"#,
                "entries[0].a.b[1].c",
            ),
            (
                &format!(r#"{{"x":1{},"date":1}}"#, "0".repeat(400)),
                "entries[0].x",
            ),
        ] {
            let e = prepare(Collection::Entries, parse(body), "entries[0]", NOW).unwrap_err();
            assert!(matches!(e, Error::BadRequest(_)), "{e:?}");
            let msg = e.client_message();
            assert!(msg.starts_with(&format!("{field}: ")), "{body}: {msg}");
            assert!(msg.contains("must be a finite number"), "{msg}");
        }
        // Big but finite numbers stay as sent.
        let d = one(Collection::Entries, parse(r#"{"sgv":1.7e308,"date":1}"#));
        assert_eq!(d.doc["sgv"].as_f64(), Some(1.7e308));
        // The store refuses them too, for writes that do not come through prepare (v3,
        // Socket.IO's dbUpdate): nothing is changed.
        let c = crate::store::open_in_memory().unwrap();
        let (id, _, _) =
            crate::store::upsert::insert_row(&c, Collection::Entries, None, &d.doc, 1, NOW, false)
                .unwrap();
        let set = match parse(r#"{"sgv":1e400}"#) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let e = crate::store::merge_fields(&c, Collection::Entries, &id, &set, &[]).unwrap_err();
        assert_eq!(
            e.client_message(),
            "sgv: must be a finite number (at most about ±1.8e308)"
        );
        let Value::Object(bad) = parse(r#"{"sgv":1e400,"date":2}"#) else {
            unreachable!()
        };
        let e =
            crate::store::upsert::insert_row(&c, Collection::Entries, None, &bad, 2, NOW, false)
                .unwrap_err();
        assert!(matches!(e, Error::BadRequest(_)), "{e:?}");
        let rows: i64 = c
            .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }

    fn one(coll: Collection, v: Value) -> NewDoc {
        let mut d = prepare(coll, v, "x", NOW).unwrap();
        assert_eq!(d.len(), 1);
        d.remove(0)
    }

    #[test]
    fn treatment_created_at_is_normalized_and_client_offset_kept() {
        let d = one(
            Collection::Treatments,
            json!({"eventType": "Note", "created_at": "2024-01-01T12:00:00+02:00", "utcOffset": -300}),
        );
        assert_eq!(d.doc["created_at"], "2024-01-01T10:00:00.000Z");
        assert_eq!(d.doc["utcOffset"], -300);
        let d = one(
            Collection::Treatments,
            json!({"eventType": "Note", "created_at": "2024-01-01T12:00:00+02:00"}),
        );
        assert_eq!(d.doc["utcOffset"], 120);
        let d = one(Collection::Treatments, json!({"eventType": "Note"}));
        assert_eq!(d.mills, NOW);
    }

    #[test]
    fn treatment_numbers_are_coerced_and_empty_ones_dropped() {
        let d = one(
            Collection::Treatments,
            json!({"eventType": "Meal Bolus", "insulin": "1.5", "carbs": "", "glucose": 0,
                   "glucoseType": "Finger", "duration": "", "notes": ""}),
        );
        assert_eq!(d.doc["insulin"], 1.5);
        assert!(!d.doc.contains_key("carbs"));
        assert!(!d.doc.contains_key("glucose") && !d.doc.contains_key("glucoseType"));
        assert_eq!(d.doc["duration"], 0);
        assert!(!d.doc.contains_key("notes"));
        assert!(prepare(Collection::Treatments, json!({"insulin": "lots"}), "x", NOW).is_err());
    }

    #[test]
    fn numbers_already_numbers_keep_their_text() {
        let v: Value = serde_json::from_str(r#"{"insulin": 1.50, "eventType": "Bolus"}"#).unwrap();
        let d = one(Collection::Treatments, v);
        assert_eq!(serde_json::to_string(&d.doc["insulin"]).unwrap(), "1.50");
    }

    #[test]
    fn pre_bolus_splits_carbs() {
        let d = prepare(
            Collection::Treatments,
            json!({"eventType": "Meal Bolus", "created_at": "2024-01-01T10:00:00Z", "insulin": 2,
                   "carbs": 30, "preBolus": 15}),
            "x",
            NOW,
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        assert!(!d[0].doc.contains_key("carbs"));
        assert_eq!(d[1].doc["carbs"], 30);
        assert_eq!(d[1].doc["created_at"], "2024-01-01T10:15:00.000Z");
    }

    #[test]
    fn event_time_becomes_created_at() {
        let d = one(
            Collection::Treatments,
            json!({"eventType": "Note", "eventTime": "2024-01-01T10:00:00Z"}),
        );
        assert_eq!(d.doc["created_at"], "2024-01-01T10:00:00.000Z");
        assert!(!d.doc.contains_key("eventTime"));
    }

    #[test]
    fn uuid_id_becomes_identifier() {
        let d = one(
            Collection::Treatments,
            json!({"_id": "b07c45bc-b043-56aa-a8c0-125c16a085a2", "eventType": "Note"}),
        );
        assert_eq!(d.doc["identifier"], "b07c45bc-b043-56aa-a8c0-125c16a085a2");
        assert!(d.id.is_none());
        assert!(prepare(Collection::DeviceStatus, json!({"_id": "nope"}), "x", NOW).is_err());
    }

    #[test]
    fn entry_date_forms() {
        let d = one(
            Collection::Entries,
            json!({"type": "sgv", "date": "1700000000000"}),
        );
        assert_eq!(d.doc["date"], 1_700_000_000_000_i64);
        let d = one(
            Collection::Entries,
            json!({"type": "sgv", "dateString": "2023-11-14T22:13:20.000+01:00"}),
        );
        assert_eq!(d.mills, 1_699_996_400_000);
        assert_eq!(d.doc["utcOffset"], 60);
        assert_eq!(
            d.doc["dateString"], "2023-11-14T21:13:20.000Z",
            "normalised to UTC as Nightscout does"
        );
        assert!(prepare(Collection::Entries, json!({"date": true}), "x", NOW).is_err());
        assert!(prepare(Collection::Entries, json!([1]), "x", NOW).is_err());
    }
}
