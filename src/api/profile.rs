//! /api/v1/profile: therapy settings (basal, ratios, targets). The newest by startDate is the
//! active one.

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::resource::{self, Resource};
use super::v1::{self, ListOptions, State};
use crate::auth::Access;
use crate::error::Result;
use crate::store::upsert::Merge;
use crate::store::Collection;

const RESOURCE: Resource = Resource {
    coll: Collection::Profile,
    default_count: 10,
    count_with_find: 10,
    last_modified: false,
    window: true,
    // A POST keeps every distinct upload (Nightscout inserts each), a retry stays one.
    merge: Merge::History,
    delete_by_identifier: false,
    delete_replies_empty: false,
};

type Body = std::result::Result<Bytes, actix_web::Error>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    let r = RESOURCE;
    cfg.service(
        web::resource(["/profile", "/profile.json"])
            .route(web::get().to(list))
            .route(web::post().to(move |s: State, a: Access, b: Body| resource::create(r, s, a, b)))
            .route(web::put().to(update)),
    )
    .service(
        web::resource(["/profile/current", "/profile/current.json"]).route(web::get().to(current)),
    )
    .service(web::resource(["/profiles", "/profiles.json"]).route(
        web::get().to(move |s: State, a: Access, q: HttpRequest| resource::list(r, s, a, q)),
    ))
    .service(web::resource("/profile/{id}").route(web::delete().to(delete)));
}

/// The newest profiles by startDate (`count`, default 10); no find, as in Nightscout.
async fn list(state: State, access: Access, req: HttpRequest) -> Result<HttpResponse> {
    let tree = v1::query_tree(&req)?;
    let count = crate::qs::scalar(&tree, "count")
        .map(|c| json!({ "count": c }))
        .unwrap_or(Value::Null);
    let opts = ListOptions {
        default_count: 10,
        window: false,
        extra: None,
    };
    let docs = v1::list(&state, &access, Collection::Profile, &count, opts).await?;
    let list = crate::store::v1json::list(docs, None)?;
    Ok(super::format::json_body(HttpResponse::Ok(), list.body))
}

/// The active profile: the newest by startDate, or null; with `activeSwitch` while a Profile
/// Switch is in force.
async fn current(state: State, access: Access) -> Result<HttpResponse> {
    let opts = ListOptions {
        default_count: 1,
        window: false,
        extra: None,
    };
    let docs = v1::list(&state, &access, Collection::Profile, &Value::Null, opts).await?;
    let body = crate::store::v1json::one(docs.into_iter().next())?;
    // REQ-SYNC-058: the switch in force now, as an added field (docs/api-v4.md).
    // The reply without it is still the reply: a failure here only leaves the field out.
    let switch = super::v4::profile::active_switch(&state, crate::dates::now_ms())
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "profile/current: the active switch could not be read");
            None
        });
    let body = super::v4::profile::add_active_switch(body, switch);
    Ok(super::format::json_body(HttpResponse::Ok(), body))
}

async fn update(state: State, access: Access, body: Body) -> Result<HttpResponse> {
    if let Ok(bytes) = &body {
        if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
            resource::require_object_id(&v)?;
        }
    }
    resource::update(RESOURCE, state, access, body).await
}

async fn delete(state: State, access: Access, id: web::Path<String>) -> Result<HttpResponse> {
    if !crate::ids::is_object_id(&id) {
        return Err(crate::Error::bad_request(format!(
            "Invalid _id format: must be a 24-character hex string, got {id}"
        )));
    }
    v1::delete(
        &state,
        &access,
        Collection::Profile,
        crate::store::query::id_filter(Collection::Profile, &id)?,
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({})))
}
