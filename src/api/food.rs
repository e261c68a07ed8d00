//! /api/v1/food: the food database and quick picks of the careportal.

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::resource::{self, Resource};
use super::v1::{self, ListOptions, State};
use crate::auth::Access;
use crate::documents::Action;
use crate::error::Result;
use crate::store::query;
use crate::store::upsert::Merge;
use crate::store::{Collection, MAX_LIST};

const RESOURCE: Resource = Resource {
    coll: Collection::Food,
    default_count: MAX_LIST,
    count_with_find: MAX_LIST,
    last_modified: false,
    window: false,
    merge: Merge::Replace,
    delete_by_identifier: false,
    delete_replies_empty: true,
};

type Body = std::result::Result<Bytes, actix_web::Error>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    let r = RESOURCE;
    cfg.service(
        web::resource(["/food", "/food.json"])
            .route(web::get().to(|s: State, a: Access, q: HttpRequest| {
                filtered(s, a, q, Value::Null, Value::Null)
            }))
            .route(web::post().to(move |s: State, a: Access, b: Body| resource::create(r, s, a, b)))
            .route(web::put().to(update)),
    )
    .service(
        web::resource(["/food/quickpicks", "/food/quickpicks.json"]).route(web::get().to(
            |s: State, a: Access, q: HttpRequest| {
                filtered(
                    s,
                    a,
                    q,
                    json!({"type": "quickpick", "hidden": "false"}),
                    json!({"position": "1"}),
                )
            },
        )),
    )
    .service(
        web::resource(["/food/regular", "/food/regular.json"]).route(web::get().to(
            |s: State, a: Access, q: HttpRequest| {
                filtered(s, a, q, json!({"type": "food"}), Value::Null)
            },
        )),
    )
    .service(web::resource("/food/{id}").route(web::delete().to(
        move |s: State, a: Access, q: HttpRequest, id: web::Path<String>| {
            resource::delete_one(r, s, a, q, id)
        },
    )));
}

/// PUT replaces (or creates) each document; Nightscout's food PUT always answers an array,
/// even for one object (lib/api/food normalises the body to an array).
async fn update(state: State, access: Access, body: Body) -> Result<HttpResponse> {
    let items = v1::read_items(body, state.config.max_body_bytes)?;
    Ok(v1::write_items(
        &state,
        &access,
        RESOURCE.coll,
        items,
        Merge::Replace,
        Action::Update,
    )
    .await?
    .reply())
}

/// Every food document matching `find` (Nightscout returns them all, unlimited).
async fn filtered(
    state: State,
    access: Access,
    req: HttpRequest,
    find: Value,
    sort: Value,
) -> Result<HttpResponse> {
    let extra = query::compile_find(Collection::Food, &find)?;
    let tree = json!({ "sort": sort });
    let opts = ListOptions {
        default_count: MAX_LIST,
        window: false,
        extra: Some(extra),
    };
    let docs = v1::list(&state, &access, Collection::Food, &tree, opts).await?;
    v1::json_list(&req, docs, None)
}
