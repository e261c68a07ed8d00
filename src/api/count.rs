//! `GET /api/v1/count/<storage>/where?find...`: how many entries, treatments or device statuses
//! match, as Mongo's `$group` count that Nightscout returns (lib/server/aggregate.js).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::v1::{self, State};
use crate::error::Result;
use crate::store::{self, Collection};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/count/{storage}/where", web::get().to(count));
}

async fn count(state: State, req: HttpRequest, storage: web::Path<String>) -> Result<HttpResponse> {
    // Nightscout counts entries for any other name.
    let coll = match storage.as_str() {
        "treatments" => Collection::Treatments,
        "devicestatus" => Collection::DeviceStatus,
        _ => Collection::Entries,
    };
    // The same find and 4-day window as a v1 list (or a DELETE with find).
    let filter = v1::delete_filter(coll, &v1::query_tree(&req)?, None)?;
    let n = state
        .store
        .read(move |conn| store::count_live(conn, coll, &filter))
        .await?;
    // An aggregate over no documents has no group.
    let groups = if n == 0 {
        Value::Array(vec![])
    } else {
        json!([{ "_id": null, "count": n }])
    };
    Ok(HttpResponse::Ok().json(groups))
}
