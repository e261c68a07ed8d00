//! API v3's operations on every collection (lib/api3/generic): search, create (one document,
//! or a batch answered 207), read, update, patch, delete, history. The rules live in
//! store::v3; these handlers parse, check the conditional permissions and shape replies.

use actix_web::http::{header, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::render;
use crate::api::v1::{self, State};
use crate::auth::Access;
use crate::dates;
use crate::documents::{self, Caller, Outcome, Saved};
use crate::error::{Error, Result};
use crate::qs;
use crate::store::v3::{self as rules, Filter};
use crate::store::{Collection, StoredDoc};

type Body = std::result::Result<Bytes, actix_web::Error>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/{collection}/history", web::get().to(history_since_header))
        .route(
            "/{collection}/history/{lastModified}",
            web::get().to(history_since_param),
        )
        .service(
            web::resource("/{collection}")
                .route(web::get().to(search))
                .route(web::post().to(create)),
        )
        .service(
            web::resource("/{collection}/{identifier}")
                .route(web::get().to(read))
                .route(web::put().to(update))
                .route(web::patch().to(patch))
                .route(web::delete().to(delete)),
        );
}

fn collection(name: &str) -> Result<Collection> {
    super::COLLECTIONS
        .into_iter()
        .find(|c| c.table() == name)
        .ok_or_else(|| Error::NotFound("Bad operation or collection".into()))
}

fn http_date_header(req: &HttpRequest, name: header::HeaderName) -> Option<i64> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(dates::parse_http_date)
}

/// The `fields` parameter as a projection: None for every field (absent, empty or `_all`).
fn fields_param(query_string: &str) -> Option<String> {
    qs::first_value(query_string, "fields").filter(|f| !f.is_empty() && f != "_all")
}

/// Keeps only the fields named in a [`fields_param`] list.
fn project(doc: Map<String, Value>, fields: Option<&str>) -> Value {
    let Some(list) = fields else {
        return Value::Object(doc);
    };
    let wanted: Vec<&str> = list.split(',').map(str::trim).collect();
    Value::Object(
        doc.into_iter()
            .filter(|(k, _)| wanted.contains(&k.as_str()))
            .collect(),
    )
}

fn views(coll: Collection, docs: &[StoredDoc], fields: Option<&str>) -> Value {
    Value::Array(
        docs.iter()
            .map(|d| project(rules::view(coll, d), fields))
            .collect(),
    )
}

fn parse_limit(raw: Option<&str>) -> Result<usize> {
    let Some(raw) = raw else {
        return Ok(rules::MAX_LIMIT);
    };
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|l| *l > 0.0 && *l <= rules::MAX_LIMIT as f64)
        // Whole numbers below 1000: the cast is exact.
        .map(|l| l.trunc() as usize)
        .ok_or_else(|| Error::bad_request("Parameter limit out of tolerance"))
}

/// `field$op=value` pairs of a search's query string (the reserved names excepted).
fn filters(query_string: &str) -> Result<Vec<Filter>> {
    const RESERVED: [&str; 7] = [
        "token",
        "sort",
        "sort$desc",
        "limit",
        "skip",
        "fields",
        "now",
    ];
    let mut out = vec![];
    for pair in query_string.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = qs::decode(k);
        if RESERVED.contains(&key.as_str()) {
            continue;
        }
        let (field, op) = match key.rsplit_once('$') {
            Some((f, op)) if !op.is_empty() && op.bytes().all(|b| b.is_ascii_alphabetic()) => {
                (f.to_string(), op.to_string())
            }
            _ => (key.clone(), "eq".to_string()),
        };
        out.push(Filter {
            field,
            op,
            value: qs::decode(v),
        });
    }
    Ok(out)
}

/// What a search's query string asks for, checked as Nightscout checks it; the collection's
/// rules compile it. Public for the fuzz target `v3_filter`.
pub struct SearchParams {
    pub filters: Vec<Filter>,
    /// The field of `sort` or `sort$desc`.
    pub sort: Option<String>,
    pub descending: bool,
    pub limit: usize,
    pub skip: usize,
}

pub fn search_params(q: &str) -> Result<SearchParams> {
    let sort = qs::first_value(q, "sort");
    let sort_desc = qs::first_value(q, "sort$desc");
    if sort.is_some() && sort_desc.is_some() {
        return Err(Error::bad_request(
            "Parameters sort and sort_desc cannot be combined",
        ));
    }
    let limit = parse_limit(qs::first_value(q, "limit").as_deref())?;
    let skip = match qs::first_value(q, "skip") {
        None => 0,
        Some(s) => s
            .trim()
            .parse::<usize>()
            .map_err(|_| Error::bad_request("Parameter skip out of tolerance"))?,
    };
    Ok(SearchParams {
        filters: filters(q)?,
        descending: sort_desc.is_some(),
        sort: sort_desc.or(sort),
        limit,
        skip,
    })
}

async fn search(
    state: State,
    access: Access,
    req: HttpRequest,
    col: web::Path<String>,
) -> Result<HttpResponse> {
    let coll = collection(&col)?;
    let caller = Caller::new(&access);
    let q = req.query_string();
    let search = search_params(q)?;
    let compiled = documents::Search {
        filter: rules::compile_filters(coll, &search.filters)?,
        order: rules::compile_sort(coll, search.sort.as_deref(), search.descending)?,
        limit: search.limit,
        skip: search.skip,
    };
    let docs = documents::search(&state.store, &caller, coll, compiled).await?;
    let fields = fields_param(q);
    let switch = super::profile_switch::for_reply(&state, &caller, coll, &docs).await;
    render::render_with(
        &req,
        HttpResponse::Ok(),
        views(coll, &docs, fields.as_deref()),
        switch,
    )
}

/// The request body as JSON, with Nightscout's message for an empty one.
fn body_json(state: &State, body: Body) -> Result<Value> {
    match body {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => {
            Err(Error::bad_request("Bad or missing request body"))
        }
        other => v1::read_json(other, state.config.max_body_bytes),
    }
}

/// A body that is a document: a non-empty object (the document operations apply the rules).
fn prepared(value: Value) -> Result<Map<String, Value>> {
    let Value::Object(doc) = value else {
        return Err(Error::bad_request("Bad or missing request body"));
    };
    if doc.is_empty() {
        return Err(Error::bad_request("Bad or missing request body"));
    }
    Ok(doc)
}

/// The reply fields of one create.
fn created_fields(saved: &Saved) -> (StatusCode, Map<String, Value>) {
    let mut f = Map::new();
    f.insert("identifier".into(), saved.identifier.clone().into());
    f.insert("lastModified".into(), saved.srv_modified.into());
    match &saved.outcome {
        Outcome::Deduplicated { previous } => {
            f.insert("isDeduplication".into(), true.into());
            if let Some(p) = previous {
                f.insert("deduplicatedIdentifier".into(), p.clone().into());
            }
            (StatusCode::OK, f)
        }
        _ => (StatusCode::CREATED, f),
    }
}

/// The document's address, its identifier percent-encoded (all but RFC 3986's unreserved
/// characters), so any identifier makes a valid header and a path that reads it back.
fn location(col: &str, identifier: &str) -> String {
    let mut out = format!("/api/v3/{col}/");
    for b in identifier.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn create(
    state: State,
    access: Access,
    col: web::Path<String>,
    body: Body,
) -> Result<HttpResponse> {
    let coll = collection(&col)?;
    let body = body_json(&state, body)?;
    let caller = Caller::new(&access);
    match body {
        Value::Array(items) => {
            // One result per item, in request order; valid items are stored even when others
            // fail (each in its own savepoint).
            // A refused item still names its identifier when it had one.
            let idents: Vec<Option<String>> = items
                .iter()
                .map(|i| {
                    i.get("identifier")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect();
            let prepared: Vec<Result<Map<String, Value>>> =
                items.into_iter().map(prepared).collect();
            let results = documents::create_each(&state.store, &caller, coll, prepared).await?;
            let items: Vec<Value> = results
                .into_iter()
                .zip(idents)
                .map(|(r, ident)| match r {
                    Ok(w) => {
                        let (status, mut f) = created_fields(&w);
                        f.insert("status".into(), status.as_u16().into());
                        Value::Object(f)
                    }
                    Err(e) => {
                        let status = actix_web::ResponseError::status_code(&e).as_u16();
                        let mut item = json!({ "status": status, "message": e.client_message() });
                        if let Some(i) = ident {
                            item["identifier"] = i.into();
                        }
                        item
                    }
                })
                .collect();
            Ok(HttpResponse::build(StatusCode::MULTI_STATUS)
                .json(json!({ "status": 207, "result": items })))
        }
        value => {
            let doc = prepared(value)?;
            let saved = documents::create(&state.store, &caller, coll, doc).await?;
            let (status, mut fields) = created_fields(&saved);
            fields.insert("status".into(), status.as_u16().into());
            Ok(HttpResponse::build(status)
                .insert_header((header::LOCATION, location(&col, &saved.identifier)))
                .insert_header((
                    header::LAST_MODIFIED,
                    dates::to_http_date(saved.srv_modified),
                ))
                .json(Value::Object(fields)))
        }
    }
}

async fn read(
    state: State,
    access: Access,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (col, identifier) = path.into_inner();
    let coll = collection(&col)?;
    let caller = Caller::new(&access);
    let doc = documents::find(&state.store, &caller, coll, identifier)
        .await?
        .ok_or_else(|| Error::NotFound("Not found".into()))?;
    if !doc.is_valid {
        return Err(Error::Gone("Gone".into()));
    }
    let modified = doc.srv_modified;
    if http_date_header(&req, header::IF_MODIFIED_SINCE)
        .is_some_and(|s| modified.div_euclid(1000) <= s.div_euclid(1000))
    {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::LAST_MODIFIED, dates::to_http_date(modified)))
            .finish());
    }
    let fields = fields_param(req.query_string());
    let mut builder = HttpResponse::Ok();
    builder.insert_header((header::LAST_MODIFIED, dates::to_http_date(modified)));
    let switch =
        super::profile_switch::for_reply(&state, &caller, coll, std::slice::from_ref(&doc)).await;
    render::render_with(
        &req,
        builder,
        project(rules::view(coll, &doc), fields.as_deref()),
        switch,
    )
}

async fn update(
    state: State,
    access: Access,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: Body,
) -> Result<HttpResponse> {
    let (col, identifier) = path.into_inner();
    let coll = collection(&col)?;
    let caller = Caller::new(&access);
    // Permission before the body is looked at, so a caller who may not write learns nothing
    // from validation; the write checks again in its transaction.
    documents::may_replace(&state.store, &caller, coll, identifier.clone()).await?;
    let doc = prepared(body_json(&state, body)?)?;
    let since = http_date_header(&req, header::IF_UNMODIFIED_SINCE);
    let saved =
        documents::replace(&state.store, &caller, coll, identifier.clone(), doc, since).await?;
    let created = saved.outcome == Outcome::Inserted;
    let srv_modified = saved.srv_modified;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut builder = HttpResponse::build(status);
    builder.insert_header((header::LAST_MODIFIED, dates::to_http_date(srv_modified)));
    let mut body = json!({ "status": status.as_u16(), "lastModified": srv_modified });
    if created {
        builder.insert_header((header::LOCATION, location(&col, &identifier)));
        body["identifier"] = identifier.into();
    }
    Ok(builder.json(body))
}

async fn patch(
    state: State,
    access: Access,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: Body,
) -> Result<HttpResponse> {
    let (col, identifier) = path.into_inner();
    let coll = collection(&col)?;
    let Value::Object(fields) = body_json(&state, body)? else {
        return Err(Error::bad_request("Bad or missing request body"));
    };
    if fields.is_empty() {
        return Err(Error::bad_request("Bad or missing request body"));
    }
    let since = http_date_header(&req, header::IF_UNMODIFIED_SINCE);
    let caller = Caller::new(&access);
    let saved = documents::patch(&state.store, &caller, coll, identifier, fields, since).await?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::LAST_MODIFIED,
            dates::to_http_date(saved.srv_modified),
        ))
        .json(json!({ "status": 200 })))
}

async fn delete(
    state: State,
    access: Access,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (col, identifier) = path.into_inner();
    let coll = collection(&col)?;
    let permanent = qs::first_value(req.query_string(), "permanent").as_deref() == Some("true");
    let caller = Caller::new(&access);
    documents::delete(&state.store, &caller, coll, identifier, permanent).await?;
    Ok(HttpResponse::Ok().json(json!({ "status": 200 })))
}

async fn history(
    state: State,
    access: Access,
    req: HttpRequest,
    col: String,
    since: i64,
    inclusive: bool,
) -> Result<HttpResponse> {
    let coll = collection(&col)?;
    let q = req.query_string();
    let limit = parse_limit(qs::first_value(q, "limit").as_deref())?;
    let fields = fields_param(q);
    // Sync clients page through whole collections here: a JSON page without `fields` is built
    // from the stored text (store::v1json::v3_views), not parsed, reshaped and serialised.
    let spliced = fields.is_none() && render::format_of(&req)? == render::Format::Json;
    let caller = Caller::new(&access);
    let (newest, page) = documents::history(
        &state.store,
        &caller,
        coll,
        since,
        inclusive,
        limit,
        move |docs| {
            let newest = docs.iter().map(|d| d.srv_modified).max();
            let page = if spliced {
                Page::Json(crate::store::v1json::v3_views(docs, coll)?)
            } else {
                Page::Docs(
                    docs.into_iter()
                        .map(StoredDoc::parse)
                        .collect::<Result<Vec<_>>>()?,
                )
            };
            Ok((newest, page))
        },
    )
    .await?;
    let mut builder = HttpResponse::Ok();
    if let Some(max) = newest {
        builder.insert_header((header::LAST_MODIFIED, dates::to_http_date(max)));
        // AAPS pages with this value; without it, it asks for the same page forever.
        builder.insert_header((header::ETAG, format!("W/\"{max}\"")));
    }
    match page {
        Page::Json(result) => Ok(render::json_text(builder, &result)),
        Page::Docs(docs) => render::render(&req, builder, views(coll, &docs, fields.as_deref())),
    }
}

/// A history page: its documents' views as JSON text, or the documents (for `fields` or
/// another format).
enum Page {
    Json(String),
    Docs(Vec<StoredDoc>),
}

/// `/history/{lastModified}`: changes after that instant (epoch ms or ISO).
async fn history_since_param(
    state: State,
    access: Access,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse> {
    let (col, mark) = path.into_inner();
    let since = rules::parse_date(&Value::String(mark))
        .ok_or_else(|| Error::bad_request("Bad or missing Last-Modified header/parameter"))?;
    history(state, access, req, col, since.ms, false).await
}

/// `/history` with a Last-Modified header: changes at or after that second.
async fn history_since_header(
    state: State,
    access: Access,
    req: HttpRequest,
    col: web::Path<String>,
) -> Result<HttpResponse> {
    let since = http_date_header(&req, header::LAST_MODIFIED)
        .ok_or_else(|| Error::bad_request("Bad or missing Last-Modified header/parameter"))?;
    history(
        state,
        access,
        req,
        col.into_inner(),
        since.div_euclid(1000) * 1000,
        true,
    )
    .await
}
