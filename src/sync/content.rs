//! What the sync compares: a document's identity (its `identifier`, else its `_id`) and a
//! hash of its content. The content hash is store::compare::content_hash (the document
//! without the fields each server sets itself, keys sorted), marked when the document is
//! deleted, so a delete is a change and two deletes of the same document are the same.

use serde_json::{Map, Value};

use crate::store::compare::content_hash;
use crate::store::{Collection, StoredDoc};

/// A site's `_id`: a string, or mongoexport's `{"$oid": ...}`.
fn id_of(doc: &Map<String, Value>) -> Option<String> {
    match doc.get("_id")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Object(o) => o.get("$oid").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// The document's identity: its `identifier`, else its `_id`.
pub fn identity(doc: &Map<String, Value>) -> Option<String> {
    match doc.get("identifier") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => id_of(doc),
    }
}

/// Whether a site's document is live (API v3 lists deleted ones with `isValid: false`).
pub fn is_valid(doc: &Map<String, Value>) -> bool {
    doc.get("isValid") != Some(&Value::Bool(false))
}

/// The hash of `doc`'s content, marked when it is deleted. A field that is null counts as
/// absent: Nightscout's API v1 lists a treatment with `carbs` and `insulin` null where it
/// stored none, and its API v3 without them.
pub fn hash(doc: &Map<String, Value>, valid: bool) -> String {
    let mut doc = doc.clone();
    doc.retain(|_, v| !v.is_null());
    let h = content_hash(&Value::Object(doc));
    if valid {
        h
    } else {
        format!("{h}:deleted")
    }
}

/// A local document as the site would list it through API v3 (what an upload sends, with
/// `_id`, which API v1 matches by).
pub fn local_view(coll: Collection, d: &StoredDoc) -> Map<String, Value> {
    let mut v = crate::store::v3::view(coll, d);
    v.insert("_id".into(), d.id.clone().into());
    v
}

/// The hash of a local document, comparable with [`hash`] of the site's copy.
pub fn local_hash(coll: Collection, d: &StoredDoc) -> String {
    hash(&local_view(coll, d), d.is_valid)
}

/// A site's document made ready to store here: its identity becomes its `identifier` when it
/// has none (so both sides name it alike), its `_id` is kept when it is an ObjectId (the
/// original ids stay, REQ-MIGRATION-001), and the site's own fields are left behind.
pub fn carried(mut doc: Map<String, Value>, identity: &str) -> Map<String, Value> {
    let id = id_of(&doc);
    for k in ["_id", "srvModified", "srvCreated", "isValid"] {
        doc.remove(k);
    }
    if !doc.contains_key("identifier") {
        doc.insert("identifier".into(), identity.into());
    }
    if let Some(id) = id.filter(|i| crate::ids::is_object_id(i)) {
        doc.insert("_id".into(), id.to_ascii_lowercase().into());
    }
    doc
}

/// The site's document named by its identity (an `identifier` added when it has none), as
/// [`hash`] reads it: the same content as its copy here after [`carried`].
pub fn named(mut doc: Map<String, Value>, identity: &str) -> Map<String, Value> {
    if !matches!(doc.get("identifier"), Some(Value::String(s)) if !s.is_empty()) {
        doc.insert("identifier".into(), identity.into());
    }
    doc
}

/// Fields a site sets itself (left out of every comparison).
const SERVER_FIELDS: [&str; 6] = [
    "_id",
    "srvCreated",
    "srvModified",
    "isValid",
    "subject",
    "modifiedBy",
];

/// Fields a site's API adds to a document it stores without them (Nightscout's API v3 adds
/// `created_at` and `utcOffset`, requires an `app`; nightlite's v3 view adds `date`): a copy
/// that has one where the original has none is still the same document.
const ADDED_BY_SITES: [&str; 5] = ["created_at", "utcOffset", "app", "date", "sysTime"];

/// Whether a site's copy and the document here are the same document, as far as anything
/// but what their servers add tells.
pub fn equivalent(here: &Map<String, Value>, there: &Map<String, Value>) -> bool {
    let strip = |d: &Map<String, Value>, other: &Map<String, Value>| {
        let mut d = d.clone();
        for k in SERVER_FIELDS {
            d.remove(k);
        }
        for k in ADDED_BY_SITES {
            if !other.contains_key(k) {
                d.remove(k);
            }
        }
        d
    };
    strip(here, there) == strip(there, here)
}

/// The fields the site's API added to its copy `there` that `doc` lacks, put into `doc`.
pub fn keep_added(doc: &mut Map<String, Value>, there: &Map<String, Value>) {
    for k in ADDED_BY_SITES {
        if let (false, Some(v)) = (doc.contains_key(k), there.get(k)) {
            doc.insert(k.into(), v.clone());
        }
    }
}

/// A started override or temporary target (the conflict rule that they only get shorter).
pub fn is_timed_adjustment(doc: &Map<String, Value>) -> bool {
    matches!(
        doc.get("eventType").and_then(Value::as_str),
        Some("Temporary Override" | "Temporary Target" | "Exercise")
    )
}

/// An adjustment's length in minutes; None when it runs until cancelled (Loop's indefinite
/// override: `durationType: "indefinite"` or no duration).
pub fn duration_minutes(doc: &Map<String, Value>) -> Option<f64> {
    if doc.get("durationType").and_then(Value::as_str) == Some("indefinite") {
        return None;
    }
    doc.get("duration").and_then(|d| match d {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A document's own start time (created_at, else date), epoch ms.
pub fn start_ms(doc: &Map<String, Value>) -> Option<i64> {
    doc.get("created_at")
        .and_then(crate::dates::parse_value)
        .map(|d| d.ms)
        .or_else(|| doc.get("date").and_then(Value::as_i64))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!(),
        }
    }

    #[test]
    fn identity_hash_and_carrying() {
        let v1 = map(json!({"_id": "5f0c9a1b2c3d4e5f60718293", "sgv": 100}));
        assert_eq!(identity(&v1).unwrap(), "5f0c9a1b2c3d4e5f60718293");
        let v3 = map(json!({"_id": "x", "identifier": "abc", "sgv": 100, "srvModified": 5}));
        assert_eq!(identity(&v3).unwrap(), "abc");
        // Server fields do not count; deletion does.
        let a = map(json!({"identifier": "abc", "sgv": 100}));
        assert_eq!(hash(&a, true), hash(&v3, true));
        assert_ne!(hash(&a, true), hash(&a, false));
        let c = carried(v1.clone(), "5f0c9a1b2c3d4e5f60718293");
        assert_eq!(
            Value::Object(c),
            json!({"sgv": 100, "identifier": "5f0c9a1b2c3d4e5f60718293", "_id": "5f0c9a1b2c3d4e5f60718293"})
        );
        assert_eq!(
            hash(&named(v1, "5f0c9a1b2c3d4e5f60718293"), true),
            hash(
                &map(json!({"identifier": "5f0c9a1b2c3d4e5f60718293", "sgv": 100})),
                true
            )
        );
        assert_eq!(
            duration_minutes(&map(json!({"duration": "30"}))),
            Some(30.0)
        );
        assert_eq!(
            duration_minutes(&map(json!({"duration": 30, "durationType": "indefinite"}))),
            None
        );
    }
}
