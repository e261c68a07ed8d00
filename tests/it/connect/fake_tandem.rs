//! A fake Tandem Source on 127.0.0.1 (research/bridges.md §6), the accounts and the Source
//! hosts on one port: the login (cookie), the OIDC authorization (a 302 to the redirect URI
//! with a code bound to the PKCE challenge), the token exchange (the verifier must match;
//! the id_token is signed with a key only the fake holds), the pumper with its pump and
//! newest event time, and the pump's event log by date window. The Source API wants the
//! Bearer token and the web app's Origin (else 403, as Tandem's firewall). Scripted faults;
//! every request logged.
//!
//! The synthetic pump's clock runs on New York time without a zone, as a real pump's does;
//! events reach Source half an hour after they happen (the app uploads in batches). Events
//! in the hour a DST change repeats are left out, as for Glooko.

use std::collections::{HashMap, VecDeque};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use nightlite::auth::jwt::b64url_encode;
use nightlite::connect::{Clock, ManualClock};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::fake_http::{listen, reply_json as reply, Fake, Request};

pub const EMAIL: &str = "john.doe@example.org";
pub const PASSWORD: &str = "Synthetic-Tandem-Pa55";
pub const ZONE: &str = "America/New_York";
pub const CLIENT_ID: &str = "0oa4wnbvtladeyVZX4h7";
pub const REDIRECT_URI: &str = "https://sso.tandemdiabetes.com/auth/callback";
pub const PUMPER: &str = "5b1d2c3e-0000-4000-8000-00000000d0e1";
pub const ASSIGNMENT: &str = "8f00aa11-1111-4222-8333-444455556666";
pub const SERIAL: &str = "1111111";
pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 60 * MIN;
pub const LAG: i64 = 30 * MIN;
const TANDEM_EPOCH_S: i64 = 1_199_145_600;
/// The fake's signing key: nightlite never sees it.
const SIGNING_KEY: &[u8] = b"the fake's own key, never given to nightlite";

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The next login answers this status.
    Login(u16),
    /// The next token exchange answers 400 with this OAuth error.
    Token(&'static str),
    /// The next id_token names another issuer.
    OtherIssuer,
    /// The next Source API request answers this status.
    Api(u16),
}

/// A pump event at its true time.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: i64,
    pub body: Value,
}

#[derive(Default)]
struct State {
    log: Vec<Request>,
    faults: VecDeque<Fault>,
    cookies: Vec<String>,
    /// Code → the PKCE challenge it was issued for.
    codes: HashMap<String, String>,
    tokens: Vec<String>,
    events: Vec<Event>,
    /// No event after this time reaches Source (the pump has not uploaded since).
    frozen: Option<i64>,
}

pub struct FakeTandem {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

/// `ms` on New York's wall clock, as epoch ms read as UTC, and whether that hour repeats.
pub fn wall(ms: i64) -> (i64, bool) {
    let tz = jiff::tz::TimeZone::get(ZONE).unwrap();
    let z = jiff::Timestamp::from_millisecond(ms)
        .unwrap()
        .to_zoned(tz.clone());
    let repeated = matches!(
        tz.to_ambiguous_zoned(z.datetime()).offset(),
        jiff::tz::AmbiguousOffset::Fold { .. }
    );
    (ms + i64::from(z.offset().seconds()) * 1000, repeated)
}

/// A wall-clock time as the pump writes it: `2026-11-01T03:00:00`.
fn naive(wall_ms: i64) -> String {
    nightlite::dates::to_iso(wall_ms)[..19].to_string()
}

fn form(raw: &str) -> HashMap<String, String> {
    raw.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect()
}

fn decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

impl FakeTandem {
    /// Every 5 minutes a G7 reading and a basal delivery; every 3 hours a bolus (request and
    /// completion; with carbs every other time); every hour the daily-basal status; a
    /// suspension at `suspend` resumed 30 minutes later.
    pub fn start(clock: &Arc<ManualClock>, from: i64, to: i64, suspend: i64) -> FakeTandem {
        let mut events = Vec::new();
        let mut seq = 400_000;
        let mut t = from / (5 * MIN) * (5 * MIN);
        while t <= to {
            let (w, repeated) = wall(t);
            if !repeated {
                let mut add = |code: i64, props: Value| {
                    seq += 1;
                    events.push(Event {
                        at: t,
                        body: json!({"deviceAssignmentId": ASSIGNMENT, "eventCode": code,
                            "sequenceGroup": 0, "sequenceNumber": seq, "pumpDateTime": naive(w),
                            "eventProperties": props, "estimatedDateTime": format!("{}Z", naive(w))}),
                    });
                };
                add(
                    399,
                    json!({"glucoseValueStatus": 0, "currentGlucoseDisplayValue": FakeTandem::value_at(t),
                        "egvTimeStamp": w / 1000 - TANDEM_EPOCH_S, "rate": -6}),
                );
                add(
                    279,
                    json!({"commandedRateSource": 3, "commandedRate": FakeTandem::milliunits_at(t),
                        "profileBasalRate": 1000, "algorithmRate": 0, "tempRate": 65535}),
                );
                if t % HOUR == 0 {
                    add(
                        81,
                        json!({"dailyTotalBasal": 10.5, "lastBasalRate": 0.9, "iob": 1.5,
                            "batteryChargePercentMsbRaw": 110, "batteryChargePercentLsbRaw": 0,
                            "batteryLipoMilliVolts": 3900}),
                    );
                }
                if t % (3 * HOUR) == 10 * MIN {
                    let id = t / (3 * HOUR);
                    let carbs = if id % 2 == 0 { 30 } else { 0 };
                    add(
                        64,
                        json!({"bolusId": id, "bolusTypeRaw": 1, "carbAmount": carbs, "bg": 120, "IOB": 0.5}),
                    );
                    add(
                        20,
                        json!({"completionStatusRaw": 3, "bolusId": id, "insulinDelivered": 2.25,
                            "insulinRequested": 2.25, "IOB": 3.1}),
                    );
                }
                if t == suspend {
                    add(
                        11,
                        json!({"preSuspendState": 0, "insulinAmount": 120, "suspendReasonRaw": 0}),
                    );
                }
                if t == suspend + 30 * MIN {
                    add(12, json!({"preResumeState": 0, "insulinAmount": 119}));
                }
            }
            t += 5 * MIN;
        }
        let state = Arc::new(Mutex::new(State {
            events,
            ..State::default()
        }));
        let (st, ck) = (state.clone(), clock.clone());
        let port = listen(move |r, stream| serve(r, stream, &st, &ck));
        FakeTandem { port, state }
    }

    pub fn value_at(t: i64) -> i64 {
        90 + (t / (5 * MIN)) % 140
    }

    pub fn milliunits_at(t: i64) -> i64 {
        800 + ((t / HOUR) % 3) * 100
    }

    pub fn log(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn fault(&self, f: Fault) {
        self.state.lock().unwrap().faults.push_back(f);
    }

    /// No new event reaches Source after `at` until [`FakeTandem::thaw`].
    pub fn freeze(&self, at: i64) {
        self.state.lock().unwrap().frozen = Some(at);
    }

    pub fn thaw(&self) {
        self.state.lock().unwrap().frozen = None;
    }

    /// The events Source has at `now`.
    pub fn served(&self, now: i64) -> Vec<Event> {
        let s = self.state.lock().unwrap();
        visible(&s, now).cloned().collect()
    }

    pub fn logins(&self) -> usize {
        self.count("/accounts/api/login")
    }
}

fn visible(s: &State, now: i64) -> impl Iterator<Item = &Event> {
    let cutoff = s.frozen.map_or(now - LAG, |f| f.min(now - LAG));
    s.events.iter().filter(move |e| e.at <= cutoff)
}

impl Fake for FakeTandem {
    fn port(&self) -> u16 {
        self.port
    }

    fn paths(&self) -> Vec<String> {
        self.log().into_iter().map(|l| l.path).collect()
    }
}

fn id_token(issuer: &str, now: i64) -> String {
    let header = json!({"alg": "HS256", "kid": "fake-1", "typ": "JWT"});
    let claims = json!({"iss": issuer, "aud": CLIENT_ID, "iat": now / 1000,
        "exp": now / 1000 + 3600, "sub": "synthetic", "email": EMAIL,
        "pumperId": PUMPER, "accountId": "acc-0001", "given_name": "John", "family_name": "Doe"});
    let signed = format!(
        "{}.{}",
        b64url_encode(header.to_string().as_bytes()),
        b64url_encode(claims.to_string().as_bytes())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING_KEY).unwrap();
    mac.update(signed.as_bytes());
    format!("{signed}.{}", b64url_encode(&mac.finalize().into_bytes()))
}

fn serve(r: Request, stream: &mut TcpStream, state: &Mutex<State>, clock: &ManualClock) {
    let now = clock.now_ms();
    let url = format!("http://{}", r.header("host").unwrap_or("127.0.0.1"));
    let mut s = state.lock().unwrap();
    s.log.push(r.clone());
    let fault = s.faults.front().copied();
    match (r.method.as_str(), r.path.as_str()) {
        ("POST", "/accounts/api/login") => {
            if let Some(Fault::Login(status)) = fault {
                s.faults.pop_front();
                return reply(stream, status, &json!({"error": "scripted"}));
            }
            if r.body["username"] != EMAIL || r.body["password"] != PASSWORD {
                return reply(
                    stream,
                    401,
                    &json!({"error": "account/invalid_credentials"}),
                );
            }
            let cookie = format!("tdc{}", s.cookies.len() + 1);
            s.cookies.push(cookie.clone());
            let head = format!("Set-Cookie: tdc_session={cookie}; Path=/; Secure; HttpOnly\r\n");
            let body = json!({"redirectUrl": "/", "status": "SUCCESS"}).to_string();
            super::fake_http::reply(stream, 200, &head, &body);
        }
        ("GET", "/accounts/api/connect/authorize") => {
            let cookie = r.header("cookie").unwrap_or("");
            let logged_in = s
                .cookies
                .iter()
                .any(|c| cookie.contains(&format!("tdc_session={c}")));
            let p = |k: &str| r.param(k).map(|v| decode(&v));
            if !logged_in
                || p("response_type").as_deref() != Some("code")
                || p("code_challenge_method").as_deref() != Some("S256")
                || p("redirect_uri").as_deref() != Some(REDIRECT_URI)
                || p("scope").as_deref() != Some("openid profile email")
            {
                // The login page, as a browser without a session would get.
                return super::fake_http::reply(stream, 200, "", "<html>login</html>");
            }
            let code = format!("code-{}", s.codes.len() + 1);
            s.codes
                .insert(code.clone(), p("code_challenge").unwrap_or_default());
            let head = format!("Location: {REDIRECT_URI}?code={code}&state=x\r\n");
            super::fake_http::reply(stream, 302, &head, "");
        }
        ("POST", "/accounts/api/connect/token") => {
            if let Some(Fault::Token(error)) = fault {
                s.faults.pop_front();
                return reply(stream, 400, &json!({"error": error}));
            }
            let f = form(&r.raw);
            let challenge = f
                .get("code")
                .and_then(|c| s.codes.remove(c))
                .unwrap_or_default();
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            let expected = b64url_encode(&Sha256::digest(verifier.as_bytes()));
            if challenge.is_empty()
                || challenge != expected
                || f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
                || f.get("grant_type").map(String::as_str) != Some("authorization_code")
            {
                return reply(stream, 400, &json!({"error": "invalid_grant"}));
            }
            let issuer = if matches!(fault, Some(Fault::OtherIssuer)) {
                s.faults.pop_front();
                "https://elsewhere.example/accounts/api".to_string()
            } else {
                format!("{url}/accounts/api")
            };
            let access = format!("access-{}", s.tokens.len() + 1);
            s.tokens.push(access.clone());
            reply(
                stream,
                200,
                &json!({"access_token": access, "id_token": id_token(&issuer, now),
                    "expires_in": 3600, "token_type": "Bearer", "scope": "openid profile email"}),
            );
        }
        ("GET", path) if path.starts_with("/api/reports/bff/") => {
            if let Some(Fault::Api(status)) = fault {
                s.faults.pop_front();
                if status == 401 {
                    s.tokens.clear();
                }
                return reply(stream, status, &json!({"message": "scripted"}));
            }
            if r.header("origin") != Some(url.as_str()) {
                return super::fake_http::reply(stream, 403, "", "The request is blocked.");
            }
            let bearer = r.header("authorization").unwrap_or("");
            let known = s.tokens.iter().any(|t| bearer == format!("Bearer {t}"));
            if !known {
                return reply(stream, 401, &json!({"message": "Unauthorized"}));
            }
            if path == format!("/api/reports/bff/pumper/{PUMPER}") {
                let newest = visible(&s, now).map(|e| wall(e.at).0).max();
                return reply(
                    stream,
                    200,
                    &json!({"firstName": "John", "lastName": "Doe", "pumps": [
                        {"assignmentId": "0ld00000-0000-4000-8000-000000000000", "serialNumber": "900",
                         "modelName": "t:slim X2", "maxDateOfEvents": "2024-01-01T00:00:00"},
                        {"assignmentId": ASSIGNMENT, "serialNumber": SERIAL, "modelNumber": "1018",
                         "modelName": "Tandem Mobi™ System", "softwareVersion": "7.8",
                         "maxDateOfEvents": newest.map(naive)}]}),
                );
            }
            if path == format!("/api/reports/bff/pump-logs/{ASSIGNMENT}") {
                let bound = |k: &str| {
                    r.param(k)
                        .map(|v| decode(&v))
                        .and_then(|v| nightlite::dates::parse_iso(&v))
                        .map(|i| i.ms)
                };
                let (Some(start), Some(end)) = (bound("startDate"), bound("endDate")) else {
                    return reply(stream, 400, &json!({"error": "ZodError"}));
                };
                if r.param("pumperId").as_deref() != Some(PUMPER) || r.param("eventIds").is_some() {
                    return reply(stream, 400, &json!({"error": "ZodError"}));
                }
                let events: Vec<Value> = visible(&s, now)
                    .filter(|e| (start..=end).contains(&wall(e.at).0))
                    .map(|e| e.body.clone())
                    .collect();
                return reply(stream, 200, &json!({"events": events, "clockChanges": []}));
            }
            reply(stream, 404, &json!({"message": "not found"}));
        }
        _ => reply(stream, 404, &json!({"message": "not found"})),
    }
}
