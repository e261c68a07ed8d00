//! A fake LibreLinkUp on 127.0.0.1 (research/bridges.md §3): login with the `product` and
//! `version` headers (below the floor: 403 / status 920), region redirects, connections,
//! the graph (points every 15 minutes of the test's clock without arrows, and the current
//! reading every minute with one), `Account-Id` enforced (400 RequiredHeaderMissing), and
//! scripted faults. Every request is logged.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use nightlite::connect::{Clock, ManualClock};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::fake_http::{listen, Fake, Request};

pub const EMAIL: &str = "follower@example.org";
pub const PASSWORD: &str = "Synthetic-Libre-Pa55";
pub const USER_ID: &str = "7ad66b40-1111-2222-3333-444444444444";
pub const PATIENT: &str = "0f5c1a2b-aaaa-bbbb-cccc-dddddddddddd";
pub const MIN: i64 = 60_000;
const FLOOR: (u32, u32, u32) = (4, 16, 0);

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The login answers a redirect to this region (the fake is every region).
    Redirect,
    /// The login asks to accept the terms of use (status 4).
    Terms,
    /// The login says `locked` (status 429, lockout 300 s).
    Locked,
    /// The graph answers 401 "invalid or expired jwt".
    Expired,
    /// The graph answers HTTP 429 with `Retry-After: <seconds>`.
    TooMany(u32),
    /// The graph answers HTTP 500 with an HTML body.
    ServerError,
    /// The graph never answers (until the fake is dropped).
    Hang,
}

/// A request as the fake saw it.
pub type Logged = Request;

#[derive(Default)]
struct State {
    log: Vec<Logged>,
    faults: VecDeque<Fault>,
    tokens: Vec<String>,
    /// The sensor the graph names: activation (Unix s) and warm-up (min).
    sensor: Option<(i64, i64)>,
    /// What the logbook answers.
    logbook: Vec<Value>,
}

pub struct FakeLibre {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FakeLibre {
    pub fn start(clock: &Arc<ManualClock>) -> FakeLibre {
        let state = Arc::new(Mutex::new(State::default()));
        let (st, ck) = (state.clone(), clock.clone());
        let port = listen(move |r, stream| serve(r, stream, &st, &ck));
        FakeLibre { port, state }
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn fault(&self, f: Fault) {
        self.state.lock().unwrap().faults.push_back(f);
    }

    /// The graph names a sensor activated at `activated_ms` with a warm-up of `warmup_min`.
    pub fn sensor(&self, activated_ms: i64, warmup_min: i64) {
        self.state.lock().unwrap().sensor = Some((activated_ms / 1000, warmup_min));
    }

    /// The logbook holds `items` (GlucoseItems with their arrows, or anything else).
    pub fn logbook(&self, items: Vec<Value>) {
        self.state.lock().unwrap().logbook = items;
    }

    pub fn value_at(t: i64) -> i64 {
        90 + (t / MIN) % 120
    }

    /// en-US `M/d/yyyy h:mm:ss AM` of `ms`, shifted by `offset_min`.
    pub fn stamp(ms: i64, offset_min: i64) -> String {
        let iso = nightlite::dates::to_iso(ms + offset_min * MIN);
        let (y, mo, d) = (&iso[0..4], &iso[5..7], &iso[8..10]);
        let (h, mi, s): (u32, &str, &str) =
            (iso[11..13].parse().unwrap(), &iso[14..16], &iso[17..19]);
        let (h12, ampm) = match h {
            0 => (12, "AM"),
            1..=11 => (h, "AM"),
            12 => (12, "PM"),
            _ => (h - 12, "PM"),
        };
        format!(
            "{}/{}/{y} {h12}:{mi}:{s} {ampm}",
            mo.parse::<u32>().unwrap(),
            d.parse::<u32>().unwrap()
        )
    }

    pub fn item(t: i64, arrow: Option<i64>) -> Value {
        let mut v = json!({"FactoryTimestamp": FakeLibre::stamp(t, 0),
            "Timestamp": FakeLibre::stamp(t, 120), "type": 1,
            "ValueInMgPerDl": FakeLibre::value_at(t), "Value": FakeLibre::value_at(t),
            "GlucoseUnits": 1, "MeasurementColor": 1, "isHigh": false, "isLow": false});
        if let Some(a) = arrow {
            v["TrendArrow"] = a.into();
        }
        v
    }
}

impl Fake for FakeLibre {
    fn port(&self) -> u16 {
        self.port
    }

    fn paths(&self) -> Vec<String> {
        self.log().into_iter().map(|l| l.path).collect()
    }
}

fn reply(stream: &mut TcpStream, status: u16, body: &Value) {
    super::fake_http::reply(stream, status, "", &body.to_string());
}

fn version_ok(v: &str) -> bool {
    let mut p = v.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
    let got = (
        p.next().unwrap_or(0),
        p.next().unwrap_or(0),
        p.next().unwrap_or(0),
    );
    got >= FLOOR
}

fn serve(r: Request, stream: &mut TcpStream, state: &Mutex<State>, clock: &ManualClock) {
    let logged = r.clone();
    let (path, body) = (r.path, r.body);
    let now = clock.now_ms();
    let mut s = state.lock().unwrap();
    s.log.push(logged.clone());
    if logged.header("product") != Some("llu.android") {
        drop(s);
        return reply(stream, 400, &json!({"message": "product"}));
    }
    if !version_ok(logged.header("version").unwrap_or("")) {
        drop(s);
        return reply(
            stream,
            403,
            &json!({"data": {"minimumVersion": "4.16.0"}, "status": 920}),
        );
    }
    if path == "/llu/auth/login" {
        let fault = s.faults.front().copied();
        match fault {
            Some(Fault::Redirect) => {
                s.faults.pop_front();
                drop(s);
                return reply(
                    stream,
                    200,
                    &json!({"status": 0, "data": {"redirect": true, "region": "eu2"}}),
                );
            }
            Some(Fault::Terms) => {
                s.faults.pop_front();
                drop(s);
                return reply(
                    stream,
                    200,
                    &json!({"status": 4, "data": {"step":
                    {"type": "tou", "componentName": "AcceptDocument"}}}),
                );
            }
            Some(Fault::Locked) => {
                s.faults.pop_front();
                drop(s);
                return reply(
                    stream,
                    200,
                    &json!({"status": 429, "data": {"code": 60,
                    "data": {"failures": 3, "interval": 60, "lockout": 300}, "message": "locked"}}),
                );
            }
            _ => {}
        }
        if body["email"] != EMAIL || body["password"] != PASSWORD {
            drop(s);
            return reply(
                stream,
                200,
                &json!({"status": 2, "error": {"message": "notAuthenticated"}}),
            );
        }
        let token = format!("eyJ.synthetic.{}", s.tokens.len() + 1);
        s.tokens.push(token.clone());
        drop(s);
        return reply(
            stream,
            200,
            &json!({"status": 0, "data": {
            "user": {"id": USER_ID, "firstName": "John", "lastName": "Doe", "country": "DE"},
            "authTicket": {"token": token, "expires": now / 1000 + 15_552_000, "duration": 15_552_000_000_i64}}}),
        );
    }
    let bearer = logged.header("authorization").unwrap_or("").to_string();
    let token = bearer.strip_prefix("Bearer ").unwrap_or("").to_string();
    if !s.tokens.contains(&token) {
        drop(s);
        return reply(stream, 401, &json!({"message": "invalid or expired jwt"}));
    }
    let wanted = Sha256::digest(USER_ID.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    if logged.header("account-id") != Some(wanted.as_str()) {
        drop(s);
        return reply(stream, 400, &json!({"message": "RequiredHeaderMissing"}));
    }
    if path == "/llu/connections" {
        drop(s);
        return reply(
            stream,
            200,
            &json!({"status": 0, "data": [
            {"id": "c1", "patientId": PATIENT, "firstName": "John", "lastName": "Doe"}]}),
        );
    }
    if path == format!("/llu/connections/{PATIENT}/graph") {
        match s.faults.front().copied() {
            Some(Fault::Expired) => {
                s.faults.pop_front();
                s.tokens.clear();
                drop(s);
                return reply(stream, 401, &json!({"message": "invalid or expired jwt"}));
            }
            Some(Fault::TooMany(secs)) => {
                s.faults.pop_front();
                drop(s);
                let retry = format!("Retry-After: {secs}\r\n");
                return super::fake_http::reply(stream, 429, &retry, "{}");
            }
            Some(Fault::ServerError) => {
                s.faults.pop_front();
                drop(s);
                return super::fake_http::reply(stream, 500, "", "<html>oops</html>");
            }
            Some(Fault::Hang) => {
                s.faults.pop_front();
                drop(s);
                return std::thread::sleep(std::time::Duration::from_secs(60));
            }
            _ => {}
        }
        let sensors: Vec<Value> = s
            .sensor
            .iter()
            .map(|(a, w)| {
                json!({"deviceId": "", "sn": "ABCDEF1234", "a": a, "w": w, "pt": 4,
                    "s": true, "lj": false})
            })
            .collect();
        drop(s);
        // Graph points every 15 min for 12 h, oldest first; the current reading each minute.
        let last_graph = now.div_euclid(15 * MIN) * 15 * MIN;
        let graph: Vec<Value> = (0..48)
            .rev()
            .map(|k| FakeLibre::item(last_graph - k * 15 * MIN, None))
            .collect();
        let current = FakeLibre::item(now.div_euclid(MIN) * MIN, Some(4));
        return reply(
            stream,
            200,
            &json!({"status": 0, "data": {
            "connection": {"patientId": PATIENT, "glucoseMeasurement": current,
                "sensor": sensors.first().cloned().unwrap_or(Value::Null)},
            "activeSensors": sensors.iter().map(|s| json!({"sensor": s,
                "device": {"did": "synthetic", "dtid": 40068, "v": "3.3.1"}})).collect::<Vec<_>>(),
            "graphData": graph}}),
        );
    }
    if path == format!("/llu/connections/{PATIENT}/logbook") {
        let items = s.logbook.clone();
        drop(s);
        return reply(stream, 200, &json!({"status": 0, "data": items}));
    }
    drop(s);
    reply(stream, 404, &json!({"status": 404}))
}
