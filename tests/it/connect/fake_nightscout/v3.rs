//! The fake's API v3, as cgm-remote-monitor 15.0.7's lib/api3/generic does it: create with
//! deduplication (identifier, then the collection's fallback fields on documents without an
//! identifier: API v1's), read (410 for a deleted document), update (PUT), patch, soft and
//! permanent delete, search (live documents only) and history (deleted ones too), each write
//! stamping srvModified from the site's clock; `/api/v3/lastModified`.

use serde_json::{json, Map, Value};

use super::mongo::{self, Clause, Cond, Doc, Op};
use super::{params, Answer, Caller, Request, State};

/// apiConst.MIN_TIMESTAMP: 2000-01-01.
const MIN_TIMESTAMP: i64 = 946_684_800_000;
const COLLECTIONS: [&str; 5] = ["devicestatus", "entries", "food", "profile", "treatments"];
/// Fields a client may not change (generic/update/validate.js).
const IMMUTABLE: [&str; 11] = [
    "identifier",
    "date",
    "utcOffset",
    "eventType",
    "device",
    "app",
    "srvCreated",
    "subject",
    "srvModified",
    "modifiedBy",
    "isValid",
];

/// The field srvModified falls back to for documents without one (generic/setup.js).
fn fallback_field(coll: &str) -> &'static str {
    if coll == "entries" {
        "date"
    } else {
        "created_at"
    }
}

/// The fields deduplication falls back to (generic/setup.js).
fn dedup_fields(coll: &str) -> &'static [&'static str] {
    match coll {
        "entries" => &["date", "type"],
        "treatments" => &["created_at", "eventType"],
        "devicestatus" => &["created_at", "device"],
        _ => &["created_at"],
    }
}

/// dateTools.parseToMoment: epoch ms (seconds when below 2000 in ms), numeric text, or ISO
/// 8601 / RFC 2822 text; before 2000 is no date. Returns ms and the text's UTC offset.
pub fn parse_to_moment(v: Option<&Value>) -> Option<(i64, i32)> {
    let number = |f: f64| {
        let mut ms = f as i64;
        if ms < MIN_TIMESTAMP {
            ms = ms.saturating_mul(1000);
        }
        (ms >= MIN_TIMESTAMP).then_some((ms, 0))
    };
    match v? {
        Value::Array(items) => items.iter().find_map(|i| parse_to_moment(Some(i))),
        Value::Number(n) => number(n.as_f64()?),
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(f) if f.is_finite() => number(f),
            _ => {
                let (ms, off) = nightlite::dates::parse_iso(s)
                    .map(|i| (i.ms, i.offset_min))
                    .or_else(|| nightlite::dates::parse_http_date(s).map(|ms| (ms, 0)))?;
                (ms >= MIN_TIMESTAMP).then_some((ms, off))
            }
        },
        _ => None,
    }
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(_) => true,
    }
}

/// JavaScript's `String(v)` for what an identifier is made of.
fn js_string(v: Option<&Value>) -> String {
    match v {
        None => "undefined".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// operationTools.calculateIdentifier: UUID v5 of `device_date[_eventType]` in the namespace
/// of the bytes of "NightscoutRocks!".
pub fn calculate_identifier(doc: &Doc) -> String {
    let mut key = format!(
        "{}_{}",
        js_string(doc.get("device")),
        js_string(doc.get("date"))
    );
    if truthy(doc.get("eventType")) {
        key.push('_');
        key.push_str(&js_string(doc.get("eventType")));
    }
    let ns = uuid::Uuid::from_bytes(*b"NightscoutRocks!");
    uuid::Uuid::new_v5(&ns, key.as_bytes()).to_string()
}

/// A stored document as API v3 shows it: identifier (its `_id` when it has none), no `_id`.
fn normalized(doc: &Doc) -> Doc {
    let mut d = doc.clone();
    let id = d.remove("_id");
    if !truthy(d.get("identifier")) {
        if let Some(id) = id {
            d.insert("identifier".into(), id);
        }
    }
    d
}

/// collection.resolveDates: srvModified (and srvCreated) from the fallback date field for
/// documents without one; the modification time.
fn resolve_dates(coll: &str, doc: &mut Doc) -> Option<i64> {
    let modified = match doc.get("srvModified").and_then(Value::as_i64) {
        Some(m) if m != 0 => Some(m),
        _ => {
            let m = parse_to_moment(doc.get(fallback_field(coll))).map(|(ms, _)| ms);
            if let Some(m) = m {
                doc.insert("srvModified".into(), m.into());
            }
            m
        }
    };
    if let (Some(m), false) = (modified, truthy(doc.get("srvCreated"))) {
        doc.insert("srvCreated".into(), m.into());
    }
    modified
}

/// storage.findOne: the document whose identifier is `id`, or (a 24-hex `id`) whose `_id`
/// is; one with an identifier first.
fn find_one(s: &State, coll: &str, id: &str) -> Option<usize> {
    let by_identifier = s
        .of(coll)
        .find(|(_, d)| d.get("identifier").and_then(Value::as_str) == Some(id));
    let by_id = || {
        s.of(coll).find(|(_, d)| {
            mongo::is_object_id(id) && d.get("_id").and_then(Value::as_str) == Some(id)
        })
    };
    by_identifier.or_else(by_id).map(|(i, _)| i)
}

fn http_date(ms: i64) -> String {
    nightlite::dates::to_http_date(ms)
}

fn status_only(status: u16) -> Answer {
    Answer::json(status, json!({ "status": status }))
}

pub(super) fn handle(s: &mut State, r: &Request, caller: &Caller, rest: &str) -> Answer {
    let parts: Vec<&str> = rest.split('/').collect();
    if parts == ["lastModified"] && r.method == "GET" {
        return last_modified(s);
    }
    if !COLLECTIONS.contains(&parts[0]) {
        return Answer::error(404, "Bad operation or collection");
    }
    let coll = parts[0];
    let q = params(&r.query);
    match (r.method.as_str(), &parts[1..]) {
        ("GET", []) => search(s, coll, &q),
        ("POST", []) => create(s, r, caller, coll),
        ("GET", ["history"]) => history(s, coll, &q, None, r.header("last-modified")),
        ("GET", ["history", since]) => history(s, coll, &q, Some(since), None),
        ("GET", [id]) => read(s, r, coll, id),
        ("PUT", [id]) => update(s, r, caller, coll, id),
        ("PATCH", [id]) => patch(s, r, caller, coll, id),
        ("DELETE", [id]) => delete(s, caller, coll, id, &q),
        _ => Answer::error(404, "Bad operation or collection"),
    }
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// collection.parseLimit.
fn limit(s: &State, q: &[(String, String)]) -> Result<usize, Answer> {
    match param(q, "limit") {
        None => Ok(s.max_limit),
        Some(l) => match l.parse::<usize>() {
            Ok(n) if n > 0 && n <= s.max_limit => Ok(n),
            _ => Err(Answer::error(400, "Parameter limit out of tolerance")),
        },
    }
}

/// search/input.js parseValue.
fn parse_value(field: &str, raw: &str) -> Value {
    let mut v = match raw.trim().parse::<f64>() {
        Ok(f) if f.is_finite() && !raw.trim().is_empty() => mongo::js_value(f),
        _ => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ if raw.len() >= 2 && raw.starts_with('\'') && raw.ends_with('\'') => {
                Value::String(raw[1..raw.len() - 1].to_string())
            }
            _ => Value::String(raw.to_string()),
        },
    };
    if ["date", "srvModified", "srvCreated"].contains(&field) {
        if let Some((ms, _)) = parse_to_moment(Some(&v)) {
            v = ms.into();
        }
    }
    if field == "created_at" {
        if let Some((ms, _)) = parse_to_moment(Some(&v)) {
            v = nightlite::dates::to_iso(ms).into();
        }
    }
    v
}

fn search(s: &State, coll: &str, q: &[(String, String)]) -> Answer {
    const RESERVED: [&str; 7] = [
        "token",
        "sort",
        "sort$desc",
        "limit",
        "skip",
        "fields",
        "now",
    ];
    let mut filter: mongo::Filter = vec![];
    for (k, raw) in q {
        if RESERVED.contains(&k.as_str()) {
            continue;
        }
        let (field, op) = match k.rsplit_once('$') {
            Some((f, o)) if !f.is_empty() => (f, o),
            _ => (k.as_str(), "eq"),
        };
        let value = parse_value(field, raw);
        let cond = match (op, Op::parse(op)) {
            ("in" | "nin", Some(o)) => {
                let items = js_string(Some(&value))
                    .split('|')
                    .map(|x| Value::String(x.to_string()))
                    .collect();
                Cond::new(field, o, Value::Array(items))
            }
            ("re", _) => {
                // A regular expression: matched as the text it holds, enough here.
                let text = js_string(Some(&value));
                let hits: Vec<Value> = s
                    .of(coll)
                    .filter_map(|(_, d)| mongo::get(d, field).and_then(Value::as_str))
                    .filter(|v| v.contains(&text))
                    .map(|v| Value::String(v.to_string()))
                    .collect();
                Cond::new(field, Op::In, Value::Array(hits))
            }
            (_, Some(o)) => Cond::new(field, o, value),
            (_, None) => {
                return Answer::error(400, &format!("Unsupported filter operator {op}"));
            }
        };
        filter.push(Clause::One(cond));
    }
    if param(q, "sort").is_some() && param(q, "sort$desc").is_some() {
        return Answer::error(400, "Parameters sort and sort$desc cannot be combined");
    }
    let (first, asc) = match (param(q, "sort"), param(q, "sort$desc")) {
        (_, Some(f)) => (Some(f), false),
        (f, None) => (f, true),
    };
    let limit = match limit(s, q) {
        Ok(l) => l,
        Err(a) => return a,
    };
    let skip = match param(q, "skip").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Answer::error(400, "Parameter skip out of tolerance"),
    };
    let mut docs: Vec<Doc> = s
        .of(coll)
        .filter(|(_, d)| d.get("isValid") != Some(&Value::Bool(false)))
        .filter(|(_, d)| mongo::matches(d, &filter))
        .map(|(_, d)| d.clone())
        .collect();
    let mut keys: Vec<(&str, bool)> = first.map(|f| (f, asc)).into_iter().collect();
    keys.extend([("identifier", asc), ("created_at", asc), ("date", asc)]);
    mongo::sort(&mut docs, &keys);
    let result: Vec<Value> = docs
        .into_iter()
        .skip(skip)
        .take(limit)
        .map(|mut d| {
            resolve_dates(coll, &mut d);
            Value::Object(normalized(&d))
        })
        .collect();
    Answer::json(200, json!({"status":200,"result":result}))
}

/// History: `srvModified > since` (the path's), or `>=` the `Last-Modified` header floored
/// to seconds; oldest first; deleted documents included; ETag `W/"<max srvModified>"`.
fn history(
    s: &State,
    coll: &str,
    q: &[(String, String)],
    since: Option<&str>,
    header: Option<&str>,
) -> Answer {
    let bad = || Answer::error(400, "Bad or missing Last-Modified header/parameter");
    let (from, inclusive) = match (since, header) {
        (Some(p), _) => match parse_to_moment(Some(&Value::String(p.to_string()))) {
            Some((ms, _)) => (ms, false),
            None => return bad(),
        },
        (None, Some(h)) => match nightlite::dates::parse_http_date(h) {
            Some(ms) => (ms - ms.rem_euclid(1000), true),
            None => return bad(),
        },
        (None, None) => return bad(),
    };
    let limit = match limit(s, q) {
        Ok(l) => l,
        Err(a) => return a,
    };
    let mut docs: Vec<Doc> = s
        .of(coll)
        .filter(|(_, d)| {
            d.get("srvModified")
                .and_then(Value::as_i64)
                .is_some_and(|m| m > from || (inclusive && m == from))
        })
        .map(|(_, d)| d.clone())
        .collect();
    mongo::sort(&mut docs, &[("srvModified", true)]);
    docs.truncate(limit);
    let max = docs
        .iter()
        .filter_map(|d| d.get("srvModified").and_then(Value::as_i64))
        .max();
    let result: Vec<Value> = docs.iter().map(|d| Value::Object(normalized(d))).collect();
    let answer = Answer::json(200, json!({"status":200,"result":result}));
    match max {
        Some(m) => answer
            .header("Last-Modified", http_date(m))
            .header("ETag", format!("W/\"{m}\"")),
        None => answer,
    }
}

fn read(s: &State, r: &Request, coll: &str, id: &str) -> Answer {
    let Some(i) = find_one(s, coll, id) else {
        return status_only(404);
    };
    let mut doc = s.docs[i].1.clone();
    if doc.get("isValid") == Some(&Value::Bool(false)) {
        return status_only(410);
    }
    let modified = resolve_dates(coll, &mut doc);
    let since = r
        .header("if-modified-since")
        .and_then(nightlite::dates::parse_http_date);
    if let (Some(m), Some(since)) = (modified, since) {
        if m / 1000 <= since / 1000 {
            return Answer::json(304, Value::Null);
        }
    }
    let answer = Answer::json(200, json!({"status":200,"result":normalized(&doc)}));
    match modified {
        Some(m) => answer.header("Last-Modified", http_date(m)),
        None => answer,
    }
}

/// collection.parseDate: `date` (epoch ms) from `date` or `created_at`, `utcOffset` when
/// missing, `created_at` rewritten in UTC.
fn parse_date(doc: &mut Doc) {
    let values = Value::Array(vec![
        doc.get("date").cloned().unwrap_or(Value::Null),
        doc.get("created_at").cloned().unwrap_or(Value::Null),
    ]);
    if let Some((ms, offset)) = parse_to_moment(Some(&values)) {
        doc.insert("date".into(), ms.into());
        if !doc.contains_key("utcOffset") {
            doc.insert("utcOffset".into(), offset.into());
        }
        doc.insert("created_at".into(), nightlite::dates::to_iso(ms).into());
    }
}

/// operationTools.validateCommon.
fn validate_common(doc: &Doc, patching: bool) -> Result<(), Answer> {
    let check = |field: &str, ok: &dyn Fn(&Value) -> bool, message: &str| match doc.get(field) {
        None if patching => Ok(()),
        Some(v) if ok(v) => Ok(()),
        _ => Err(Answer::error(400, message)),
    };
    check(
        "date",
        &|v| v.as_f64().is_some_and(|d| d > MIN_TIMESTAMP as f64),
        "Bad or missing date field",
    )?;
    check(
        "utcOffset",
        &|v| v.as_f64().is_some_and(|o| (-1440.0..=1440.0).contains(&o)),
        "Bad or missing utcOffset field",
    )?;
    check(
        "app",
        &|v| v.as_str().is_some_and(|a| !a.trim().is_empty()),
        "Bad or missing app field",
    )
}

/// JavaScript's `a !== b` for the immutable fields' values (objects are never equal).
fn strictly_equal(a: &Value, b: Option<&Value>) -> bool {
    match (a, b) {
        (Value::Number(x), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (Value::String(x), Some(Value::String(y))) => x == y,
        (Value::Bool(x), Some(Value::Bool(y))) => x == y,
        (Value::Null, Some(Value::Null)) => true,
        _ => false,
    }
}

fn is_read_only(doc: &Doc) -> bool {
    ["isReadOnly", "readOnly", "readonly"]
        .iter()
        .any(|k| doc.get(*k) == Some(&Value::Bool(true)))
}

/// update/validate.js: a read-only document 422; an immutable field changed 400 (not the
/// identifier in a deduplication; anything on a deleted document).
fn validate_update(doc: &Doc, stored: &Doc, patching: bool, dedup: bool) -> Result<(), Answer> {
    if is_read_only(stored) {
        return Err(Answer::error(422, "Trying to modify read-only document"));
    }
    let deleted = stored.get("isValid") == Some(&Value::Bool(false));
    for field in IMMUTABLE {
        if (field == "identifier" && dedup) || deleted {
            continue;
        }
        if let Some(v) = doc.get(field) {
            if !strictly_equal(v, stored.get(field)) {
                return Err(Answer::error(
                    400,
                    &format!("Field {field} cannot be modified by the client"),
                ));
            }
        }
    }
    validate_common(doc, patching)
}

fn body_object(r: &Request) -> Result<Doc, Answer> {
    match &r.body {
        Value::Object(o) if !o.is_empty() => Ok(o.clone()),
        _ => Err(Answer::error(400, "Bad or missing request body")),
    }
}

fn create(s: &mut State, r: &Request, caller: &Caller, coll: &str) -> Answer {
    let mut doc = match body_object(r) {
        Ok(d) => d,
        Err(a) => return a,
    };
    parse_date(&mut doc);
    if !truthy(doc.get("identifier")) {
        let id = calculate_identifier(&doc);
        doc.insert("identifier".into(), id.into());
    }
    let identifier = js_string(doc.get("identifier"));
    // storage.identifyingFilter: by identifier; a 24-hex one as the `_id` of a document
    // without identifier (API v1's); all fallback fields equal on one without identifier.
    let fields = dedup_fields(coll);
    let same = |d: &Doc| {
        let no_identifier = !d.contains_key("identifier");
        d.get("identifier").and_then(Value::as_str) == Some(identifier.as_str())
            || (mongo::is_object_id(&identifier)
                && no_identifier
                && d.get("_id").and_then(Value::as_str) == Some(identifier.as_str()))
            || (no_identifier
                && fields.iter().all(|f| doc.contains_key(*f))
                && fields
                    .iter()
                    .all(|f| mongo::compare(d.get(*f), doc.get(*f)).is_eq()))
    };
    // With an identifier first, as the storage sorts them.
    let found = s
        .of(coll)
        .filter(|(_, d)| same(d))
        .max_by_key(|(i, d)| (d.contains_key("identifier"), std::cmp::Reverse(*i)))
        .map(|(i, _)| i);
    match found {
        Some(i) => replace(s, r, caller, coll, doc, i, true),
        None => insert(s, caller, coll, doc),
    }
}

fn insert(s: &mut State, caller: &Caller, coll: &str, mut doc: Doc) -> Answer {
    if let Some(a) = s.refuse_write(caller, Some(&format!("api:{coll}:create"))) {
        return a;
    }
    if doc
        .get("identifier")
        .and_then(Value::as_str)
        .is_none_or(|i| i.trim().is_empty())
    {
        return Answer::error(400, "Bad or missing identifier field");
    }
    if let Err(a) = validate_common(&doc, false) {
        return a;
    }
    let now = s.now();
    doc.insert("srvModified".into(), now.into());
    doc.insert("srvCreated".into(), now.into());
    if let Some(subject) = &caller.subject {
        doc.insert("subject".into(), subject.clone().into());
    }
    let identifier = js_string(doc.get("identifier"));
    s.insert(coll, doc);
    Answer::json(
        201,
        json!({"status":201,"identifier":identifier,"lastModified":now}),
    )
    .header("Last-Modified", http_date(now))
    .header("Location", format!("/api/v3/{coll}/{identifier}"))
}

/// update/replace.js: the stored document `i` becomes `doc` (keeping its `_id`).
fn replace(
    s: &mut State,
    _r: &Request,
    caller: &Caller,
    coll: &str,
    mut doc: Doc,
    i: usize,
    dedup: bool,
) -> Answer {
    if let Some(a) = s.refuse_write(caller, Some(&format!("api:{coll}:update"))) {
        return a;
    }
    let stored = normalized(&s.docs[i].1);
    if let Err(a) = validate_update(&doc, &stored, false, dedup) {
        return a;
    }
    let now = s.now();
    doc.insert("srvModified".into(), now.into());
    let created = stored
        .get("srvCreated")
        .filter(|v| truthy(Some(v)))
        .cloned()
        .unwrap_or_else(|| now.into());
    doc.insert("srvCreated".into(), created);
    if let Some(subject) = &caller.subject {
        doc.insert("subject".into(), subject.clone().into());
    }
    let mut replacement = Map::new();
    replacement.insert("_id".into(), s.docs[i].1["_id"].clone());
    doc.remove("_id");
    replacement.extend(doc);
    let old = js_string(stored.get("identifier"));
    let new = js_string(replacement.get("identifier"));
    s.docs[i].1 = replacement;
    let mut body = json!({"status":200,"lastModified":now});
    let mut answer_headers = vec![("Last-Modified".to_string(), http_date(now))];
    if old != new || dedup {
        body["identifier"] = new.clone().into();
        body["isDeduplication"] = true.into();
        if old != new {
            body["deduplicatedIdentifier"] = old.into();
        }
        answer_headers.push(("Location".into(), format!("/api/v3/{coll}/{new}")));
    }
    let mut a = Answer::json(200, body);
    a.headers = answer_headers;
    a
}

/// The stored document's modification time is after `If-Unmodified-Since` (seconds).
fn modified_since(coll: &str, r: &Request, stored: &Doc) -> bool {
    let Some(since) = r
        .header("if-unmodified-since")
        .and_then(nightlite::dates::parse_http_date)
    else {
        return false;
    };
    let mut d = stored.clone();
    resolve_dates(coll, &mut d).is_some_and(|m| m / 1000 > since / 1000)
}

fn update(s: &mut State, r: &Request, caller: &Caller, coll: &str, id: &str) -> Answer {
    let mut doc = match body_object(r) {
        Ok(d) => d,
        Err(a) => return a,
    };
    parse_date(&mut doc);
    doc.insert("identifier".into(), id.into());
    match find_one(s, coll, id) {
        Some(i) => {
            let stored = s.docs[i].1.clone();
            if stored.get("isValid") == Some(&Value::Bool(false)) {
                return status_only(410);
            }
            if modified_since(coll, r, &stored) {
                return status_only(412);
            }
            replace(s, r, caller, coll, doc, i, false)
        }
        None => insert(s, caller, coll, doc),
    }
}

fn patch(s: &mut State, r: &Request, caller: &Caller, coll: &str, id: &str) -> Answer {
    let doc = match body_object(r) {
        Ok(d) => d,
        Err(a) => return a,
    };
    if let Some(a) = s.refuse_write(caller, Some(&format!("api:{coll}:update"))) {
        return a;
    }
    let Some(i) = find_one(s, coll, id) else {
        return status_only(404);
    };
    let stored = s.docs[i].1.clone();
    if stored.get("isValid") == Some(&Value::Bool(false)) {
        return status_only(410);
    }
    if modified_since(coll, r, &stored) {
        return status_only(412);
    }
    if let Err(a) = validate_update(&doc, &normalized(&stored), true, false) {
        return a;
    }
    let now = s.now();
    let target = &mut s.docs[i].1;
    for (k, v) in doc {
        if k != "_id" {
            target.insert(k, v);
        }
    }
    target.insert("srvModified".into(), now.into());
    if let Some(subject) = &caller.subject {
        target.insert("modifiedBy".into(), subject.clone().into());
    }
    status_only(200).header("Last-Modified", http_date(now))
}

fn delete(s: &mut State, caller: &Caller, coll: &str, id: &str, q: &[(String, String)]) -> Answer {
    if let Some(a) = s.refuse_write(caller, Some(&format!("api:{coll}:delete"))) {
        return a;
    }
    let Some(i) = find_one(s, coll, id) else {
        return status_only(404);
    };
    if is_read_only(&s.docs[i].1) {
        return Answer::error(422, "Trying to modify read-only document");
    }
    if param(q, "permanent") == Some("true") {
        s.docs.remove(i);
        return status_only(200);
    }
    let now = s.now();
    let doc = &mut s.docs[i].1;
    doc.insert("isValid".into(), false.into());
    doc.insert("srvModified".into(), now.into());
    if let Some(subject) = &caller.subject {
        doc.insert("modifiedBy".into(), subject.clone().into());
    }
    status_only(200)
}

/// specific/lastModified.js: per collection the newest of srvModified and the fallback date.
fn last_modified(s: &State) -> Answer {
    let mut collections = Map::new();
    for coll in COLLECTIONS {
        let srv = s
            .of(coll)
            .filter_map(|(_, d)| d.get("srvModified").and_then(Value::as_i64))
            .max();
        let field = fallback_field(coll);
        let newest = s
            .of(coll)
            .filter(|(_, d)| d.contains_key(field))
            .max_by(|(_, a), (_, b)| mongo::compare(a.get(field), b.get(field)))
            .and_then(|(_, d)| mongo::time_ms(d.get(field)));
        if let Some(t) = srv.into_iter().chain(newest).max() {
            collections.insert(coll.into(), t.into());
        }
    }
    let now = s.now();
    Answer::json(
        200,
        json!({"status":200,"result":{"srvDate":now,"collections":collections}}),
    )
}
