//! A fake Glooko on 127.0.0.1 (research/bridges.md §4): the v2 sign-in (email and password in
//! `userLogin`; a `_logbook-web_session` cookie and the patient code in return), the five v2
//! lists behind that cookie and the patient code, and scripted faults: a sign-in answered
//! with any status, a list request answered with any status, and a patient code that changes
//! (its old code then gets 403 `data_cant_view`). Every request is logged.
//!
//! The synthetic patient's pump runs on New York time, and like Glooko the fake writes every
//! time as that wall clock with a `Z`. Records reach it an hour after they happen (Glooko's
//! lag). Records in the hour a DST change repeats are left out: their times, written this
//! way, cannot be told apart (the source reads them as the first pass; a unit test shows it).

use std::collections::VecDeque;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

use nightlite::connect::{Clock, ManualClock};
use serde_json::{json, Value};

use super::fake_http::{listen, reply_json as reply, Fake, Request};

pub const EMAIL: &str = "john.doe@example.org";
pub const PASSWORD: &str = "Synthetic-Glooko-Pa55";
/// The synthetic pump's zone (the Tandem fake's too).
pub use super::fake_tandem::ZONE;
pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 60 * MIN;
/// How long after it happens a record is served.
pub const LAG: i64 = HOUR;

#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// The next sign-in answers this status.
    SignIn(u16),
    /// The next list request answers this status.
    List(u16),
}

/// A record of one list, at its true time.
#[derive(Debug, Clone)]
pub struct Record {
    pub at: i64,
    pub list: &'static str,
    pub body: Value,
}

#[derive(Default)]
struct State {
    log: Vec<Request>,
    faults: VecDeque<Fault>,
    sessions: Vec<String>,
    code: String,
    records: Vec<Record>,
}

pub struct FakeGlooko {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

/// `ms` as New York's wall clock written as UTC, and whether that wall clock is repeated.
pub fn fake_utc(ms: i64) -> (String, bool) {
    let tz = jiff::tz::TimeZone::get(ZONE).unwrap();
    let z = jiff::Timestamp::from_millisecond(ms)
        .unwrap()
        .to_zoned(tz.clone());
    let wall = z.datetime();
    let repeated = matches!(
        tz.to_ambiguous_zoned(wall).offset(),
        jiff::tz::AmbiguousOffset::Fold { .. }
    );
    let local_ms = ms + i64::from(z.offset().seconds()) * 1000;
    (nightlite::dates::to_iso(local_ms), repeated)
}

fn guid(list: &str, at: i64) -> String {
    let n = at / MIN;
    let kind = match list {
        "normalBoluses" => 1,
        "scheduledBasals" => 2,
        "foods" => 3,
        "insulins" => 4,
        _ => 5,
    };
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

impl FakeGlooko {
    /// Records every 5 minutes (readings), hour (basals), 3 hours (boluses), 6 hours (foods)
    /// and 12 hours (insulins) from `from` to `to`.
    pub fn start(clock: &Arc<ManualClock>, from: i64, to: i64) -> FakeGlooko {
        let mut records = Vec::new();
        let mut t = from / (5 * MIN) * (5 * MIN);
        while t <= to {
            let (stamp, repeated) = fake_utc(t);
            if !repeated {
                let mut add = |list: &'static str, mut body: Value| {
                    body["guid"] = guid(list, t).into();
                    body["softDeleted"] = false.into();
                    records.push(Record { at: t, list, body });
                };
                add(
                    "readings",
                    json!({"timestamp": stamp, "value": FakeGlooko::value_at(t) * 100, "trend": null}),
                );
                if t % HOUR == 0 {
                    add(
                        "scheduledBasals",
                        json!({"pumpTimestamp": stamp, "pumpTimestampUtcOffset": "+00:00",
                            "startTime": 0, "duration": 3600, "rate": FakeGlooko::rate_at(t)}),
                    );
                }
                if t % (3 * HOUR) == 10 * MIN {
                    let carbs = if (t / (3 * HOUR)) % 2 == 0 { 30 } else { 0 };
                    add(
                        "normalBoluses",
                        json!({"pumpTimestamp": stamp, "insulinDelivered": 2.5, "programmedUnits": 2.5,
                            "carbsInput": carbs}),
                    );
                }
                if t % (6 * HOUR) == 20 * MIN {
                    add(
                        "foods",
                        json!({"timestamp": stamp, "pumpTimestamp": stamp, "carbs": 15,
                            "description": "apple"}),
                    );
                }
                if t % (12 * HOUR) == 40 * MIN {
                    add("insulins", json!({"timestamp": stamp, "value": 4}));
                }
            }
            t += 5 * MIN;
        }
        let state = Arc::new(Mutex::new(State {
            code: "us-east-1-doe-synthetic-0001".into(),
            records,
            ..State::default()
        }));
        let (st, ck) = (state.clone(), clock.clone());
        let port = listen(move |r, stream| serve(r, stream, &st, &ck));
        FakeGlooko { port, state }
    }

    pub fn value_at(t: i64) -> i64 {
        80 + (t / (5 * MIN)) % 150
    }

    pub fn rate_at(t: i64) -> f64 {
        0.5 + ((t / HOUR) % 4) as f64 * 0.25
    }

    pub fn log(&self) -> Vec<Request> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn fault(&self, f: Fault) {
        self.state.lock().unwrap().faults.push_back(f);
    }

    /// The patient code changes: sessions signed in before get 403 `data_cant_view`.
    pub fn change_code(&self) {
        self.state.lock().unwrap().code = "eu-west-1-doe-synthetic-0002".into();
    }

    pub fn code(&self) -> String {
        self.state.lock().unwrap().code.clone()
    }

    /// The records served at `now` (those that happened an hour before or earlier).
    pub fn served(&self, now: i64) -> Vec<Record> {
        let s = self.state.lock().unwrap();
        s.records
            .iter()
            .filter(|r| r.at <= now - LAG)
            .cloned()
            .collect()
    }

    pub fn sign_ins(&self) -> usize {
        self.count("/api/v2/users/sign_in")
    }
}

impl Fake for FakeGlooko {
    fn port(&self) -> u16 {
        self.port
    }

    fn paths(&self) -> Vec<String> {
        self.log().into_iter().map(|l| l.path).collect()
    }
}

fn list_key(path: &str) -> Option<&'static str> {
    Some(match path {
        "/api/v2/pumps/normal_boluses" => "normalBoluses",
        "/api/v2/pumps/scheduled_basals" => "scheduledBasals",
        "/api/v2/foods" => "foods",
        "/api/v2/insulins" => "insulins",
        "/api/v2/cgm/readings" => "readings",
        _ => return None,
    })
}

fn serve(r: Request, stream: &mut TcpStream, state: &Mutex<State>, clock: &ManualClock) {
    let now = clock.now_ms();
    let mut s = state.lock().unwrap();
    s.log.push(r.clone());
    if r.path == "/api/v2/users/sign_in" && r.method == "POST" {
        if let Some(Fault::SignIn(status)) = s.faults.front().copied() {
            s.faults.pop_front();
            drop(s);
            return reply(stream, status, &json!({"errors": ["refused"]}));
        }
        let login = &r.body["userLogin"];
        if login["email"] != EMAIL || login["password"] != PASSWORD {
            drop(s);
            return reply(
                stream,
                401,
                &json!({"message": "Invalid email or password"}),
            );
        }
        let session = format!("sess{}", s.sessions.len() + 1);
        s.sessions.push(session.clone());
        let code = s.code.clone();
        drop(s);
        let cookie = format!(
            "Set-Cookie: _logbook-web_session={session}; path=/; secure; HttpOnly\r\n\
             Set-Cookie: locale=en; path=/\r\n"
        );
        let body = json!({"userLogin": {"email": EMAIL, "glookoCode": code,
            "firstName": "John", "lastName": "Doe"}});
        return super::fake_http::reply(stream, 200, &cookie, &body.to_string());
    }
    let Some(key) = list_key(&r.path) else {
        drop(s);
        return reply(stream, 404, &json!({"message": "not found"}));
    };
    let cookie = r.header("cookie").unwrap_or("");
    let live = s
        .sessions
        .iter()
        .any(|id| cookie.contains(&format!("_logbook-web_session={id}")));
    if !live {
        drop(s);
        return reply(stream, 401, &json!({"message": "session"}));
    }
    if let Some(Fault::List(status)) = s.faults.front().copied() {
        s.faults.pop_front();
        drop(s);
        return reply(stream, status, &json!({"error": "scripted"}));
    }
    if r.param("patient").as_deref() != Some(s.code.as_str()) {
        drop(s);
        return reply(
            stream,
            403,
            &json!({"code": "data_cant_view", "message": "user is not authorized to view data"}),
        );
    }
    let bound = |name: &str| {
        r.param(name)
            .map(|v| v.replace("%3A", ":"))
            .and_then(|v| nightlite::dates::parse_iso(&v))
            .map(|i| i.ms)
    };
    let (Some(start), Some(end)) = (bound("startDate"), bound("endDate")) else {
        drop(s);
        return reply(stream, 422, &json!({"error": "dates"}));
    };
    let items: Vec<Value> = s
        .records
        .iter()
        .filter(|rec| rec.list == key && rec.at <= now - LAG)
        .filter(|rec| {
            let stamp = rec.body["timestamp"]
                .as_str()
                .or(rec.body["pumpTimestamp"].as_str())
                .and_then(nightlite::dates::parse_iso)
                .map(|i| i.ms)
                .unwrap_or(0);
            (start..=end).contains(&stamp)
        })
        .map(|rec| rec.body.clone())
        .collect();
    drop(s);
    reply(stream, 200, &json!({ key: items }))
}
