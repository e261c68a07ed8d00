//! A fake Dexcom Share on 127.0.0.1 (research/bridges.md §2), built from the wire formats:
//! the two login steps, ReadPublisherLatestGlucoseValues with readings every 5 minutes of
//! the test's clock (newest first, within minutes/maxCount), the 500 `{Code}` errors, and
//! scripted faults. Every request is logged, so tests assert what the bridge asked and when.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nightlite::connect::{Clock, ManualClock};

use serde_json::{json, Value};

use super::fake_http::{listen, reply, Fake, Request};

pub const ACCOUNT: &str = "john.doe@example.org";
pub const PASSWORD: &str = "Synthetic-Pa55word";
pub const ACCOUNT_ID: &str = "99999999-9999-9999-9999-999999999999";
pub const MIN: i64 = 60_000;
/// Readings are taken at multiples of 5 minutes plus this (ms).
pub const PHASE: i64 = 40_000;

/// One scripted answer to the next request of a kind, instead of the normal one.
#[derive(Debug, Clone)]
pub enum Fault {
    /// HTTP 500 with this Dexcom `Code`.
    Code(&'static str),
    /// HTTP 429 with `Retry-After: <seconds>`.
    TooMany(u32),
    /// HTTP 502 with an HTML body.
    BadGateway,
    /// Never answers (until the fake is dropped).
    Hang,
}

#[derive(Debug, Clone)]
pub struct Logged {
    /// The path after /ShareWebServices/Services/ (`General/AuthenticatePublisherAccount`).
    pub path: String,
    pub query: String,
    pub body: Value,
    /// The test clock's time when it arrived.
    pub at: i64,
}

#[derive(Default)]
struct State {
    log: Vec<Logged>,
    login_faults: VecDeque<Fault>,
    read_faults: VecDeque<Fault>,
    sessions: Vec<String>,
    issued: u32,
    /// Answer the bare-string login replies as `{"accountId": ...}` objects instead.
    object_ids: bool,
    /// No readings before this time.
    first_reading: i64,
    /// Records served first in every read, as they are (a vendor's garbage).
    extra: Vec<Value>,
}

pub struct FakeDexcom {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FakeDexcom {
    /// Readings from `first_reading` (test clock ms) on.
    pub fn start(clock: &Arc<ManualClock>, first_reading: i64) -> FakeDexcom {
        let state = Arc::new(Mutex::new(State {
            first_reading,
            ..State::default()
        }));
        let (st, ck) = (state.clone(), clock.clone());
        let port = listen(move |r, stream| serve(r, stream, &st, &ck));
        FakeDexcom { port, state }
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn logins(&self) -> usize {
        self.count("AuthenticatePublisherAccount")
    }

    pub fn reads(&self) -> usize {
        self.count("ReadPublisherLatestGlucoseValues")
    }

    pub fn fail_login(&self, f: Fault) {
        self.state.lock().unwrap().login_faults.push_back(f);
    }

    pub fn fail_read(&self, f: Fault) {
        self.state.lock().unwrap().read_faults.push_back(f);
    }

    /// Every session ends (Dexcom answers SessionIdNotFound from now on).
    pub fn end_sessions(&self) {
        self.state.lock().unwrap().sessions.clear();
    }

    /// `record` comes first in every read from now on.
    pub fn serve_also(&self, record: Value) {
        self.state.lock().unwrap().extra.push(record);
    }

    pub fn object_ids(&self) {
        self.state.lock().unwrap().object_ids = true;
    }

    /// The value of the reading taken at `t`.
    pub fn value_at(t: i64) -> i64 {
        100 + (t / (5 * MIN)) % 80
    }

    /// The trend name of the reading taken at `t` and Nightscout's direction for it.
    pub fn trend_at(t: i64) -> (&'static str, &'static str) {
        const T: [(&str, &str); 4] = [
            ("Flat", "Flat"),
            ("FortyFiveUp", "FortyFiveUp"),
            ("SingleDown", "SingleDown"),
            ("NotComputable", "NOT COMPUTABLE"),
        ];
        T[((t / (5 * MIN)) % 4) as usize]
    }

    /// The times of the readings the fake has at `now`, newest first.
    pub fn readings_until(&self, now: i64) -> Vec<i64> {
        let first = self.state.lock().unwrap().first_reading;
        let mut t = (now - PHASE).div_euclid(5 * MIN) * 5 * MIN + PHASE;
        let mut out = vec![];
        while t >= first {
            out.push(t);
            t -= 5 * MIN;
        }
        out
    }
}

impl Fake for FakeDexcom {
    fn port(&self) -> u16 {
        self.port
    }

    fn paths(&self) -> Vec<String> {
        self.log().into_iter().map(|l| l.path).collect()
    }
}

fn code(stream: &mut TcpStream, code: &str) {
    let body = json!({"Code": code, "Message": "synthetic", "SubCode": "<OnlineException/>",
        "TypeName": "FaultException"});
    reply(stream, 500, "", &body.to_string());
}

fn fault(stream: &mut TcpStream, f: Fault) {
    match f {
        Fault::Code(c) => code(stream, c),
        Fault::TooMany(secs) => reply(stream, 429, &format!("Retry-After: {secs}\r\n"), "{}"),
        Fault::BadGateway => reply(stream, 502, "", "<html>bad gateway</html>"),
        Fault::Hang => std::thread::sleep(Duration::from_secs(60)),
    }
}

fn serve(r: Request, stream: &mut TcpStream, state: &Mutex<State>, clock: &ManualClock) {
    let path = r
        .path
        .strip_prefix("/ShareWebServices/Services/")
        .unwrap_or(&r.path)
        .to_string();
    let (query, body) = (r.query.as_str(), r.body.clone());
    let now = clock.now_ms();
    let mut s = state.lock().unwrap();
    s.log.push(Logged {
        path: path.clone(),
        query: query.to_string(),
        body: body.clone(),
        at: now,
    });
    let id_reply = |s: &State, key: &str, id: &str| {
        if s.object_ids {
            json!({ key: id }).to_string()
        } else {
            json!(id).to_string()
        }
    };
    match path.as_str() {
        "General/AuthenticatePublisherAccount" => {
            if let Some(f) = s.login_faults.pop_front() {
                drop(s);
                return fault(stream, f);
            }
            if body["accountName"] != ACCOUNT || body["password"] != PASSWORD {
                drop(s);
                return code(stream, "AccountPasswordInvalid");
            }
            let r = id_reply(&s, "accountId", ACCOUNT_ID);
            drop(s);
            reply(stream, 200, "", &r);
        }
        "General/LoginPublisherAccountById" => {
            if body["accountId"] != ACCOUNT_ID || body["password"] != PASSWORD {
                drop(s);
                return code(stream, "AccountPasswordInvalid");
            }
            s.issued += 1;
            let id = format!("55555555-5555-5555-5555-{:012}", s.issued);
            s.sessions.push(id.clone());
            let r = id_reply(&s, "sessionId", &id);
            drop(s);
            reply(stream, 200, "", &r);
        }
        "Publisher/ReadPublisherLatestGlucoseValues" => {
            let param = |name: &str| r.param(name);
            let session = param("sessionId").unwrap_or_default();
            if !s.sessions.contains(&session) {
                drop(s);
                return code(stream, "SessionIdNotFound");
            }
            if let Some(f) = s.read_faults.pop_front() {
                drop(s);
                return fault(stream, f);
            }
            let minutes: i64 = param("minutes").and_then(|v| v.parse().ok()).unwrap_or(0);
            let count: usize = param("maxCount").and_then(|v| v.parse().ok()).unwrap_or(0);
            let (first, mut out) = (s.first_reading, s.extra.clone());
            drop(s);
            let mut t = (now - PHASE).div_euclid(5 * MIN) * 5 * MIN + PHASE;
            let readings = out.len();
            while t >= first
                && t > now - minutes.min(1440) * MIN
                && out.len() - readings < count.min(288)
            {
                let (trend, _) = FakeDexcom::trend_at(t);
                out.push(json!({
                    "WT": format!("Date({t})"),
                    "ST": format!("Date({t})"),
                    "DT": format!("Date({t}+0100)"),
                    "Value": FakeDexcom::value_at(t),
                    "Trend": trend,
                }));
                t -= 5 * MIN;
            }
            reply(stream, 200, "", &Value::Array(out).to_string());
        }
        _ => {
            drop(s);
            reply(stream, 404, "", "{}");
        }
    }
}
