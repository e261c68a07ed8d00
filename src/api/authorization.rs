//! /api/v2/authorization: subjects, roles, JWTs for access tokens, permission introspection
//! (Nightscout's lib/authorization/endpoints.js). Permissions are checked by the guard from
//! the route table; these handlers do the work.

use actix_web::web::{self, Bytes};
use actix_web::HttpResponse;
use serde_json::{json, Map, Value};

use super::v1::{self, State};
use crate::auth::Access;
use crate::error::{Error, Result};
use crate::store::auth::{AuthDoc, AuthTable};

type Body = std::result::Result<Bytes, actix_web::Error>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/request/{token}", web::get().to(request))
        .route("/permissions", web::get().to(permissions))
        .route("/permissions/trie", web::get().to(permissions_trie))
        .service(
            web::resource("/subjects")
                .route(web::get().to(list_subjects))
                .route(web::post().to(|s: State, b: Body| save(s, b, AuthTable::Subjects, false)))
                .route(web::put().to(|s: State, b: Body| save(s, b, AuthTable::Subjects, true))),
        )
        .route(
            "/subjects/{id}",
            web::delete().to(|s: State, id: web::Path<String>| remove(s, id, AuthTable::Subjects)),
        )
        .service(
            web::resource("/roles")
                .route(web::get().to(list_roles))
                .route(web::post().to(|s: State, b: Body| save(s, b, AuthTable::Roles, false)))
                .route(web::put().to(|s: State, b: Body| save(s, b, AuthTable::Roles, true))),
        )
        .route(
            "/roles/{id}",
            web::delete().to(|s: State, id: web::Path<String>| remove(s, id, AuthTable::Roles)),
        )
        .route("/debug/check/{permission}", web::get().to(debug_check));
}

/// A JWT for an access token: `{token, sub, permissionGroups, iat, exp}`, or 401.
async fn request(
    state: State,
    req: actix_web::HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse> {
    let ip = crate::auth::request::client_ip(&req, &state.auth.trust_proxy);
    match state.auth.authorize_from(&token, ip).await {
        Some(a) => Ok(HttpResponse::Ok().json(a.to_json())),
        None => Err(Error::Unauthorized("Unauthorized".into())),
    }
}

async fn permissions() -> HttpResponse {
    HttpResponse::Ok().json(super::routes::all_permissions())
}

/// The permissions as a shiro-trie (`{"data": {"api": {"entries": {"read": {"*": {}}}}}}`).
async fn permissions_trie() -> HttpResponse {
    fn add(node: &mut Map<String, Value>, segs: &[&str]) {
        match segs.split_first() {
            None => {
                node.insert("*".into(), json!({}));
            }
            Some((head, rest)) => {
                let child = node
                    .entry((*head).to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(next) = child {
                    add(next, rest);
                }
            }
        }
    }
    let mut trie = Map::new();
    for p in super::routes::all_permissions() {
        add(&mut trie, &p.split(':').collect::<Vec<_>>());
    }
    HttpResponse::Ok().json(json!({ "data": trie }))
}

async fn list_subjects(state: State) -> HttpResponse {
    let data = state.auth.snapshot();
    HttpResponse::Ok().json(
        data.subjects
            .iter()
            .map(|s| s.to_json())
            .collect::<Vec<_>>(),
    )
}

async fn list_roles(state: State) -> HttpResponse {
    let data = state.auth.snapshot();
    HttpResponse::Ok().json(data.roles.iter().map(|r| r.to_json()).collect::<Vec<_>>())
}

/// POST creates (a new `_id`), PUT replaces the document its `_id` names.
async fn save(state: State, body: Body, table: AuthTable, replace: bool) -> Result<HttpResponse> {
    let body = v1::read_json(body, state.config.max_body_bytes)?;
    let Value::Object(mut doc) = body else {
        return Err(Error::bad_request("expected a JSON object"));
    };
    let id = match doc.remove("_id") {
        Some(Value::String(id)) if crate::ids::is_object_id(&id) => id.to_ascii_lowercase(),
        None if !replace => crate::ids::object_id(),
        other => {
            return Err(Error::bad_request(format!(
                "Invalid _id format: must be a 24-character hex string, got {}",
                other
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "nothing".into())
            )))
        }
    };
    match doc.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() => {}
        _ => return Err(Error::bad_request("name is required")),
    }
    let list_field = if table == AuthTable::Subjects {
        "roles"
    } else {
        "permissions"
    };
    match doc.get(list_field) {
        None | Some(Value::Array(_)) | Some(Value::String(_)) => {}
        Some(other) => {
            return Err(Error::bad_request(format!(
                "{list_field} must be a list of strings, got {other}"
            )))
        }
    }
    doc.remove("accessToken");
    if !doc.contains_key("created_at") {
        doc.insert(
            "created_at".into(),
            Value::String(crate::dates::to_iso(crate::dates::now_ms())),
        );
    }
    let saved = state.auth.save(table, AuthDoc { id, doc }).await?;
    let mut out = saved.to_json();
    if table == AuthTable::Subjects {
        let data = state.auth.snapshot();
        if let (Some(s), Some(obj)) = (
            data.subjects.iter().find(|s| s.id == saved.id),
            out.as_object_mut(),
        ) {
            obj.insert("accessToken".into(), Value::String(s.access_token.clone()));
        }
    }
    Ok(HttpResponse::Ok().json(out))
}

async fn remove(state: State, id: web::Path<String>, table: AuthTable) -> Result<HttpResponse> {
    if !crate::ids::is_object_id(&id) {
        return Err(Error::bad_request(format!(
            "Invalid _id format: must be a 24-character hex string, got {id}"
        )));
    }
    state.auth.remove(table, id.to_ascii_lowercase()).await?;
    Ok(HttpResponse::Ok().json(json!({})))
}

async fn debug_check(access: Access, permission: web::Path<String>) -> Result<HttpResponse> {
    access.require(&permission)?;
    Ok(HttpResponse::Ok().json(json!({ "check": true })))
}
