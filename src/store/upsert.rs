//! Identity: which stored document an incoming one is, and the insert or update that follows.
//!
//! Order of matching (soft-deleted rows included, so a re-upload revives rather than
//! duplicates):
//! 1. a client `identifier` (or a Loop/Trio UUID `_id`, moved there by prepare);
//!    for entries, then the (date, type) key as well: one reading per time and type;
//! 2. otherwise a client ObjectId `_id`, then the collection's dedup key
//!    (treatments: created_at + eventType; devicestatus: created_at + device; profile: created_at).
//!
//! A new document gets the client's identifier or API v3's UUID v5 of device, date and
//! eventType, so the same reading has the same identifier here and on Nightscout.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::collection::Collection;
use super::prepare::NewDoc;
use super::{StoredDoc, COLUMNS};
use crate::error::{Error, Result};
use crate::ids;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// The stored document becomes the new one (Mongo replaceOne).
    Replace,
    /// New fields overwrite, others stay (Mongo `$set`, what v1 entries do).
    Shallow,
    /// As `Replace` when the identifier or `_id` names the stored document; a match on the
    /// dedup key alone is the same document only when it is identical (a retry), else the
    /// upload is a new document. Profiles through API v1: Nightscout's POST inserts every
    /// upload and its collection is a history of the settings (docs/api-v1.md).
    History,
}

/// What a write did to one document (the document operations' typed outcome,
/// src/documents/).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new document.
    Inserted,
    /// The stored document (same identifier, `_id` or dedup key) was replaced or merged into.
    Updated,
    /// Matched an identical live document: nothing written, srvModified unchanged.
    Unchanged,
    /// An API v3 create matched a stored document and replaced it (Nightscout's
    /// `isDeduplication`); `previous` is that document's identifier when it differed.
    Deduplicated { previous: Option<String> },
}

#[derive(Debug, Clone)]
pub struct Written {
    pub id: String,
    pub doc: Map<String, Value>,
    pub outcome: Outcome,
    pub srv_created: i64,
    pub srv_modified: i64,
}

impl Written {
    /// The document as API v1 answers a write: `_id` first, then the stored fields.
    pub fn to_v1(&self) -> Value {
        super::v1_view(&self.id, &self.doc)
    }
}

pub(crate) fn json_to_sql(v: Option<&Value>) -> SqlValue {
    match v {
        None | Some(Value::Null) => SqlValue::Null,
        Some(Value::Bool(b)) => SqlValue::Integer(i64::from(*b)),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(SqlValue::Integer)
            .or_else(|| n.as_f64().map(SqlValue::Real))
            .unwrap_or(SqlValue::Null),
        Some(Value::String(s)) => SqlValue::Text(s.clone()),
        Some(other) => SqlValue::Text(other.to_string()),
    }
}

/// The first document (live ones first) matching `cond`, deleted ones included.
pub(crate) fn find_one(
    conn: &Connection,
    coll: Collection,
    cond: &str,
    params: &[SqlValue],
) -> Result<Option<StoredDoc>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE {cond} ORDER BY is_valid DESC, seq LIMIT 1",
        coll.table()
    );
    let row = conn
        .prepare_cached(&sql)?
        .query_row(rusqlite::params_from_iter(params), StoredDoc::from_row)
        .optional()?;
    row.map(StoredDoc::parse).transpose()
}

/// The SQL condition and its parameters matching `doc`'s dedup-key values; None for a
/// collection without a dedup key.
fn dedup_condition(coll: Collection, doc: &Map<String, Value>) -> Option<(String, Vec<SqlValue>)> {
    let cols = coll.dedup_columns();
    if cols.is_empty() {
        return None;
    }
    // `IS` compares NULL-safely: a missing eventType matches a missing eventType, as in Mongo.
    let cond = cols
        .iter()
        .map(|c| format!("{c} IS ?"))
        .collect::<Vec<_>>()
        .join(" AND ");
    Some((
        cond,
        cols.iter().map(|c| json_to_sql(doc.get(*c))).collect(),
    ))
}

/// The document with the same dedup-key values; with `only_derived`, only one whose identifier
/// nightlite derived (API v3's fallback).
pub(crate) fn by_dedup_key(
    conn: &Connection,
    coll: Collection,
    doc: &Map<String, Value>,
    only_derived: bool,
) -> Result<Option<StoredDoc>> {
    let Some((cond, params)) = dedup_condition(coll, doc) else {
        return Ok(None);
    };
    let cond = if only_derived {
        format!("{cond} AND derived_id = 1")
    } else {
        cond
    };
    find_one(conn, coll, &cond, &params)
}

/// Of the documents with the same dedup-key values, the one identical to `doc` once it carries
/// that document's identifier (a retry of the same upload).
fn identical_by_dedup_key(
    conn: &Connection,
    coll: Collection,
    doc: &Map<String, Value>,
) -> Result<Option<StoredDoc>> {
    let Some((cond, params)) = dedup_condition(coll, doc) else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM {} WHERE {cond} ORDER BY is_valid DESC, seq",
        coll.table()
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(params), StoredDoc::from_row)?;
    for row in rows {
        let stored = StoredDoc::parse(row?)?;
        let mut candidate = doc.clone();
        if let Some(ident) = stored.doc.get("identifier") {
            candidate.insert("identifier".into(), ident.clone());
        }
        if candidate == stored.doc {
            return Ok(Some(stored));
        }
    }
    Ok(None)
}

fn matching(
    conn: &Connection,
    coll: Collection,
    new: &NewDoc,
    merge: Merge,
) -> Result<Option<StoredDoc>> {
    if new.has_client_identifier() {
        let ident = json_to_sql(new.doc.get("identifier"));
        if let Some(e) = find_one(conn, coll, "identifier = ?", &[ident])? {
            return Ok(Some(e));
        }
        if coll == Collection::Entries {
            return by_dedup_key(conn, coll, &new.doc, false);
        }
        return Ok(None);
    }
    if let Some(id) = &new.id {
        if let Some(e) = find_one(conn, coll, "id = ?", &[SqlValue::Text(id.clone())])? {
            return Ok(Some(e));
        }
    }
    if merge == Merge::History {
        return identical_by_dedup_key(conn, coll, &new.doc);
    }
    by_dedup_key(conn, coll, &new.doc, false)
}

/// `String(doc.device)` as JavaScript would write it into the identifier key.
fn js_string(v: Option<&Value>) -> Option<String> {
    match v {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) => Some("null".into()),
        Some(other) => Some(other.to_string()),
    }
}

fn identifier_taken(conn: &Connection, coll: Collection, ident: &str) -> Result<bool> {
    let sql = format!("SELECT 1 FROM {} WHERE identifier = ?", coll.table());
    Ok(conn.prepare_cached(&sql)?.exists([ident])?)
}

/// API v3's identifier of a document: device, time (`mills`) and eventType.
pub(crate) fn v3_identifier_of(doc: &Map<String, Value>, mills: i64) -> String {
    let device = js_string(doc.get("device"));
    let event = doc.get("eventType").and_then(Value::as_str);
    ids::v3_identifier(device.as_deref(), mills, event)
}

/// API v3's identifier for a document without one; if another document already holds it (two
/// documents sharing device and time but told apart by a dedup key), a numbered variant.
pub(crate) fn derive_identifier(
    conn: &Connection,
    coll: Collection,
    doc: &Map<String, Value>,
    mills: i64,
) -> Result<String> {
    let base = v3_identifier_of(doc, mills);
    if !identifier_taken(conn, coll, &base)? {
        return Ok(base);
    }
    let device = js_string(doc.get("device"));
    let event = doc.get("eventType").and_then(Value::as_str);
    for n in 1..NUMBERED_VARIANTS {
        let tagged = format!("{}#{n}", event.unwrap_or(""));
        let candidate = ids::v3_identifier(device.as_deref(), mills, Some(&tagged));
        if !identifier_taken(conn, coll, &candidate)? {
            return Ok(candidate);
        }
    }
    // Past the numbered variants (a site that uploads a thousand documents of one device in one
    // millisecond, seen in real imports), the document's own content tells it apart: still
    // deterministic, so an import run twice derives the same identifier, and never a refusal
    // of a document the dedup rules accepted.
    let content = serde_json::to_string(doc)?;
    let digest = ids::hex(&<sha2::Sha256 as sha2::Digest>::digest(content.as_bytes()));
    for n in 0..NUMBERED_VARIANTS {
        let candidate = ids::derived_uuid(&format!("{base}#{digest}#{n}"));
        if !identifier_taken(conn, coll, &candidate)? {
            return Ok(candidate);
        }
    }
    Err(Error::Internal("no free identifier".into()))
}

/// How many numbered identifiers are tried before the content decides (and again after).
const NUMBERED_VARIANTS: usize = 1000;

/// SQL for the srv_modified of the next write to `table`: now in ms, or one past the table's
/// newest when the clock has not moved on (or went back). Every write runs on the one writer
/// connection, so values strictly increase in commit order and a history reader paging with
/// `srvModified > last` never skips a document. The max() is one descent of the
/// `{table}_srv_modified` index. (Schema version 1 did this in triggers; see
/// migrations/002-srv-modified-in-writes.sql.)
pub fn next_modified(table: &str) -> String {
    format!(
        "max(CAST(unixepoch('subsec') * 1000 AS INTEGER), \
         (SELECT coalesce(max(srv_modified), 0) FROM {table}) + 1)"
    )
}

/// The value of the `sgv` column of entries (schema version 3) for the document bound as
/// `doc_param`: the reading of an sgv entry as a number, as SQLite's CAST reads a number or a
/// numeric string, NULL for other entries. Every statement that writes an entry's `doc` sets it.
pub fn entry_sgv(doc_param: &str) -> String {
    format!(
        "CASE WHEN json_extract({doc_param}, '$.type') = 'sgv' \
         THEN CAST(json_extract({doc_param}, '$.sgv') AS REAL) END"
    )
}

/// The `sgv` value for a statement that binds the document as `?1`; None for collections
/// without the column.
fn sgv_column(coll: Collection) -> Option<String> {
    (coll == Collection::Entries).then(|| entry_sgv("?1"))
}

pub(crate) fn server_fields(conn: &Connection, coll: Collection, seq: i64) -> Result<(i64, i64)> {
    let sql = format!(
        "SELECT srv_created, srv_modified FROM {} WHERE seq = ?",
        coll.table()
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([seq], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// Inserts the document or updates the one it is (see the module docs). Runs inside the
/// writer's transaction.
pub fn upsert(
    conn: &Connection,
    coll: Collection,
    mut new: NewDoc,
    merge: Merge,
    now: i64,
) -> Result<Written> {
    if let Some(existing) = matching(conn, coll, &new, merge)? {
        let mut doc = match merge {
            Merge::Replace | Merge::History => new.doc,
            Merge::Shallow => {
                let mut d = existing.doc.clone();
                d.extend(new.doc);
                d
            }
        };
        // The stored identity never changes.
        if let Some(ident) = existing.doc.get("identifier") {
            doc.insert("identifier".into(), ident.clone());
        }
        if existing.is_valid && doc == existing.doc {
            let (c, m) = server_fields(conn, coll, existing.seq)?;
            return Ok(Written {
                id: existing.id,
                doc,
                outcome: Outcome::Unchanged,
                srv_created: c,
                srv_modified: m,
            });
        }
        let (c, m) = update_row(conn, coll, existing.seq, &doc, new.mills)?;
        return Ok(Written {
            id: existing.id,
            doc,
            outcome: Outcome::Updated,
            srv_created: c,
            srv_modified: m,
        });
    }

    let derived = !new.has_client_identifier();
    if derived {
        let ident = derive_identifier(conn, coll, &new.doc, new.mills)?;
        new.doc.insert("identifier".into(), Value::String(ident));
    }
    let (id, c, m) = insert_row(conn, coll, new.id.take(), &new.doc, new.mills, now, derived)?;
    Ok(Written {
        id,
        doc: new.doc,
        outcome: Outcome::Inserted,
        srv_created: c,
        srv_modified: m,
    })
}

/// Replaces a row's document (reviving it if deleted); returns (srvCreated, srvModified).
pub(crate) fn update_row(
    conn: &Connection,
    coll: Collection,
    seq: i64,
    doc: &Map<String, Value>,
    mills: i64,
) -> Result<(i64, i64)> {
    let table = coll.table();
    let sgv = sgv_column(coll).map_or(String::new(), |v| format!(", sgv = {v}"));
    let sql = format!(
        "UPDATE {table} SET doc = ?1, mills = ?2, is_valid = 1, srv_modified = {}{sgv} \
         WHERE seq = ?3 RETURNING srv_created, srv_modified",
        next_modified(table)
    );
    super::prepare::check_finite(doc, "")?;
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![serde_json::to_string(doc)?, mills, seq], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?)
}

/// Inserts a row under `id` (when given and free) or a new ObjectId; `derived` marks an
/// identifier nightlite made up. Returns (id, srvCreated, srvModified). srvCreated is the
/// first srvModified, from the database's clock as [`next_modified`] reads it, not `_now`
/// (which the caller took before the write waited for its group).
pub(crate) fn insert_row(
    conn: &Connection,
    coll: Collection,
    id: Option<String>,
    doc: &Map<String, Value>,
    mills: i64,
    _now: i64,
    derived: bool,
) -> Result<(String, i64, i64)> {
    super::prepare::check_finite(doc, "")?;
    let table = coll.table();
    let id = match id {
        Some(id)
            if !conn
                .prepare_cached(&format!("SELECT 1 FROM {table} WHERE id = ?"))?
                .exists([&id])? =>
        {
            id
        }
        _ => ids::object_id(),
    };
    // Both columns read the table before the row exists, within one statement (one clock
    // reading), so they are equal.
    let next = next_modified(table);
    let (sgv_col, sgv_val) = match sgv_column(coll) {
        Some(v) => (", sgv", format!(", {v}")),
        None => ("", String::new()),
    };
    let (c, m) = conn
        .prepare_cached(&format!(
            "INSERT INTO {table} (doc, id, mills, srv_created, srv_modified, derived_id{sgv_col}) \
             VALUES (?1, ?2, ?3, {next}, {next}, ?4{sgv_val}) RETURNING srv_created, srv_modified"
        ))?
        .query_row(
            params![serde_json::to_string(doc)?, id, mills, derived],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
    Ok((id, c, m))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::prepare::prepare;
    use serde_json::json;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrate::migrate(&mut c).unwrap();
        c
    }

    fn put(c: &Connection, coll: Collection, v: Value) -> Written {
        let d = prepare(coll, v, "t", 1_700_000_000_000).unwrap().remove(0);
        upsert(c, coll, d, Merge::Replace, 1).unwrap()
    }

    /// An entry's identifier is of device and date, its dedup key date and type: a thousand and
    /// more of one device in one millisecond, told apart by their type, are each stored with an
    /// identifier of their own (before, the 1000th was a 500 "no free identifier"), and the same
    /// derivation again gives the same identifier.
    #[test]
    fn more_than_a_thousand_documents_of_one_device_and_millisecond_are_stored() {
        let c = db();
        let mut ids = std::collections::HashSet::new();
        for i in 0..NUMBERED_VARIANTS + 5 {
            let doc =
                json!({"device": "d", "date": 1_700_000_000_000_i64, "type": format!("t{i}")});
            let w = put(&c, Collection::Entries, doc);
            assert_eq!(w.outcome, Outcome::Inserted);
            let ident: String = c
                .query_row(
                    "SELECT identifier FROM entries WHERE id = ?",
                    [&w.id],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(ids.insert(ident), "identifier {i} is new");
        }
        let doc = json!({"device": "d", "date": 1_700_000_000_000_i64, "type": "another"});
        let d = prepare(Collection::Entries, doc, "t", 1_700_000_000_000)
            .unwrap()
            .remove(0);
        let a = derive_identifier(&c, Collection::Entries, &d.doc, d.mills).unwrap();
        let b = derive_identifier(&c, Collection::Entries, &d.doc, d.mills).unwrap();
        assert_eq!(a, b, "the derivation is deterministic");
        assert!(!ids.contains(&a));
    }

    #[test]
    fn retry_is_unchanged_and_keeps_id() {
        let c = db();
        let doc = json!({"type": "sgv", "sgv": 100, "date": 1_700_000_000_000_i64, "device": "d"});
        let a = put(&c, Collection::Entries, doc.clone());
        let b = put(&c, Collection::Entries, doc);
        assert_eq!(a.outcome, Outcome::Inserted);
        assert_eq!(b.outcome, Outcome::Unchanged);
        assert_eq!(a.id, b.id);
        assert_eq!(
            a.srv_modified, b.srv_modified,
            "an identical retry does not bump srvModified"
        );
    }

    #[test]
    fn entries_of_different_type_at_same_time_are_two_documents() {
        let c = db();
        let t = 1_700_000_000_000_i64;
        let a = put(
            &c,
            Collection::Entries,
            json!({"type": "sgv", "sgv": 100, "date": t, "device": "d"}),
        );
        let b = put(
            &c,
            Collection::Entries,
            json!({"type": "mbg", "mbg": 101, "date": t, "device": "d"}),
        );
        assert_eq!(b.outcome, Outcome::Inserted);
        assert_ne!(a.id, b.id);
        assert_ne!(
            a.doc["identifier"], b.doc["identifier"],
            "identifier collision resolved"
        );
    }

    #[test]
    fn distinct_client_identifiers_are_never_merged() {
        let c = db();
        let base = json!({"eventType": "Note", "created_at": "2024-01-01T00:00:00Z"});
        let mut x = base.clone();
        x["identifier"] = json!("one");
        let mut y = base;
        y["identifier"] = json!("two");
        let a = put(&c, Collection::Treatments, x);
        let b = put(&c, Collection::Treatments, y);
        assert_eq!(b.outcome, Outcome::Inserted);
        assert_ne!(a.id, b.id);
    }

    #[test]
    fn dedup_key_matches_without_identifier_and_revives_deleted() {
        let c = db();
        let doc = json!({"eventType": "Note", "created_at": "2024-01-01T00:00:00Z", "notes": "a"});
        let a = put(&c, Collection::Treatments, doc.clone());
        c.execute("UPDATE treatments SET is_valid = 0", []).unwrap();
        let mut again = doc;
        again["notes"] = json!("b");
        let b = put(&c, Collection::Treatments, again);
        assert_eq!(b.outcome, Outcome::Updated);
        assert_eq!(a.id, b.id);
        let valid: bool = c
            .query_row("SELECT is_valid FROM treatments", [], |r| r.get(0))
            .unwrap();
        assert!(valid);
        assert!(b.srv_modified > a.srv_modified);
    }

    #[test]
    fn history_keeps_distinct_uploads_and_matches_the_identical_one() {
        let c = db();
        let coll = Collection::Profile;
        let put_h = |v: Value| {
            let d = prepare(coll, v, "t", 1_700_000_000_000).unwrap().remove(0);
            upsert(&c, coll, d, Merge::History, 1).unwrap()
        };
        let doc = |basal: f64| {
            json!({"startDate": "2024-01-01T00:00:00Z", "created_at": "2024-01-01T00:00:00Z",
                   "defaultProfile": "a", "store": {"a": {"basal": basal}}})
        };
        let a = put_h(doc(0.8));
        let b = put_h(doc(0.9));
        assert_eq!(b.outcome, Outcome::Inserted);
        assert_ne!(a.id, b.id);
        assert_ne!(a.doc["identifier"], b.doc["identifier"]);
        let b_again = put_h(doc(0.9));
        assert_eq!(b_again.outcome, Outcome::Unchanged);
        assert_eq!(
            b_again.id, b.id,
            "the retry is the identical one, not the first"
        );
        assert_eq!(put_h(doc(0.8)).id, a.id);
    }

    #[test]
    fn client_object_id_is_used_for_new_documents() {
        let c = db();
        let w = put(
            &c,
            Collection::Food,
            json!({"_id": "5f1e2d3c4b5a697887766554", "name": "x"}),
        );
        assert_eq!(w.id, "5f1e2d3c4b5a697887766554");
        let again = put(
            &c,
            Collection::Food,
            json!({"_id": "5f1e2d3c4b5a697887766554", "name": "y"}),
        );
        assert_eq!(again.outcome, Outcome::Updated);
        assert_eq!(again.doc["name"], "y");
    }
}
