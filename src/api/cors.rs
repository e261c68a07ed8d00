//! CORS as Nightscout's lib/server/app.js does it: only when ENABLE has `cors`, every response
//! after the https redirect carries the three Access-Control headers, and any OPTIONS request
//! (a browser's preflight) is answered 200 without looking at credentials.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use crate::AppState;

const METHODS: &str = "GET,PUT,POST,DELETE,OPTIONS";
const HEADERS: &str = "Content-Type, Authorization, Content-Length, X-Requested-With";

pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let origin = req
        .app_data::<web::Data<AppState>>()
        .filter(|s| s.config.enabled("cors"))
        .and_then(|s| HeaderValue::from_str(&s.config.cors_allow_origin).ok());
    let Some(origin) = origin else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let mut res = if req.method() == Method::OPTIONS {
        // Express' res.send(200): the status text as a plain-text body.
        req.into_response(
            HttpResponse::Ok()
                .content_type("text/plain; charset=utf-8")
                .body("OK"),
        )
    } else {
        next.call(req).await?.map_into_boxed_body()
    };
    add_headers(res.headers_mut(), origin);
    Ok(res)
}

fn add_headers(h: &mut HeaderMap, origin: HeaderValue) {
    h.insert(
        HeaderName::from_static("access-control-allow-origin"),
        origin,
    );
    h.insert(
        HeaderName::from_static("access-control-allow-methods"),
        HeaderValue::from_static(METHODS),
    );
    h.insert(
        HeaderName::from_static("access-control-allow-headers"),
        HeaderValue::from_static(HEADERS),
    );
}
