//! The fake's API v1, as cgm-remote-monitor 15.0.7's lib/api and lib/server do it: lists
//! newest first with `find[...]` and `count` and, without a date bound, only the last 4 days
//! (lib/server/query.js); soft-deleted documents listed like any other (v1 knows no
//! `isValid`); writes that set no srvModified, each collection with its own upsert
//! (treatments: identifier > `_id` > created_at and eventType; entries: sysTime and type;
//! device statuses, profiles: insert); deletes that leave nothing behind; the count
//! endpoint with the entries' rules for every collection, as lib/server/aggregate.js has it.

use serde_json::{json, Value};

use super::mongo::{self, Clause, Cond, Doc, Filter, Op};
use super::{params, Answer, Caller, Request, State};

const FOUR_DAYS: i64 = 4 * 86_400_000;

/// How a collection's v1 queries are built (its storage's `queryOpts`).
struct Rules {
    date_field: &'static str,
    /// The 4-day window's bound as epoch ms (entries) rather than ISO text.
    epoch: bool,
    /// Fields whose find values are `parseInt`ed (the query's walker).
    ints: &'static [&'static str],
    /// A list's `count` when the query has none.
    default_count: usize,
}

fn rules(coll: &str) -> Rules {
    match coll {
        "entries" => Rules {
            date_field: "date",
            epoch: true,
            ints: &[
                "date",
                "sgv",
                "filtered",
                "unfiltered",
                "rssi",
                "noise",
                "mbg",
            ],
            default_count: 10,
        },
        "treatments" => Rules {
            date_field: "created_at",
            epoch: false,
            ints: &["insulin", "carbs", "glucose"],
            default_count: 100,
        },
        "profile" => Rules {
            date_field: "startDate",
            epoch: false,
            ints: &[],
            default_count: 10,
        },
        // Device statuses; and the count endpoint's defaults (query.js default_options).
        _ => Rules {
            date_field: if coll == "devicestatus" {
                "created_at"
            } else {
                "date"
            },
            epoch: false,
            ints: &["date", "sgv"],
            default_count: 10,
        },
    }
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `find[a][$op]=v` (or `find[a]=v`, `find[a][$in][]=v`) as (field, op, value).
fn find_params(q: &[(String, String)]) -> Vec<(String, Op, String)> {
    let mut out = vec![];
    for (k, v) in q {
        let Some(rest) = k.strip_prefix("find[") else {
            continue;
        };
        let segs: Vec<&str> = rest
            .trim_end_matches(']')
            .split("][")
            .filter(|s| !s.is_empty())
            .collect();
        let (path, op): (Vec<&str>, Op) = match segs.split_last() {
            Some((last, path)) if last.starts_with('$') => match Op::parse(last) {
                Some(op) => (path.to_vec(), op),
                None => continue,
            },
            _ => (segs.clone(), Op::Eq),
        };
        out.push((path.join("."), op, v.clone()));
    }
    out
}

/// lib/server/query.js: the find, typed, with the 4-day window when it bounds no date.
fn query(s: &State, coll: &str, q: &[(String, String)]) -> Result<Filter, Answer> {
    let rules = rules(coll);
    let mut filter: Filter = vec![];
    let mut ins: Vec<(String, Op, Vec<Value>)> = vec![];
    let mut has_date = false;
    let mut has_id = false;
    for (field, op, raw) in find_params(q) {
        let value = if rules.ints.contains(&field.as_str()) {
            mongo::parse_int(&raw)
        } else {
            Value::String(raw.clone())
        };
        let value = if field == rules.date_field && raw.trim().parse::<f64>().is_err() {
            has_date = true;
            // Text that is no number is read as a date and written back as ISO 8601 UTC.
            match nightlite::dates::parse_iso(&raw.replace(' ', "+")) {
                Some(i) => Value::String(nightlite::dates::to_iso(i.ms)),
                None => {
                    return Err(Answer::error(
                        500,
                        &format!("Cannot parse {raw} as a valid ISO-8601 date"),
                    ))
                }
            }
        } else {
            has_date |= field == rules.date_field || field == "dateString";
            value
        };
        if field == "_id" {
            has_id = true;
            if let (Op::Eq, Some(id)) = (op, value.as_str().filter(|v| is_uuid(v))) {
                // UUID_HANDLING (on by default): a UUID `_id` is looked for as identifier too.
                filter.push(Clause::Any(vec![
                    vec![Cond::new("identifier", Op::Eq, id.into())],
                    vec![Cond::new("_id", Op::Eq, id.into())],
                ]));
                continue;
            }
        }
        match op {
            Op::In | Op::Nin => match ins.iter_mut().find(|(f, o, _)| *f == field && *o == op) {
                Some((_, _, items)) => items.push(value),
                None => ins.push((field, op, vec![value])),
            },
            _ => filter.push(Clause::One(Cond::new(&field, op, value))),
        }
    }
    for (field, op, items) in ins {
        filter.push(Clause::One(Cond::new(&field, op, Value::Array(items))));
    }
    if !has_date && !has_id {
        let min = s.now() - FOUR_DAYS;
        let bound = if rules.epoch {
            Value::from(min)
        } else {
            Value::String(nightlite::dates::to_iso(min))
        };
        filter.push(Clause::One(Cond::new(rules.date_field, Op::Gte, bound)));
    }
    Ok(filter)
}

fn count_param(q: &[(String, String)], default: usize) -> usize {
    q.iter()
        .find(|(k, _)| k == "count")
        .and_then(|(_, v)| mongo::parse_int(v).as_i64())
        .map_or(default, |n| usize::try_from(n).unwrap_or(0))
}

/// The documents of `coll` matching the query, sorted by `sort_field` newest first, at most
/// `count` (0: all, as MongoDB's `limit(0)`).
fn list(s: &State, coll: &str, filter: &Filter, sort_field: &str, count: usize) -> Vec<Doc> {
    let mut docs: Vec<Doc> = s
        .of(coll)
        .filter(|(_, d)| mongo::matches(d, filter))
        .map(|(_, d)| d.clone())
        .collect();
    mongo::sort(&mut docs, &[(sort_field, false)]);
    if count > 0 {
        docs.truncate(count);
    }
    docs
}

fn array(docs: Vec<Doc>) -> Answer {
    Answer::json(
        200,
        Value::Array(docs.into_iter().map(Value::Object).collect()),
    )
}

pub(super) fn handle(s: &mut State, r: &Request, caller: &Caller, rest: &str) -> Answer {
    let parts: Vec<String> = rest
        .trim_end_matches('/')
        .split('/')
        .map(|p| p.trim_end_matches(".json").to_string())
        .collect();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let q = params(&r.query);
    let write = r.method != "GET";
    if write {
        if let Some(a) = s.refuse_write(caller, None) {
            return a;
        }
    }
    match (r.method.as_str(), parts.as_slice()) {
        ("GET", ["count", storage, "where"]) => count(s, storage, &q),
        ("GET", ["entries", "current"]) => array(list(s, "entries", &vec![], "date", 1)),
        ("GET", ["entries", spec]) if mongo::is_object_id(spec) => {
            let one = s.of("entries").find(|(_, d)| d["_id"] == *spec);
            array(one.map(|(_, d)| d.clone()).into_iter().collect())
        }
        ("GET", ["entries", spec]) => {
            let mut q = q.clone();
            q.push(("find[type]".into(), spec.to_string()));
            get_list(s, "entries", &q)
        }
        ("GET", [coll @ ("entries" | "treatments" | "devicestatus")]) => get_list(s, coll, &q),
        ("GET", ["profiles"]) => get_list(s, "profile", &q),
        ("GET", ["profile"]) => {
            let count = count_param(&q, 10);
            array(list(s, "profile", &vec![], "startDate", count))
        }
        ("GET", ["food"]) => array(s.of("food").map(|(_, d)| d.clone()).collect()),
        ("POST", ["entries"]) => post_entries(s, &r.body),
        ("POST", ["treatments"]) => post_treatments(s, &r.body),
        ("PUT", ["treatments"]) => put_treatment(s, &r.body),
        ("POST", [coll @ ("devicestatus" | "profile" | "food")]) => post_inserted(s, coll, &r.body),
        ("DELETE", [coll @ ("entries" | "treatments" | "devicestatus")]) => remove(s, coll, &q),
        ("DELETE", ["entries", spec]) if !mongo::is_object_id(spec) => {
            let mut q = q.clone();
            if *spec != "*" {
                q.push(("find[type]".into(), spec.to_string()));
            }
            remove(s, "entries", &q)
        }
        ("DELETE", [coll @ ("entries" | "treatments" | "devicestatus"), id]) => {
            if *coll == "devicestatus" && *id != "*" && !mongo::is_object_id(id) {
                return invalid_id(id);
            }
            let mut q: Vec<(String, String)> =
                q.into_iter().filter(|(k, _)| k != "find[_id]").collect();
            if *id != "*" {
                q.push(("find[_id]".into(), id.to_string()));
            }
            remove(s, coll, &q)
        }
        ("DELETE", [coll @ ("profile" | "food"), id]) => {
            if !mongo::is_object_id(id) {
                return invalid_id(id);
            }
            s.docs.retain(|(c, d)| !(c == coll && d["_id"] == *id));
            Answer::json(200, json!({}))
        }
        _ => Answer::error(404, "Not found"),
    }
}

fn get_list(s: &State, coll: &str, q: &[(String, String)]) -> Answer {
    let filter = match query(s, coll, q) {
        Ok(f) => f,
        Err(a) => return a,
    };
    let has_find = q.iter().any(|(k, _)| k.starts_with("find["));
    let default = if coll == "treatments" && has_find {
        1000
    } else {
        rules(coll).default_count
    };
    let field = rules(coll).date_field;
    let mut docs = list(s, coll, &filter, field, count_param(q, default));
    if coll == "treatments" {
        // api/treatments/index.js: `t.carbs = Number(t.carbs)` and so on: null when absent.
        for d in &mut docs {
            for k in ["carbs", "insulin"] {
                let n = mongo::js_number(d.get(k));
                d.insert(k.into(), mongo::js_value(n));
            }
        }
    }
    array(docs)
}

/// `/api/v1/count/<storage>/where`: a `$group` count over entries, treatments or device
/// statuses (entries for any other name), with query.js's defaults whatever the collection:
/// the date field is `date` and the 4-day window is ISO text, so treatments and device
/// statuses (which have no `date`) count as none unless the find bounds `date` or
/// `dateString`.
fn count(s: &State, storage: &str, q: &[(String, String)]) -> Answer {
    let coll = match storage {
        "treatments" | "devicestatus" => storage,
        _ => "entries",
    };
    let filter = match query(s, "count", q) {
        Ok(f) => f,
        Err(a) => return a,
    };
    let n = s
        .of(coll)
        .filter(|(_, d)| mongo::matches(d, &filter))
        .count();
    if n == 0 {
        Answer::json(200, json!([]))
    } else {
        Answer::json(200, json!([{"_id": null, "count": n}]))
    }
}

fn remove(s: &mut State, coll: &str, q: &[(String, String)]) -> Answer {
    let filter = match query(s, coll, q) {
        Ok(f) => f,
        Err(a) => return a,
    };
    let before = s.docs.len();
    s.docs
        .retain(|(c, d)| !(c == coll && mongo::matches(d, &filter)));
    let n = before - s.docs.len();
    Answer::json(200, json!({"acknowledged": true, "deletedCount": n}))
}

fn invalid_id(id: &str) -> Answer {
    Answer::json(
        400,
        json!({"status":400,"message":"Invalid _id format",
               "description":format!("Must be 24-character hex string. Got: {id}")}),
    )
}

fn mongo_error() -> Answer {
    Answer::error(500, "Mongo Error")
}

/// The body as a list of objects (one object is a list of one).
fn objects(body: &Value) -> Vec<Doc> {
    match body {
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_object().cloned())
            .collect(),
        Value::Object(o) => vec![o.clone()],
        _ => vec![],
    }
}

/// normalizeEntryId / normalizeTreatmentId: a `_id` that is no ObjectId becomes the
/// identifier (when there is none) and goes.
fn normalize_id(doc: &mut Doc) {
    let text = doc.get("_id").and_then(Value::as_str).map(str::to_string);
    if let Some(id) = text.filter(|id| !mongo::is_object_id(id)) {
        if !doc.contains_key("identifier") {
            doc.insert("identifier".into(), id.into());
        }
        doc.remove("_id");
    }
}

/// A time as `moment.parseZone(x)` then `toISOString()`: UTC, milliseconds; and its offset.
fn iso_of(v: Option<&Value>) -> Option<(String, i32)> {
    let i = v.and_then(nightlite::dates::parse_value)?;
    Some((nightlite::dates::to_iso(i.ms), i.offset_min))
}

fn post_entries(s: &mut State, body: &Value) -> Answer {
    let mut out = vec![];
    for mut doc in objects(body) {
        normalize_id(&mut doc);
        let (sys, offset) = iso_of(doc.get("dateString"))
            .or_else(|| iso_of(doc.get("date")).map(|(t, _)| (t, 0)))
            .unwrap_or_else(|| (nightlite::dates::to_iso(s.now()), 0));
        doc.insert("utcOffset".into(), offset.into());
        doc.insert("sysTime".into(), sys.clone().into());
        if doc.contains_key("dateString") {
            doc.insert("dateString".into(), sys.into());
        }
        // updateOne({sysTime, type}, {$set: doc}, {upsert: true}): fields merge.
        let found = match doc.get("type") {
            Some(t) => s
                .of("entries")
                .find(|(_, d)| d.get("sysTime") == doc.get("sysTime") && d.get("type") == Some(t)),
            None => s
                .of("entries")
                .find(|(_, d)| doc.iter().all(|(k, v)| k == "_id" || d.get(k) == Some(v))),
        }
        .map(|(i, _)| i);
        match found {
            Some(i) => {
                let stored = &mut s.docs[i].1;
                if doc
                    .get("_id")
                    .is_some_and(|id| stored.get("_id") != Some(id))
                {
                    // MongoDB: "the (immutable) field '_id' was found to have been altered";
                    // the batch stops there.
                    return mongo_error();
                }
                for (k, v) in &doc {
                    stored.insert(k.clone(), v.clone());
                }
            }
            None => {
                let id = s.insert("entries", doc.clone());
                doc.insert("_id".into(), id.into());
            }
        }
        out.push(doc);
    }
    array(out)
}

/// lib/server/treatments.js prepareData: created_at in UTC with its offset, the numeric
/// fields as JavaScript's `Number()` makes them, empty ones removed.
fn prepare_treatment(s: &State, doc: &mut Doc) {
    let (created, offset) =
        iso_of(doc.get("created_at")).unwrap_or_else(|| (nightlite::dates::to_iso(s.now()), 0));
    doc.insert("utcOffset".into(), offset.into());
    let created = match iso_of(doc.get("eventTime")) {
        Some((t, _)) => t,
        None => created,
    };
    doc.insert("created_at".into(), created.into());
    doc.remove("eventTime");
    for k in [
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
    ] {
        let n = mongo::js_number(doc.get(k));
        // deleteIfNaN for these two, deleteIfEmpty (0 too) for the others.
        let gone = if matches!(k, "absolute" | "duration") {
            n.is_nan()
        } else {
            n.is_nan() || n == 0.0
        };
        if gone {
            doc.remove(k);
            if k == "glucose" {
                doc.remove("glucoseType");
                doc.remove("units");
            }
        } else {
            doc.insert(k.into(), mongo::js_value(n));
        }
    }
    if doc.get("notes").is_some_and(|n| {
        n.is_null() || n == &Value::Bool(false) || n.as_str() == Some("") || n.as_f64() == Some(0.0)
    }) {
        doc.remove("notes");
    }
    if doc.get("eventType").and_then(Value::as_str) == Some("Announcement") {
        doc.insert("isAnnouncement".into(), true.into());
    }
}

/// upsertQueryFor: identifier (or a `_id` equal to it), else `_id`, else created_at and
/// eventType. With an identifier, the document's own `_id` is dropped.
fn treatment_match(s: &State, doc: &mut Doc) -> Option<usize> {
    if let Some(id) = doc.get("identifier").filter(|v| !v.is_null()).cloned() {
        doc.remove("_id");
        return s
            .of("treatments")
            .find(|(_, d)| d.get("identifier") == Some(&id) || d.get("_id") == Some(&id))
            .map(|(i, _)| i);
    }
    if let Some(id) = doc
        .get("_id")
        .filter(|v| !v.is_null() && v.as_str() != Some(""))
    {
        return s
            .of("treatments")
            .find(|(_, d)| d.get("_id") == Some(id))
            .map(|(i, _)| i);
    }
    let event = doc.get("eventType").filter(|v| !v.is_null());
    s.of("treatments")
        .find(|(_, d)| {
            d.get("created_at") == doc.get("created_at")
                && d.get("eventType").filter(|v| !v.is_null()) == event
        })
        .map(|(i, _)| i)
}

/// replaceOne(query, doc, {upsert: true}): the match's `_id` is kept; the reply shows it.
fn upsert_treatment(s: &mut State, mut doc: Doc) -> Doc {
    normalize_id(&mut doc);
    prepare_treatment(s, &mut doc);
    match treatment_match(s, &mut doc) {
        Some(i) => {
            let id = s.docs[i].1["_id"].clone();
            let mut replacement = Doc::new();
            replacement.insert("_id".into(), id.clone());
            doc.remove("_id");
            replacement.extend(doc.clone());
            s.docs[i].1 = replacement;
            doc.insert("_id".into(), id);
            doc
        }
        None => {
            let id = s.insert("treatments", doc.clone());
            doc.insert("_id".into(), id.into());
            doc
        }
    }
}

fn post_treatments(s: &mut State, body: &Value) -> Answer {
    let now = nightlite::dates::to_iso(s.now());
    let mut out = vec![];
    for mut doc in objects(body) {
        if !doc
            .get("created_at")
            .is_some_and(|v| !v.is_null() && v != "")
        {
            doc.insert("created_at".into(), now.clone().into());
        }
        out.push(upsert_treatment(s, doc));
    }
    array(out)
}

fn put_treatment(s: &mut State, body: &Value) -> Answer {
    match body {
        Value::Object(doc) => Answer::json(200, Value::Object(upsert_treatment(s, doc.clone()))),
        _ => Answer::error(400, "Bad or missing request body"),
    }
}

fn bad_ids(docs: &[Doc]) -> Option<Answer> {
    let bad = docs.iter().find_map(|d| match d.get("_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if mongo::is_object_id(id) => None,
        Some(other) => Some(other.as_str().map_or(other.to_string(), str::to_string)),
    })?;
    Some(Answer::json(
        400,
        json!({"status":400,"message":"Invalid _id format",
               "description":format!("Must be 24-character hex string or omit for auto-generation. Got: {bad}")}),
    ))
}

/// insertMany: an `_id` already there is MongoDB's duplicate key error (ordered: what came
/// before it is stored).
fn insert_all(s: &mut State, coll: &str, docs: Vec<Doc>) -> Answer {
    let mut out = vec![];
    for mut doc in docs {
        if let Some(id) = doc.get("_id") {
            if s.of(coll).any(|(_, d)| d.get("_id") == Some(id)) {
                return mongo_error();
            }
        }
        let id = s.insert(coll, doc.clone());
        doc.insert("_id".into(), id.into());
        out.push(doc);
    }
    array(out)
}

/// Device statuses, profiles and food: `_id`s checked (24 hex or none), created_at set as
/// each of 15.0.7's storages does, then inserted.
fn post_inserted(s: &mut State, coll: &str, body: &Value) -> Answer {
    let mut docs = objects(body);
    if let Some(a) = bad_ids(&docs) {
        return a;
    }
    let now = s.now();
    let missing = |d: &Doc| !d.get("created_at").is_some_and(|v| !v.is_null() && v != "");
    for d in &mut docs {
        match coll {
            // lib/server/devicestatus.js: in UTC with its offset; now when there is none.
            "devicestatus" => {
                let (created, offset) = iso_of(d.get("created_at"))
                    .unwrap_or_else(|| (nightlite::dates::to_iso(now), 0));
                d.insert("created_at".into(), created.into());
                d.insert("utcOffset".into(), offset.into());
            }
            // lib/server/food.js: always now; its upsert then looks for the `_id` with that
            // new created_at, so an `_id` already stored is a duplicate key error.
            "food" => {
                d.insert("created_at".into(), nightlite::dates::to_iso(now).into());
            }
            // lib/server/profile.js: now when there is none.
            _ if missing(d) => {
                d.insert("created_at".into(), nightlite::dates::to_iso(now).into());
            }
            _ => {}
        }
    }
    insert_all(s, coll, docs)
}
