//! `GET /api/v1/backups`: the backup settings and the backup files in `<data dir>/backups`,
//! read-only, for the admin page (docs/data-care.md). Admins only: file names and sizes say
//! how the server is run.

use actix_web::{web, HttpResponse};
use serde_json::json;

use super::v1::State;
use crate::error::{Error, Result};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/backups", web::get().to(backups));
}

async fn backups(state: State) -> Result<HttpResponse> {
    let dir = crate::care::backup_dir(&state.config);
    let files = web::block(move || crate::care::list_backups(&dir))
        .await
        .map_err(|e| Error::Internal(format!("listing the backups: {e}")))?;
    let list: Vec<_> = files
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "bytes": f.bytes,
                "date": f.modified_ms,
                "dateString": crate::dates::to_iso(f.modified_ms),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "intervalHours": state.config.backup_interval_hours,
        "keep": state.config.backup_keep,
        "backups": list,
    })))
}
