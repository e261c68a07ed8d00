//! Nightscout's client data shapes (lib/data/ddata.js, dataloader): what a follower receives in
//! a full `dataUpdate` and in its deltas. Shared by the plain WebSocket and Socket.IO.

use serde_json::{json, Map, Value};

use crate::error::Result;
use crate::jsnum;
use crate::plugins::bgnow::SGV_FIELDS;
use crate::store::changes::{ChangeSet, Op};
use crate::store::{self, Collection, Store, StoredDoc};

/// The ddata list a document of a collection goes to, by entry type for entries.
pub fn list_name(coll: Collection, doc: &Map<String, Value>) -> Option<&'static str> {
    Some(match coll {
        Collection::Entries => match doc.get("type").and_then(Value::as_str) {
            Some("mbg") => "mbgs",
            Some("cal") => "cals",
            Some("sgv") => "sgvs",
            // Nightscout's loader goes by the field: an untyped entry with an sgv is a reading.
            None if doc.contains_key("sgv") => "sgvs",
            None if doc.contains_key("mbg") => "mbgs",
            None => "sgvs",
            Some(_) => return None,
        },
        Collection::Treatments => "treatments",
        Collection::DeviceStatus => "devicestatus",
        Collection::Profile => "profiles",
        Collection::Food => "food",
        Collection::Activity => "activity",
        Collection::Settings => return None,
    })
}

/// A reading's value: numbers, and numeric strings as uploaders send them. Narrower than
/// [`jsnum::js_number`] on purpose: an empty string, `null` or a boolean is no reading (Number()
/// would make them 0 or 1), and a text that parses as infinite or NaN is kept as it came.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A reading as a JSON number (a numeric string becomes the number it spells).
fn reading(v: &Value) -> Value {
    match (v, number(v)) {
        (Value::String(_), Some(n)) if n.is_finite() => jsnum::num(n),
        _ => v.clone(),
    }
}

fn copy(out: &mut Map<String, Value>, doc: &Map<String, Value>, fields: &[&str]) {
    for f in fields {
        if let Some(v) = doc.get(*f) {
            out.insert((*f).to_string(), v.clone());
        }
    }
}

/// One document in its ddata shape: entries reduced to the fields followers use (`mgdl`,
/// `mills`, ...), other collections whole with `_id` and `mills`.
pub fn item(coll: Collection, d: &StoredDoc) -> Value {
    let mut out = Map::new();
    out.insert("_id".into(), Value::String(d.id.clone()));
    match (coll, list_name(coll, &d.doc)) {
        (Collection::Entries, Some("sgvs")) => {
            if let Some(v) = d.doc.get("sgv") {
                out.insert("mgdl".into(), reading(v));
            }
            out.insert("mills".into(), d.mills.into());
            copy(&mut out, &d.doc, &SGV_FIELDS);
            copy(&mut out, &d.doc, &["type"]);
        }
        (Collection::Entries, Some("mbgs")) => {
            if let Some(v) = d.doc.get("mbg") {
                out.insert("mgdl".into(), reading(v));
            }
            out.insert("mills".into(), d.mills.into());
            copy(&mut out, &d.doc, &["device", "type"]);
        }
        (Collection::Entries, _) => {
            out.insert("mills".into(), d.mills.into());
            copy(
                &mut out,
                &d.doc,
                &["scale", "intercept", "slope", "device", "type"],
            );
        }
        _ => {
            for (k, v) in &d.doc {
                out.insert(k.clone(), v.clone());
            }
            if coll != Collection::Profile {
                out.insert("mills".into(), d.mills.into());
            }
        }
    }
    Value::Object(out)
}

/// A `dataUpdate` delta for the collections `can_read` allows: changed documents in their
/// lists, deleted ones as `{_id, mills, action: "remove"}`. None when nothing is visible.
pub fn delta(set: &ChangeSet, can_read: impl Fn(Collection) -> bool, now: i64) -> Option<Value> {
    let mut lists: Map<String, Value> = Map::new();
    for c in &set.changes {
        if !can_read(c.collection) {
            continue;
        }
        let (name, value) = match (&c.doc, c.op) {
            (Some(d), Op::Insert | Op::Update) => match list_name(c.collection, &d.doc) {
                Some(n) => (n, item(c.collection, d)),
                None => continue,
            },
            (Some(d), Op::Delete) => match list_name(c.collection, &d.doc) {
                Some(n) => (
                    n,
                    json!({ "_id": c.id, "mills": d.mills, "action": "remove" }),
                ),
                None => continue,
            },
            (None, _) => match list_name(c.collection, &Map::new()) {
                Some(n) => (n, json!({ "_id": c.id, "action": "remove" })),
                None => continue,
            },
        };
        if let Value::Array(items) = lists.entry(name).or_insert_with(|| Value::Array(vec![])) {
            items.push(value);
        }
    }
    if lists.is_empty() {
        return None;
    }
    let mut out = Map::new();
    out.insert("delta".into(), true.into());
    out.insert("lastUpdated".into(), now.into());
    out.extend(lists);
    Some(Value::Object(out))
}

/// The full `dataUpdate` for the last `hours`, of the collections `readable` lists: entries and
/// treatments of the window, device status of the last 3 hours (it is large: predictions), the
/// 10 newest profiles. Lists are oldest first, as Nightscout's.
pub async fn snapshot(
    store: &Store,
    readable: Vec<Collection>,
    hours: f64,
) -> Result<Map<String, Value>> {
    let now = crate::dates::now_ms();
    let since = now - (hours * 3_600_000.0) as i64;
    let loaded = store
        .read(move |conn| {
            readable
                .into_iter()
                .map(|c| {
                    let docs = match c {
                        Collection::DeviceStatus => {
                            store::since(conn, c, now - 3 * 3_600_000, 100)?
                        }
                        Collection::Profile => store::since(conn, c, 0, 10)?,
                        _ => store::since(conn, c, since, 20_000)?,
                    };
                    Ok((c, docs))
                })
                .collect::<Result<Vec<_>>>()
        })
        .await?;
    let mut msg = Map::new();
    msg.insert("delta".into(), false.into());
    msg.insert("lastUpdated".into(), now.into());
    for name in [
        "sgvs",
        "mbgs",
        "cals",
        "treatments",
        "devicestatus",
        "profiles",
    ] {
        msg.insert(name.into(), Value::Array(vec![]));
    }
    for (c, docs) in loaded {
        for d in docs.iter().rev() {
            if let Some(name) = list_name(c, &d.doc) {
                if let Some(Value::Array(items)) = msg.get_mut(name) {
                    items.push(item(c, d));
                }
            }
        }
    }
    Ok(msg)
}

/// The collections of a snapshot a client may read.
pub fn readable(can_read: impl Fn(Collection) -> bool) -> Vec<Collection> {
    [
        Collection::Entries,
        Collection::Treatments,
        Collection::DeviceStatus,
        Collection::Profile,
    ]
    .into_iter()
    .filter(|c| can_read(*c))
    .collect()
}
