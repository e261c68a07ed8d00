//! ETag and If-None-Match on v1 JSON lists, where Nightscout (Express) sends a weak ETag of
//! every JSON body. Here it is derived from the rows the list holds (each row's seq, `_id`,
//! srvModified and validity), which decide the body, so the body itself is never hashed and
//! may be streamed. Two requests that return the same documents get the same ETag whatever
//! their query (xDrip+ skips a treatments download whose ETag it has seen).

use std::hash::{Hash, Hasher};

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use crate::store::RawDoc;

/// `W/"<16 hex digits>"`. DefaultHasher::new() has fixed keys, so the same rows give the same
/// tag across restarts of one build.
pub fn of_rows(docs: &[RawDoc]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    docs.len().hash(&mut h);
    for d in docs {
        (d.seq, d.id.as_str(), d.srv_modified, d.is_valid).hash(&mut h);
    }
    format!("W/\"{:016x}\"", h.finish())
}

/// A 304 when If-None-Match names `tag` (weakly, or `*`).
pub fn not_modified(req: &HttpRequest, tag: &str) -> Option<HttpResponse> {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let mine = bare(tag);
    let hit = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || bare(t) == mine);
    hit.then(|| {
        HttpResponse::NotModified()
            .insert_header((header::ETAG, tag))
            .finish()
    })
}

/// Adds the ETag to a 200 reply.
pub fn set(mut res: HttpResponse, tag: &str) -> HttpResponse {
    if res.status().is_success() {
        if let Ok(v) = HeaderValue::from_str(tag) {
            res.headers_mut().insert(header::ETAG, v);
        }
    }
    res
}
