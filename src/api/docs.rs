//! Where Nightscout serves its API documentation (`/swagger.json`, the Swagger UI pages
//! `/api-docs` and `/api3-docs`): nightlite answers with its OpenAPI document of API v3. It
//! bundles no Swagger UI, and API v1 is described in docs/api-v1.md.

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    for path in ["/swagger.json", "/api-docs", "/api3-docs"] {
        cfg.route(path, web::get().to(super::v3::swagger));
    }
}
