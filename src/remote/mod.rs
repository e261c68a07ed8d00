//! A client of another Nightscout-compatible site (Nightscout, nightlite, ...): its
//! credentials (`auth.rs`: an access token exchanged for a JWT, or the API secret's hash),
//! reading changes (`read.rs`: API v3 history by srvModified, API v1 date windows where there
//! is no v3 or a document has no srvModified) and uploading (`write.rs`: API v3 create with
//! the documents' identifiers, API v1 where there is no v3).
//!
//! Users: the bridges' Nightscout source (src/connect/nightscout.rs) and output
//! (src/connect/output.rs); built to be reused by `import --from` and two-way sync.
//! Requests go through the bridges' HTTP client (src/connect/http.rs: deadlines on the
//! engine's clock, no redirects, a reply cap) and fail in its four error classes. No message
//! holds the token, the secret, a JWT or a reply body.

mod auth;
pub mod lookup;
pub mod read;
pub mod windows;
pub mod write;

use std::sync::Arc;

use serde_json::Value;

use crate::config::bridges::RemoteSite;
use crate::connect::clock::Clock;
use crate::connect::errors::SourceError;
use crate::connect::http::{host_of, Http, Reply};

pub use read::Api;

/// One remote site and its credentials.
pub struct Remote {
    base: String,
    /// With the API secret: the subject (name, roles) whose token to read with instead.
    subject: Option<(&'static str, &'static [&'static str])>,
    /// "Nightscout (host:port)": how messages name it (never with a path or a query).
    label: String,
    http: Http,
    clock: Arc<dyn Clock>,
    auth: auth::Auth,
    /// The largest API v3 `limit` the site takes (read.rs lowers it after a 400).
    v3_cap: std::sync::atomic::AtomicUsize,
    /// Whether its count endpoint counts every collection by its own time (windows.rs).
    counts_all: tokio::sync::OnceCell<bool>,
}

impl Remote {
    pub fn new(site: &RemoteSite, http: Http, clock: Arc<dyn Clock>) -> Remote {
        Remote {
            label: format!("Nightscout ({})", host_of(&site.base)),
            base: site.base.clone(),
            subject: None,
            http,
            clock,
            auth: auth::Auth::new(site),
            v3_cap: std::sync::atomic::AtomicUsize::new(usize::MAX),
            counts_all: tokio::sync::OnceCell::new(),
        }
    }

    /// With the API secret, log in as the subject `name` with `roles` on the site (made there
    /// if it is missing), so its token is used instead of the secret (see auth.rs).
    pub fn with_subject(mut self, name: &'static str, roles: &'static [&'static str]) -> Remote {
        self.subject = Some((name, roles));
        self
    }

    /// How messages name the site.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// GET `path` (with its query), authorized.
    pub async fn get(&self, path: &str) -> Result<Reply, SourceError> {
        self.send(path, None).await
    }

    /// POST `body` as JSON to `path`, authorized.
    pub async fn post(&self, path: &str, body: &Value) -> Result<Reply, SourceError> {
        self.send(path, Some(body)).await
    }

    /// A request with the credentials. A 401 with a JWT gets a new JWT and the request once
    /// more; a 401 then, or for the API secret, and a 403 are classified (auth.rs).
    async fn send(&self, path: &str, body: Option<&Value>) -> Result<Reply, SourceError> {
        let method = if body.is_some() {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        self.send_as(method, path, body).await
    }

    /// DELETE `path`, authorized.
    pub(crate) async fn send_delete(&self, path: &str) -> Result<Reply, SourceError> {
        self.send_as(reqwest::Method::DELETE, path, None).await
    }

    async fn send_as(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Reply, SourceError> {
        let url = format!("{}{path}", self.base);
        let mut renewed = false;
        loop {
            let header = self.auth.header(self).await?;
            // Nightscout's API v3 refuses requests without a Date near its own clock (the
            // wall clock, not the engine's).
            let date = crate::dates::to_http_date(crate::dates::now_ms());
            let mut headers: Vec<(&str, &str)> = vec![("Date", date.as_str())];
            if let Some((k, v)) = &header {
                headers.push((k, v.as_str()));
            }
            let reply = match (&method, body) {
                (&reqwest::Method::POST, Some(b)) => {
                    self.http.post_with(&self.label, &url, &headers, b).await?
                }
                (&reqwest::Method::GET, _) => {
                    self.http.get_with(&self.label, &url, &headers).await?
                }
                (m, b) => {
                    let body = b.map_or(crate::connect::http::Body::None, |b| {
                        crate::connect::http::Body::Json(b)
                    });
                    self.http
                        .exchange(&self.label, m.clone(), &url, &headers, body)
                        .await?
                        .reply
                }
            };
            match reply.status {
                401 if !renewed && self.auth.renewable() => {
                    self.auth.drop_jwt().await;
                    renewed = true;
                }
                401 | 403 => return Err(self.auth.refused(&self.label, reply.status, path)),
                _ => return Ok(reply),
            }
        }
    }

    /// Logs in: for an access token, a new JWT now (a token the site does not know is a fatal
    /// error here rather than at the first read); nothing to do for the API secret.
    pub async fn login(&self) -> Result<(), SourceError> {
        if let (Some((name, roles)), true) = (self.subject, self.auth.secret_only()) {
            if let Some(token) = self.subject_token(name, roles).await? {
                self.auth.set_subject_token(token);
            }
        }
        self.auth.drop_jwt().await;
        self.auth.header(self).await.map(|_| ())
    }

    /// The access token of the subject `name`, made with `roles` when the site has none of
    /// that name, through `/api/v2/authorization/subjects` with the API secret; None when the
    /// site has no such API (the secret is used as it is).
    async fn subject_token(
        &self,
        name: &str,
        roles: &[&str],
    ) -> Result<Option<crate::config::bridges::Password>, SourceError> {
        const PATH: &str = "/api/v2/authorization/subjects";
        let find = |reply: &Reply| -> Result<Option<String>, SourceError> {
            let subjects = documents(&self.label, reply, "the subject list")?;
            Ok(subjects
                .iter()
                .find(|s| s.get("name").and_then(Value::as_str) == Some(name))
                .and_then(|s| s.get("accessToken").and_then(Value::as_str))
                .map(str::to_string))
        };
        let reply = self.get(PATH).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        if let Some(t) = find(&reply)? {
            return Ok(Some(crate::config::bridges::Password::new(t)));
        }
        let body = serde_json::json!({
            "name": name,
            "roles": roles,
            "notes": "made by nightlite to read this site (CONNECT_SOURCE=nightscout)",
        });
        let made = self.post(PATH, &body).await?;
        if !matches!(made.status, 200 | 201) {
            return Err(status_error(&self.label, made.status, "making its subject"));
        }
        let token = find(&self.get(PATH).await?)?.ok_or_else(|| {
            SourceError::transient(format!(
                "{}: the subject {name} made there is not listed",
                self.label
            ))
        })?;
        Ok(Some(crate::config::bridges::Password::new(token)))
    }
}

/// `f` again after a transient failure (a timeout, a 5xx, a 429), `attempts` tries in all:
/// waiting `first_ms`, doubling, or the Retry-After a throttle names (at most a minute), each
/// plus up to half a second at random; each failure's message goes to stderr. For the offline
/// commands (`import --from`, `sync`), whose work goes on from where it stopped.
pub async fn retrying<T, F, Fut>(attempts: u32, first_ms: i64, f: F) -> Result<T, SourceError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, SourceError>>,
{
    let mut attempt = 0u32;
    loop {
        match f().await {
            Err(e)
                if attempt + 1 < attempts
                    && matches!(
                        e.class,
                        crate::connect::errors::ErrorClass::Transient
                            | crate::connect::errors::ErrorClass::Throttle
                    ) =>
            {
                let wait = e
                    .retry_after_ms
                    .unwrap_or(first_ms.saturating_mul(1 << attempt.min(20)))
                    .clamp(0, 60_000);
                attempt += 1;
                eprintln!("{}; trying again in {} s", e.message, wait / 1000);
                let wait = wait + crate::connect::schedule::jitter(500);
                actix_web::rt::time::sleep(std::time::Duration::from_millis(
                    u64::try_from(wait).unwrap_or(0),
                ))
                .await;
            }
            other => return other,
        }
    }
}

/// `s` percent-encoded for a path segment or a query value: the bridges' encoding.
pub use crate::connect::http::percent_encode as encode;

/// A reply's documents: a JSON array, or API v3's `{"status":200,"result":[...]}`.
fn documents(label: &str, reply: &Reply, what: &str) -> Result<Vec<Value>, SourceError> {
    if reply.status != 200 {
        return Err(status_error(label, reply.status, what));
    }
    match reply.json() {
        Some(Value::Array(a)) => Ok(a),
        Some(Value::Object(mut o)) => match o.remove("result") {
            Some(Value::Array(a)) => Ok(a),
            _ => Err(SourceError::transient(format!(
                "{label}: the reply to {what} holds no list"
            ))),
        },
        _ => Err(SourceError::transient(format!(
            "{label}: the reply to {what} is not JSON"
        ))),
    }
}

/// A status other than 200, 401 and 403 (those are the credentials' business, auth.rs).
fn status_error(label: &str, status: u16, what: &str) -> SourceError {
    if (500..600).contains(&status) || status == 408 {
        SourceError::transient(format!("{label} answered {what} with HTTP {status}"))
    } else {
        SourceError::fatal(format!(
            "{label} refused {what} (HTTP {status}): is the URL a Nightscout site?"
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn replies_are_lists_or_v3_envelopes() {
        let r = |status, body: &str| Reply {
            status,
            body: body.into(),
        };
        assert_eq!(documents("n", &r(200, "[1]"), "x").unwrap(), [1]);
        assert_eq!(
            documents("n", &r(200, r#"{"status":200,"result":[2]}"#), "x").unwrap(),
            [2]
        );
        let e = documents("n", &r(200, "<html>"), "x").unwrap_err();
        assert_eq!(e.class, crate::connect::errors::ErrorClass::Transient);
        let e = documents("n", &r(404, "{}"), "x").unwrap_err();
        assert_eq!(e.class, crate::connect::errors::ErrorClass::Fatal);
        assert_eq!(encode("a b/ü"), "a%20b%2F%C3%BC");
    }
}
