//! Outbound HTTP for the sources: reqwest (rustls on ring, Mozilla's roots bundled), a
//! deadline on the engine's clock, a cap on reply size, and the classes every vendor shares:
//! no answer or a refused connection is transient, 429 is a throttle with its Retry-After.
//! Messages name the host and what failed, never the URL's query (a session id) or a body.

use std::sync::Arc;

use serde_json::Value;

use super::clock::Clock;
use super::errors::SourceError;

/// The largest reply read. A day of Dexcom readings is about 36 KB: 288 records of the shape
/// research/bridges.md §2 shows, with the trend FortyFiveDown, as compact JSON are 35,713
/// bytes (counted with Python's json.dumps).
const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

pub struct Http {
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    timeout_ms: i64,
}

/// A reply the source reads itself (any status but 429).
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// Without the body: it can hold a session id, a token, names and readings.
impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Reply {{ status: {}, body: {} bytes }}",
            self.status,
            self.body.len()
        )
    }
}

impl Reply {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }
}

/// A reply with the headers a source reads itself: Glooko's session cookie, the Location of
/// Tandem's authorization redirect.
pub struct Headed {
    pub reply: Reply,
    headers: reqwest::header::HeaderMap,
}

/// Without the headers: a Set-Cookie or a Location holds a session or a code.
impl std::fmt::Debug for Headed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Headed {{ {:?}, {} headers }}",
            self.reply,
            self.headers.len()
        )
    }
}

impl Headed {
    /// The `name=value` of each Set-Cookie (attributes dropped), in order.
    pub fn cookies(&self) -> Vec<String> {
        self.headers
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|c| c.split(';').next())
            .map(|c| c.trim().to_string())
            .filter(|c| c.contains('='))
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What a request sends.
pub enum Body<'a> {
    None,
    Json(&'a Value),
    /// `application/x-www-form-urlencoded`.
    Form(&'a [(&'a str, &'a str)]),
    /// `text/plain` (Engine.IO's polling payloads: src/sync/storage_events.rs).
    Text(&'a str),
}

/// A base URL from a `CONNECT_*_SERVER` value: a host name (https assumed) or a URL with its
/// scheme (and port), without a trailing slash.
pub fn base_url(server: &str) -> String {
    let s = server.trim().trim_end_matches('/');
    if s.contains("://") {
        s.to_string()
    } else {
        format!("https://{s}")
    }
}

/// The host (and port) of a base URL from [`base_url`], to name the vendor in messages: never
/// a path or a query.
pub fn host_of(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    rest.split('/').next().unwrap_or("")
}

/// Percent-encoding of a query value (letters, digits and `-_.~` stay).
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Http {
    /// The engine's clock (a token's expiry is checked on it).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn new(clock: Arc<dyn Clock>, timeout_ms: i64) -> Result<Http, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("nightlite/", env!("CARGO_PKG_VERSION")))
            // No vendor API redirects by HTTP (LibreLinkUp names its region in the reply's
            // body): a followed 307/308 would send the login's password on to whatever host
            // a Location header names. A 3xx is a reply like any other the source classifies.
            .redirect(reqwest::redirect::Policy::none())
            // A backstop in real time; the deadline that counts runs on the engine's clock.
            .timeout(std::time::Duration::from_millis(
                u64::try_from(timeout_ms.saturating_mul(2)).unwrap_or(60_000),
            ))
            .build()
            .map_err(|e| format!("cannot set up HTTPS: {e}"))?;
        Ok(Http {
            client,
            clock,
            timeout_ms,
        })
    }

    /// POSTs `body` as JSON to `url` (`host` names it in messages).
    pub async fn post_json(
        &self,
        host: &str,
        url: &str,
        body: &Value,
    ) -> Result<Reply, SourceError> {
        self.post_with(host, url, &[], body).await
    }

    /// As [`Http::post_json`] with extra headers.
    pub async fn post_with(
        &self,
        host: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Result<Reply, SourceError> {
        let mut request = self
            .client
            .post(url)
            .header("Accept", "application/json")
            .json(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.send(host, request).await
    }

    /// GETs `url` with these headers.
    pub async fn get_with(
        &self,
        host: &str,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Reply, SourceError> {
        let mut request = self.client.get(url).header("Accept", "application/json");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.send(host, request).await
    }

    /// Any request, answered with its headers.
    pub async fn exchange(
        &self,
        host: &str,
        method: reqwest::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Headed, SourceError> {
        let mut request = self
            .client
            .request(method, url)
            .header("Accept", "application/json");
        request = match body {
            Body::None => request,
            Body::Json(v) => request.json(v),
            Body::Form(f) => request.form(f),
            Body::Text(t) => request
                .header("Content-Type", "text/plain;charset=UTF-8")
                .body(t.to_string()),
        };
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        self.send_headed(host, request).await
    }

    async fn send(
        &self,
        host: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Reply, SourceError> {
        Ok(self.send_headed(host, request).await?.reply)
    }

    async fn send_headed(
        &self,
        host: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Headed, SourceError> {
        let deadline = self.clock.now_ms() + self.timeout_ms;
        let exchange = async {
            let mut resp = request.send().await.map_err(|e| failed(host, &e))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| failed(host, &e))? {
                if body.len() + chunk.len() > MAX_REPLY_BYTES {
                    return Err(SourceError::transient(format!(
                        "{host} sent a reply over {MAX_REPLY_BYTES} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok((status, headers, body))
        };
        let (status, headers, body) = tokio::select! {
            r = exchange => r?,
            () = self.clock.sleep_until(deadline) => {
                return Err(SourceError::transient(format!(
                    "{host} did not answer within {} s",
                    self.timeout_ms / 1000
                )));
            }
        };
        if status == 429 {
            let now = self.clock.now_ms();
            let wait = headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| retry_after_ms(v, now));
            return Err(SourceError::throttle(
                format!("{host} asks to slow down (429)"),
                wait,
            ));
        }
        Ok(Headed {
            reply: Reply {
                status,
                body: String::from_utf8_lossy(&body).into_owned(),
            },
            headers,
        })
    }
}

/// A transport failure, in words that hold no URL.
fn failed(host: &str, e: &reqwest::Error) -> SourceError {
    let what = if e.is_timeout() {
        "did not answer in time"
    } else if e.is_connect() {
        "could not be reached"
    } else if e.is_body() || e.is_decode() {
        "broke off its reply"
    } else {
        "failed the request"
    };
    SourceError::transient(format!("{host} {what}"))
}

/// Retry-After as seconds or an HTTP date, in ms from `now`.
fn retry_after_ms(v: &str, now: i64) -> Option<i64> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<i64>() {
        return Some(secs.max(0).saturating_mul(1000));
    }
    crate::dates::parse_http_date(v).map(|t| (t - now).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_hosts_or_base_urls() {
        assert_eq!(base_url("share2.dexcom.com"), "https://share2.dexcom.com");
        assert_eq!(base_url("http://127.0.0.1:9/"), "http://127.0.0.1:9");
        assert_eq!(host_of("http://127.0.0.1:9/x?sessionID=1"), "127.0.0.1:9");
        assert_eq!(host_of("https://share2.dexcom.com"), "share2.dexcom.com");
        assert_eq!(retry_after_ms("120", 0), Some(120_000));
        assert_eq!(retry_after_ms("soon", 0), None);
        assert_eq!(percent_encode("us-east-1 a&b"), "us-east-1%20a%26b");
    }

    /// A login answered with a redirect to another host: the password is not sent there.
    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        use std::io::{Read, Write};
        let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        elsewhere.set_nonblocking(true).unwrap();
        let there = elsewhere.local_addr().unwrap();
        let vendor = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let here = vendor.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = vendor.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf).unwrap();
            let reply = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{there}/login\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            );
            c.write_all(reply.as_bytes()).unwrap();
        });
        let http = Http::new(Arc::new(super::super::clock::SystemClock), 5_000).unwrap();
        let r = http
            .post_json(
                "vendor",
                &format!("http://{here}/login"),
                &serde_json::json!({"password": "p"}),
            )
            .await
            .unwrap();
        server.join().unwrap();
        assert_eq!(r.status, 307);
        assert!(
            elsewhere.accept().is_err(),
            "the request was sent on to the redirect's host"
        );
    }

    #[test]
    fn cookies_are_name_value_pairs_and_debug_shows_no_header() {
        let mut headers = reqwest::header::HeaderMap::new();
        for c in [
            "_logbook-web_session=abc; path=/; HttpOnly",
            "locale=en",
            "junk",
        ] {
            headers.append(reqwest::header::SET_COOKIE, c.parse().unwrap());
        }
        headers.insert(
            "location",
            "https://sso.example/cb?code=xyz".parse().unwrap(),
        );
        let h = Headed {
            reply: Reply {
                status: 302,
                body: String::new(),
            },
            headers,
        };
        assert_eq!(h.cookies(), ["_logbook-web_session=abc", "locale=en"]);
        assert_eq!(
            h.header("Location"),
            Some("https://sso.example/cb?code=xyz")
        );
        let debug = format!("{h:?}");
        assert!(!debug.contains("abc") && !debug.contains("xyz"), "{debug}");
    }

    #[test]
    fn a_reply_s_debug_shows_no_body() {
        let r = Reply {
            status: 200,
            body: r#"{"sessionId":"99999999-9999-9999-9999-999999999999"}"#.into(),
        };
        assert_eq!(format!("{r:?}"), "Reply { status: 200, body: 52 bytes }");
    }
}
