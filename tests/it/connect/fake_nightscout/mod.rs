//! Two stand-ins for a remote Nightscout on 127.0.0.1:
//! - [`FakeNightscout`]: a writable Nightscout 15.0.7 held in memory, where it differs from
//!   nightlite as 15.0.7 does (read from its code, cgm-remote-monitor lib/api3 and lib/server,
//!   research/wave2.md B.2): API v1 writes (v1.rs) carry no srvModified and its deletes are
//!   hard (no tombstone); API v1 lists show soft-deleted documents and keep a 4-day window
//!   when a query has no date bound; API v3 (v3.rs) stamps srvModified from a clock the test
//!   can freeze, deletes softly (`isValid: false`), answers 410 for a deleted document, and
//!   its history lists deleted ones. With v3 off (`start(false)`, `/api/v3/*` answers 404) it
//!   is a site before API v3. Credentials: [`TOKEN`] (may write), [`READ_TOKEN`] (read only),
//!   subjects made through `/api/v2/authorization/subjects`, the API secret when one is set
//!   (v1 only, as on Nightscout). Faults ([`Fault`]) are planned per request.
//! - [`Proxy`]: passes every request on to a real nightlite, logging it, and answers the next
//!   data request 401 when told to (a JWT the site stopped accepting).

#[cfg(test)]
mod checks;
mod mongo;
mod v1;
mod v3;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

use super::fake_http::{listen, reply, Fake, Request};
pub use mongo::Doc;

/// An access token that may read and write (its subject: `follower`).
pub const TOKEN: &str = "follower-0123456789abcdef";
/// An access token that may only read (its subject: `reader`).
pub const READ_TOKEN: &str = "reader-0123456789abcdef";

/// What a planned fault does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answered with this status (`{"status":..,"message":..}`); nothing is changed.
    Status(u16),
    /// 429 with `Retry-After: <seconds>`; nothing is changed.
    Throttle(u64),
    /// The connection is closed without an answer; nothing is changed.
    Drop,
    /// The request is carried out, then its answer is cut halfway through the body (the
    /// client cannot tell whether a write happened).
    Cut,
}

#[derive(Debug, Clone)]
struct Planned {
    /// Only requests whose path starts with this count.
    prefix: String,
    /// Requests still to answer normally first.
    skip: usize,
    /// Requests still to fail.
    times: usize,
    fault: Fault,
}

/// Who a request is from, and what it may do.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    /// The subject's name (none for the API secret).
    pub subject: Option<String>,
    pub write: bool,
    /// Authenticated by the API secret (which API v3 does not take).
    pub secret: bool,
}

/// An answer: status, extra headers, body.
pub(super) struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Answer {
    pub fn json(status: u16, body: Value) -> Answer {
        Answer {
            status,
            headers: vec![],
            body,
        }
    }

    /// Nightscout's error shape.
    pub fn error(status: u16, message: &str) -> Answer {
        Answer::json(status, json!({"status": status, "message": message}))
    }

    pub fn header(mut self, k: &str, v: impl Into<String>) -> Answer {
        self.headers.push((k.to_string(), v.into()));
        self
    }
}

#[derive(Debug, Clone)]
struct Subject {
    name: String,
    roles: Vec<String>,
    token: String,
}

pub(super) struct State {
    pub v3: bool,
    /// Every collection's documents in stored (natural) order; each has an `_id`.
    pub docs: Vec<(String, Doc)>,
    log: Vec<(Request, u16)>,
    /// The JWTs given, `jwt-<n>` being the n-th: who each is.
    jwts: Vec<Caller>,
    /// API3_MAX_LIMIT: a larger v3 `limit` is answered 400.
    pub max_limit: usize,
    /// srvModified and "now" of this site when frozen; the wall clock when None.
    clock: Option<i64>,
    /// The API secret the site takes (its SHA-1 in the `api-secret` header).
    secret: Option<String>,
    subjects: Vec<Subject>,
    /// Every write is refused, whoever asks.
    read_only: bool,
    faults: Vec<Planned>,
}

impl State {
    /// This site's clock, ms.
    pub fn now(&self) -> i64 {
        self.clock.unwrap_or_else(nightlite::dates::now_ms)
    }

    /// The documents of `coll`, with their places in `docs`.
    pub fn of<'a>(&'a self, coll: &'a str) -> impl Iterator<Item = (usize, &'a Doc)> + 'a {
        self.docs
            .iter()
            .enumerate()
            .filter(move |(_, (c, _))| c == coll)
            .map(|(i, (_, d))| (i, d))
    }

    pub fn insert(&mut self, coll: &str, mut doc: Doc) -> String {
        let id = match doc.get("_id").and_then(Value::as_str) {
            Some(id) => id.to_string(),
            None => mongo::object_id(self.now()),
        };
        doc.insert("_id".into(), Value::String(id.clone()));
        self.docs.push((coll.to_string(), doc));
        id
    }

    /// Whether `caller` may write; when not, the answer 15.0.7 gives (API v1: 401, v3: 403).
    pub fn refuse_write(&self, caller: &Caller, v3_permission: Option<&str>) -> Option<Answer> {
        if caller.write && !self.read_only {
            return None;
        }
        Some(match v3_permission {
            Some(p) => Answer::error(403, &format!("Missing permission {p}")),
            None => Answer::json(
                401,
                json!({"status":401,"message":"Unauthorized","description":"Invalid/Missing"}),
            ),
        })
    }

    fn token(&self, token: &str) -> Option<Caller> {
        let named = |name: &str, write| Caller {
            subject: Some(name.to_string()),
            write,
            secret: false,
        };
        match token {
            TOKEN => Some(named("follower", true)),
            READ_TOKEN => Some(named("reader", false)),
            _ => self.subjects.iter().find(|s| s.token == token).map(|s| {
                let write = s
                    .roles
                    .iter()
                    .any(|r| ["admin", "careportal", "devicestatus-upload"].contains(&r.as_str()));
                named(&s.name, write)
            }),
        }
    }

    /// The caller of `r`: a JWT, the API secret's hash, or an access token in `?token=`.
    fn caller(&self, r: &Request) -> Option<Caller> {
        if let Some(jwt) = r
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer jwt-"))
        {
            let n: usize = jwt.parse().ok()?;
            return self.jwts.get(n.checked_sub(1)?).cloned();
        }
        if let (Some(h), Some(s)) = (r.header("api-secret"), &self.secret) {
            let secret = Caller {
                subject: None,
                write: true,
                secret: true,
            };
            return h
                .eq_ignore_ascii_case(&nightlite::auth::sha1_hex(s))
                .then_some(secret);
        }
        r.param("token").and_then(|t| self.token(&t))
    }

    /// The fault planned for this request, if any (each request uses up one planned).
    fn fault_for(&mut self, path: &str) -> Option<Fault> {
        if path.starts_with("/api/v2/authorization/") {
            return None;
        }
        let i = self
            .faults
            .iter()
            .position(|p| path.starts_with(&p.prefix))?;
        let p = &mut self.faults[i];
        if p.skip > 0 {
            p.skip -= 1;
            return None;
        }
        p.times -= 1;
        let fault = p.fault;
        if p.times == 0 {
            self.faults.remove(i);
        }
        Some(fault)
    }
}

#[derive(Clone)]
pub struct FakeNightscout {
    port: u16,
    state: Arc<Mutex<State>>,
}

/// `%XX` decoded.
pub(super) fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query's parameters, decoded, in order.
pub(super) fn params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

impl FakeNightscout {
    /// A site with API v3 (`v3`) or without.
    pub fn start(v3: bool) -> FakeNightscout {
        let state = Arc::new(Mutex::new(State {
            v3,
            docs: vec![],
            log: vec![],
            jwts: vec![],
            max_limit: 1000,
            clock: None,
            secret: None,
            subjects: vec![],
            read_only: false,
            faults: vec![],
        }));
        let s = state.clone();
        let port = listen(move |r, stream| serve(&s, r, stream));
        FakeNightscout { port, state }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Stores `doc` in `coll` exactly as given (no srvModified unless it has one), as if
    /// written to the database; an `_id` is made when it has none, as MongoDB does. Returns
    /// the `_id`.
    pub fn add(&self, coll: &str, doc: Value) -> String {
        let Value::Object(doc) = doc else {
            panic!("not an object: {doc}")
        };
        self.lock().insert(coll, doc)
    }

    /// A request carried out as the site's administrator (the API secret's rights; on
    /// `/api/v3/*` a token's), neither logged nor subject to faults: the quickest way for a
    /// test to write as a client of the site would, e.g.
    /// `call("POST", "/api/v1/treatments", json!([...]))` or
    /// `call("DELETE", "/api/v3/treatments/<identifier>", Value::Null)`.
    /// Returns the status and the body.
    pub fn call(&self, method: &str, target: &str, body: Value) -> (u16, Value) {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let r = Request {
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            headers: vec![],
            raw: body.to_string(),
            body,
        };
        let admin = Caller {
            subject: Some("admin".into()),
            write: true,
            secret: false,
        };
        let a = route(&mut self.lock(), &r, Some(admin));
        (a.status, a.body)
    }

    /// The documents of `coll` as stored (with `_id`; srvModified only where API v3 set it),
    /// deleted ones (`isValid: false`) included, in stored order.
    pub fn docs(&self, coll: &str) -> Vec<Value> {
        let s = self.lock();
        s.of(coll).map(|(_, d)| Value::Object(d.clone())).collect()
    }

    /// The stored document of `coll` whose identifier or `_id` is `id`.
    pub fn get(&self, coll: &str, id: &str) -> Option<Value> {
        let s = self.lock();
        let found = s.of(coll).find(|(_, d)| {
            d.get("identifier").and_then(Value::as_str) == Some(id)
                || d.get("_id").and_then(Value::as_str) == Some(id)
        });
        found.map(|(_, d)| Value::Object(d.clone()))
    }

    /// Changes the stored document of `coll` whose identifier or `_id` is `id` in place
    /// (nothing else: no srvModified); false when there is none.
    pub fn edit(&self, coll: &str, id: &str, f: impl FnOnce(&mut Map<String, Value>)) -> bool {
        let mut s = self.lock();
        let found = s.docs.iter_mut().find(|(c, d)| {
            c == coll
                && (d.get("identifier").and_then(Value::as_str) == Some(id)
                    || d.get("_id").and_then(Value::as_str) == Some(id))
        });
        match found {
            Some((_, d)) => {
                f(d);
                true
            }
            None => false,
        }
    }

    /// Every request so far, in order.
    pub fn log(&self) -> Vec<Request> {
        self.lock().log.iter().map(|(r, _)| r.clone()).collect()
    }

    /// Every request so far with the status it got (0: none, the connection was dropped).
    pub fn answered(&self) -> Vec<(Request, u16)> {
        self.lock().log.clone()
    }

    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    /// Refuses v3 limits above `n`, as a Nightscout with API3_MAX_LIMIT=n (default 1000).
    pub fn max_limit(&self, n: usize) {
        self.lock().max_limit = n;
    }

    /// How many JWTs it gave.
    pub fn jwts(&self) -> u64 {
        self.lock().jwts.len() as u64
    }

    /// Stops the site's clock at `ms`: every srvModified it stamps from now on is `ms` (so any
    /// number of documents can share one millisecond), and v1's 4-day window ends there.
    pub fn freeze(&self, ms: i64) {
        self.lock().clock = Some(ms);
    }

    /// Back to the wall clock.
    pub fn thaw(&self) {
        self.lock().clock = None;
    }

    /// The site's clock, ms.
    pub fn now(&self) -> i64 {
        self.lock().now()
    }

    /// Takes `secret` as the API secret (sent as its SHA-1 in `api-secret`; API v1 only).
    pub fn api_secret(&self, secret: &str) {
        self.lock().secret = Some(secret.to_string());
    }

    /// Refuses every write, whoever asks (API v1: 401, v3: 403), or not.
    pub fn read_only(&self, on: bool) {
        self.lock().read_only = on;
    }

    /// After the next `after` requests (data requests: not the token exchange), the `times`
    /// following get `fault`.
    pub fn fail(&self, after: usize, times: usize, fault: Fault) {
        self.fail_on("", after, times, fault);
    }

    /// As [`Self::fail`], counting only requests whose path starts with `prefix`.
    pub fn fail_on(&self, prefix: &str, after: usize, times: usize, fault: Fault) {
        if times > 0 {
            self.lock().faults.push(Planned {
                prefix: prefix.to_string(),
                skip: after,
                times,
                fault,
            });
        }
    }

    /// The faults still planned (requests still to fail).
    pub fn faults_left(&self) -> usize {
        self.lock().faults.iter().map(|p| p.times).sum()
    }
}

/// One connection: a planned fault, or the route's answer.
fn serve(state: &Mutex<State>, r: Request, stream: &mut TcpStream) {
    let mut s = state.lock().unwrap();
    let fault = s.fault_for(&r.path);
    let answer = match fault {
        Some(Fault::Drop) => {
            s.log.push((r, 0));
            return;
        }
        Some(Fault::Status(code)) => Answer::error(code, "Injected failure"),
        Some(Fault::Throttle(secs)) => {
            Answer::error(429, "Too Many Requests").header("Retry-After", secs.to_string())
        }
        Some(Fault::Cut) | None => {
            let caller = s.caller(&r);
            route(&mut s, &r, caller)
        }
    };
    s.log.push((r, answer.status));
    drop(s);
    let body = answer.body.to_string();
    let extra: String = answer
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    if fault == Some(Fault::Cut) {
        let head = format!(
            "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n{extra}\r\n",
            answer.status,
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body.as_bytes()[..body.len() / 2]);
        let _ = stream.flush();
        return;
    }
    reply(stream, answer.status, &extra, &body);
}

/// The answer to `r` from `caller` (None: no credential the site takes).
fn route(s: &mut State, r: &Request, caller: Option<Caller>) -> Answer {
    let path = r.path.as_str();
    if let Some(tok) = path.strip_prefix("/api/v2/authorization/request/") {
        let Some(who) = s.token(tok) else {
            return Answer::error(401, "Unauthorized");
        };
        s.jwts.push(who);
        let now = nightlite::dates::now_ms() / 1000;
        let jwt = format!("jwt-{}", s.jwts.len());
        return Answer::json(200, json!({"token": jwt, "iat": now, "exp": now + 28_800}));
    }
    if path == "/api/v2/authorization/subjects" {
        return subjects(s, r, caller);
    }
    if path.starts_with("/api/v3/") && !s.v3 {
        return Answer::error(404, "Not found");
    }
    if path == "/api/v3/version" {
        let now = s.now();
        return Answer::json(
            200,
            json!({"status":200,"result":{"version":"15.0.7","apiVersion":"3.0.3-alpha",
                   "srvDate":now,"storage":{"storage":"mongodb","version":"4.4.29"}}}),
        );
    }
    if matches!(path, "/api/v1/status" | "/api/v1/status.json") {
        let now = s.now();
        return Answer::json(
            200,
            json!({"status":"ok","name":"nightscout","version":"15.0.7","serverTime":
                   nightlite::dates::to_iso(now),"serverTimeEpoch":now,"apiEnabled":true,
                   "careportalEnabled":true,"settings":{"units":"mg/dl"}}),
        );
    }
    if let Some(rest) = path.strip_prefix("/api/v3/") {
        return match caller {
            Some(c) if !c.secret => v3::handle(s, r, &c, rest),
            _ => Answer::error(401, "Missing or bad access token or JWT"),
        };
    }
    if let Some(rest) = path.strip_prefix("/api/v1/") {
        return match caller {
            Some(c) => v1::handle(s, r, &c, rest),
            None => Answer::json(
                401,
                json!({"status":401,"message":"Unauthorized","description":"Invalid/Missing"}),
            ),
        };
    }
    Answer::error(404, "Not found")
}

/// `/api/v2/authorization/subjects`: the list (with access tokens) and new subjects, for the
/// API secret.
fn subjects(s: &mut State, r: &Request, caller: Option<Caller>) -> Answer {
    if !caller.is_some_and(|c| c.secret) {
        return Answer::error(401, "Unauthorized");
    }
    if r.method == "POST" {
        let name = r.body["name"].as_str().unwrap_or("").to_string();
        let roles = r.body["roles"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let hash = nightlite::auth::sha1_hex(&name);
        let token = format!("{}-{}", name.to_lowercase(), &hash[..16]);
        s.subjects.push(Subject { name, roles, token });
        return Answer::json(200, json!({"status":200}));
    }
    let list: Vec<Value> = s
        .subjects
        .iter()
        .map(|x| json!({"name": x.name, "roles": x.roles, "accessToken": x.token}))
        .collect();
    Answer::json(200, Value::Array(list))
}

impl Fake for FakeNightscout {
    fn port(&self) -> u16 {
        self.port
    }

    fn paths(&self) -> Vec<String> {
        self.log().into_iter().map(|r| r.path).collect()
    }
}

/// A logging pass-through to a nightlite on `target`, which can refuse data requests.
#[derive(Clone)]
pub struct Proxy {
    port: u16,
    state: Arc<Mutex<ProxyState>>,
}

#[derive(Default)]
struct ProxyState {
    log: Vec<Request>,
    /// Data requests (not the token exchange) still to answer 401.
    refuse: u32,
}

impl Proxy {
    pub fn start(target: u16) -> Proxy {
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let s = state.clone();
        let port = listen(move |r, stream| {
            let refuse = {
                let mut st = s.lock().unwrap();
                st.log.push(r.clone());
                let data = !r.path.starts_with("/api/v2/authorization/");
                let refuse = data && st.refuse > 0;
                if refuse {
                    st.refuse -= 1;
                }
                refuse
            };
            if refuse {
                reply(
                    stream,
                    401,
                    "",
                    r#"{"status":401,"message":"Unauthorized"}"#,
                );
                return;
            }
            forward(target, &r, stream);
        });
        Proxy { port, state }
    }

    /// Answers the next `n` data requests 401.
    pub fn refuse(&self, n: u32) {
        self.state.lock().unwrap().refuse = n;
    }

    pub fn log(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }
}

impl Fake for Proxy {
    fn port(&self) -> u16 {
        self.port
    }

    fn paths(&self) -> Vec<String> {
        self.log().into_iter().map(|r| r.path).collect()
    }
}

fn forward(target: u16, r: &Request, client: &mut TcpStream) {
    let body = if r.body.is_null() {
        String::new()
    } else {
        r.body.to_string()
    };
    let target_path = if r.query.is_empty() {
        r.path.clone()
    } else {
        format!("{}?{}", r.path, r.query)
    };
    let mut head = format!(
        "{} {target_path} HTTP/1.1\r\nHost: 127.0.0.1:{target}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        r.method,
        body.len()
    );
    for (k, v) in &r.headers {
        let k_lower = k.to_ascii_lowercase();
        if ["authorization", "api-secret", "content-type", "accept"].contains(&k_lower.as_str()) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    let mut up = TcpStream::connect(("127.0.0.1", target)).unwrap();
    up.write_all(head.as_bytes()).unwrap();
    up.write_all(body.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = up.read_to_end(&mut answer);
    let _ = client.write_all(&answer);
}

/// Counting a fake's requests by path.
pub trait Counts: Fake {
    fn count_prefix(&self, prefix: &str) -> usize {
        self.paths()
            .iter()
            .filter(|p| p.starts_with(prefix))
            .count()
    }

    fn count_containing(&self, part: &str) -> usize {
        self.paths().iter().filter(|p| p.contains(part)).count()
    }
}

impl<F: Fake> Counts for F {}
