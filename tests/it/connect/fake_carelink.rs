//! A fake Medtronic CareLink on 127.0.0.1 (research/bridges.md §5 (c)): the Auth0 token
//! endpoint (`grant_type=refresh_token`; every refresh rotates the refresh token, and an old
//! one is refused with 403 as a revoked login is) and the CarePartner v13
//! `display/message` behind a live access token. Access tokens are JWT-shaped with an `exp`
//! an hour after they are issued, on the fake's clock. Scripted faults answer the next
//! refresh or data request with any status; every request is logged.
//!
//! The synthetic patient (John Doe) wears an NGP pump whose clock follows Central European
//! time (DST included): like CareLink, the fake writes every device time as that wall clock
//! with a `Z`, and the upload's server time as real UTC milliseconds.

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use nightlite::connect::{Clock, ManualClock};
use serde_json::{json, Value};

use super::fake_http::{listen, reply_json as reply, Fake, Request};

pub const USERNAME: &str = "johndoe-follower";
pub const PATIENT: &str = "johndoe";
pub const CLIENT_ID: &str = "synthetic-client-id";
pub const MAG: &str = "synthetic-mag-identifier";
pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 60 * MIN;
/// The zone the pump's clock follows (UTC+1 in winter, +2 in summer).
pub const ZONE: &str = "Europe/Berlin";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const DATA_PATH: &str = "/connect/carepartner/v13/display/message";

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The next refresh answers this status.
    Refresh(u16),
    /// The next data request answers this status.
    Data(u16),
}

#[derive(Default)]
struct State {
    log: Vec<Request>,
    faults: VecDeque<Fault>,
    /// Live access tokens with their expiry.
    access: Vec<(String, i64)>,
    /// The one refresh token that works.
    refresh: String,
    issued: usize,
}

pub struct FakeCarelink {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

/// A JWT-shaped token (not signed: nightlite only reads its `exp`).
pub fn jwt(n: usize, exp_ms: i64) -> String {
    let payload = nightlite::auth::jwt::b64url_encode(
        format!(
            "{{\"sub\":\"{USERNAME}\",\"n\":{n},\"exp\":{}}}",
            exp_ms / 1000
        )
        .as_bytes(),
    );
    format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c3ludGhldGljLXNpZw")
}

/// The pump clock's offset from UTC at `ms`, in minutes.
pub fn offset_at(ms: i64) -> i64 {
    let tz = jiff::tz::TimeZone::get(ZONE).unwrap();
    let ts = jiff::Timestamp::from_millisecond(ms).unwrap();
    i64::from(tz.to_offset(ts).seconds() / 60)
}

/// `ms` as the pump's wall clock written as UTC.
pub fn fake_utc(ms: i64) -> String {
    nightlite::dates::to_iso(ms + offset_at(ms) * MIN)
}

/// Whether the wall clock at `ms` already showed an hour before (the second pass through
/// the hour a DST change repeats): CareLink's times cannot tell the passes apart, so the fake
/// serves only the first.
fn second_pass(ms: i64) -> bool {
    fake_utc(ms) == fake_utc(ms - HOUR)
}

impl FakeCarelink {
    /// A fake whose current access token (issued now) is `access_token()`, valid an hour.
    pub fn start(clock: &Arc<ManualClock>) -> FakeCarelink {
        let now = clock.now_ms();
        let state = Arc::new(Mutex::new(State {
            access: vec![(jwt(0, now + HOUR), now + HOUR)],
            refresh: "synthetic-refresh-0".into(),
            ..State::default()
        }));
        let (st, ck) = (state.clone(), clock.clone());
        let port = listen(move |r, stream| serve(r, stream, &st, &ck));
        FakeCarelink { port, state }
    }

    /// The token file a login tool would write now (carelink-python-client's shape).
    pub fn login_file(&self) -> Value {
        let s = self.state.lock().unwrap();
        json!({
            "access_token": s.access[0].0,
            "refresh_token": s.refresh,
            "client_id": CLIENT_ID,
            "token_url": format!("{}{TOKEN_PATH}", self.url()),
            "audience": "https://carelink.minimed.com",
            "scope": "openid profile offline_access",
            "mag-identifier": MAG,
        })
    }

    /// Every secret the fake has handed out.
    pub fn secrets(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        let mut out: Vec<String> = s.access.iter().map(|(t, _)| t.clone()).collect();
        out.push(s.refresh.clone());
        out.push("synthetic-refresh-0".into());
        out
    }

    pub fn refresh_token(&self) -> String {
        self.state.lock().unwrap().refresh.clone()
    }

    pub fn value_at(t: i64) -> i64 {
        70 + (t / (5 * MIN)) % 180
    }

    /// The readings' true times served at `now`: every 5 minutes of the last 24 hours (but
    /// a repeated hour's second pass).
    pub fn reading_times(now: i64) -> Vec<i64> {
        let last = now / (5 * MIN) * (5 * MIN);
        (0..288)
            .rev()
            .map(|i| last - i * 5 * MIN)
            .filter(|t| !second_pass(*t))
            .collect()
    }

    /// When the newest upload reached CareLink (real UTC).
    pub fn upload_at(now: i64) -> i64 {
        now / (5 * MIN) * (5 * MIN) + 40_000
    }

    pub fn log(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn fault(&self, f: Fault) {
        self.state.lock().unwrap().faults.push_back(f);
    }

    pub fn refreshes(&self) -> usize {
        self.count(TOKEN_PATH)
    }

    pub fn reads(&self) -> usize {
        self.count(DATA_PATH)
    }
}

impl Fake for FakeCarelink {
    fn port(&self) -> u16 {
        self.port
    }

    fn paths(&self) -> Vec<String> {
        self.log().into_iter().map(|l| l.path).collect()
    }
}

/// A bolus with its meal every 3 hours at :10, a finger stick every 6 hours at :40.
fn markers(times: &[i64]) -> Vec<Value> {
    let mut out = Vec::new();
    for &t in times {
        if t % (3 * HOUR) == 10 * MIN {
            out.push(json!({"type": "INSULIN", "timestamp": fake_utc(t),
                "data": {"dataValues": {"bolusType": "FAST", "deliveredFastAmount": 2.5,
                    "programmedFastAmount": 2.5, "activationType": "RECOMMENDED"}}}));
            out.push(json!({"type": "MEAL", "timestamp": fake_utc(t + 20_000),
                "data": {"dataValues": {"amount": 30}}}));
        }
        if t % (6 * HOUR) == 40 * MIN {
            out.push(json!({"type": "BG_READING", "timestamp": fake_utc(t),
                "data": {"dataValues": {"unitValue": 110, "bgUnits": "MG_DL"}}}));
        }
    }
    out
}

fn recent_data(now: i64) -> Value {
    let times = FakeCarelink::reading_times(now);
    let sgs: Vec<Value> = times
        .iter()
        .map(|&t| {
            json!({"sg": FakeCarelink::value_at(t), "timestamp": fake_utc(t),
            "sensorState": "NO_ERROR_MESSAGE"})
        })
        .collect();
    let last = *times.last().unwrap();
    let upload = FakeCarelink::upload_at(now);
    json!({
        "metadata": {"version": "13"},
        "patientData": {
            "firstName": "John", "lastName": "Doe", "medicalDeviceFamily": "NGP",
            "lastConduitDateTime": fake_utc(upload),
            "lastConduitUpdateServerDateTime": upload,
            "lastSG": {"sg": FakeCarelink::value_at(last), "timestamp": fake_utc(last)},
            "lastSGTrend": "UP",
            "sgs": sgs,
            "markers": markers(&times),
            "activeInsulin": {"amount": 1.3},
            "reservoirRemainingUnits": 120,
            "medicalDeviceBatteryLevelPercent": 75,
            "conduitBatteryLevel": 90,
            "sensorState": "NORMAL",
            "conduitInRange": true,
            "medicalDeviceSerialNumber": "ABCDEF1234"
        }
    })
}

fn form(raw: &str, name: &str) -> Option<String> {
    raw.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

fn serve(r: Request, stream: &mut TcpStream, state: &Mutex<State>, clock: &ManualClock) {
    let now = clock.now_ms();
    let mut s = state.lock().unwrap();
    s.log.push(r.clone());
    if r.path == TOKEN_PATH && r.method == "POST" {
        if let Some(Fault::Refresh(status)) = s.faults.front().copied() {
            s.faults.pop_front();
            drop(s);
            return reply(stream, status, &json!({"error": "invalid_grant"}));
        }
        let grant_ok = form(&r.raw, "grant_type").as_deref() == Some("refresh_token")
            && form(&r.raw, "client_id").as_deref() == Some(CLIENT_ID);
        if !grant_ok || form(&r.raw, "refresh_token").as_deref() != Some(s.refresh.as_str()) {
            drop(s);
            return reply(
                stream,
                403,
                &json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}),
            );
        }
        s.issued += 1;
        let n = s.issued;
        let access = jwt(n, now + HOUR);
        s.access.push((access.clone(), now + HOUR));
        s.refresh = format!("synthetic-refresh-{n}");
        let body = json!({"access_token": access, "refresh_token": s.refresh,
            "expires_in": 3600, "token_type": "Bearer"});
        drop(s);
        return reply(stream, 200, &body);
    }
    if r.path != DATA_PATH || r.method != "POST" {
        drop(s);
        return reply(stream, 404, &json!({"message": "not found"}));
    }
    let bearer = r.header("authorization").unwrap_or("");
    let live = s
        .access
        .iter()
        .any(|(t, exp)| bearer == format!("Bearer {t}") && now < *exp);
    if !live {
        drop(s);
        return reply(stream, 401, &json!({"message": "Unauthorized"}));
    }
    if let Some(Fault::Data(status)) = s.faults.front().copied() {
        s.faults.pop_front();
        drop(s);
        return reply(stream, status, &json!({"message": "scripted"}));
    }
    drop(s);
    reply(stream, 200, &recent_data(now))
}
