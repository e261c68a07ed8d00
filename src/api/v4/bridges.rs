//! `GET /api/v4/bridges`: what each bridge (src/connect/, docs/bridges.md) is doing: state,
//! last success, last error (class and a message without secrets), next poll, counters.
//! Admins, or a subject with `api:bridges:read`.

use actix_web::{web, HttpResponse};
use serde_json::{json, Value};

use crate::api::v1::State;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/bridges", web::get().to(bridges));
}

async fn bridges(state: State) -> HttpResponse {
    let rows: Vec<Value> = state
        .bridges
        .snapshot()
        .iter()
        .map(|s| s.to_json())
        .collect();
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-cache"))
        .json(json!({ "bridges": rows }))
}
