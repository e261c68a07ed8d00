//! API v3 (Nightscout 15, lib/api3): `/api/v3/version`, `/status`, `/lastModified`, and the
//! generic collection operations in [`generic`]. Responses are `{status, result}` envelopes in
//! JSON, CSV or XML (by suffix or Accept); errors are `{status, message}`.

pub mod generic;
mod profile_switch;
pub mod render;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, HttpResponse};
use serde_json::{json, Map, Value};

use super::v1::State;
use crate::auth::Access;
use crate::error::{Error, Result};
use crate::store::{self, Collection};
use crate::{dates, NIGHTSCOUT_VERSION};

pub const API3_VERSION: &str = "3.0.3-alpha";

/// The collections API v3 serves.
pub const COLLECTIONS: [Collection; 6] = Collection::V3;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/version", web::get().to(version))
        .route("/status", web::get().to(status))
        .route("/lastModified", web::get().to(last_modified))
        .route("/swagger.json", web::get().to(swagger));
    // Before the generic `/{collection}`, which would take it for a collection.
    crate::api::v4::spans::v3_routes(cfg);
    generic::routes(cfg);
}

/// The output format a `.json`/`.csv`/`.xml` suffix asked for (extension2accept).
#[derive(Debug, Clone, Copy)]
pub struct Suffix(pub render::Format);

/// Takes an output suffix off the last path segment of /api/v3 requests before routing, as
/// Nightscout's extension2accept does; any other suffix is a 406.
pub async fn extension_to_accept(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> std::result::Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let path = req.path().to_string();
    // swagger.json is a file name, not a suffix.
    if let Some(rest) = path
        .strip_prefix("/api/v3/")
        .filter(|r| *r != "swagger.json")
    {
        let last = rest.rsplit('/').next().unwrap_or("");
        if let Some((base, ext)) = last.split_once('.') {
            let Some(format) = render::Format::from_ext(ext) else {
                let e = Error::NotAcceptable("Unsupported output format requested".into());
                return Ok(req.error_response(e).map_into_boxed_body());
            };
            let new_path = format!("{}{}", &path[..path.len() - last.len()], base);
            let query = req.query_string().to_string();
            let uri = if query.is_empty() {
                new_path
            } else {
                format!("{new_path}?{query}")
            };
            if let Ok(uri) = uri.parse::<actix_web::http::Uri>() {
                req.match_info_mut().get_mut().update(&uri);
                req.head_mut().uri = uri;
                req.extensions_mut().insert(Suffix(format));
            }
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

fn storage_info() -> Value {
    json!({ "storage": "sqlite", "version": rusqlite::version() })
}

fn version_info() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("version".into(), NIGHTSCOUT_VERSION.into());
    m.insert("apiVersion".into(), API3_VERSION.into());
    m.insert("srvDate".into(), dates::now_ms().into());
    m.insert("storage".into(), storage_info());
    m
}

async fn version() -> HttpResponse {
    render::ok_json(Value::Object(version_info()))
}

/// Which of create/read/update/delete the caller may do, per collection ("crud").
fn permissions_of(access: &Access) -> Map<String, Value> {
    let mut out = Map::new();
    for coll in COLLECTIONS {
        let col = coll.table();
        let crud: String = [
            ('c', "create"),
            ('r', "read"),
            ('u', "update"),
            ('d', "delete"),
        ]
        .iter()
        .filter(|(_, action)| access.can(&format!("api:{col}:{action}")))
        .map(|(c, _)| *c)
        .collect();
        if !crud.is_empty() {
            out.insert(col.into(), Value::String(crud));
        }
    }
    out
}

async fn status(access: Access) -> HttpResponse {
    let mut info = version_info();
    info.insert(
        "apiPermissions".into(),
        Value::Object(permissions_of(&access)),
    );
    render::ok_json(Value::Object(info))
}

async fn last_modified(state: State, access: Access) -> Result<HttpResponse> {
    let readable: Vec<Collection> = COLLECTIONS
        .into_iter()
        .filter(|c| access.can(&format!("api:{}:read", c.table())))
        .collect();
    let found = state
        .store
        .read(move |conn| {
            readable
                .into_iter()
                .map(|c| Ok((c, store::v3::last_modified(conn, c)?)))
                .collect::<Result<Vec<_>>>()
        })
        .await?;
    let mut collections = Map::new();
    for (c, ms) in found {
        if let Some(ms) = ms {
            collections.insert(c.table().into(), ms.into());
        }
    }
    Ok(render::ok_json(json!({
        "srvDate": dates::now_ms(),
        "collections": collections,
    })))
}

pub async fn swagger() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(include_str!("swagger.json"))
}
