//! Plumbing every v1 resource shares: reading bodies, lists with the find language, batch
//! upserts with per-item replies, deletes.

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::auth::Access;
use crate::dates;
use crate::documents::{self, Action, Caller, Source};
use crate::error::{Error, Result};
use crate::store::pages::Listed;
use crate::store::prepare::{self, NewDoc};
use crate::store::query::{self, ListRequest, SqlFilter};
use crate::store::upsert::{Merge, Outcome, Written};
use crate::store::v1json::TimeField;
use crate::store::{self, Collection, RawDoc, StoredDoc};

pub use crate::State;

/// The request body as JSON. Nothing is written unless this succeeds.
pub fn read_json(
    body: std::result::Result<Bytes, actix_web::Error>,
    limit: usize,
) -> Result<Value> {
    let (bytes, _) = read_body(body, limit)?;
    if super::json_weight::more_than(&bytes, super::json_weight::MAX_BODY_VALUES) {
        return Err(Error::PayloadTooLarge(format!(
            "the request body holds more than {} JSON values, the limit for this route",
            super::json_weight::MAX_BODY_VALUES
        )));
    }
    let mut body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::bad_request(format!("request body is not valid JSON: {e}")))?;
    // Credentials may ride in the body (Nightscout reads them there); they are never stored.
    crate::auth::request::take_body_credentials(&mut body);
    Ok(body)
}

/// A body within `limit` that is not blank, and its first byte that is not whitespace.
fn read_body(
    body: std::result::Result<Bytes, actix_web::Error>,
    limit: usize,
) -> Result<(Bytes, u8)> {
    let bytes = body.map_err(|e| payload_error(&e, limit))?;
    if bytes.len() > limit {
        return Err(too_large(limit));
    }
    match bytes.iter().copied().find(|b| !b.is_ascii_whitespace()) {
        Some(first) => Ok((bytes, first)),
        None => Err(Error::bad_request(
            "request body is empty; send a JSON object or an array of objects",
        )),
    }
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

/// The largest document a v1 write accepts, as its text in the body (docs/security.md).
/// Parsing one costs up to some 50 times its text (a long array of one-digit numbers); only
/// one is held parsed at a time.
pub const MAX_DOC_BYTES: usize = 1024 * 1024;

/// A body's documents (one object, or an array's items), each still its text: where each is
/// in the body, which is kept as received. Parsing the whole body as one value took 10 to
/// 100 times its size (docs/PERFORMANCE.md, "Memory per request").
pub struct Items {
    body: Bytes,
    spans: Vec<(usize, usize)>,
    /// The body was one object, not an array.
    pub single: bool,
}

/// Reads a v1 write's body into [`Items`]; checks its JSON syntax and each item's size.
pub fn read_items(
    body: std::result::Result<Bytes, actix_web::Error>,
    limit: usize,
) -> Result<Items> {
    let (body, first) = read_body(body, limit)?;
    let single = first != b'[';
    let not_json =
        |e: serde_json::Error| Error::bad_request(format!("request body is not valid JSON: {e}"));
    let raws: Vec<&RawValue> = if single {
        vec![serde_json::from_slice(&body).map_err(not_json)?]
    } else {
        serde_json::from_slice(&body).map_err(not_json)?
    };
    let base = body.as_ptr() as usize;
    let spans: Vec<(usize, usize)> = raws
        .iter()
        .map(|r| {
            (
                (r.get().as_ptr() as usize).wrapping_sub(base),
                r.get().len(),
            )
        })
        .collect();
    drop(raws);
    if let Some(i) = spans.iter().position(|s| s.1 > MAX_DOC_BYTES) {
        return Err(Error::PayloadTooLarge(format!(
            "document {i} of the request body is larger than the limit of {} MB per document",
            MAX_DOC_BYTES / (1024 * 1024)
        )));
    }
    let most = super::json_weight::MAX_BATCH_DOCS;
    if spans.len() > most {
        return Err(Error::PayloadTooLarge(format!(
            "the request body holds {} documents; at most {most} per request: send them in \
             smaller batches",
            spans.len()
        )));
    }
    let max = super::json_weight::MAX_DOC_VALUES;
    if let Some(i) = spans.iter().position(|&(at, len)| {
        super::json_weight::more_than(body.get(at..at + len).unwrap_or_default(), max)
    }) {
        return Err(Error::PayloadTooLarge(format!(
            "document {i} of the request body holds more than {max} JSON values, the limit per \
             document"
        )));
    }
    Ok(Items {
        body,
        spans,
        single,
    })
}

impl Items {
    /// Item `i` parsed. The first loses `secret` and `token`: Nightscout reads credentials
    /// there (see the guard), and they are never stored.
    fn value(&self, i: usize) -> Result<Value> {
        let (at, len) = self.spans[i];
        let text = self.body.get(at..at + len).unwrap_or_default();
        // The outline's check of the syntax is lighter than a parse (a lone surrogate, nesting
        // past serde_json's limit): what fails here is bad JSON too.
        let mut v: Value = serde_json::from_slice(text).map_err(|e| {
            Error::bad_request(format!("request body is not valid JSON: item {i}: {e}"))
        })?;
        if i == 0 {
            crate::auth::request::take_body_credentials(&mut v);
        }
        Ok(v)
    }
}

/// Every item is prepared once before the write (the trait's `check`), so a bad one is
/// answered 400 without taking the writer; the writer prepares each again as it writes it, so
/// only one is held parsed.
impl Source for Items {
    fn prepare_each(
        &self,
        coll: Collection,
        now: i64,
        each: &mut dyn FnMut(NewDoc) -> Result<()>,
    ) -> Result<()> {
        for i in 0..self.spans.len() {
            let label = format!("{}[{i}]", coll.table());
            for doc in prepare::prepare(coll, self.value(i)?, &label, now)? {
                each(doc)?;
            }
        }
        Ok(())
    }
}

/// A v1 write's reply as it is built: the JSON array of the written documents in request
/// order, and how many of them were inserted.
pub struct Batch {
    body: String,
    /// Where the first document is in `body`.
    first: Option<(usize, usize)>,
    written: usize,
    inserted: usize,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            body: String::from("["),
            first: None,
            written: 0,
            inserted: 0,
        }
    }

    fn push(&mut self, doc: &Value, inserted: bool) -> Result<()> {
        self.push_text(&serde_json::to_string(doc)?, inserted);
        Ok(())
    }

    /// [`Written::to_v1`] serialised without copying the document into a new map first (a
    /// document parses to up to some 50 times its text): `_id`, then the stored fields.
    fn push_written(&mut self, w: &Written) -> Result<()> {
        let inserted = w.outcome == Outcome::Inserted;
        if w.doc.contains_key("_id") {
            return self.push(&w.to_v1(), inserted);
        }
        let fields = serde_json::to_string(&w.doc)?;
        let mut text = String::with_capacity(fields.len() + w.id.len() + 12);
        text.push_str("{\"_id\":");
        text.push_str(&serde_json::to_string(&w.id)?);
        if fields.len() > 2 {
            text.push(',');
        }
        text.push_str(fields.get(1..).unwrap_or_default());
        self.push_text(&text, inserted);
        Ok(())
    }

    fn push_text(&mut self, text: &str, inserted: bool) {
        if self.written > 0 {
            self.body.push(',');
        }
        let start = self.body.len();
        self.body.push_str(text);
        if self.written == 0 {
            self.first = Some((start, self.body.len()));
        }
        self.written += 1;
        self.inserted += usize::from(inserted);
    }

    fn finish(mut self) -> Batch {
        self.body.push(']');
        self
    }

    /// 200 with the array, and how many were inserted and updated.
    pub fn reply(self) -> HttpResponse {
        let builder = sync_counts(self.written, self.inserted);
        super::format::json_body(builder, self.body)
    }

    /// 200 with the first document alone (a PUT of one object), or the array if none.
    pub fn reply_first(self) -> HttpResponse {
        match self.first {
            Some((a, b)) => {
                let first = self.body.get(a..b).unwrap_or_default().to_string();
                super::format::json_body(HttpResponse::Ok(), first)
            }
            None => self.reply(),
        }
    }
}

impl documents::Collect for Batch {
    fn push(&mut self, written: Written) -> Result<()> {
        self.push_written(&written)
    }
}

/// Upserts every item of a body in one transaction, in request order (documents::upsert);
/// `action` is the permission the route stands for (create for POST, update for PUT).
pub async fn write_items(
    state: &State,
    access: &Access,
    coll: Collection,
    items: Items,
    merge: Merge,
    action: Action,
) -> Result<Batch> {
    let caller = Caller::new(access);
    let batch = documents::upsert(
        &state.store,
        &caller,
        coll,
        items,
        merge,
        action,
        Batch::new(),
    )
    .await?;
    Ok(batch.finish())
}

/// What a POST of `items` would store, as a JSON array, storing nothing.
pub fn preview(coll: Collection, items: &Items) -> Result<String> {
    let mut batch = Batch::new();
    items.prepare_each(coll, dates::now_ms(), &mut |doc| {
        batch.push(&Value::Object(doc.doc), false)
    })?;
    Ok(batch.finish().body)
}

fn sync_counts(written: usize, inserted: usize) -> actix_web::HttpResponseBuilder {
    let mut builder = HttpResponse::Ok();
    builder
        .insert_header(("X-Sync-Inserted", inserted.to_string()))
        .insert_header(("X-Sync-Updated", (written - inserted).to_string()));
    builder
}

/// The parsed query string of a request.
pub fn query_tree(req: &HttpRequest) -> Result<Value> {
    crate::qs::parse(req.query_string())
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
    access: &Access,
    coll: Collection,
    tree: &Value,
    opts: ListOptions,
) -> Result<Vec<RawDoc>> {
    let q = list_query(coll, tree, opts)?;
    documents::list(&state.store, &Caller::new(access), coll, q).await
}

/// As [`list`] for lists that may be long (`count` up to [`store::MAX_LIST`]): past one chunk,
/// where the documents are and the newest `time` among them, to stream ([`super::pages`]).
pub async fn list_paged(
    state: &State,
    access: &Access,
    coll: Collection,
    tree: &Value,
    opts: ListOptions,
    time: Option<TimeField>,
) -> Result<Listed> {
    let q = list_query(coll, tree, opts)?;
    documents::list_paged(&state.store, &Caller::new(access), coll, q, time).await
}

fn list_query(coll: Collection, tree: &Value, opts: ListOptions) -> Result<store::ListQuery> {
    let null = Value::Null;
    let req = ListRequest {
        find: tree.get("find").unwrap_or(&null),
        sort: tree.get("sort").unwrap_or(&null),
        count: crate::qs::scalar(tree, "count"),
        default_count: opts.default_count,
        window: opts.window,
        extra: opts.extra,
    };
    query::build_list(coll, &req, dates::now_ms())
}

pub async fn get_one(
    state: &State,
    access: &Access,
    coll: Collection,
    key: String,
) -> Result<Option<RawDoc>> {
    documents::get(&state.store, &Caller::new(access), coll, key).await
}

/// Soft-deletes what `filter` matches; returns how many.
pub async fn delete(
    state: &State,
    access: &Access,
    coll: Collection,
    filter: SqlFilter,
) -> Result<usize> {
    documents::delete_matching(&state.store, &Caller::new(access), coll, filter).await
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
    let tag = super::etag::of_rows(&docs);
    if let Some(not_modified) = super::etag::not_modified(req, &tag) {
        return Ok(not_modified);
    }
    let list = store::v1json::list(docs, time)?;
    let res = if time.is_none() {
        super::format::json_body(HttpResponse::Ok(), list.body)
    } else {
        super::format::conditional(req, list.newest, |b| super::format::json_body(b, list.body))
    };
    Ok(super::etag::set(res, &tag))
}

/// Nightscout's Last-Modified of treatments and activity: the newest `field` read as a date.
pub fn date_field(name: &'static str) -> TimeField {
    TimeField {
        name,
        ms: |v| dates::parse_value(v).map(|i| i.ms),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn written(id: &str, doc: Value) -> Written {
        let Value::Object(doc) = doc else {
            panic!("not an object")
        };
        Written {
            id: id.into(),
            doc,
            outcome: Outcome::Inserted,
            srv_created: 0,
            srv_modified: 0,
        }
    }

    #[test]
    fn written_documents_are_spliced_as_written_v1_serialises_them() {
        let docs = [
            json!({}),
            serde_json::from_str(
                r#"{"sgv":1e400,"n":{"_id":1},"s":"é\u0001\"","z":[1,{"a":null}]}"#,
            )
            .unwrap(),
            json!({"a": 1, "_id": "kept in place"}),
        ];
        for id in ["0123456789abcdef01234567", "a\"b"] {
            let mut spliced = Batch::new();
            let mut copied = Batch::new();
            for d in &docs {
                let w = written(id, d.clone());
                spliced.push_written(&w).unwrap();
                copied.push(&w.to_v1(), true).unwrap();
            }
            assert_eq!(spliced.finish().body, copied.finish().body);
        }
    }
}
