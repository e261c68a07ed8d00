//! Two stand-ins for a remote Nightscout on 127.0.0.1:
//! - [`FakeNightscout`]: documents held in memory, served as Nightscout 15.0.7 serves them:
//!   API v3 history by srvModified (`> since`, oldest first, `limit`), a v3 search on one
//!   srvModified, v1 lists newest first with `find[date|created_at][$gt|$lte]` and `count`,
//!   the token exchange; with v3 off (`/api/v3/*` answers 404), a site before API v3. The
//!   test sets the srvModified values, so many documents can share one millisecond.
//! - [`Proxy`]: passes every request on to a real nightlite, logging it, and answers the next
//!   data request 401 when told to (a JWT the site stopped accepting).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::fake_http::{listen, reply, Fake, Request};

pub const TOKEN: &str = "follower-0123456789abcdef";

#[derive(Default)]
struct State {
    v3: bool,
    docs: Vec<(String, Value)>,
    log: Vec<Request>,
    jwts: u64,
    /// API3_MAX_LIMIT: a larger v3 `limit` is answered 400.
    max_limit: Option<usize>,
}

#[derive(Clone)]
pub struct FakeNightscout {
    port: u16,
    state: Arc<Mutex<State>>,
}

/// `%XX` decoded.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
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

fn params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn time_of(coll: &str, d: &Value) -> i64 {
    if coll == "entries" {
        return d["date"].as_i64().unwrap_or(0);
    }
    d["created_at"]
        .as_str()
        .and_then(nightlite::dates::parse_iso)
        .map_or(0, |i| i.ms)
}

impl FakeNightscout {
    pub fn start(v3: bool) -> FakeNightscout {
        let state = Arc::new(Mutex::new(State {
            v3,
            ..State::default()
        }));
        let s = state.clone();
        let port = listen(move |r, stream| {
            let (status, body) = handle(&s, &r);
            s.lock().unwrap().log.push(r);
            reply(stream, status, "", &body.to_string());
        });
        FakeNightscout { port, state }
    }

    /// Adds a document of `coll` as the site holds it.
    pub fn add(&self, coll: &str, doc: Value) {
        self.state
            .lock()
            .unwrap()
            .docs
            .push((coll.to_string(), doc));
    }

    pub fn log(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    /// Refuses v3 limits above `n`, as a Nightscout with API3_MAX_LIMIT=n.
    pub fn max_limit(&self, n: usize) {
        self.state.lock().unwrap().max_limit = Some(n);
    }

    /// How many JWTs it gave.
    pub fn jwts(&self) -> u64 {
        self.state.lock().unwrap().jwts
    }

    /// The documents of `coll` it holds.
    pub fn docs(&self, coll: &str) -> Vec<Value> {
        let s = self.state.lock().unwrap();
        s.docs
            .iter()
            .filter(|(c, _)| c == coll)
            .map(|(_, d)| d.clone())
            .collect()
    }
}

fn handle(state: &Mutex<State>, r: &Request) -> (u16, Value) {
    let mut s = state.lock().unwrap();
    let path = r.path.as_str();
    let q = params(&r.query);
    let param = |name: &str| q.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    if let Some(tok) = path.strip_prefix("/api/v2/authorization/request/") {
        if tok != TOKEN {
            return (401, json!({"status":401,"message":"Unauthorized"}));
        }
        s.jwts += 1;
        let now = nightlite::dates::now_ms() / 1000;
        return (
            200,
            json!({"token": format!("jwt-{}", s.jwts), "iat": now, "exp": now + 28_800}),
        );
    }
    if path.starts_with("/api/v3/") && !s.v3 {
        return (404, json!({"status":404,"message":"Not found"}));
    }
    let authorized = r
        .header("authorization")
        .is_some_and(|h| h.starts_with("Bearer jwt-"));
    if path == "/api/v3/version" {
        return (200, json!({"status":200,"result":{"version":"15.0.7"}}));
    }
    if !authorized {
        return (401, json!({"status":401,"message":"Unauthorized"}));
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let limit = |d: usize| {
        param("limit")
            .or(param("count"))
            .map_or(d, |l| l.parse().unwrap())
    };
    if let (Some(max), true) = (s.max_limit, path.starts_with("/api/v3/")) {
        if limit(0) > max {
            return (
                400,
                json!({"status":400,"message":"Parameter limit out of tolerance"}),
            );
        }
    }
    match parts.as_slice() {
        ["api", "v1", file] if r.method == "POST" => {
            // Nightscout's v1 upsert: entries by time and type, the others by identifier or
            // _id; anything else is a new document.
            let coll = file.trim_end_matches(".json").to_string();
            let docs = r.body.as_array().cloned().unwrap_or_default();
            for d in &docs {
                let same = |(c, o): &(String, Value)| {
                    *c == coll
                        && if coll == "entries" {
                            o["date"] == d["date"] && o["type"] == d["type"]
                        } else {
                            (!d["identifier"].is_null() && o["identifier"] == d["identifier"])
                                || (!d["_id"].is_null() && o["_id"] == d["_id"])
                        }
                };
                match s.docs.iter().position(same) {
                    Some(i) => s.docs[i] = (coll.clone(), d.clone()),
                    None => s.docs.push((coll.clone(), d.clone())),
                }
            }
            (200, Value::Array(docs))
        }
        ["api", "v3", coll, "history", since] => {
            let since: i64 = since.parse().unwrap();
            let mut docs: Vec<Value> = s
                .docs
                .iter()
                .filter(|(c, d)| c == coll && d["srvModified"].as_i64().is_some_and(|m| m > since))
                .map(|(_, d)| d.clone())
                .collect();
            docs.sort_by_key(|d| d["srvModified"].as_i64());
            docs.truncate(limit(1000));
            (200, json!({"status":200,"result":docs}))
        }
        ["api", "v3", coll] => {
            let skip: usize = param("skip").map_or(0, |v| v.parse().unwrap());
            let mut docs: Vec<Value> = match param("srvModified$eq") {
                Some(at) => {
                    let at: i64 = at.parse().unwrap();
                    let mut docs: Vec<Value> = s
                        .docs
                        .iter()
                        .filter(|(c, d)| c == coll && d["srvModified"].as_i64() == Some(at))
                        .map(|(_, d)| d.clone())
                        .collect();
                    docs.sort_by(|a, b| a["identifier"].as_str().cmp(&b["identifier"].as_str()));
                    docs
                }
                None => {
                    // A search by document time, newest first (what v1 wrote included).
                    let field = if *coll == "entries" {
                        "date"
                    } else {
                        "created_at"
                    };
                    let gt = param(&format!("{field}$gt")).unwrap();
                    let gt = gt
                        .parse::<i64>()
                        .unwrap_or_else(|_| nightlite::dates::parse_iso(&gt).map_or(0, |i| i.ms));
                    let mut docs: Vec<Value> = s
                        .docs
                        .iter()
                        .filter(|(c, d)| c == coll && time_of(coll, d) > gt)
                        .map(|(_, d)| d.clone())
                        .collect();
                    docs.sort_by_key(|d| std::cmp::Reverse(time_of(coll, d)));
                    docs
                }
            };
            docs = docs.into_iter().skip(skip).take(limit(1000)).collect();
            (200, json!({"status":200,"result":docs}))
        }
        ["api", "v1", file] => {
            let coll = file.trim_end_matches(".json");
            let field = if coll == "entries" {
                "date"
            } else {
                "created_at"
            };
            let bound = |op: &str| {
                param(&format!("find[{field}][${op}]")).map(|v| {
                    v.parse::<i64>()
                        .unwrap_or_else(|_| nightlite::dates::parse_iso(&v).map_or(0, |i| i.ms))
                })
            };
            let (gt, lte) = (bound("gt"), bound("lte"));
            let mut docs: Vec<Value> = s
                .docs
                .iter()
                .filter(|(c, d)| {
                    let t = time_of(coll, d);
                    c == coll && gt.is_none_or(|g| t > g) && lte.is_none_or(|l| t <= l)
                })
                .map(|(_, d)| d.clone())
                .collect();
            docs.sort_by_key(|d| std::cmp::Reverse(time_of(coll, d)));
            docs.truncate(limit(10));
            (200, Value::Array(docs))
        }
        _ => (404, json!({"status":404,"message":"Not found"})),
    }
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
