//! The guard: resolves each request's credentials once (waiting out a brute-force penalty
//! without holding a worker), checks the route's rule from [`super::routes`], and hands the
//! resulting [`Access`] to handlers through the request's extensions.

use std::future::{ready, Ready};
use std::net::IpAddr;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use serde_json::Value;

use super::routes::{self, Rule, Scheme};
use crate::auth::{Access, Credentials};
use crate::error::Error;
use crate::AppState;

/// The client's address: the peer, or with TRUST_PROXY the hop of X-Forwarded-For it names
/// (src/auth/proxy.rs).
pub fn client_ip(req: &HttpRequest, trust: &crate::auth::proxy::ProxyTrust) -> Option<IpAddr> {
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    trust.client(req.peer_addr().map(|a| a.ip()), &forwarded)
}

/// Credentials from the query string and headers, as the scheme reads them.
pub fn credentials(req: &HttpRequest, scheme: Scheme) -> Credentials {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parts: Vec<&str> = authorization.split(' ').collect();
    let bearer = match (scheme, parts.as_slice()) {
        // API v3 compares the scheme case-insensitively, v1 exactly (Nightscout's code).
        (Scheme::V3, [s, t]) if s.eq_ignore_ascii_case("bearer") => Some((*t).to_string()),
        (Scheme::Nightscout, ["Bearer", t]) => Some((*t).to_string()),
        _ => None,
    }
    .filter(|t| !t.is_empty());
    if scheme == Scheme::V3 {
        return Credentials {
            bearer,
            ..Credentials::default()
        };
    }
    let q = req.query_string();
    Credentials {
        // Nightscout reads ?secret= before the api-secret header.
        secret: super::qs::first_value(q, "secret").or_else(|| {
            req.headers()
                .get("api-secret")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        }),
        bearer,
        token: super::qs::first_value(q, "token"),
    }
}

/// Takes `secret` and `token` out of a JSON body (the object, or an array's first item), where
/// Nightscout also looks for them; they are never stored.
pub fn take_body_credentials(body: &mut Value) -> Credentials {
    let target = match body {
        Value::Array(items) => items.first_mut(),
        other => Some(other),
    };
    let Some(Value::Object(obj)) = target else {
        return Credentials::default();
    };
    let text = |v: Option<Value>| match v {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    Credentials {
        secret: text(obj.remove("secret")),
        bearer: None,
        token: text(obj.remove("token")),
    }
}

fn denied(rule: &Rule, perms: &[String], access: &Access) -> Option<Error> {
    if rule.scheme == Scheme::V3 && access.failed {
        return Some(Error::Unauthorized("Bad access token or JWT".into()));
    }
    let missing = perms.iter().find(|p| !access.can(p))?;
    Some(match rule.scheme {
        Scheme::V3 => Error::Forbidden(format!("Missing permission {missing}")),
        _ => Error::Unauthorized("Unauthorized".into()),
    })
}

/// A write without credentials in its query or headers may carry them in its body: read it
/// (decoded, within the size limit), take them out, and pass the rest on unchanged.
async fn body_credentials(req: &mut ServiceRequest, limit: usize) -> Result<Credentials, Error> {
    let bytes = match req.extract::<Bytes>().await {
        Ok(b) => b,
        Err(e) => return Err(super::v1::payload_error(&e, limit)),
    };
    if bytes.len() > limit {
        return Err(super::v1::payload_error(
            &actix_web::error::PayloadError::Overflow.into(),
            limit,
        ));
    }
    let Ok(mut body) = serde_json::from_slice::<Value>(&bytes) else {
        // Not JSON: the handler reports it; without credentials the request stays refused.
        req.set_payload(Payload::from(bytes));
        req.headers_mut().remove(header::CONTENT_ENCODING);
        return Ok(Credentials::default());
    };
    let creds = take_body_credentials(&mut body);
    let text = serde_json::to_vec(&body)?;
    req.set_payload(Payload::from(Bytes::from(text)));
    // The payload is decoded now.
    req.headers_mut().remove(header::CONTENT_ENCODING);
    Ok(creds)
}

pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(pattern) = req.match_pattern() else {
        // No route: the default service answers 404.
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let Some(rule) = routes::rule_for(req.method().as_str(), &pattern) else {
        let e = if routes::any_rule_for(&pattern) {
            Error::MethodNotAllowed(format!("{} is not supported here", req.method()))
        } else {
            tracing::error!(method = %req.method(), %pattern, "route without a permission rule");
            Error::Forbidden("this route has no permission rule".into())
        };
        return Ok(req.error_response(e).map_into_boxed_body());
    };
    if rule.scheme == Scheme::Open {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req
            .error_response(Error::Internal("application state missing".into()))
            .map_into_boxed_body());
    };
    let creds = credentials(req.request(), rule.scheme);
    if rule.scheme == Scheme::V3 && creds.bearer.is_none() {
        let e = Error::Unauthorized("Missing or bad access token or JWT".into());
        return Ok(req.error_response(e).map_into_boxed_body());
    }
    let ip = client_ip(req.request(), &state.auth.trust_proxy);
    let mut access = state.auth.resolve(&creds, ip).await;
    let perms = routes::perms_for(rule, req.path());
    let mut refusal = denied(rule, &perms, &access);
    // Without credentials in the query or headers, a write may carry them in its body;
    // Nightscout resolves those (and refuses wrong ones) even when the defaults would allow.
    if access.defaults && rule.scheme == Scheme::Nightscout && matches!(rule.method, "POST" | "PUT")
    {
        match body_credentials(&mut req, state.config.max_body_bytes).await {
            Ok(body_creds) if !body_creds.is_empty() => {
                access = state.auth.resolve(&body_creds, ip).await;
                refusal = denied(rule, &perms, &access);
            }
            Ok(_) => {}
            Err(e) => refusal = Some(e),
        }
    }
    if let Some(e) = refusal {
        return Ok(req.error_response(e).map_into_boxed_body());
    }
    req.extensions_mut().insert(access);
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// What the guard decided for this request.
impl FromRequest for Access {
    type Error = Error;
    type Future = Ready<Result<Access, Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Access>()
                .cloned()
                .ok_or_else(|| Error::Internal("no access decision for this route".into())),
        )
    }
}
