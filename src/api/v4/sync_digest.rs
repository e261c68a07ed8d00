//! `GET /api/v4/sync/digest/{collection}?since=<ms>`: what this server holds of a collection
//! as a count and a hash over identifiers and modification times (store/sync_digest.rs), so
//! a nightlite syncing with this one can tell after a run whether both hold the same
//! (docs/sync.md, "Integrity"). Needs `api:{collection}:read`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::api::v1::State;
use crate::error::{Error, Result};
use crate::store::{sync_digest, Collection};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sync/digest/{collection}", web::get().to(digest));
}

async fn digest(state: State, req: HttpRequest, path: web::Path<String>) -> Result<HttpResponse> {
    let name = path.into_inner();
    let coll = Collection::from_name(&name)
        .ok_or_else(|| Error::bad_request(format!("unknown collection {name:?}")))?;
    let since = super::time_param(req.query_string(), "since")?.unwrap_or(0);
    let d = state
        .store
        .read(move |conn| sync_digest::site(conn, coll, since))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-cache"))
        .json(json!({
            "collection": coll.table(),
            "since": since,
            "count": d.count,
            "hash": d.hash,
        })))
}
