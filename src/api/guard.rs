//! The guard: resolves each request's credentials once (waiting out a brute-force penalty
//! without holding a worker), checks the route's rule from [`super::routes`], and hands the
//! resulting [`Access`] to handlers through the request's extensions.

use std::future::{ready, Ready};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde_json::Value;

use super::routes::{self, Rule};
use crate::auth::request::{client_ip, credentials, take_body_credentials, Scheme};
use crate::auth::{Access, Credentials};
use crate::error::Error;
use crate::AppState;

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

/// Bodies up to this size (as sent and as decoded) are searched for `secret` and `token`;
/// larger ones never are. Nightscout's body secret is a form convenience, and a request
/// without credentials must cost no more than this before it is refused (docs/security.md).
pub const BODY_CREDENTIALS_MAX: usize = 8 * 1024;

/// A write without credentials in its query or headers may carry them in its body: a body of
/// at most [`BODY_CREDENTIALS_MAX`] bytes is read, its credentials taken out and the rest
/// passed on decoded. A larger body is not looked into (None): what was read ahead is put back
/// in front of the unread rest, so a write the defaults allow still gets all of it.
async fn body_credentials(req: &mut ServiceRequest) -> Result<Option<Credentials>, Error> {
    if declared_length(req).is_some_and(|n| n > BODY_CREDENTIALS_MAX) {
        return Ok(None);
    }
    let mut payload = req.take_payload();
    let mut raw = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| super::v1::payload_error(&e.into(), BODY_CREDENTIALS_MAX))?;
        raw.extend_from_slice(&chunk);
        if raw.len() > BODY_CREDENTIALS_MAX {
            let ahead = futures_util::stream::once(ready(Ok(raw.freeze())));
            req.set_payload(Payload::Stream {
                payload: Box::pin(ahead.chain(payload)),
            });
            return Ok(None);
        }
    }
    let raw = raw.freeze();
    let Some(decoded) = decode(req, raw.clone()).await else {
        // Too large once decoded, or not decodable: the handler reads (and judges) it as sent.
        req.set_payload(Payload::from(raw));
        return Ok(None);
    };
    let Ok(mut body) = serde_json::from_slice::<Value>(&decoded) else {
        // Not JSON: the handler reports it; without credentials the request stays refused.
        req.set_payload(Payload::from(decoded));
        req.headers_mut().remove(header::CONTENT_ENCODING);
        return Ok(Some(Credentials::default()));
    };
    let creds = take_body_credentials(&mut body);
    let text = serde_json::to_vec(&body)?;
    req.set_payload(Payload::from(Bytes::from(text)));
    // The payload is decoded now.
    req.headers_mut().remove(header::CONTENT_ENCODING);
    Ok(Some(creds))
}

/// A refused request's body, when it declares at most this many bytes, is read and dropped
/// (nothing kept) before the answer, so the client reads its 401 instead of a connection reset
/// (the connection closes with unread data). Larger bodies are not waited for.
const DISCARD_MAX: usize = 1024 * 1024;

fn declared_length(req: &ServiceRequest) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

async fn discard_small_body(req: &mut ServiceRequest) {
    if declared_length(req).is_some_and(|n| n <= DISCARD_MAX) {
        let mut payload = req.take_payload();
        while let Some(Ok(_)) = payload.next().await {}
    }
}

/// `raw` decoded as its Content-Encoding says, if that gives at most [`BODY_CREDENTIALS_MAX`]
/// bytes.
async fn decode(req: &ServiceRequest, raw: Bytes) -> Option<Bytes> {
    let mut stream = actix_web::dev::Decompress::from_headers(
        Payload::<actix_http::BoxedPayloadStream>::from(raw),
        req.headers(),
    );
    let mut out = web::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.ok()?);
        if out.len() > BODY_CREDENTIALS_MAX {
            return None;
        }
    }
    Some(out.freeze())
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
        match body_credentials(&mut req).await {
            Ok(Some(body_creds)) if !body_creds.is_empty() => {
                access = state.auth.resolve(&body_creds, ip).await;
                refusal = denied(rule, &perms, &access);
            }
            Ok(_) => {}
            Err(e) => refusal = Some(e),
        }
    }
    if let Some(e) = refusal {
        discard_small_body(&mut req).await;
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
