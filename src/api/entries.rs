//! /api/v1/entries: glucose readings (sgv), meter values (mbg), calibrations (cal).

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::format::{self, split_ext};
use super::pages;
use super::v1::{self, ListOptions, State};
use crate::auth::Access;
use crate::documents::Action;
use crate::error::Result;
use crate::store::pages::Listed;
use crate::store::query::{self, SqlFilter};
use crate::store::upsert::Merge;
use crate::store::v1json::TimeField;
use crate::store::{Collection, RawDoc};

const COLL: Collection = Collection::Entries;
const DEFAULT_COUNT: usize = 10;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(["/entries", "/entries.{ext}"])
            .route(web::get().to(list))
            .route(web::post().to(create))
            .route(web::delete().to(delete_many)),
    )
    .service(
        web::resource(["/entries/current", "/entries/current.{ext}"]).route(web::get().to(current)),
    )
    .service(
        web::resource(["/entries/preview", "/entries/preview.{ext}"])
            .route(web::post().to(preview)),
    )
    .service(
        web::resource("/entries/{spec}")
            .route(web::get().to(by_spec))
            .route(web::delete().to(delete_spec)),
    );
}

fn type_filter(t: &str) -> Result<SqlFilter> {
    query::compile_find(COLL, &json!({ "type": t }))
}

/// What dates an entry for Last-Modified.
const TIME: TimeField = TimeField {
    name: "date",
    ms: crate::dates::ms_from_number,
};

/// As [`respond_list`], streaming a list too long to hold.
fn respond_listed(
    req: &HttpRequest,
    state: &State,
    ext: Option<&str>,
    listed: Listed,
) -> Result<HttpResponse> {
    match listed {
        Listed::All(docs) => respond_list(req, ext, docs),
        Listed::Paged(p) => {
            let fmt = format::entries_format(ext, req)?;
            Ok(pages::reply(req, state, COLL, p, fmt, true))
        }
    }
}

/// Writes a list in the negotiated format, with Last-Modified from the newest entry's date.
fn respond_list(req: &HttpRequest, ext: Option<&str>, docs: Vec<RawDoc>) -> Result<HttpResponse> {
    let fmt = format::entries_format(ext, req)?;
    if fmt == format::Format::Json {
        return v1::json_list(req, docs, Some(TIME));
    }
    let docs = v1::parse_all(docs)?;
    let newest = docs
        .iter()
        .filter_map(|d| d.doc.get("date").and_then(crate::dates::ms_from_number))
        .max();
    Ok(format::conditional(req, newest, |b| {
        format::respond(b, fmt, v1::v1_docs(&docs))
    }))
}

async fn list(state: State, access: Access, req: HttpRequest) -> Result<HttpResponse> {
    let ext = format::ext_of(&req);
    let tree = v1::query_tree(&req)?;
    let opts = ListOptions {
        default_count: DEFAULT_COUNT,
        window: true,
        extra: None,
    };
    let listed = v1::list_paged(&state, &access, COLL, &tree, opts, Some(TIME)).await?;
    respond_listed(&req, &state, ext.as_deref(), listed)
}

/// The newest entry of any type (within Nightscout's window).
async fn current(state: State, access: Access, req: HttpRequest) -> Result<HttpResponse> {
    let ext = format::ext_of(&req);
    let opts = ListOptions {
        default_count: 1,
        window: true,
        extra: None,
    };
    let docs = v1::list(&state, &access, COLL, &serde_json::Value::Null, opts).await?;
    respond_list(&req, ext.as_deref(), docs)
}

/// `/entries/<_id>` for one entry, `/entries/<type>` for a type (`sgv`, `mbg`, `cal`, ...).
async fn by_spec(
    state: State,
    access: Access,
    req: HttpRequest,
    spec: web::Path<String>,
) -> Result<HttpResponse> {
    let (spec, ext) = split_ext(&spec);
    if crate::ids::is_object_id(spec) {
        let docs = v1::get_one(&state, &access, COLL, spec.to_string())
            .await?
            .into_iter()
            .collect();
        return respond_list(&req, ext, docs);
    }
    let tree = v1::query_tree(&req)?;
    // The route's type replaces any find[type], as Nightscout's prepReqModel does.
    let mut tree = tree;
    if let Some(find) = tree.get_mut("find").and_then(|f| f.as_object_mut()) {
        find.remove("type");
    }
    let opts = ListOptions {
        default_count: DEFAULT_COUNT,
        window: true,
        extra: Some(type_filter(spec)?),
    };
    let listed = v1::list_paged(&state, &access, COLL, &tree, opts, Some(TIME)).await?;
    respond_listed(&req, &state, ext, listed)
}

async fn create(
    state: State,
    access: Access,
    body: std::result::Result<Bytes, actix_web::Error>,
) -> Result<HttpResponse> {
    let items = v1::read_items(body, state.config.max_body_bytes)?;
    Ok(
        v1::write_items(&state, &access, COLL, items, Merge::Shallow, Action::Create)
            .await?
            .reply(),
    )
}

/// Shows what a POST would store, storing nothing.
async fn preview(
    state: State,
    body: std::result::Result<Bytes, actix_web::Error>,
) -> Result<HttpResponse> {
    let items = v1::read_items(body, state.config.max_body_bytes)?;
    let body = v1::preview(COLL, &items)?;
    Ok(format::json_body(HttpResponse::Ok(), body))
}

async fn delete_many(state: State, access: Access, req: HttpRequest) -> Result<HttpResponse> {
    let filter = v1::delete_filter(COLL, &v1::query_tree(&req)?, None)?;
    Ok(v1::delete_reply(
        v1::delete(&state, &access, COLL, filter).await?,
    ))
}

/// DELETE `/entries/<_id>`, or `/entries/<type>` with find (`*` for every type).
async fn delete_spec(
    state: State,
    access: Access,
    req: HttpRequest,
    spec: web::Path<String>,
) -> Result<HttpResponse> {
    let (spec, _) = split_ext(&spec);
    let filter = if crate::ids::is_object_id(spec) {
        query::id_filter(COLL, spec)?
    } else {
        let extra = if spec == "*" {
            None
        } else {
            Some(type_filter(spec)?)
        };
        v1::delete_filter(COLL, &v1::query_tree(&req)?, extra)?
    };
    Ok(v1::delete_reply(
        v1::delete(&state, &access, COLL, filter).await?,
    ))
}
