//! HTTP: one file per resource. Handlers parse, check permission, call store/ and shape the
//! response; shared v1 plumbing (bodies, lists, batch replies) lives in `v1`.

pub mod activity;
pub mod authorization;
pub mod devicestatus;
pub mod entries;
pub mod food;
pub mod format;
pub mod guard;
pub mod pages;
pub mod pebble;
pub mod profile;
pub mod properties;
pub mod qs;
pub mod resource;
pub mod routes;
pub mod stats;
pub mod status;
pub mod treatments;
pub mod v1;
pub mod v3;

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
        .configure(pebble::routes)
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

/// The path as it may be logged: an access token or JWT in it is replaced.
fn loggable_path(path: &str) -> String {
    match path.find("/authorization/request/") {
        Some(i) => format!("{}/authorization/request/<redacted>", &path[..i]),
        None => path.to_string(),
    }
}
