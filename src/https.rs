//! HTTPS rules for every request, as Nightscout's lib/server/app.js has them, and BASE_PATH.
//!
//! Without TLS here and without INSECURE_USE_HTTP=true, a request that did not arrive over
//! HTTPS is answered `307` to the same URL on `https://` (Nightscout's redirect). A request
//! counts as HTTPS when this server terminated TLS or when `X-Forwarded-Proto` says `https`
//! (believed from anyone, as Nightscout does: a client that lies about it only skips its own
//! redirect). Two deliberate differences: a request from loopback without that header is
//! served (it never crossed a network: the healthcheck, a local tool, a proxy on the same
//! host), and so is one without it when TRUST_PROXY=true (the proxy in front owns the scheme).
//! Nightscout's Socket.IO bypasses its redirect; here every path follows the same rule.
//! HTTPS responses carry Strict-Transport-Security unless SECURE_HSTS_HEADER=false.
//!
//! BASE_PATH: requests are expected under the prefix, which is taken off before routing and
//! put back on `Location` headers; anything outside it is 404.

use std::net::IpAddr;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode, Uri};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};

use crate::error::Error;
use crate::AppState;

/// helmet's default, which Nightscout uses (a year, no includeSubDomains, no preload).
const HSTS: &str = "max-age=31536000";

/// How the client reached us, as far as the request tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Over TLS, to us or to a proxy that said so.
    Https,
    /// Plain HTTP that must be redirected.
    Redirect,
    /// Plain HTTP that may be served (INSECURE_USE_HTTP, loopback, a trusted proxy).
    Allowed,
}

/// The first `X-Forwarded-Proto` value, as a proxy chain writes it (`https, http`).
fn forwarded_proto(req: &ServiceRequest) -> Option<String> {
    let v = req.headers().get("x-forwarded-proto")?.to_str().ok()?;
    Some(v.split(',').next()?.trim().to_ascii_lowercase())
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        // An IPv4 client of a dual-stack socket shows as ::ffff:a.b.c.d.
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
    }
}

/// The rule, apart from the request plumbing.
pub fn arrival(
    tls: bool,
    insecure_use_http: bool,
    trust_proxy: bool,
    forwarded_proto: Option<&str>,
    peer: Option<IpAddr>,
) -> Arrival {
    if tls || forwarded_proto == Some("https") {
        return Arrival::Https;
    }
    if insecure_use_http {
        return Arrival::Allowed;
    }
    match forwarded_proto {
        // A proxy said the client came over plain HTTP: the client must move.
        Some(_) => Arrival::Redirect,
        None if trust_proxy || peer.is_some_and(is_loopback) => Arrival::Allowed,
        None => Arrival::Redirect,
    }
}

/// A Host header fit to put in a Location (name or address, optional port).
fn safe_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]_".contains(&b))
}

/// The prefix-less path for a path under `base`, None when outside it.
pub fn strip_base<'a>(base: &str, path: &'a str) -> Option<&'a str> {
    if base.is_empty() {
        return Some(path);
    }
    match path.strip_prefix(base) {
        Some("") => Some("/"),
        Some(rest) if rest.starts_with('/') => Some(rest),
        _ => None,
    }
}

pub async fn enforce(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let c = &state.config;
    let proto = forwarded_proto(&req);
    let how = arrival(
        c.tls.is_some(),
        c.insecure_use_http,
        c.trust_proxy.is_on(),
        proto.as_deref(),
        req.peer_addr().map(|a| a.ip()),
    );
    if how == Arrival::Redirect {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| safe_host(h))
            .map(str::to_string);
        let Some(host) = host else {
            let e = Error::bad_request(
                "this server only answers HTTPS; send the request to https:// with a Host header",
            );
            return Ok(req.error_response(e).map_into_boxed_body());
        };
        let target = req
            .uri()
            .path_and_query()
            .map_or("/", |pq| pq.as_str())
            .to_string();
        let location = format!("https://{host}{target}");
        let res = HttpResponse::build(StatusCode::TEMPORARY_REDIRECT)
            .insert_header((header::LOCATION, location.clone()))
            .content_type("text/plain; charset=utf-8")
            .body(format!("Temporary Redirect. Redirecting to {location}"));
        return Ok(req.into_response(res));
    }

    let base = c.base_path.clone();
    // The viewer's page uses addresses relative to itself, so it must be loaded as `{base}/`:
    // `{base}` alone would make them resolve one level up, outside the base path.
    if !base.is_empty() && req.path() == base && matches!(*req.method(), Method::GET | Method::HEAD)
    {
        let location = match req.uri().query() {
            Some(q) => format!("{base}/?{q}"),
            None => format!("{base}/"),
        };
        let res = HttpResponse::build(StatusCode::PERMANENT_REDIRECT)
            .insert_header((header::LOCATION, location.clone()))
            .content_type("text/plain; charset=utf-8")
            .body(format!("Permanent Redirect. Redirecting to {location}"));
        return Ok(req.into_response(res));
    }
    if !base.is_empty() {
        let Some(inner) = strip_base(&base, req.path()).map(str::to_string) else {
            let e = Error::NotFound(format!("Not found: this server answers under {base}/"));
            return Ok(req.error_response(e).map_into_boxed_body());
        };
        let target = match req.uri().query() {
            Some(q) => format!("{inner}?{q}"),
            None => inner,
        };
        let Ok(uri) = target.parse::<Uri>() else {
            return Ok(req
                .error_response(Error::bad_request("malformed path"))
                .map_into_boxed_body());
        };
        req.match_info_mut().get_mut().update(&uri);
        req.head_mut().uri = uri;
    }

    let mut res = next.call(req).await?.map_into_boxed_body();
    let headers = res.headers_mut();
    if !base.is_empty() {
        let moved = headers
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .filter(|l| l.starts_with('/') && !l.starts_with("//"))
            .and_then(|l| HeaderValue::from_str(&format!("{base}{l}")).ok());
        if let Some(l) = moved {
            headers.insert(header::LOCATION, l);
        }
    }
    if how == Arrival::Https && !c.insecure_use_http && c.secure_hsts_header {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrival_follows_nightscout_with_local_and_proxy_exceptions() {
        let outside: Option<IpAddr> = "192.0.2.7".parse().ok();
        let local: Option<IpAddr> = "127.0.0.1".parse().ok();
        let mapped: Option<IpAddr> = "::ffff:127.0.0.1".parse().ok();
        use Arrival::*;
        assert_eq!(arrival(true, false, false, None, outside), Https);
        assert_eq!(arrival(false, false, false, Some("https"), outside), Https);
        assert_eq!(arrival(false, false, false, None, outside), Redirect);
        assert_eq!(
            arrival(false, false, false, Some("http"), outside),
            Redirect
        );
        assert_eq!(arrival(false, false, false, None, local), Allowed);
        assert_eq!(arrival(false, false, false, None, mapped), Allowed);
        assert_eq!(arrival(false, false, false, Some("http"), local), Redirect);
        assert_eq!(arrival(false, false, true, None, outside), Allowed);
        assert_eq!(arrival(false, false, true, Some("http"), outside), Redirect);
        assert_eq!(arrival(false, true, false, Some("http"), outside), Allowed);
    }

    #[test]
    fn base_path_is_stripped_only_at_a_segment_boundary() {
        assert_eq!(strip_base("", "/api"), Some("/api"));
        assert_eq!(strip_base("/ns", "/ns"), Some("/"));
        assert_eq!(strip_base("/ns", "/ns/api/v1"), Some("/api/v1"));
        assert_eq!(strip_base("/ns", "/nsx/api"), None);
        assert_eq!(strip_base("/ns", "/api/v1"), None);
    }

    #[test]
    fn hosts_with_odd_bytes_are_not_echoed() {
        assert!(safe_host("example.org:1337"));
        assert!(safe_host("[::1]:1337"));
        assert!(!safe_host("evil.org/path"));
        assert!(!safe_host(""));
    }
}
