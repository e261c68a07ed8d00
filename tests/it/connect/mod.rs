//! The bridges (src/connect/, docs/bridges.md) against a fake Dexcom Share on loopback
//! (fake_dexcom.rs), with the engine on a manual clock: each test moves the clock to the next
//! poll the status API announces and asserts what the fake was asked and what was stored.

mod carelink;
mod dexcom_faults;
mod fake_carelink;
mod fake_dexcom;
mod fake_glooko;
pub(crate) mod fake_http;
mod fake_libre;
pub(crate) mod fake_nightscout;
mod fake_tandem;
mod glooko;
mod libre;
mod nightscout;
mod nightscout_output;
mod summary;
mod tandem;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_dexcom::{FakeDexcom, Fault, ACCOUNT, MIN, PASSWORD};
use fake_http::Fake;
use nightlite::connect::{Clock, ManualClock};
use serde_json::Value;

use crate::support::{now_ms, Setup, TestServer};

const DAY: i64 = 1440 * MIN;

/// A clock two days back, 2 min after a reading, and a fake with three days of readings.
fn clock_and_fake() -> (Arc<ManualClock>, FakeDexcom) {
    let t0 = (now_ms() - 2 * DAY) / (5 * MIN) * (5 * MIN) + fake_dexcom::PHASE + 2 * MIN;
    let clock = ManualClock::new(t0);
    let fake = FakeDexcom::start(&clock, t0 - 3 * DAY);
    (clock, fake)
}

fn setup(clock: &Arc<ManualClock>, fake: &FakeDexcom, password: &str) -> Setup {
    Setup::new()
        .clock(clock)
        .env("CONNECT_SOURCE", "dexcomshare")
        .env("CONNECT_SHARE_ACCOUNT_NAME", ACCOUNT)
        .env("CONNECT_SHARE_PASSWORD", password)
        .env("CONNECT_SHARE_SERVER", &fake.url())
}

struct Bridge {
    s: TestServer,
    clock: Arc<ManualClock>,
    auth: String,
}

impl Bridge {
    /// Starts the server and waits for its first poll to end.
    fn start(setup: Setup, clock: &Arc<ManualClock>) -> Bridge {
        let s = setup.start();
        let (_, token) = s.create_subject("bridge watcher", &["admin"]);
        let auth = format!("Bearer {}", s.jwt_for(&token));
        let b = Bridge {
            s,
            clock: clock.clone(),
            auth,
        };
        b.wait(|r| r["nextPoll"].is_i64() || r["state"] == "stopped: fatal");
        b
    }

    /// The status row of dexcomshare.
    fn row(&self) -> Value {
        let r = self.s.request(
            "GET",
            "/api/v4/bridges",
            &[("Authorization", &self.auth)],
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["bridges"][0].clone()
    }

    /// Waits (in real time, for the engine's task) until the row satisfies `done`.
    fn wait(&self, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let row = self.row();
            let settled = !matches!(row["state"].as_str(), Some("polling" | "logging in"));
            if settled && done(&row) {
                return row;
            }
            assert!(Instant::now() < deadline, "bridge never got there: {row}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Moves the clock to the announced next poll and waits for that poll to end.
    fn step(&self) -> Value {
        let before = self.row();
        let next = before["nextPoll"].as_i64().expect("a next poll");
        self.clock.set(next);
        self.wait(|r| r["nextPoll"] != before["nextPoll"])
    }

    fn entries(&self, count: usize) -> Vec<Value> {
        self.s.list(&format!("/api/v1/entries.json?count={count}"))
    }
}

fn counter(row: &Value, name: &str) -> i64 {
    row["counters"][name].as_i64().unwrap()
}

fn param(query: &str, name: &str) -> i64 {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {query}"))
}

#[test]
fn the_first_run_backfills_a_day_into_v1_entries_and_aligns_the_next_poll() {
    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(setup(&clock, &fake, PASSWORD), &clock);
    let row = b.row();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!((fake.logins(), fake.reads()), (1, 1));
    let login = &fake.log()[0];
    assert_eq!(login.body["accountName"], ACCOUNT);
    assert_eq!(
        login.body["applicationId"],
        "d89443d2-327c-4a6f-89e5-496bbb0317db"
    );
    let read = fake.log().into_iter().last().unwrap();
    assert_eq!(param(&read.query, "minutes"), 1440);
    assert_eq!(param(&read.query, "maxCount"), 288);
    assert_eq!(counter(&row, "stored"), 288);
    assert_eq!(counter(&row, "logins"), 1);

    let expected = fake.readings_until(clock.now_ms());
    let entries = b.entries(400);
    assert_eq!(entries.len(), 288);
    for (e, t) in entries.iter().zip(&expected).take(12) {
        assert_eq!(e["date"], *t, "{e}");
        assert_eq!(e["sgv"], FakeDexcom::value_at(*t), "{e}");
        assert_eq!(e["direction"], FakeDexcom::trend_at(*t).1, "{e}");
        assert_eq!(e["type"], "sgv");
        assert_eq!(e["device"], "share2");
        assert_eq!(e["utcOffset"], 60, "DT's +0100: {e}");
        assert_eq!(e["dateString"], nightlite::dates::to_iso(*t));
    }
    // The next poll comes 18–36 s after the next expected reading.
    let next = row["nextPoll"].as_i64().unwrap();
    let due = expected[0] + 5 * MIN;
    assert!(
        (due + 18_000..=due + 36_000).contains(&next),
        "{next} vs {due}"
    );
}

#[test]
fn later_polls_reuse_the_session_fetch_the_gap_and_a_restart_stores_nothing_new() {
    let (clock, fake) = clock_and_fake();
    let data = tempfile::tempdir().unwrap();
    let b = Bridge::start(setup(&clock, &fake, PASSWORD).data_dir(data.path()), &clock);
    for _ in 0..3 {
        b.step();
    }
    let row = b.row();
    assert_eq!(fake.logins(), 1, "one login for every poll");
    assert_eq!(fake.reads(), 4);
    // The gap: from the newest stored reading less the overlap, not the whole day again.
    let last = fake.log().into_iter().last().unwrap();
    assert!(param(&last.query, "minutes") <= 20, "{}", last.query);
    assert_eq!(counter(&row, "stored"), 291, "{row}");
    assert!(
        counter(&row, "duplicates") >= 3,
        "overlapping windows: {row}"
    );
    drop(b);

    // A restart: a new session, the same window fetched again, nothing stored twice.
    let b = Bridge::start(setup(&clock, &fake, PASSWORD).data_dir(data.path()), &clock);
    let row = b.row();
    assert_eq!(fake.logins(), 2);
    assert_eq!(counter(&row, "stored"), 0, "{row}");
    assert!(counter(&row, "duplicates") >= 1, "{row}");
    let entries = b.entries(1000);
    assert_eq!(entries.len(), 291);
    let mut dates: Vec<i64> = entries
        .iter()
        .map(|e| e["date"].as_i64().unwrap())
        .collect();
    dates.dedup();
    assert_eq!(dates.len(), 291, "no reading twice");
}

#[test]
fn an_ended_session_logs_in_again_once_within_the_poll() {
    let (clock, fake) = clock_and_fake();
    fake.object_ids();
    let b = Bridge::start(setup(&clock, &fake, PASSWORD), &clock);
    fake.end_sessions();
    let row = b.step();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(fake.logins(), 2);
    assert_eq!(
        fake.reads(),
        3,
        "the failed read, then the read with the new session"
    );
    assert_eq!(counter(&row, "stored"), 289);

    // A session refused again right after a new login: one new login only, then back-off.
    fake.fail_read(Fault::Code("SessionNotValid"));
    fake.fail_read(Fault::Code("SessionNotValid"));
    let row = b.step();
    assert_eq!(fake.logins(), 3);
    assert_eq!(row["state"], "backing off", "{row}");
    assert_eq!(row["lastError"]["class"], "auth");
    assert!(!row["lastError"]["message"]
        .as_str()
        .unwrap()
        .contains("5555"));
}

#[test]
fn a_wrong_password_or_a_locked_account_stops_the_source_without_another_request() {
    for (password, fault, code) in [
        ("wrong password", None, "AccountPasswordInvalid"),
        (
            PASSWORD,
            Some(Fault::Code("SSO_AuthenticateMaxAttemptsExceeded")),
            "SSO_AuthenticateMaxAttemptsExceeded",
        ),
    ] {
        let (clock, fake) = clock_and_fake();
        if let Some(f) = fault {
            fake.fail_login(f);
        }
        let b = Bridge::start(setup(&clock, &fake, password), &clock);
        let row = b.row();
        assert_eq!(row["state"], "stopped: fatal", "{row}");
        assert_eq!(row["nextPoll"], Value::Null);
        assert_eq!(row["lastError"]["class"], "fatal");
        let message = row["lastError"]["message"].as_str().unwrap();
        assert!(message.contains(code), "{message}");
        assert!(!message.contains(password) && !message.contains(PASSWORD));
        assert_eq!(fake.log().len(), 1, "the login, never retried");
        clock.advance(7 * DAY);
        assert_eq!(b.row()["state"], "stopped: fatal");
        assert_eq!(fake.log().len(), 1, "no request after a fatal error");
    }
}

#[test]
fn throttles_and_failures_back_off_with_no_request_meanwhile() {
    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(setup(&clock, &fake, PASSWORD), &clock);

    // 429 with Retry-After: exactly that wait, and nothing asked before it ends.
    fake.fail_read(Fault::TooMany(600));
    let row = b.step();
    assert_eq!(row["state"], "backing off", "{row}");
    assert_eq!(row["lastError"]["class"], "throttle");
    let at = fake.log().into_iter().last().unwrap().at;
    assert_eq!(row["nextPoll"].as_i64().unwrap(), at + 600_000);
    let reads = fake.reads();
    clock.set(at + 599_000);
    assert_eq!(b.row()["state"], "backing off");
    assert_eq!(fake.reads(), reads, "no request during the back-off");
    let row = b.step();
    assert_eq!(row["state"], "idle");
    assert_eq!(fake.reads(), reads + 1);

    // Server errors: 2.5 min, then 5 min (with up to 10% jitter), then a success.
    fake.fail_read(Fault::BadGateway);
    fake.fail_read(Fault::Code("SomethingElse"));
    let mut waits = vec![];
    for _ in 0..2 {
        let row = b.step();
        assert_eq!(row["lastError"]["class"], "transient", "{row}");
        waits.push(row["nextPoll"].as_i64().unwrap() - clock.now_ms());
    }
    assert!((150_000..=165_000).contains(&waits[0]), "{waits:?}");
    assert!((300_000..=330_000).contains(&waits[1]), "{waits:?}");
    assert_eq!(b.step()["state"], "idle");
    assert_eq!(fake.logins(), 1, "server errors keep the session");

    // No answer: the request's deadline runs on the clock too.
    fake.fail_read(Fault::Hang);
    let reads = fake.reads();
    let next = b.row()["nextPoll"].as_i64().unwrap();
    clock.set(next);
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.reads() == reads {
        assert!(Instant::now() < deadline, "the read never came");
        std::thread::sleep(Duration::from_millis(10));
    }
    clock.advance(30_000);
    let row = b.wait(|r| r["state"] == "backing off");
    assert_eq!(row["lastError"]["class"], "transient");
    assert!(row["lastError"]["message"]
        .as_str()
        .unwrap()
        .contains("did not answer"));
}

#[test]
fn the_status_needs_admin_or_bridges_read_and_never_shows_the_password() {
    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(setup(&clock, &fake, PASSWORD), &clock);
    assert_eq!(b.s.get("/api/v4/bridges").status, 401);
    let get = |roles: &[&str]| {
        let (_, token) =
            b.s.create_subject(&format!("as {}", roles.join(" ")), roles);
        let jwt = format!("Bearer {}", b.s.jwt_for(&token));
        b.s.request("GET", "/api/v4/bridges", &[("Authorization", &jwt)], None)
            .status
    };
    assert_eq!(get(&["status-only"]), 403);
    assert_eq!(get(&["careportal"]), 403);
    // `readable` is `*:*:read`, which holds api:bridges:read, as it holds every read.
    assert_eq!(get(&["readable"]), 200);
    let r = b.s.request(
        "GET",
        "/api/v4/bridges",
        &[("Authorization", &b.auth)],
        None,
    );
    assert_eq!(r.status, 200);
    assert!(
        !r.text.contains(PASSWORD) && !r.text.contains(ACCOUNT),
        "{}",
        r.text
    );
    let row = &r.json()["bridges"][0];
    assert_eq!(row["source"], "dexcomshare");
    assert_eq!(row["device"], "share2");
    assert!(row["lastSuccess"].is_i64(), "{row}");
}

/// The real binary at trace level, with a password Dexcom refuses: neither the log nor the
/// status API nor `nightlite settings` shows it (or the account's name in the status).
#[test]
fn the_password_is_never_logged_or_shown() {
    let (_clock, fake) = clock_and_fake();
    let password = "Never-Show-This-9431";
    let p = Setup::new()
        .env("NIGHTLITE_LOG", "trace")
        .env("CONNECT_SOURCE", "dexcomshare")
        .env("CONNECT_SHARE_ACCOUNT_NAME", ACCOUNT)
        .env("CONNECT_SHARE_PASSWORD", password)
        .env("CONNECT_SHARE_SERVER", &fake.url())
        .spawn();
    let status = spawned_status(&p, |row| row["state"] == "stopped: fatal");
    assert_eq!(fake.logins(), 1);
    let logs = p.logs();
    assert!(logs.contains("AccountPasswordInvalid"), "{logs}");
    assert!(!logs.contains(password), "the password is in the log");
    assert!(!status.contains(password), "{status}");
    let out = crate::support::command()
        .arg("settings")
        .env("CONNECT_SHARE_PASSWORD", password)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("CONNECT_SHARE_PASSWORD"), "{text}");
    assert!(!text.contains(password), "{text}");
}

#[test]
fn a_session_is_used_for_a_day_then_renewed() {
    let (clock, fake) = clock_and_fake();
    let t0 = clock.now_ms();
    let b = Bridge::start(setup(&clock, &fake, PASSWORD), &clock);
    let before = b.row();
    clock.advance(DAY - 10 * MIN);
    let row = b.wait(|r| r["nextPoll"] != before["nextPoll"]);
    assert_eq!(fake.logins(), 1, "{row}");
    // The row before the clock moves: read after, the poll may already have changed it.
    let before = b.row();
    clock.advance(20 * MIN);
    b.wait(|r| r["nextPoll"] != before["nextPoll"]);
    assert_eq!(fake.logins(), 2, "a new session after 24 h");
    // Every reading since the first window, none missed, none twice.
    let all = fake.readings_until(clock.now_ms());
    let expected = all.iter().filter(|t| **t > t0 - DAY).count();
    assert_eq!(b.entries(1000).len(), expected);
}

impl Bridge {
    /// The source stopped on a fatal error whose message says `words` and none of `secrets`,
    /// and a week later it has sent `fake` nothing more.
    /// The next poll (a fault scripted to answer `status`) backs off as transient, naming the
    /// status, and the one after it succeeds.
    fn assert_transient_once(&self, status: u16) {
        let row = self.step();
        assert_eq!(row["lastError"]["class"], "transient", "{row}");
        let message = row["lastError"]["message"].as_str().unwrap();
        assert!(message.contains(&status.to_string()), "{message}");
        assert_eq!(self.step()["state"], "idle");
    }

    fn assert_stopped_for_good(&self, fake: &impl Fake, words: &str, secrets: &[&str]) {
        let row = self.row();
        assert_eq!(row["state"], "stopped: fatal", "{row}");
        let message = row["lastError"]["message"].as_str().unwrap();
        assert!(message.contains(words), "{message}");
        for s in secrets {
            assert!(!message.contains(s), "{message}");
        }
        let requests = fake.paths().len();
        self.clock.advance(7 * DAY);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(self.row()["state"], "stopped: fatal");
        assert_eq!(
            fake.paths().len(),
            requests,
            "no request after a fatal error"
        );
    }
}

/// Polls the status API of a spawned server (as an admin) until the first source's row
/// satisfies `done`; returns the answer's text.
fn spawned_status(p: &crate::support::Process, done: impl Fn(&Value) -> bool) -> String {
    let (_, token) = p.create_subject("watcher", &["admin"]);
    let auth = format!("Bearer {}", p.jwt_for(&token));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = p.request("GET", "/api/v4/bridges", &[("Authorization", &auth)], None);
        if done(&r.json()["bridges"][0]) {
            return r.text;
        }
        assert!(Instant::now() < deadline, "{}", r.text);
        std::thread::sleep(Duration::from_millis(20));
    }
}
