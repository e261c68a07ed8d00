//! Tandem Source (t:slim X2, Mobi; research/bridges.md §6, after jwoglom/tconnectsync): a
//! login with the account's email and password sets a cookie, an OIDC authorization with
//! PKCE (S256) under that cookie yields a code, and the code with its verifier yields an
//! access token and an id_token whose `pumperId` names the account's pumps. Source's "BFF"
//! then lists the pumps (each with the time of its newest event) and a pump's decoded event
//! log for a date window.
//!
//! Events become documents (tandem_events.rs). The pump's clock has no zone: its times are
//! read in CONNECT_TANDEM_TIMEZONE, as tconnectsync reads them in `TIMEZONE_NAME`. Each
//! document's identifier is a UUID v5 of the pump's serial and the event's (sequenceGroup,
//! sequenceNumber), so a window read again stores nothing twice. The event log is read only
//! when the pump's newest event (`maxDateOfEvents`) has moved since the last read.
//!
//! The id_token's signature is not checked, on purpose: it comes straight from the token
//! endpoint over TLS, in exchange for a code only this client's verifier redeems, which OIDC
//! Core 1.0 §3.1.3.7 (6) accepts in place of the signature. Its issuer must be the accounts
//! host asked (another is fatal); an audience other than the client id is logged and
//! accepted, as tconnectsync does; an expired one is refused.

use std::sync::Mutex;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::engine::{Batch, Gap, Source};
use super::errors::SourceError;
use super::http::{base_url, host_of, percent_encode, Body, Http, Reply};
use super::tandem_events;
use crate::auth::jwt::{b64url_decode, b64url_encode};
use crate::config::bridges::{Password, Tandem as Settings};

pub const DEVICE: &str = "tandem";
const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
/// The events read (tandem_events.rs says what each is); Source filters on it.
const EVENT_CODES: &str = "11,12,20,33,64,81,256,279,372,399,480";

/// Where a region's account and data live, and Tandem's web app's OIDC client.
struct Hosts {
    accounts: String,
    source: String,
    client_id: String,
    redirect_uri: &'static str,
}

impl Hosts {
    fn of(s: &Settings) -> Hosts {
        let (accounts, source, client_id, redirect_uri) = match s.region.as_str() {
            "eu" => (
                "https://tdcservices.eu.tandemdiabetes.com",
                "https://source.eu.tandemdiabetes.com",
                "1519e414-eeec-492e-8c5e-97bea4815a10",
                "https://source.eu.tandemdiabetes.com/authorize/callback",
            ),
            _ => (
                "https://tdcservices.tandemdiabetes.com",
                "https://source.tandemdiabetes.com",
                "0oa4wnbvtladeyVZX4h7",
                "https://sso.tandemdiabetes.com/auth/callback",
            ),
        };
        let (accounts, source) = match &s.server {
            Some(server) => (base_url(server), base_url(server)),
            None => (accounts.to_string(), source.to_string()),
        };
        Hosts {
            accounts,
            source,
            client_id: s.client_id.clone().unwrap_or_else(|| client_id.to_string()),
            redirect_uri,
        }
    }
}

pub struct Tandem {
    hosts: Hosts,
    email: String,
    password: Password,
    zone: jiff::tz::TimeZone,
    /// The pump and newest event time of the last event log read.
    last_read: Mutex<Option<(String, String)>>,
}

/// What the login yields, and each fetch needs.
#[derive(Clone)]
pub struct Tokens {
    access: String,
    pumper_id: String,
}

/// A fetch's result: nothing new, or a pump's events.
pub enum Raw {
    Unchanged,
    Events {
        serial: String,
        model: String,
        events: Vec<Value>,
    },
}

/// PKCE's verifier (32 random bytes) and its S256 challenge.
fn pkce() -> Result<(String, String), SourceError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)
        .map_err(|_| SourceError::transient("no randomness for the login"))?;
    let verifier = b64url_encode(&bytes);
    let challenge = b64url_encode(&Sha256::digest(verifier.as_bytes()));
    Ok((verifier, challenge))
}

/// A query parameter of a URL (a redirect's Location), percent-decoded.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1.split('#').next()?;
    let raw = query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then_some(v)
    })?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().filter(|s| !s.is_empty())
}

/// The id_token's claims, checked as the module doc says.
fn id_token_claims(
    token: &str,
    issuer: &str,
    client_id: &str,
    now_ms: i64,
) -> Result<Value, SourceError> {
    let unreadable = || SourceError::transient("Tandem: an id_token that cannot be read");
    let payload = token.split('.').nth(1).ok_or_else(unreadable)?;
    let claims: Value = b64url_decode(payload)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(unreadable)?;
    if claims["iss"].as_str() != Some(issuer) {
        return Err(SourceError::fatal(
            "Tandem: the id_token is from another issuer than the accounts server asked \
             (check CONNECT_TANDEM_REGION and CONNECT_TANDEM_SERVER)",
        ));
    }
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == client_id,
        Value::Array(a) => a.iter().any(|x| x == client_id),
        _ => false,
    };
    if !aud_ok {
        tracing::warn!("Tandem: the id_token's audience is not the client id; accepted");
    }
    if claims["exp"]
        .as_i64()
        .is_some_and(|exp| exp * 1000 <= now_ms)
    {
        return Err(SourceError::transient("Tandem: the id_token has expired"));
    }
    Ok(claims)
}

/// A Source reply, by class.
fn source_reply(host: &str, reply: &Reply) -> Result<Value, SourceError> {
    match reply.status {
        200 => reply
            .json()
            .ok_or_else(|| SourceError::transient(format!("{host}: a reply that is not JSON"))),
        401 => Err(SourceError::auth(format!(
            "{host}: the access token was refused (401)"
        ))),
        // Tandem's firewall ("The request is blocked") answers 403.
        s => Err(SourceError::transient(format!("{host} answered HTTP {s}"))),
    }
}

/// Whole UTC days around `[from, to]`, widened by a zone's largest offset: the event log is
/// asked by date, and the pump's times are local.
fn date_window(from: i64, to: i64) -> (String, String) {
    let day = |ms: i64| crate::dates::to_iso(ms)[..10].to_string();
    (
        format!("{}T00:00:00Z", day(from - 14 * HOUR_MS)),
        format!("{}T23:59:59Z", day(to + 14 * HOUR_MS)),
    )
}

impl Tandem {
    pub fn new(s: &Settings) -> Tandem {
        Tandem {
            hosts: Hosts::of(s),
            email: s.email.clone(),
            password: s.password.clone(),
            // Checked when the settings were read; UTC should it vanish since.
            zone: jiff::tz::TimeZone::get(&s.zone).unwrap_or(jiff::tz::TimeZone::UTC),
            last_read: Mutex::new(None),
        }
    }

    fn accounts_host(&self) -> String {
        format!("Tandem ({})", host_of(&self.hosts.accounts))
    }

    async fn get(&self, http: &Http, t: &Tokens, path: &str) -> Result<Value, SourceError> {
        let host = format!("Tandem Source ({})", host_of(&self.hosts.source));
        let bearer = format!("Bearer {}", t.access);
        let referer = format!("{}/", self.hosts.source);
        // Tandem's firewall wants the web app's origin.
        let headers = [
            ("Authorization", bearer.as_str()),
            ("Origin", self.hosts.source.as_str()),
            ("Referer", referer.as_str()),
        ];
        let reply = http
            .get_with(&host, &format!("{}{path}", self.hosts.source), &headers)
            .await?;
        source_reply(&host, &reply)
    }

    fn last_read(&self) -> Option<(String, String)> {
        self.last_read.lock().ok().and_then(|g| g.clone())
    }

    fn set_last_read(&self, v: (String, String)) {
        if let Ok(mut g) = self.last_read.lock() {
            *g = Some(v);
        }
    }
}

impl Source for Tandem {
    type Auth = Tokens;
    type Session = Tokens;
    type Raw = Raw;

    fn name(&self) -> &'static str {
        "tandem"
    }

    fn device(&self) -> &'static str {
        DEVICE
    }

    /// Tandem's access tokens last about an hour; a 401 before then logs in again.
    fn session_ttl_ms(&self) -> i64 {
        50 * MINUTE_MS
    }

    /// tconnectsync reads the last day.
    fn window_ms(&self) -> i64 {
        24 * HOUR_MS
    }

    /// The app uploads in batches: boluses and basals may be older than the newest reading.
    fn overlap_ms(&self) -> i64 {
        3 * HOUR_MS
    }

    async fn authenticate(&self, http: &Http) -> Result<Tokens, SourceError> {
        let host = self.accounts_host();
        let accounts = &self.hosts.accounts;
        let login = json!({"username": self.email, "password": self.password.reveal()});
        let r = http
            .exchange(
                &host,
                reqwest::Method::POST,
                &format!("{accounts}/accounts/api/login"),
                &[],
                Body::Json(&login),
            )
            .await?;
        match r.reply.status {
            200 => {}
            401 => {
                return Err(SourceError::fatal(format!(
                    "{host}: the email or password is wrong, or the account is in the other \
                     CONNECT_TANDEM_REGION (401)"
                )))
            }
            s => {
                return Err(SourceError::transient(format!(
                    "{host}: the login answered HTTP {s}"
                )))
            }
        }
        let status = r.reply.json().unwrap_or(Value::Null)["status"].clone();
        if status != "SUCCESS" {
            let word: String = status
                .as_str()
                .unwrap_or("")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(30)
                .collect();
            return Err(SourceError::fatal(format!(
                "{host}: the login asks for more than a password ({word}); nightlite cannot \
                 answer it"
            )));
        }
        let cookie = r.cookies().join("; ");
        let cookies: &[(&str, &str)] = &[("Cookie", cookie.as_str())];

        let (verifier, challenge) = pkce()?;
        let client = self.hosts.client_id.as_str();
        let redirect = self.hosts.redirect_uri;
        let authorize = format!(
            "{accounts}/accounts/api/connect/authorize?client_id={}&response_type=code&\
             scope={}&redirect_uri={}&code_challenge={challenge}&code_challenge_method=S256",
            percent_encode(client),
            percent_encode("openid profile email"),
            percent_encode(redirect),
        );
        let r = http
            .exchange(&host, reqwest::Method::GET, &authorize, cookies, Body::None)
            .await?;
        let code = (300..400)
            .contains(&r.reply.status)
            .then(|| r.header("location").and_then(|l| query_param(l, "code")))
            .flatten()
            .ok_or_else(|| {
                SourceError::transient(format!(
                    "{host}: the authorization gave no code (HTTP {})",
                    r.reply.status
                ))
            })?;

        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", client),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", verifier.as_str()),
        ];
        let r = http
            .exchange(
                &host,
                reqwest::Method::POST,
                &format!("{accounts}/accounts/api/connect/token"),
                cookies,
                Body::Form(&form),
            )
            .await?;
        let body = r.reply.json().unwrap_or(Value::Null);
        if r.reply.status != 200 {
            let error = body["error"].as_str().unwrap_or("");
            if matches!(error, "invalid_client" | "unauthorized_client") {
                return Err(SourceError::fatal(format!(
                    "{host}: Tandem does not know the OIDC client ({error}); set \
                     CONNECT_TANDEM_CLIENT_ID to the one its web app uses now"
                )));
            }
            return Err(SourceError::transient(format!(
                "{host}: the token exchange answered HTTP {}",
                r.reply.status
            )));
        }
        let (Some(access), Some(id_token)) =
            (body["access_token"].as_str(), body["id_token"].as_str())
        else {
            return Err(SourceError::transient(format!(
                "{host}: the token reply holds no tokens"
            )));
        };
        let issuer = format!("{accounts}/accounts/api");
        let claims = id_token_claims(id_token, &issuer, client, http.now_ms())?;
        let Some(pumper_id) = claims["pumperId"].as_str().filter(|p| !p.is_empty()) else {
            return Err(SourceError::fatal(format!(
                "{host}: the account has no pump (its id_token names no pumperId)"
            )));
        };
        Ok(Tokens {
            access: access.to_string(),
            pumper_id: pumper_id.to_string(),
        })
    }

    async fn authorize(&self, _http: &Http, t: Tokens) -> Result<Tokens, SourceError> {
        Ok(t)
    }

    async fn fetch(&self, http: &Http, t: &Tokens, gap: &Gap) -> Result<Raw, SourceError> {
        let pumper = self
            .get(
                http,
                t,
                &format!("/api/reports/bff/pumper/{}", percent_encode(&t.pumper_id)),
            )
            .await?;
        // The pump with the newest events (an account keeps its old pumps).
        let pump = pumper["pumps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["maxDateOfEvents"].is_string() && p["assignmentId"].is_string())
            .max_by_key(|p| p["maxDateOfEvents"].as_str().unwrap_or("").to_string());
        let Some(pump) = pump else {
            return Ok(Raw::Unchanged);
        };
        let assignment = pump["assignmentId"].as_str().unwrap_or("").to_string();
        let newest = pump["maxDateOfEvents"].as_str().unwrap_or("").to_string();
        let read = (assignment.clone(), newest);
        if self.last_read().as_ref() == Some(&read) {
            return Ok(Raw::Unchanged);
        }
        let (start, end) = date_window(gap.from, gap.now);
        let path = format!(
            "/api/reports/bff/pump-logs/{}?pumperId={}&startDate={}&endDate={}&eventCodes={}",
            percent_encode(&assignment),
            percent_encode(&t.pumper_id),
            percent_encode(&start),
            percent_encode(&end),
            percent_encode(EVENT_CODES),
        );
        let logs = self.get(http, t, &path).await?;
        self.set_last_read(read);
        let text = |k: &str| pump[k].as_str().unwrap_or("").to_string();
        Ok(Raw::Events {
            serial: text("serialNumber"),
            model: text("modelName"),
            events: logs["events"].as_array().cloned().unwrap_or_default(),
        })
    }

    fn transform(&self, raw: Raw, _gap: &Gap) -> Result<Batch, SourceError> {
        match raw {
            Raw::Unchanged => Ok(Batch::default()),
            Raw::Events {
                serial,
                model,
                events,
            } => Ok(tandem_events::batch(&self.zone, &serial, &model, &events)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::errors::ErrorClass;
    use super::*;

    fn token(claims: Value) -> String {
        format!(
            "{}.{}.sig",
            b64url_encode(br#"{"alg":"RS256","kid":"k1"}"#),
            b64url_encode(claims.to_string().as_bytes())
        )
    }

    #[test]
    fn id_tokens_are_checked_for_issuer_and_expiry() {
        let iss = "https://tdc.example/accounts/api";
        let ok = token(json!({"iss": iss, "aud": "c", "exp": 2_000, "pumperId": "p-1"}));
        let claims = id_token_claims(&ok, iss, "c", 1_000_000).unwrap();
        assert_eq!(claims["pumperId"], "p-1");
        let other_aud = token(json!({"iss": iss, "aud": ["x"], "exp": 2_000}));
        assert!(id_token_claims(&other_aud, iss, "c", 0).is_ok());
        let class = |t: &str, now| id_token_claims(t, iss, "c", now).unwrap_err().class;
        assert_eq!(class(&ok, 2_000_000), ErrorClass::Transient, "expired");
        let other_iss = token(json!({"iss": "https://evil.example", "aud": "c"}));
        assert_eq!(class(&other_iss, 0), ErrorClass::Fatal);
        assert_eq!(class("garbage", 0), ErrorClass::Transient);
    }

    #[test]
    fn pkce_and_redirect_codes() {
        let (verifier, challenge) = pkce().unwrap();
        assert_eq!(verifier.len(), 43);
        assert_eq!(
            challenge,
            b64url_encode(&Sha256::digest(verifier.as_bytes()))
        );
        // RFC 7636 appendix B.
        assert_eq!(
            b64url_encode(&Sha256::digest(
                b"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
            )),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(
            query_param("https://sso.example/cb?state=1&code=ab%2Fc%3D", "code").as_deref(),
            Some("ab/c=")
        );
        assert_eq!(
            query_param("https://sso.example/cb?error=denied", "code"),
            None
        );
        assert_eq!(
            query_param("https://sso.example/cb?code=%4", "code"),
            Some("%4".into())
        );
        assert_eq!(
            date_window(1_793_462_400_000, 1_793_462_400_000),
            ("2026-10-31T00:00:00Z".into(), "2026-11-01T23:59:59Z".into())
        );
    }
}
