//! HTTP: one file per resource. Handlers parse, check permission, call store/ and shape the
//! response; shared v1 plumbing (bodies, lists, batch replies) lives in `v1`.

pub(crate) mod activity;
pub(crate) mod authorization;
pub(crate) mod backups;
pub(crate) mod cors;
pub(crate) mod count;
pub(crate) mod devicestatus;
pub(crate) mod docs;
pub(crate) mod entries;
pub(crate) mod etag;
pub(crate) mod experiments;
pub(crate) mod food;
pub(crate) mod format;
pub(crate) mod guard;
pub mod json_weight;
pub(crate) mod pages;
pub(crate) mod pebble;
pub(crate) mod profile;
pub(crate) mod properties;
pub(crate) mod resource;
pub mod routes;
pub(crate) mod stats;
pub(crate) mod status;
pub(crate) mod treatments;
pub(crate) mod v1;
pub mod v3;
pub(crate) mod v4;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use crate::error::Error;

/// Registers every route. API v1 is also served under /api/v2, as Nightscout does.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/versions", web::get().to(status::versions))
        .service(web::scope("/api/v1").configure(v1_routes))
        .service(web::scope("/api/v2/authorization").configure(authorization::routes))
        // Before the /api/v2 scope, which would otherwise claim the path.
        .configure(stats::routes)
        .service(
            web::scope("/api/v2")
                .configure(properties::routes)
                .configure(v1_routes),
        )
        .service(web::scope("/api/v3").configure(v3::routes))
        .service(web::scope("/api/v4").configure(v4::routes))
        .configure(pebble::routes)
        .configure(docs::routes)
        .configure(crate::live::ws::routes)
        .configure(crate::live::socketio::routes)
        .configure(crate::web::routes)
        .default_service(web::to(not_found));
}

fn v1_routes(cfg: &mut web::ServiceConfig) {
    status::routes(cfg);
    entries::routes(cfg);
    treatments::routes(cfg);
    devicestatus::routes(cfg);
    profile::routes(cfg);
    food::routes(cfg);
    activity::routes(cfg);
    experiments::routes(cfg);
    count::routes(cfg);
    backups::routes(cfg);
}

async fn not_found() -> Result<HttpResponse, Error> {
    Err(Error::NotFound("Not found".into()))
}

/// HTTP conventions Express gives every Nightscout route: HEAD answered like GET without a
/// body, header names capitalised (some clients look them up case-sensitively); plus one
/// line per request at debug level (method, path, never the query, which may hold a secret).
pub async fn http_conventions(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let method = req.method().clone();
    let is_head = method == Method::HEAD;
    if is_head {
        req.head_mut().method = Method::GET;
        // No body follows, so nothing to compress (an empty gzip stream would confuse clients).
        req.headers_mut()
            .remove(actix_web::http::header::ACCEPT_ENCODING);
    }
    let path = loggable_path(req.path());
    let start = std::time::Instant::now();
    let mut res = next.call(req).await?;
    res.response_mut().head_mut().set_camel_case_headers(true);
    tracing::debug!(
        %method,
        %path,
        status = res.status().as_u16(),
        micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    if is_head {
        return Ok(res.map_body(|_, _| BoxBody::new(())));
    }
    Ok(res.map_into_boxed_body())
}

/// The path as it may be logged: whatever follows `/authorization/` is replaced unless it is
/// one of the routes there that carry no credential. The path is judged as the router may
/// read it (percent-decoded, repeated and `.` segments folded, any case), so
/// `/authorization//request/<token>` or `…/reques%74/<token>` hide the token too.
fn loggable_path(path: &str) -> String {
    let normal = normalized_path(path);
    let lower = normal.to_ascii_lowercase();
    let Some(i) = lower.find("/authorization/") else {
        return normal;
    };
    let rest = &lower[i + "/authorization/".len()..];
    let harmless = ["permissions", "subjects", "roles", "debug/check/"];
    if rest.is_empty() || harmless.iter().any(|h| rest.starts_with(h)) {
        return normal;
    }
    format!("{}/authorization/<redacted>", &normal[..i])
}

/// `path` percent-decoded (until nothing changes, at most three times), with empty and `.`
/// segments dropped; bytes that are not UTF-8 shown as U+FFFD.
fn normalized_path(path: &str) -> String {
    let mut text = path.to_string();
    for _ in 0..3 {
        let decoded = percent_decode(&text);
        if decoded == text {
            break;
        }
        text = decoded;
    }
    let segments: Vec<&str> = text
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    format!("/{}", segments.join("/"))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                let v = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn tokens_in_authorization_paths_are_redacted_in_every_spelling() {
        for p in [
            "/api/v2/authorization/request/tok-123",
            "/api/v2/authorization//request/tok-123",
            "/api/v2/authorization/reques%74/tok-123",
            "/api/v2/authorization/reques%2574/tok-123",
            "/api/v2/authorization/./request/tok-123",
            "/api/v2/AUTHORIZATION/Request/tok-123",
            "/api/v2/authorization%2Frequest%2Ftok-123",
            "/api/v2/authorization/tok-123",
        ] {
            let logged = loggable_path(p);
            assert!(!logged.contains("tok-123"), "{p} logged as {logged}");
            assert!(logged.ends_with("<redacted>"), "{p} logged as {logged}");
        }
    }

    #[test]
    fn other_paths_are_logged_as_they_read() {
        assert_eq!(
            loggable_path("/api/v1/entries.json"),
            "/api/v1/entries.json"
        );
        assert_eq!(
            loggable_path("/api/v2/authorization/subjects/abc"),
            "/api/v2/authorization/subjects/abc"
        );
        assert_eq!(loggable_path("/api/v1/entries/%41"), "/api/v1/entries/A");
    }
}
