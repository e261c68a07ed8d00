//! LibreLinkUp against its fake (fake_libre.rs), on the manual clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nightlite::connect::{Clock, ManualClock};
use serde_json::Value;

use super::fake_http::Fake;
use super::fake_libre::{FakeLibre, Fault, EMAIL, MIN, PASSWORD, USER_ID};
use super::{counter, Bridge};
use crate::support::{now_ms, Setup};

fn clock_and_fake() -> (Arc<ManualClock>, FakeLibre) {
    // 2.5 min after a graph point, so the next poll's overlap takes that point in again.
    let t0 = (now_ms() - 2 * 1440 * MIN) / (15 * MIN) * (15 * MIN) + 150_000;
    let clock = ManualClock::new(t0);
    let fake = FakeLibre::start(&clock);
    (clock, fake)
}

fn setup(clock: &Arc<ManualClock>, fake: &FakeLibre) -> Setup {
    Setup::new()
        .clock(clock)
        .env("CONNECT_SOURCE", "librelinkup")
        .env("CONNECT_LINK_UP_USERNAME", EMAIL)
        .env("CONNECT_LINK_UP_PASSWORD", PASSWORD)
        .env("CONNECT_LINK_UP_SERVER", &fake.url())
}

#[test]
fn the_graph_and_the_current_reading_become_entries_once() {
    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(setup(&clock, &fake), &clock);
    let row = b.row();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(row["device"], "librelinkup");
    let log = fake.log();
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str()),
        ("POST", "/llu/auth/login")
    );
    assert_eq!(log[0].header("version"), Some("4.16.0"));
    assert_eq!(log[1].path, "/llu/connections");
    assert_eq!(log[1].header("account-id").map(str::len), Some(64));
    assert!(log[2].path.ends_with("/graph") && log[2].method == "GET");

    let now = clock.now_ms();
    let current = now / MIN * MIN;
    let entries = b.entries(100);
    assert_eq!(entries.len(), 49, "48 graph points and the current reading");
    assert_eq!(counter(&row, "stored"), 49);
    let e = &entries[0];
    assert_eq!(e["date"], current);
    assert_eq!(e["sgv"], FakeLibre::value_at(current));
    assert_eq!(e["direction"], "FortyFiveUp");
    assert_eq!(e["utcOffset"], 120, "{e}");
    assert_eq!(e["device"], "librelinkup");
    let graph = &entries[1];
    assert_eq!(graph["date"], now / (15 * MIN) * (15 * MIN));
    assert_eq!(
        graph["direction"],
        Value::Null,
        "graph points have no arrow"
    );

    // The next poll: one session, only the new current reading stored.
    let row = b.step();
    assert_eq!(fake.count("/llu/auth/login"), 1);
    assert_eq!(fake.count("/graph"), 2);
    let new_minutes = (clock.now_ms() / MIN * MIN - current) / MIN;
    assert!(new_minutes >= 5, "{new_minutes}");
    assert!(counter(&row, "duplicates") >= 1, "{row}");
    let total = b.entries(1000).len() as i64;
    assert_eq!(counter(&row, "stored"), total, "every stored document once");
}

#[test]
fn redirects_expired_tokens_terms_version_floor_and_locks() {
    // A region redirect, then an expired token: one more login each, data all the same.
    let (clock, fake) = clock_and_fake();
    fake.fault(Fault::Redirect);
    let b = Bridge::start(setup(&clock, &fake), &clock);
    assert_eq!(b.row()["state"], "idle");
    assert_eq!(fake.count("/llu/auth/login"), 2);
    fake.fault(Fault::Expired);
    let row = b.step();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(
        fake.count("/llu/auth/login"),
        3,
        "one new login after the 401"
    );
    drop(b);

    // Terms to accept: stopped, with what to do, and nothing asked again.
    let (clock, fake) = clock_and_fake();
    fake.fault(Fault::Terms);
    let b = Bridge::start(setup(&clock, &fake), &clock);
    let row = b.row();
    assert_eq!(row["state"], "stopped: fatal", "{row}");
    assert!(row["lastError"]["message"]
        .as_str()
        .unwrap()
        .contains("accept"));
    clock.advance(1440 * MIN);
    assert_eq!(fake.log().len(), 1);
    drop(b);

    // An app version below the floor.
    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(
        setup(&clock, &fake).env("CONNECT_LINK_UP_VERSION", "4.7.0"),
        &clock,
    );
    let row = b.row();
    assert_eq!(row["state"], "stopped: fatal", "{row}");
    assert!(row["lastError"]["message"]
        .as_str()
        .unwrap()
        .contains("CONNECT_LINK_UP_VERSION to at least 4.16.0"));
    clock.advance(1440 * MIN);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(fake.log().len(), 1, "no request after the version floor");
    drop(b);

    // Locked: a throttle for the lockout, no request before it ends.
    let (clock, fake) = clock_and_fake();
    fake.fault(Fault::Locked);
    let b = Bridge::start(setup(&clock, &fake), &clock);
    let row = b.row();
    assert_eq!(row["state"], "backing off", "{row}");
    assert_eq!(row["lastError"]["class"], "throttle");
    assert_eq!(row["nextPoll"], clock.now_ms() + 300_000);
    clock.advance(299_000);
    assert_eq!(b.row()["state"], "backing off");
    assert_eq!(fake.log().len(), 1);
    assert_eq!(b.step()["state"], "idle");
}

#[test]
fn a_wrong_password_stops_the_source_without_another_request() {
    let (clock, fake) = clock_and_fake();
    let wrong = "Not-The-Libre-Pa55";
    let b = Bridge::start(
        setup(&clock, &fake).env("CONNECT_LINK_UP_PASSWORD", wrong),
        &clock,
    );
    let row = b.row();
    assert_eq!(row["state"], "stopped: fatal", "{row}");
    assert_eq!(row["nextPoll"], Value::Null);
    let message = row["lastError"]["message"].as_str().unwrap();
    assert!(message.contains("password is wrong"), "{message}");
    assert!(
        !message.contains(wrong) && !message.contains(EMAIL),
        "{message}"
    );
    assert_eq!(fake.log().len(), 1, "the login, never retried");
    clock.advance(7 * 1440 * MIN);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(b.row()["state"], "stopped: fatal");
    assert_eq!(fake.log().len(), 1, "no request after a fatal error");
}

#[test]
fn a_429_waits_its_retry_after_with_no_request_meanwhile() {
    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(setup(&clock, &fake), &clock);
    fake.fault(Fault::TooMany(420));
    let row = b.step();
    assert_eq!(row["state"], "backing off", "{row}");
    assert_eq!(row["lastError"]["class"], "throttle");
    let at = clock.now_ms();
    assert_eq!(row["nextPoll"], at + 420_000, "{row}");
    let asked = fake.log().len();
    clock.set(at + 419_000);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(b.row()["state"], "backing off");
    assert_eq!(fake.log().len(), asked, "no request during the back-off");
    assert_eq!(b.step()["state"], "idle");
    assert_eq!(
        fake.log().len(),
        asked + 1,
        "the graph, with the same session"
    );
    assert_eq!(fake.count("/llu/auth/login"), 1);
}

#[test]
fn server_errors_and_timeouts_back_off_and_keep_the_session() {
    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(setup(&clock, &fake), &clock);
    fake.fault(Fault::ServerError);
    let row = b.step();
    assert_eq!(row["state"], "backing off", "{row}");
    assert_eq!(row["lastError"]["class"], "transient");
    let wait = row["nextPoll"].as_i64().unwrap() - clock.now_ms();
    assert!(
        (150_000..=165_000).contains(&wait),
        "half an interval: {wait}"
    );
    let asked = fake.log().len();
    clock.advance(wait - 1_000);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(fake.log().len(), asked, "no request during the back-off");
    assert_eq!(b.step()["state"], "idle");

    // No answer: the request's deadline runs on the clock.
    fake.fault(Fault::Hang);
    let graphs = fake.count("/graph");
    clock.set(b.row()["nextPoll"].as_i64().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while fake.count("/graph") == graphs {
        assert!(Instant::now() < deadline, "the graph was never asked");
        std::thread::sleep(Duration::from_millis(10));
    }
    clock.advance(30_000);
    let row = b.wait(|r| r["state"] == "backing off");
    assert_eq!(row["lastError"]["class"], "transient", "{row}");
    assert_eq!(b.step()["state"], "idle");
    assert_eq!(fake.count("/llu/auth/login"), 1, "errors keep the session");
}

#[test]
fn more_than_two_redirects_back_off_and_the_next_poll_logs_in() {
    let (clock, fake) = clock_and_fake();
    for _ in 0..3 {
        fake.fault(Fault::Redirect);
    }
    let b = Bridge::start(setup(&clock, &fake), &clock);
    let row = b.row();
    assert_eq!(row["state"], "backing off", "{row}");
    assert_eq!(row["lastError"]["class"], "transient");
    assert!(row["lastError"]["message"]
        .as_str()
        .unwrap()
        .contains("redirects"));
    assert_eq!(fake.log().len(), 3, "the login and two redirects, no more");
    let row = b.step();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(fake.count("/llu/auth/login"), 4);
    assert_eq!(counter(&row, "stored"), 49);
}

#[test]
fn a_restart_stores_nothing_new_and_no_reading_twice() {
    let (clock, fake) = clock_and_fake();
    let data = tempfile::tempdir().unwrap();
    let b = Bridge::start(setup(&clock, &fake).data_dir(data.path()), &clock);
    b.step();
    let before = b.entries(1000).len();
    drop(b);
    let b = Bridge::start(setup(&clock, &fake).data_dir(data.path()), &clock);
    let row = b.row();
    assert_eq!(fake.count("/llu/auth/login"), 2);
    assert_eq!(counter(&row, "stored"), 0, "{row}");
    assert!(counter(&row, "duplicates") >= 1, "{row}");
    let entries = b.entries(1000);
    assert_eq!(entries.len(), before);
    let mut dates: Vec<i64> = entries
        .iter()
        .map(|e| e["date"].as_i64().unwrap())
        .collect();
    dates.dedup();
    assert_eq!(dates.len(), before, "no reading twice");
}

#[test]
fn a_sensor_gives_one_sensor_start_and_a_device_status_per_state() {
    let (clock, fake) = clock_and_fake();
    let data = tempfile::tempdir().unwrap();
    // Activated 30 minutes ago, with a warm-up of an hour.
    let started = (clock.now_ms() - 30 * MIN) / 1000 * 1000;
    fake.sensor(started, 60);
    let b = Bridge::start(setup(&clock, &fake).data_dir(data.path()), &clock);
    let treatments = b.s.list("/api/v1/treatments.json?count=10");
    assert_eq!(treatments.len(), 1, "{treatments:?}");
    let t = &treatments[0];
    assert_eq!(t["eventType"], "Sensor Start");
    assert_eq!(t["created_at"], nightlite::dates::to_iso(started));
    assert_eq!(t["enteredBy"], "librelinkup");
    assert_eq!(
        t["identifier"],
        nightlite::ids::v3_identifier(Some("librelinkup"), started, Some("Sensor Start"))
    );
    let statuses = b.s.list("/api/v1/devicestatus.json?count=10");
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    let sensor = &statuses[0]["librelinkup"]["sensor"];
    assert_eq!(sensor["state"], "warming up", "{sensor}");
    assert_eq!(sensor["started"], nightlite::dates::to_iso(started));
    assert_eq!(sensor["warmupMinutes"], 60);
    assert_eq!(statuses[0]["device"], "librelinkup");
    let all = format!("{treatments:?}{statuses:?}");
    assert!(!all.contains("ABCDEF1234"), "no serial number is stored");

    // Polls through the end of the warm-up: one device status more, the treatment once.
    while clock.now_ms() < started + 70 * MIN {
        b.step();
    }
    assert_eq!(b.s.list("/api/v1/treatments.json?count=10").len(), 1);
    let statuses = b.s.list("/api/v1/devicestatus.json?count=10");
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert_eq!(statuses[0]["librelinkup"]["sensor"]["state"], "active");
    let ready = nightlite::dates::to_iso(started + 60 * MIN);
    assert_eq!(statuses[0]["created_at"], ready);
    drop(b);

    // A restart stores neither again.
    let b = Bridge::start(setup(&clock, &fake).data_dir(data.path()), &clock);
    assert_eq!(counter(&b.row(), "stored"), 0, "{}", b.row());
    assert_eq!(b.s.list("/api/v1/treatments.json?count=10").len(), 1);
    assert_eq!(b.s.list("/api/v1/devicestatus.json?count=10").len(), 2);
}

#[test]
fn logbook_readings_become_entries_with_their_arrows_read_once_an_hour() {
    let (clock, fake) = clock_and_fake();
    let t0 = clock.now_ms();
    // A scan 3 h ago and a low alarm 26 h ago (older than the graph), at whole seconds off the
    // graph's points; and an event without a reading.
    let scan = (t0 - 180 * MIN) / 1000 * 1000 + 7_000;
    let alarm = (t0 - 26 * 60 * MIN) / 1000 * 1000 + 11_000;
    let mut low = FakeLibre::item(alarm, Some(1));
    low["type"] = 2.into();
    low["alarmType"] = 0.into();
    fake.logbook(vec![
        FakeLibre::item(scan, Some(2)),
        low,
        serde_json::json!({"type": 3, "FactoryTimestamp": FakeLibre::stamp(t0 - MIN, 0)}),
    ]);
    let b = Bridge::start(setup(&clock, &fake), &clock);
    let row = b.row();
    assert_eq!(
        counter(&row, "stored"),
        51,
        "the graph's 49 and two events: {row}"
    );
    assert_eq!(fake.count("/logbook"), 1);
    let entries = b.entries(100);
    let at = |t: i64| {
        entries
            .iter()
            .find(|e| e["date"] == t)
            .unwrap_or_else(|| panic!("no entry at {t}"))
    };
    assert_eq!(at(scan)["direction"], "FortyFiveDown");
    assert_eq!(at(scan)["sgv"], FakeLibre::value_at(scan));
    assert_eq!(at(alarm)["direction"], "SingleDown");
    assert_eq!(at(alarm)["device"], "librelinkup");

    // Within the hour no logbook; after it, once more, and nothing stored twice.
    b.step();
    assert_eq!(fake.count("/logbook"), 1);
    while clock.now_ms() < t0 + 61 * MIN {
        b.step();
    }
    assert_eq!(fake.count("/logbook"), 2);
    let entries = b.entries(1000);
    let mut dates: Vec<i64> = entries
        .iter()
        .map(|e| e["date"].as_i64().unwrap())
        .collect();
    dates.sort_unstable();
    dates.dedup();
    assert_eq!(dates.len(), entries.len(), "no reading twice");
    assert_eq!(counter(&b.row(), "stored") as usize, entries.len());
}

/// The real binary at trace level, polling the fake: neither the log nor the status API holds
/// the password, the email, the session's token or the user id.
#[test]
fn the_libre_credentials_and_token_are_never_logged() {
    // The fake's readings at the real time, which the binary polls on.
    let fake = FakeLibre::start(&ManualClock::new(now_ms()));
    fake.fault(Fault::Expired);
    let p = Setup::new()
        .env("NIGHTLITE_LOG", "trace")
        .env("CONNECT_SOURCE", "linkup")
        .env("CONNECT_LINK_UP_USERNAME", EMAIL)
        .env("CONNECT_LINK_UP_PASSWORD", PASSWORD)
        .env("CONNECT_LINK_UP_SERVER", &fake.url())
        .spawn();
    let status = super::spawned_status(&p, |row| counter(row, "stored") > 0);
    // Two logins: the token the fake ended was used, then a second one.
    assert_eq!(fake.count("/llu/auth/login"), 2);
    let logs = p.logs();
    for secret in [PASSWORD, EMAIL, "eyJ.synthetic", USER_ID] {
        assert!(!logs.contains(secret), "{secret} is in the log");
        assert!(!status.contains(secret), "{secret} is in the status");
    }
    assert!(logs.contains("bridge started"), "the log was read: {logs}");
}
