//! The route set most v1 collections share (Nightscout's devicestatus, treatments, activity,
//! food and profile routers differ only in these parameters).

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;

use super::v1::{self, ListOptions, State};
use super::{format, pages};
use crate::auth::Access;
use crate::documents::Action;
use crate::error::{Error, Result};
use crate::store::pages::Listed;
use crate::store::upsert::Merge;
use crate::store::Collection;

#[derive(Clone, Copy)]
pub struct Resource {
    pub coll: Collection,
    pub default_count: usize,
    /// Treatments default to more when a find is given (Nightscout: 1000, else 100).
    pub count_with_find: usize,
    /// Whether lists set Last-Modified from the newest created_at and honour
    /// If-Modified-Since (Nightscout does it for treatments).
    pub last_modified: bool,
    /// Whether lists without a time filter see only the last 4 days.
    pub window: bool,
    /// How a POST that matches a stored document changes it.
    pub merge: Merge,
    /// `DELETE path/{id}` accepts an identifier (Loop's UUIDs) besides a hex `_id`.
    pub delete_by_identifier: bool,
    /// `DELETE path/{id}` answers `{}` (food, activity) instead of the delete count.
    pub delete_replies_empty: bool,
}

type Body = std::result::Result<Bytes, actix_web::Error>;

/// `GET path[.json]` (list), `POST` (create), `DELETE` (by find), and `DELETE path/{id}`;
/// `PUT` when `put` is set.
pub fn routes(cfg: &mut web::ServiceConfig, path: &str, r: Resource, put: bool) {
    let mut main = web::resource([path.to_string(), format!("{path}.{{ext}}")])
        .route(web::get().to(move |s: State, a: Access, q: HttpRequest| list(r, s, a, q)))
        .route(web::post().to(move |s: State, a: Access, b: Body| create(r, s, a, b)))
        .route(
            web::delete().to(move |s: State, a: Access, q: HttpRequest| delete_many(r, s, a, q)),
        );
    if put {
        main = main.route(web::put().to(move |s: State, a: Access, b: Body| update(r, s, a, b)));
    }
    cfg.service(main).service(
        web::resource(format!("{path}/{{id}}")).route(web::delete().to(
            move |s: State, a: Access, q: HttpRequest, id: web::Path<String>| {
                delete_one(r, s, a, q, id)
            },
        )),
    );
}

fn json_only(req: &HttpRequest) -> Result<()> {
    match format::ext_of(req).as_deref() {
        None | Some("json") => Ok(()),
        Some(other) => Err(Error::NotAcceptable(format!(
            "format '.{other}' is not supported here; use .json"
        ))),
    }
}

pub async fn list(
    r: Resource,
    state: State,
    access: Access,
    req: HttpRequest,
) -> Result<HttpResponse> {
    json_only(&req)?;
    let tree = v1::query_tree(&req)?;
    let default_count = if tree.get("find").is_some() {
        r.count_with_find
    } else {
        r.default_count
    };
    let opts = ListOptions {
        default_count,
        window: r.window,
        extra: None,
    };
    let time = r.last_modified.then(|| v1::date_field("created_at"));
    match v1::list_paged(&state, &access, r.coll, &tree, opts, time).await? {
        Listed::All(docs) => v1::json_list(&req, docs, time),
        Listed::Paged(p) => Ok(pages::reply(
            &req,
            &state,
            r.coll,
            p,
            format::Format::Json,
            r.last_modified,
        )),
    }
}

pub async fn create(r: Resource, state: State, access: Access, body: Body) -> Result<HttpResponse> {
    let items = v1::read_items(body, state.config.max_body_bytes)?;
    Ok(
        v1::write_items(&state, &access, r.coll, items, r.merge, Action::Create)
            .await?
            .reply(),
    )
}

/// PUT replaces the document the body names (identifier, `_id` or dedup key), creating it if
/// there is none; replies with the stored document.
pub async fn update(r: Resource, state: State, access: Access, body: Body) -> Result<HttpResponse> {
    let items = v1::read_items(body, state.config.max_body_bytes)?;
    let single = items.single;
    let batch = v1::write_items(
        &state,
        &access,
        r.coll,
        items,
        Merge::Replace,
        Action::Update,
    )
    .await?;
    Ok(if single {
        batch.reply_first()
    } else {
        batch.reply()
    })
}

pub async fn delete_many(
    r: Resource,
    state: State,
    access: Access,
    req: HttpRequest,
) -> Result<HttpResponse> {
    let filter = v1::delete_filter(r.coll, &v1::query_tree(&req)?, None)?;
    Ok(v1::delete_reply(
        v1::delete(&state, &access, r.coll, filter).await?,
    ))
}

/// `DELETE path/<id>`; `*` stands for any id, so the find of the query string decides
/// (Nightscout's admin tools clean collections this way).
pub async fn delete_one(
    r: Resource,
    state: State,
    access: Access,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse> {
    let filter = if id.as_str() == "*" {
        v1::delete_filter(r.coll, &v1::query_tree(&req)?, None)?
    } else if crate::ids::is_object_id(&id) || r.delete_by_identifier {
        crate::store::query::id_filter(r.coll, &id)?
    } else {
        return Err(Error::bad_request(format!(
            "Invalid _id format: must be a 24-character hex string, got {id}"
        )));
    };
    let n = v1::delete(&state, &access, r.coll, filter).await?;
    if r.delete_replies_empty {
        return Ok(HttpResponse::Ok().json(serde_json::json!({})));
    }
    Ok(v1::delete_reply(n))
}

/// A body's first document must carry a valid ObjectId `_id` (profile and food PUT).
pub fn require_object_id(body: &Value) -> Result<()> {
    let first = match body {
        Value::Array(a) => a.first(),
        other => Some(other),
    };
    match first.and_then(|d| d.get("_id")).and_then(Value::as_str) {
        Some(id) if crate::ids::is_object_id(id) => Ok(()),
        other => Err(Error::bad_request(format!(
            "Invalid _id format: must be a 24-character hex string, got {}",
            other.unwrap_or("nothing")
        ))),
    }
}
