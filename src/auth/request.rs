//! What a request says about its caller: the client address (behind a trusted proxy) and the
//! credentials in its query string, headers or JSON body. HTTP, /ws and Socket.IO all read them
//! here; [`super::Authority`] decides what they are worth.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::HttpRequest;
use serde_json::Value;

use super::Credentials;

/// How a route authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// No credentials looked at (version info, the viewer's files).
    Open,
    /// API v1/v2: secret, token, Bearer JWT or the default roles.
    Nightscout,
    /// API v3: `Authorization: Bearer <JWT>` only; 401 without, 403 for a missing permission.
    V3,
}

/// The client's address: the peer, or with TRUST_PROXY the hop of X-Forwarded-For it names
/// (src/auth/proxy.rs).
pub fn client_ip(req: &HttpRequest, trust: &super::proxy::ProxyTrust) -> Option<IpAddr> {
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
        secret: crate::qs::first_value(q, "secret").or_else(|| {
            req.headers()
                .get("api-secret")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        }),
        bearer,
        token: crate::qs::first_value(q, "token"),
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
