//! The sync with SYNC_URL (src/sync/service.rs, docs/sync.md, "Status and conflicts API"):
//! its status, run history and conflict log; a run now; a held conflict decided. Authorized
//! as API v1 is (secret, token or JWT), so the viewer and /admin can read it: `api:sync:read`
//! to read, `api:sync:admin` to act. Without SYNC_URL the status says `"configured": false`
//! and the rest answer 404.

use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::spans::count_param;
use crate::api::v1::{self, State};
use crate::error::{Error, Result};
use crate::sync::service::{SyncService, Trigger};

type Body = std::result::Result<Bytes, actix_web::Error>;

/// Runs and conflicts listed when no `limit` is given, and the most a `limit` may ask for.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/sync/status", web::get().to(status))
        .route("/sync/runs", web::get().to(runs))
        .route("/sync/conflicts", web::get().to(conflicts))
        .route("/sync/conflicts/{id}", web::post().to(decide))
        .route("/sync/run", web::post().to(run_now));
}

fn service(state: &State) -> Result<&SyncService> {
    state.sync.as_ref().ok_or_else(|| {
        Error::NotFound("sync is not configured: set SYNC_URL (docs/sync.md)".to_string())
    })
}

fn no_cache(body: Value) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-cache"))
        .json(body)
}

async fn status(state: State) -> Result<HttpResponse> {
    match &state.sync {
        Some(s) => Ok(no_cache(s.status().await?)),
        None => Ok(no_cache(json!({"configured": false}))),
    }
}

async fn runs(state: State, req: HttpRequest) -> Result<HttpResponse> {
    let limit = count_param(req.query_string(), "limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let runs = service(&state)?.runs(limit).await?;
    Ok(no_cache(json!({ "runs": runs })))
}

async fn conflicts(state: State, req: HttpRequest) -> Result<HttpResponse> {
    let limit = count_param(req.query_string(), "limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let conflicts = service(&state)?.conflicts(limit).await?;
    Ok(no_cache(json!({ "conflicts": conflicts })))
}

/// Body `{"keep": "local" | "remote"}`.
async fn decide(state: State, id: web::Path<String>, body: Body) -> Result<HttpResponse> {
    let sync = service(&state)?;
    let id: i64 = id
        .trim()
        .parse()
        .map_err(|_| Error::NotFound(format!("no sync conflict {:?}", id.as_str())))?;
    let body = v1::read_json(body, state.config.max_body_bytes)?;
    let keep = body.get("keep").and_then(Value::as_str).ok_or_else(|| {
        Error::bad_request("expected {\"keep\": \"local\"} or {\"keep\": \"remote\"}")
    })?;
    sync.decide(id, keep, crate::dates::now_ms()).await?;
    Ok(no_cache(
        json!({"id": id, "kept": keep, "run": "triggered"}),
    ))
}

async fn run_now(state: State) -> Result<HttpResponse> {
    service(&state)?.trigger(Trigger::Manual);
    Ok(no_cache(json!({"run": "triggered"})))
}
