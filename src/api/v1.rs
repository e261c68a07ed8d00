//! Plumbing every v1 resource shares: reading bodies, lists with the find language, batch
//! upserts with per-item replies, deletes.

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::store::pages::Listed;
use crate::store::prepare::{self, NewDoc};
use crate::store::query::{self, ListRequest, SqlFilter};
use crate::store::upsert::{Merge, Outcome, Written};
use crate::store::v1json::TimeField;
use crate::store::{self, Collection, RawDoc, StoredDoc};
use crate::{dates, AppState};

pub type State = web::Data<AppState>;

/// The request body as JSON. Nothing is written unless this succeeds.
pub fn read_json(
    body: std::result::Result<Bytes, actix_web::Error>,
    limit: usize,
) -> Result<Value> {
    let bytes = body.map_err(|e| payload_error(&e, limit))?;
    if bytes.len() > limit {
        return Err(too_large(limit));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Error::bad_request(
            "request body is empty; send a JSON object or an array of objects",
        ));
    }
    let mut body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_request(format!("request body is not valid JSON: {e}")))?;
    // Credentials may ride in the body (Nightscout reads them there); they are never stored.
    super::guard::take_body_credentials(&mut body);
    Ok(body)
}

fn too_large(limit: usize) -> Error {
    Error::PayloadTooLarge(format!(
        "request body is larger than the limit of {} MB",
        limit / (1024 * 1024)
    ))
}

/// A body that could not be read: too large (413) or broken (400).
pub fn payload_error(e: &actix_web::Error, limit: usize) -> Error {
    if e.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        Error::bad_request(format!("could not read the request body: {e}"))
    }
}

/// A body that is one document or an array of them, as a list.
pub fn as_list(body: Value) -> Vec<Value> {
    match body {
        Value::Array(items) => items,
        other => vec![other],
    }
}

/// Prepares every document first, so one bad document rejects the request with nothing written.
pub fn prepare_all(coll: Collection, items: Vec<Value>, now: i64) -> Result<Vec<NewDoc>> {
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        out.extend(prepare::prepare(
            coll,
            item,
            &format!("{}[{i}]", coll.table()),
            now,
        )?);
    }
    Ok(out)
}

/// Reads a body of one document or an array and prepares every item; `true` when the body was
/// a single object.
pub fn prepare_body(
    state: &State,
    coll: Collection,
    body: std::result::Result<Bytes, actix_web::Error>,
) -> Result<(Vec<NewDoc>, bool)> {
    let body = read_json(body, state.config.max_body_bytes)?;
    let single = !body.is_array();
    Ok((prepare_all(coll, as_list(body), dates::now_ms())?, single))
}

/// Upserts prepared documents in one transaction, in request order.
pub async fn write(
    state: &State,
    coll: Collection,
    docs: Vec<NewDoc>,
    merge: Merge,
) -> Result<Vec<Written>> {
    let now = dates::now_ms();
    state
        .store
        .write(move |conn| store::upsert_all(conn, coll, docs, merge, now))
        .await
}

pub fn written_v1(w: &Written) -> Value {
    let mut out = serde_json::Map::with_capacity(w.doc.len() + 1);
    out.insert("_id".into(), Value::String(w.id.clone()));
    for (k, v) in &w.doc {
        out.insert(k.clone(), v.clone());
    }
    Value::Object(out)
}

/// 200 with one item per document in request order, and how many were inserted and updated.
pub fn batch_reply(written: &[Written]) -> HttpResponse {
    let inserted = written
        .iter()
        .filter(|w| w.outcome == Outcome::Inserted)
        .count();
    HttpResponse::Ok()
        .insert_header(("X-Sync-Inserted", inserted.to_string()))
        .insert_header(("X-Sync-Updated", (written.len() - inserted).to_string()))
        .json(written.iter().map(written_v1).collect::<Vec<_>>())
}

/// The parsed query string of a request.
pub fn query_tree(req: &HttpRequest) -> Result<Value> {
    super::qs::parse(req.query_string())
}

/// Options of a v1 list beyond the query string.
pub struct ListOptions {
    pub default_count: usize,
    pub window: bool,
    pub extra: Option<SqlFilter>,
}

/// Lists documents as a v1 GET asks (find, sort, count, the 4-day window), as stored text:
/// JSON replies splice it ([`store::v1json`]), other uses parse it ([`parse_all`]).
pub async fn list(
    state: &State,
    coll: Collection,
    tree: &Value,
    opts: ListOptions,
) -> Result<Vec<RawDoc>> {
    let q = list_query(coll, tree, opts)?;
    state
        .store
        .read(move |conn| store::list_raw(conn, coll, &q))
        .await
}

/// As [`list`] for lists that may be long (`count` up to [`store::MAX_LIST`]): past one chunk,
/// where the documents are and the newest `time` among them, to stream ([`super::pages`]).
pub async fn list_paged(
    state: &State,
    coll: Collection,
    tree: &Value,
    opts: ListOptions,
    time: Option<TimeField>,
) -> Result<Listed> {
    let q = list_query(coll, tree, opts)?;
    state
        .store
        .read(move |conn| store::pages::list(conn, coll, &q, time))
        .await
}

fn list_query(coll: Collection, tree: &Value, opts: ListOptions) -> Result<store::ListQuery> {
    let null = Value::Null;
    let req = ListRequest {
        find: tree.get("find").unwrap_or(&null),
        sort: tree.get("sort").unwrap_or(&null),
        count: super::qs::scalar(tree, "count"),
        default_count: opts.default_count,
        window: opts.window,
        extra: opts.extra,
    };
    query::build_list(coll, &req, dates::now_ms())
}

pub async fn get_one(state: &State, coll: Collection, key: String) -> Result<Option<RawDoc>> {
    state
        .store
        .read(move |conn| store::get_raw(conn, coll, &key))
        .await
}

/// Soft-deletes what `filter` matches; returns how many.
pub async fn delete(state: &State, coll: Collection, filter: SqlFilter) -> Result<usize> {
    state
        .store
        .write_freeing(move |conn| store::soft_delete(conn, coll, &filter))
        .await
}

/// `_id` (or identifier) equality as a filter.
pub fn id_filter(coll: Collection, id: &str) -> Result<SqlFilter> {
    query::compile_find(coll, &json!({ "_id": id }))
}

/// The filter of a DELETE with find (and the window, as Nightscout's remove uses query_for).
pub fn delete_filter(
    coll: Collection,
    tree: &Value,
    extra: Option<SqlFilter>,
) -> Result<SqlFilter> {
    let null = Value::Null;
    let find = tree.get("find").unwrap_or(&null);
    let mut filter = query::compile_find(coll, find)?;
    if let Some(e) = extra {
        filter = filter.and(e);
    }
    if !query::has_time_filter(coll, find) && !query::has_id_filter(find) {
        filter = filter.and(query::default_window(dates::now_ms()));
    }
    Ok(filter)
}

/// Mongo's deleteMany result, which Nightscout returns as is.
pub fn delete_reply(n: usize) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "acknowledged": true, "deletedCount": n, "n": n, "ok": 1 }))
}

pub fn v1_docs(docs: &[StoredDoc]) -> Vec<Value> {
    docs.iter().map(StoredDoc::to_v1).collect()
}

/// Parses stored documents, for replies that look inside them (CSV, text).
pub fn parse_all(docs: Vec<RawDoc>) -> Result<Vec<StoredDoc>> {
    docs.into_iter().map(StoredDoc::parse).collect()
}

/// A JSON list reply built from the stored text, with Last-Modified from `time` when given
/// (and a 304 when If-Modified-Since is not older).
pub fn json_list(
    req: &HttpRequest,
    docs: Vec<RawDoc>,
    time: Option<TimeField>,
) -> Result<HttpResponse> {
    let list = store::v1json::list(docs, time)?;
    if time.is_none() {
        return Ok(super::format::json_body(HttpResponse::Ok(), list.body));
    }
    Ok(super::format::conditional(req, list.newest, |b| {
        super::format::json_body(b, list.body)
    }))
}

/// Nightscout's Last-Modified of treatments and activity: the newest `field` read as a date.
pub fn date_field(name: &'static str) -> TimeField {
    TimeField {
        name,
        ms: |v| dates::parse_value(v).map(|i| i.ms),
    }
}
