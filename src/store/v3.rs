//! API v3's rules on the shared storage (Nightscout 15, lib/api3): how a document is dated,
//! identified, validated and deduplicated, and the reads v3 needs (by identifier, search,
//! history). A document is one document whichever API wrote it: v1 documents are shown to v3
//! with their identifier, `date` and server fields.

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;
use serde_json::{Map, Value};

use super::collection::Collection;
use super::query::{self, SqlFilter};
use super::upsert;
use super::{ListQuery, RawDoc, StoredDoc};
use crate::dates::{self, Instant};
use crate::error::{Error, Result};

/// Dates before 2000-01-01 are refused (API3 MIN_TIMESTAMP).
pub const MIN_TIMESTAMP: i64 = 946_684_800_000;
pub const MAX_LIMIT: usize = 1000;
const MAX_UTC_OFFSET: f64 = 1440.0;

/// Fields a client may not change once stored (update/validate.js).
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
/// Fields only the server sets.
const SERVER_FIELDS: [&str; 5] = [
    "srvCreated",
    "srvModified",
    "subject",
    "modifiedBy",
    "isValid",
];

/// API v3's dateTools.parseToMoment: epoch ms (seconds when too small to be ms), numeric
/// strings, ISO 8601; nothing before 2000.
pub fn parse_date(v: &Value) -> Option<Instant> {
    let numeric = match v {
        Value::Number(_) => dates::ms_from_number(v),
        Value::String(s) if s.trim().parse::<f64>().is_ok() => dates::ms_from_number(v),
        Value::String(s) => {
            return dates::parse_iso(s)
                .or_else(|| dates::parse_http_date(s).map(|ms| Instant { ms, offset_min: 0 }))
                .filter(|i| i.ms >= MIN_TIMESTAMP)
        }
        _ => None,
    }?;
    // Below 2000-01-01 in ms: seconds, if the number is plausible as seconds (below 1e11 s);
    // a millisecond date before 2000 is simply refused.
    let ms = if numeric < MIN_TIMESTAMP {
        if numeric.abs() >= 100_000_000_000 {
            return None;
        }
        numeric.checked_mul(1000)?
    } else {
        numeric
    };
    (ms >= MIN_TIMESTAMP).then_some(Instant { ms, offset_min: 0 })
}

/// Takes server-owned fields out of a client document.
pub fn strip_server_fields(doc: &mut Map<String, Value>) {
    for f in SERVER_FIELDS {
        doc.remove(f);
    }
}

/// collection.parseDate: `date` from `date` or `created_at`, `utcOffset` when absent, and
/// `created_at` as the same instant in UTC ISO.
pub fn normalize_dates(doc: &mut Map<String, Value>) {
    let found = doc
        .get("date")
        .and_then(parse_date)
        .or_else(|| doc.get("created_at").and_then(parse_date));
    if let Some(i) = found {
        doc.insert("date".into(), Value::from(i.ms));
        if !doc.contains_key("utcOffset") {
            doc.insert("utcOffset".into(), Value::from(i.offset_min));
        }
        doc.insert("created_at".into(), Value::String(dates::to_iso(i.ms)));
    }
}

/// operationTools.validateCommon. When patching, only the fields present are checked.
pub fn validate_common(doc: &Map<String, Value>, patching: bool) -> Result<()> {
    let check = |field: &str| !patching || doc.contains_key(field);
    if check("date") {
        let ok = doc
            .get("date")
            .and_then(Value::as_f64)
            .is_some_and(|d| d > MIN_TIMESTAMP as f64);
        if !ok {
            return Err(Error::bad_request("Bad or missing date field"));
        }
    }
    if check("utcOffset") {
        let ok = doc
            .get("utcOffset")
            .and_then(Value::as_f64)
            .is_some_and(|o| (-MAX_UTC_OFFSET..=MAX_UTC_OFFSET).contains(&o));
        if !ok {
            return Err(Error::bad_request("Bad or missing utcOffset field"));
        }
    }
    if check("app") {
        let ok = doc
            .get("app")
            .and_then(Value::as_str)
            .is_some_and(|a| !a.trim().is_empty());
        if !ok {
            return Err(Error::bad_request("Bad or missing app field"));
        }
    }
    Ok(())
}

/// A client's identifier must be one a URL path can carry back to the document. Nightscout
/// (lib/api3) takes any string; refused here, with 400: control characters (CR, LF and NUL
/// cannot go in the Location header, nor sensibly in a path) and `.` (the last path segment's
/// `.json`/`.csv`/`.xml` is the output format, so `a.b` would be read as format `b`).
/// Everything else comes back through its percent-encoded path (tests/it/v3/create.rs).
pub fn check_identifier(identifier: &str) -> Result<()> {
    match identifier.chars().find(|c| c.is_control() || *c == '.') {
        None => Ok(()),
        Some(c) => Err(Error::bad_request(format!(
            "Bad identifier field: {c:?} is not allowed (no control characters or '.')"
        ))),
    }
}

/// A client document made ready for the rules of a create or replace: dates normalised,
/// common fields validated, its identifier (if any) one a path can carry. Server fields stay:
/// the rules refuse changed ones on an update and drop them on insert.
pub fn ready(doc: &mut Map<String, Value>) -> Result<()> {
    normalize_dates(doc);
    validate_common(doc, false)?;
    if let Some(Value::String(identifier)) = doc.get("identifier") {
        check_identifier(identifier)?;
    }
    Ok(())
}

/// The identifier a new document gets: its own, or UUID v5 of device, date and eventType.
pub fn resolve_identifier(doc: &mut Map<String, Value>) -> Result<String> {
    match doc.get("identifier") {
        Some(Value::String(s)) if !s.trim().is_empty() => return Ok(s.clone()),
        None | Some(Value::Null) => {}
        Some(_) => return Err(Error::bad_request("Bad or missing identifier field")),
    }
    let date = doc.get("date").and_then(dates::ms_from_number).unwrap_or(0);
    let ident = upsert::v3_identifier_of(doc, date);
    doc.insert("identifier".into(), Value::String(ident.clone()));
    Ok(ident)
}

/// The time a v3 document is filed under (`mills`).
fn mills_of(coll: Collection, doc: &Map<String, Value>) -> i64 {
    let own = doc
        .get(coll.time_field())
        .and_then(dates::parse_value)
        .map(|i| i.ms);
    own.or_else(|| doc.get("date").and_then(dates::ms_from_number))
        .unwrap_or_else(dates::now_ms)
}

fn is_read_only(d: &Map<String, Value>) -> bool {
    ["isReadOnly", "readOnly", "readonly"]
        .iter()
        .any(|f| d.get(*f) == Some(&Value::Bool(true)))
}

/// The document as API v3 shows it: every stored field, plus identifier, a `date` for v1
/// documents that only have created_at, srvCreated, srvModified, and isValid=false once deleted.
pub fn view(coll: Collection, d: &StoredDoc) -> Map<String, Value> {
    let mut out = d.doc.clone();
    if !out.contains_key("identifier") {
        out.insert("identifier".into(), Value::String(d.id.clone()));
    }
    if !out.contains_key("date") && coll != Collection::Entries {
        let date = out
            .get("created_at")
            .and_then(dates::parse_value)
            .map_or(d.mills, |i| i.ms);
        out.insert("date".into(), Value::from(date));
    }
    out.insert("srvCreated".into(), Value::from(d.srv_created));
    out.insert("srvModified".into(), Value::from(d.srv_modified));
    if !d.is_valid {
        out.insert("isValid".into(), Value::Bool(false));
    } else {
        out.remove("isValid");
    }
    out
}

/// update/validate.js: a stored value may not change (adding a field the stored document
/// lacks is allowed, so a v1 document can be completed through v3). Deleted documents may be
/// replaced freely.
fn check_immutable(
    coll: Collection,
    new: &Map<String, Value>,
    stored: &StoredDoc,
    skip_identifier: bool,
) -> Result<()> {
    if is_read_only(&stored.doc) {
        return Err(Error::Unprocessable(
            "Trying to modify read-only document".into(),
        ));
    }
    if !stored.is_valid {
        return Ok(());
    }
    let current = view(coll, stored);
    for field in IMMUTABLE {
        if field == "identifier" && skip_identifier {
            continue;
        }
        let Some(a) = new.get(field) else { continue };
        // A client field the stored document lacks may be added (a v1 document completed
        // through v3); a server field must equal the stored one, as Nightscout checks.
        let b = match current.get(field) {
            Some(b) => b,
            // A live document is valid, whether or not `isValid: true` was stored with it:
            // AndroidAPS sends it in every write (Nightscout stores it, so it matches there).
            None if field == "isValid" => &Value::Bool(true),
            None if SERVER_FIELDS.contains(&field) => &Value::Null,
            None => continue,
        };
        {
            let same = a == b || (a.as_f64().is_some() && a.as_f64() == b.as_f64());
            if !same {
                return Err(Error::bad_request(format!(
                    "Field {field} cannot be modified by the client"
                )));
            }
        }
    }
    Ok(())
}

/// A document by identifier (or by `_id` for v1 documents addressed so), deleted ones included.
pub fn find(conn: &Connection, coll: Collection, identifier: &str) -> Result<Option<StoredDoc>> {
    let by_ident = upsert::find_one(
        conn,
        coll,
        "identifier = ?",
        &[SqlValue::Text(identifier.into())],
    )?;
    if by_ident.is_some() || !crate::ids::is_object_id(identifier) {
        return Ok(by_ident);
    }
    upsert::find_one(
        conn,
        coll,
        "id = ?",
        &[SqlValue::Text(identifier.to_ascii_lowercase())],
    )
}

/// What a v3 write did.
#[derive(Debug, Clone)]
pub enum Written {
    Created {
        identifier: String,
        srv_modified: i64,
    },
    /// The document existed (same identifier, or the collection's fallback keys).
    Replaced {
        identifier: String,
        /// The identifier the stored document had, when it differed.
        previous: Option<String>,
        srv_modified: i64,
    },
}

/// POST: insert, or replace the document it duplicates. `doc` has been dated and validated;
/// server fields in it are dropped on insert and must match on a deduplication (as Nightscout
/// validates a replace). `can_update` says whether replacing is permitted (403 otherwise).
pub fn create(
    conn: &Connection,
    coll: Collection,
    mut doc: Map<String, Value>,
    subject: Option<&str>,
    can_update: bool,
    now: i64,
) -> Result<Written> {
    let identifier = resolve_identifier(&mut doc)?;
    let existing = match find(conn, coll, &identifier)? {
        Some(e) => Some(e),
        // Fallback keys only match documents whose identifier nightlite derived, as
        // Nightscout's match only documents without one: two client identifiers are two
        // documents.
        None => upsert::by_dedup_key(conn, coll, &doc, true)?,
    };
    let Some(stored) = existing else {
        return insert(conn, coll, doc, subject, now);
    };
    if !can_update {
        return Err(Error::Forbidden(format!(
            "Missing permission api:{}:update",
            coll.table()
        )));
    }
    check_immutable(coll, &doc, &stored, true)?;
    let previous = view(coll, &stored)
        .get("identifier")
        .and_then(Value::as_str)
        .filter(|p| *p != identifier)
        .map(str::to_string);
    let srv_modified = replace(conn, coll, &stored, doc, subject)?;
    if previous.is_some() {
        // The document now carries the client's (v3) identity.
        conn.prepare_cached(&format!(
            "UPDATE {} SET derived_id = 0 WHERE seq = ?",
            coll.table()
        ))?
        .execute([stored.seq])?;
    }
    Ok(Written::Replaced {
        identifier,
        previous,
        srv_modified,
    })
}

/// A batch of creates (POST of an array): one result per item, in order. Each item is its own
/// savepoint, so a refused one leaves nothing behind and the others are still stored; an item
/// that arrives as an error (it failed preparation) is passed through.
pub fn create_each(
    conn: &Connection,
    coll: Collection,
    docs: Vec<Result<Map<String, Value>>>,
    subject: Option<&str>,
    can_update: bool,
    now: i64,
) -> Result<Vec<Result<Written>>> {
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let doc = match doc {
            Ok(doc) => doc,
            Err(refused) => {
                out.push(Err(refused));
                continue;
            }
        };
        conn.execute_batch("SAVEPOINT item")?;
        let r = create(conn, coll, doc, subject, can_update, now);
        conn.execute_batch(if r.is_ok() {
            "RELEASE item"
        } else {
            "ROLLBACK TO item; RELEASE item"
        })?;
        out.push(r);
    }
    Ok(out)
}

/// Inserts a new document (PUT of an unknown identifier, POST of a new one).
pub fn insert(
    conn: &Connection,
    coll: Collection,
    mut doc: Map<String, Value>,
    subject: Option<&str>,
    now: i64,
) -> Result<Written> {
    let identifier = resolve_identifier(&mut doc)?;
    // A new document takes no server field from the client.
    strip_server_fields(&mut doc);
    if let Some(s) = subject {
        doc.insert("subject".into(), Value::String(s.to_string()));
    }
    let mills = mills_of(coll, &doc);
    let (_, _, srv_modified) = upsert::insert_row(conn, coll, None, &doc, mills, now, false)?;
    Ok(Written::Created {
        identifier,
        srv_modified,
    })
}

/// Replaces a stored document with `doc` (which keeps its own identifier); returns srvModified.
fn replace(
    conn: &Connection,
    coll: Collection,
    stored: &StoredDoc,
    mut doc: Map<String, Value>,
    subject: Option<&str>,
) -> Result<i64> {
    if let Some(s) = subject {
        doc.insert("subject".into(), Value::String(s.to_string()));
    }
    let mills = mills_of(coll, &doc);
    let (_, m) = upsert::update_row(conn, coll, stored.seq, &doc, mills)?;
    Ok(m)
}

/// If-Unmodified-Since: refused (412) when the document changed after that second.
fn check_unmodified_since(stored: &StoredDoc, since: Option<i64>) -> Result<()> {
    if let Some(since) = since {
        if stored.srv_modified.div_euclid(1000) > since.div_euclid(1000) {
            return Err(Error::PreconditionFailed("Precondition Failed".into()));
        }
    }
    Ok(())
}

/// PUT /{col}/{identifier}: replace, or insert when absent (`None` when insert is needed and
/// the caller must check the create permission first).
pub fn update(
    conn: &Connection,
    coll: Collection,
    identifier: &str,
    doc: Map<String, Value>,
    subject: Option<&str>,
    unmodified_since: Option<i64>,
) -> Result<Option<i64>> {
    let Some(stored) = find(conn, coll, identifier)? else {
        return Ok(None);
    };
    if !stored.is_valid {
        return Err(Error::Gone("Gone".into()));
    }
    check_unmodified_since(&stored, unmodified_since)?;
    check_immutable(coll, &doc, &stored, false)?;
    let mut doc = doc;
    strip_server_fields(&mut doc);
    replace(conn, coll, &stored, doc, subject).map(Some)
}

/// PATCH: a shallow merge of `patch` into the stored document.
pub fn patch(
    conn: &Connection,
    coll: Collection,
    identifier: &str,
    patch: Map<String, Value>,
    subject: Option<&str>,
    unmodified_since: Option<i64>,
) -> Result<i64> {
    let stored =
        find(conn, coll, identifier)?.ok_or_else(|| Error::NotFound("Not found".into()))?;
    if !stored.is_valid {
        return Err(Error::Gone("Gone".into()));
    }
    check_unmodified_since(&stored, unmodified_since)?;
    check_immutable(coll, &patch, &stored, false)?;
    validate_common(&patch, true)?;
    let mut doc = stored.doc.clone();
    let mut patch = patch;
    strip_server_fields(&mut patch);
    doc.extend(patch);
    if let Some(s) = subject {
        doc.insert("modifiedBy".into(), Value::String(s.to_string()));
    }
    let mills = mills_of(coll, &doc);
    let (_, m) = upsert::update_row(conn, coll, stored.seq, &doc, mills)?;
    Ok(m)
}

/// DELETE: soft (isValid=false, srvModified bumped) or, with `permanent`, the row removed.
pub fn delete(
    conn: &Connection,
    coll: Collection,
    identifier: &str,
    permanent: bool,
    subject: Option<&str>,
) -> Result<()> {
    let stored =
        find(conn, coll, identifier)?.ok_or_else(|| Error::NotFound("Not found".into()))?;
    if is_read_only(&stored.doc) {
        return Err(Error::Unprocessable(
            "Trying to modify read-only document".into(),
        ));
    }
    let table = coll.table();
    if permanent {
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE seq = ?"))?
            .execute([stored.seq])?;
        return Ok(());
    }
    let mut doc = stored.doc.clone();
    if let Some(s) = subject {
        doc.insert("modifiedBy".into(), Value::String(s.to_string()));
    }
    // srvModified moves on even for a document deleted before, so sync clients always see
    // the delete.
    conn.prepare_cached(&format!(
        "UPDATE {table} SET doc = ?, is_valid = 0, srv_modified = {} WHERE seq = ?",
        upsert::next_modified(table)
    ))?
    .execute(rusqlite::params![serde_json::to_string(&doc)?, stored.seq])?;
    Ok(())
}

/// One `field$op=value` filter of a search.
#[derive(Debug, Clone)]
pub struct Filter {
    pub field: String,
    pub op: String,
    pub value: String,
}

/// search/input.js parseFilter + parseValue, compiled through the v1 find compiler: `date`
/// (and created_at) compare instants, other fields match the value as text or as the number or
/// boolean it spells; `'quoted'` values are text only.
pub fn compile_filters(coll: Collection, filters: &[Filter]) -> Result<SqlFilter> {
    let mut typed = Map::new();
    let mut quoted = Map::new();
    for f in filters {
        let field = v3_field(coll, &f.field);
        let unquote = |v: &str| {
            v.strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
                .map(str::to_string)
        };
        let is_quoted = f.op != "re" && unquote(&f.value).is_some();
        let plain = |v: &str| unquote(v).unwrap_or_else(|| v.to_string());
        let operand = match f.op.as_str() {
            "in" | "nin" => Value::Array(
                f.value
                    .split('|')
                    .map(|v| Value::String(plain(v)))
                    .collect(),
            ),
            "re" => Value::String(f.value.clone()),
            _ => Value::String(plain(&f.value)),
        };
        let op = match f.op.as_str() {
            "eq" | "ne" | "gt" | "gte" | "lt" | "lte" | "in" | "nin" => format!("${}", f.op),
            "re" => "$regex".to_string(),
            other => {
                return Err(Error::bad_request(format!(
                    "Unsupported filter operator {other}"
                )))
            }
        };
        let target = if is_quoted { &mut quoted } else { &mut typed };
        let entry = target
            .entry(field)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(ops) = entry {
            ops.insert(op, operand);
        }
    }
    let filter = query::compile_find(coll, &Value::Object(typed))?;
    if quoted.is_empty() {
        return Ok(filter);
    }
    Ok(filter.and(query::compile_find_text(coll, &Value::Object(quoted))?))
}

/// v3 `date` is every collection's document time; for collections other than entries it is
/// kept as `created_at` (and `mills`).
fn v3_field(coll: Collection, field: &str) -> String {
    match field {
        "date" if coll != Collection::Entries => coll.time_field().to_string(),
        other => other.to_string(),
    }
}

/// ORDER BY for search: the sort field, then identifier, time (search/input.js parseSort).
pub fn compile_sort(coll: Collection, field: Option<&str>, desc: bool) -> Result<SqlFilter> {
    let dir = if desc { "DESC" } else { "ASC" };
    let mut sql = vec![];
    let mut params = vec![];
    if let Some(f) = field {
        let mut sort = Map::new();
        sort.insert(
            v3_field(coll, f),
            Value::String(if desc { "-1" } else { "1" }.into()),
        );
        if let Some(s) = query::compile_sort(coll, &Value::Object(sort))? {
            sql.push(s.sql);
            params.extend(s.params);
        }
    }
    sql.push(format!("identifier {dir}, mills {dir}"));
    Ok(SqlFilter {
        sql: sql.join(", "),
        params,
    })
}

/// GET /{col}: live documents.
pub fn search(
    conn: &Connection,
    coll: Collection,
    filter: SqlFilter,
    order: SqlFilter,
    limit: usize,
    skip: usize,
) -> Result<Vec<StoredDoc>> {
    super::list(
        conn,
        coll,
        &ListQuery {
            filter,
            order: Some(order),
            limit,
            skip,
            include_deleted: false,
        },
    )
}

/// History: every document (deleted ones too) modified after `since` (or at/after, with
/// `inclusive`), oldest change first, as stored (see [`super::v1json::v3_views`]).
pub fn history(
    conn: &Connection,
    coll: Collection,
    since: i64,
    inclusive: bool,
    limit: usize,
) -> Result<Vec<RawDoc>> {
    let op = if inclusive { ">=" } else { ">" };
    super::list_raw(
        conn,
        coll,
        &ListQuery {
            filter: SqlFilter {
                sql: format!("srv_modified {op} ?"),
                params: vec![SqlValue::Integer(since)],
            },
            order: Some(SqlFilter {
                sql: "srv_modified ASC".into(),
                params: vec![],
            }),
            limit,
            skip: 0,
            include_deleted: true,
        },
    )
}

/// The newest srvModified or document time of a collection (lastModified).
pub fn last_modified(conn: &Connection, coll: Collection) -> Result<Option<i64>> {
    let sql = format!(
        "SELECT max((SELECT max(srv_modified) FROM {t}), (SELECT max(mills) FROM {t}))",
        t = coll.table()
    );
    Ok(conn.query_row(&sql, [], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrate::migrate(&mut c).unwrap();
        crate::store::sqlfn::register(&c).unwrap();
        c
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn dates_in_seconds_and_before_2000() {
        assert_eq!(parse_date(&json!(1491717830)).unwrap().ms, 1491717830000);
        assert_eq!(
            parse_date(&json!("1491717830000")).unwrap().ms,
            1491717830000
        );
        assert!(parse_date(&json!(1)).is_none());
        assert!(
            parse_date(&json!(915148800000_i64)).is_none(),
            "1999 in ms is refused"
        );
        assert!(parse_date(&json!("1999-12-31T00:00:00Z")).is_none());
    }

    #[test]
    fn created_at_follows_date() {
        let mut d = obj(json!({"date": 1491717830000_i64, "app": "x"}));
        normalize_dates(&mut d);
        assert_eq!(d["created_at"], "2017-04-09T06:03:50.000Z");
        assert_eq!(d["utcOffset"], 0);
        let mut d = obj(json!({"created_at": "2017-04-09T08:03:50+02:00"}));
        normalize_dates(&mut d);
        assert_eq!(d["date"], 1491717830000_i64);
        assert_eq!(d["utcOffset"], 120);
    }

    #[test]
    fn validation_messages() {
        assert!(
            validate_common(&obj(json!({"date": 1, "utcOffset": 0, "app": "x"})), false).is_err()
        );
        assert!(validate_common(
            &obj(json!({"date": 1491717830000_i64, "utcOffset": -5000, "app": "x"})),
            false
        )
        .is_err());
        assert!(validate_common(
            &obj(json!({"date": 1491717830000_i64, "utcOffset": 0, "app": " "})),
            false
        )
        .is_err());
        assert!(validate_common(&obj(json!({"notes": "x"})), true).is_ok());
    }

    #[test]
    fn create_dedups_and_refuses_immutable_changes() {
        let c = db();
        let doc = obj(
            json!({"date": 1491717830000_i64, "utcOffset": 0, "app": "x", "device": "d", "eventType": "Note"}),
        );
        let a = create(&c, Collection::Treatments, doc.clone(), None, true, 1).unwrap();
        assert!(matches!(a, Written::Created { .. }));
        let b = create(&c, Collection::Treatments, doc.clone(), None, true, 1).unwrap();
        assert!(matches!(b, Written::Replaced { previous: None, .. }));
        assert!(
            create(&c, Collection::Treatments, doc.clone(), None, false, 1).is_err(),
            "update permission"
        );
        let Written::Created { identifier, .. } = a else {
            unreachable!()
        };
        let mut other = doc;
        other.insert("app".into(), json!("y"));
        other.insert("identifier".into(), json!(identifier));
        let e = create(&c, Collection::Treatments, other, None, true, 1).unwrap_err();
        assert!(e.to_string().contains("app"), "{e}");
    }

    #[test]
    fn fallback_dedup_never_merges_client_identifiers() {
        let c = db();
        let base = json!({"date": 1491717830000_i64, "created_at": "2017-04-09T06:03:50.000Z", "utcOffset": 0,
                          "app": "x", "eventType": "Note"});
        let mut a = obj(base.clone());
        a.insert("identifier".into(), json!("client-a"));
        let mut b = obj(base);
        b.insert("identifier".into(), json!("client-b"));
        create(&c, Collection::Treatments, a, None, true, 1).unwrap();
        let w = create(&c, Collection::Treatments, b, None, true, 1).unwrap();
        assert!(matches!(w, Written::Created { .. }));
    }

    #[test]
    fn filters_compile_and_bad_operators_fail() {
        let f = compile_filters(
            Collection::Treatments,
            &[Filter {
                field: "carbs".into(),
                op: "gte".into(),
                value: "20".into(),
            }],
        )
        .unwrap();
        assert!(f.sql.contains(">="), "{}", f.sql);
        assert!(compile_filters(
            Collection::Treatments,
            &[Filter {
                field: "x".into(),
                op: "foo".into(),
                value: "1".into()
            }]
        )
        .is_err());
    }
}
