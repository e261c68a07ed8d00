//! MongoDB's values (Extended JSON as mongoexport writes it, relaxed or canonical, and BSON as
//! mongodump writes it) → the plain JSON an old Nightscout served for them, which is what
//! its clients uploaded and read back:
//!
//! - ObjectId → its 24 hex digits (`{"$oid": "…"}`);
//! - date → `2024-01-31T10:00:00.000Z`, as `JSON.stringify` writes a Date (`{"$date": …}` with an
//!   ISO string, `{"$numberLong"}` or a number inside);
//! - 32- and 64-bit integers → the integer (`{"$numberInt"}`, `{"$numberLong"}`);
//! - double → the number as `JSON.stringify` writes it (`20.0` → `20`), in every form (a plain
//!   number with a fraction, `{"$numberDouble"}`, BSON); NaN and ±Infinity are refused:
//!   nightlite stores only finite numbers;
//! - decimal → its text as a JSON number (`{"$numberDecimal": "1.10"}` → `1.10`), refused when
//!   not finite.
//!
//! Field names, order and nesting stay as they are. Other MongoDB types (binary, regular
//! expressions, timestamps, code, ...), which Nightscout never writes, are refused by name
//! rather than stored as something they were not.

use serde_json::{Map, Number, Value};

use crate::dates;
use crate::jsnum;

/// Extended JSON keys naming a MongoDB type nightlite does not convert.
const UNSUPPORTED: &[&str] = &[
    "$binary",
    "$uuid",
    "$type",
    "$regularExpression",
    "$regex",
    "$options",
    "$timestamp",
    "$code",
    "$scope",
    "$symbol",
    "$minKey",
    "$maxKey",
    "$dbPointer",
    "$ref",
];

/// The plain JSON of an Extended JSON value; the error names the field (`insulin: ...`).
pub fn plain(v: Value) -> Result<Value, String> {
    let mut path = String::new();
    convert(v, &mut path)
}

fn convert(v: Value, path: &mut String) -> Result<Value, String> {
    match v {
        Value::Object(m) => {
            if m.len() == 1 {
                if let Some((k, inner)) = m.iter().next() {
                    if let Some(done) = wrapper(k, inner).map_err(|e| at(path, &e))? {
                        return Ok(done);
                    }
                }
            }
            if let Some(k) = m.keys().find(|k| UNSUPPORTED.contains(&k.as_str())) {
                return Err(at(
                    path,
                    &format!("a MongoDB {k} value, which nightlite does not import"),
                ));
            }
            fields(m, path, convert).map(Value::Object)
        }
        Value::Array(a) => elements(a, path, convert),
        Value::Number(n) => plain_number(&n).map_err(|e| at(path, &e)),
        other => Ok(other),
    }
}

/// An object's fields converted by `one`, in order, each with its name in the path.
fn fields<T>(
    m: impl IntoIterator<Item = (String, T)>,
    path: &mut String,
    one: fn(T, &mut String) -> Result<Value, String>,
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    for (k, v) in m {
        let len = path.len();
        push_key(path, &k);
        let v = one(v, path)?;
        path.truncate(len);
        out.insert(k, v);
    }
    Ok(out)
}

/// An array's elements converted by `one`, each with its index in the path.
fn elements<T>(
    a: Vec<T>,
    path: &mut String,
    one: fn(T, &mut String) -> Result<Value, String>,
) -> Result<Value, String> {
    let mut out = Vec::with_capacity(a.len());
    for (i, v) in a.into_iter().enumerate() {
        let len = path.len();
        path.push_str(&format!("[{i}]"));
        out.push(one(v, path)?);
        path.truncate(len);
    }
    Ok(Value::Array(out))
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

fn at(path: &str, msg: &str) -> String {
    if path.is_empty() {
        msg.to_string()
    } else {
        format!("{path}: {msg}")
    }
}

/// A one-key object that is an Extended JSON value: Some(its plain JSON); None for an
/// ordinary object.
fn wrapper(key: &str, inner: &Value) -> Result<Option<Value>, String> {
    let text = inner.as_str();
    let bad = |what: &str| Err(format!("{key}: {inner} is not {what}"));
    Ok(Some(match key {
        "$oid" => match text {
            Some(s) if crate::ids::is_object_id(s) => Value::String(s.to_ascii_lowercase()),
            _ => return bad("an ObjectId (24 hex digits)"),
        },
        "$date" => {
            let ms = match inner {
                Value::String(s) => dates::parse_iso(s).map(|i| i.ms),
                Value::Object(m) if m.len() == 1 => m
                    .get("$numberLong")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<i64>().ok()),
                Value::Number(_) => dates::ms_from_number(inner),
                _ => None,
            };
            match ms {
                Some(ms) => Value::String(dates::to_iso(ms)),
                None => return bad("a date"),
            }
        }
        "$numberLong" => match text.and_then(|s| s.parse::<i64>().ok()) {
            Some(n) => Value::from(n),
            None => return bad("a 64-bit integer"),
        },
        "$numberInt" => match text.and_then(|s| s.parse::<i32>().ok()) {
            Some(n) => Value::from(n),
            None => return bad("a 32-bit integer"),
        },
        "$numberDouble" => match text {
            Some(s) => double(s.parse::<f64>().ok(), s)?,
            None => return bad("a double"),
        },
        "$numberDecimal" => match text {
            Some(s) => decimal(s)?,
            None => return bad("a decimal"),
        },
        "$undefined" => Value::Null,
        _ => return Ok(None),
    }))
}

/// A double as `JSON.stringify` writes it, or why it cannot be stored.
fn double(x: Option<f64>, text: &str) -> Result<Value, String> {
    match x {
        Some(x) if x.is_finite() => Ok(jsnum::num(x)),
        Some(_) => Err(not_finite(text)),
        None => Err(format!("{text} is not a number")),
    }
}

fn not_finite(text: &str) -> String {
    format!("{text} is not a finite number; nightlite stores only finite numbers")
}

/// A decimal's text as a JSON number when it is one and finite.
fn decimal(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Number>(text) {
        Ok(n) if n.as_f64().is_some_and(f64::is_finite) => Ok(Value::Number(n)),
        Ok(_) => Err(not_finite(text)),
        Err(_) if text.parse::<f64>().is_ok() => Err(not_finite(text)),
        Err(_) => Err(format!("{text} is not a decimal number")),
    }
}

/// Integers stay as written; a number with a fraction or exponent was a double in MongoDB and
/// becomes what `JSON.stringify` writes of it.
fn plain_number(n: &Number) -> Result<Value, String> {
    let text = n.to_string();
    if !text.contains(['.', 'e', 'E']) {
        return Ok(Value::Number(n.clone()));
    }
    double(text.parse::<f64>().ok(), &text)
}

/// The plain JSON of a BSON document (mongodump).
pub fn from_bson(doc: bson::Document) -> Result<Map<String, Value>, String> {
    let mut path = String::new();
    bson_map(doc, &mut path)
}

fn bson_map(doc: bson::Document, path: &mut String) -> Result<Map<String, Value>, String> {
    fields(doc, path, bson_value)
}

fn bson_value(v: bson::Bson, path: &mut String) -> Result<Value, String> {
    use bson::Bson;
    Ok(match v {
        Bson::Double(x) => double(Some(x), &jsnum::js_str(x)).map_err(|e| at(path, &e))?,
        Bson::String(s) => Value::String(s),
        Bson::Boolean(b) => Value::Bool(b),
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Int32(n) => Value::from(n),
        Bson::Int64(n) => Value::from(n),
        Bson::ObjectId(id) => Value::String(id.to_hex()),
        Bson::DateTime(d) => Value::String(dates::to_iso(d.timestamp_millis())),
        Bson::Decimal128(d) => decimal(&d.to_string()).map_err(|e| at(path, &e))?,
        Bson::Document(d) => Value::Object(bson_map(d, path)?),
        Bson::Array(a) => elements(a, path, bson_value)?,
        other => {
            return Err(at(
                path,
                &format!(
                    "a MongoDB {:?} value, which nightlite does not import",
                    other.element_type()
                ),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn text(v: &Value) -> String {
        serde_json::to_string(v).unwrap()
    }

    #[test]
    fn relaxed_and_canonical_forms_give_the_same_document() {
        let relaxed: Value = serde_json::from_str(
            r#"{"_id":{"$oid":"5F1C2A3B4C5D6E7F80910A1B"},"sgv":120,"date":1704067200000,
                "dateString":"2024-01-01T00:00:00.000Z","delta":-1.5,"noise":1.0,
                "at":{"$date":"2024-01-01T01:00:00Z"},"nested":{"a":[1,2.50,{"b":3}]}}"#,
        )
        .unwrap();
        let canonical: Value = serde_json::from_str(
            r#"{"_id":{"$oid":"5f1c2a3b4c5d6e7f80910a1b"},"sgv":{"$numberInt":"120"},
                "date":{"$numberLong":"1704067200000"},
                "dateString":"2024-01-01T00:00:00.000Z","delta":{"$numberDouble":"-1.5"},
                "noise":{"$numberDouble":"1.0"},
                "at":{"$date":{"$numberLong":"1704070800000"}},
                "nested":{"a":[{"$numberInt":"1"},{"$numberDouble":"2.5"},{"b":{"$numberInt":"3"}}]}}"#,
        )
        .unwrap();
        let want = r#"{"_id":"5f1c2a3b4c5d6e7f80910a1b","sgv":120,"date":1704067200000,"dateString":"2024-01-01T00:00:00.000Z","delta":-1.5,"noise":1,"at":"2024-01-01T01:00:00.000Z","nested":{"a":[1,2.5,{"b":3}]}}"#;
        assert_eq!(text(&plain(relaxed).unwrap()), want);
        assert_eq!(text(&plain(canonical).unwrap()), want);
    }

    #[test]
    fn legacy_date_numbers_decimals_and_longs() {
        let v = plain(
            json!({"d": {"$date": 1704067200000_i64}, "x": {"$numberDecimal": "1.10"},
            "big": {"$numberLong": "9007199254740993"}, "u": {"$undefined": true}}),
        )
        .unwrap();
        assert_eq!(
            text(&v),
            r#"{"d":"2024-01-01T00:00:00.000Z","x":1.10,"big":9007199254740993,"u":null}"#
        );
    }

    #[test]
    fn values_nightlite_cannot_store_are_refused_by_field() {
        for (doc, want) in [
            (
                json!({"insulin": {"$numberDouble": "NaN"}}),
                "insulin: NaN is not a finite number",
            ),
            (
                json!({"a": {"b": [{"$numberDouble": "-Infinity"}]}}),
                "a.b[0]: -Infinity is not a finite number",
            ),
            (
                json!({"x": {"$numberDecimal": "Infinity"}}),
                "x: Infinity is not a finite number",
            ),
            (json!({"x": {"$numberLong": "12a"}}), "x: $numberLong"),
            (json!({"x": {"$oid": "nope"}}), "x: $oid"),
            (json!({"x": {"$date": "yesterday"}}), "x: $date"),
            (
                json!({"x": {"$binary": {"base64": "", "subType": "00"}}}),
                "x: a MongoDB $binary value",
            ),
            (
                json!({"x": {"$regex": "a", "$options": ""}}),
                "x: a MongoDB $regex",
            ),
        ] {
            let e = plain(doc.clone()).unwrap_err();
            assert!(e.starts_with(want), "{doc}: {e}");
        }
        let e = plain(serde_json::from_str(r#"{"x":1e400}"#).unwrap()).unwrap_err();
        assert!(e.contains("not a finite number"), "{e}");
    }

    #[test]
    fn bson_values_become_what_extended_json_gives() {
        use bson::{doc, oid::ObjectId, Bson, DateTime};
        let id = ObjectId::parse_str("5f1c2a3b4c5d6e7f80910a1b").unwrap();
        let d = doc! {
            "_id": id, "sgv": 120_i32, "date": 1_704_067_200_000_i64, "noise": 1.0_f64,
            "delta": -1.5_f64, "at": DateTime::from_millis(1_704_070_800_000),
            "nested": {"a": [1_i32, 2.5_f64, {"b": 3_i32}]}, "n": Bson::Null,
        };
        let v = Value::Object(from_bson(d).unwrap());
        assert_eq!(
            text(&v),
            r#"{"_id":"5f1c2a3b4c5d6e7f80910a1b","sgv":120,"date":1704067200000,"noise":1,"delta":-1.5,"at":"2024-01-01T01:00:00.000Z","nested":{"a":[1,2.5,{"b":3}]},"n":null}"#
        );
        let e = from_bson(doc! {"x": {"y": f64::NAN}}).unwrap_err();
        assert_eq!(
            e,
            "x.y: NaN is not a finite number; nightlite stores only finite numbers"
        );
        let e = from_bson(doc! {"t": bson::Timestamp { time: 1, increment: 1 }}).unwrap_err();
        assert!(e.starts_with("t: a MongoDB Timestamp value"), "{e}");
    }
}
