//! /api/v1/experiments/test: Loop's Nightscout setup checks the secret with it (Nightscout's
//! lib/api/experiments, permission `authorization:debug:test`).

use actix_web::{web, HttpResponse};
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/experiments/test", web::get().to(test));
}

/// The guard has checked the permission; reaching here is the answer.
async fn test() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}
