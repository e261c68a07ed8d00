//! Dexcom Share faults the first tests (mod.rs) leave out: a document the store refuses, a
//! reading dated in the future, a password that stops working while the bridge runs, no
//! request during a back-off after server errors, and a 429 at login.

use nightlite::connect::Clock;
use serde_json::json;

use super::fake_dexcom::{Fault, MIN, PASSWORD};
use super::{clock_and_fake, counter, setup, Bridge, DAY};

#[test]
fn a_refused_reading_is_counted_and_reported_and_the_others_are_stored() {
    let (clock, fake) = clock_and_fake();
    // A record dated after JavaScript's last date (year 275,760): the store refuses it.
    fake.serve_also(
        json!({"WT": "Date(9000000000000000)", "DT": "Date(9000000000000000)",
        "Value": 120, "Trend": "Flat"}),
    );
    let b = Bridge::start(setup(&clock, &fake, PASSWORD), &clock);
    let row = b.row();
    assert_eq!(row["state"], "idle", "the poll succeeds: {row}");
    assert!(row["lastSuccess"].is_i64(), "{row}");
    assert_eq!(counter(&row, "stored"), 288, "{row}");
    assert_eq!(counter(&row, "refused"), 1, "{row}");
    assert_eq!(row["lastError"]["class"], "refused", "{row}");
    let message = row["lastError"]["message"].as_str().unwrap();
    assert!(message.contains("date"), "{message}");
    assert!(!message.contains(PASSWORD), "{message}");
    assert_eq!(b.entries(400).len(), 288);
    // The next poll follows the stored readings, not the refused date.
    let newest = fake.readings_until(clock.now_ms())[0];
    let next = row["nextPoll"].as_i64().unwrap();
    assert!(next <= newest + 5 * MIN + 36_000, "{row}");

    // And goes on: one more stored, one more refusal, the same session.
    let row = b.step();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(counter(&row, "stored"), 289, "{row}");
    assert_eq!(counter(&row, "refused"), 2, "{row}");
    assert_eq!(fake.logins(), 1);
    assert_eq!(b.entries(400).len(), 289);
}

#[test]
fn a_password_changed_while_running_stops_the_source_at_the_next_login() {
    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(setup(&clock, &fake, PASSWORD), &clock);
    // The session ends and the account's password was changed meanwhile.
    fake.end_sessions();
    fake.fail_login(Fault::Code("AccountPasswordInvalid"));
    let row = b.step();
    assert_eq!(row["state"], "stopped: fatal", "{row}");
    assert_eq!(row["lastError"]["class"], "fatal");
    assert_eq!(row["nextPoll"], serde_json::Value::Null);
    assert_eq!(fake.logins(), 2, "one login after the session ended");
    let asked = fake.log().len();
    clock.advance(7 * DAY);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(b.row()["state"], "stopped: fatal");
    assert_eq!(fake.log().len(), asked, "no request after a fatal error");
}

#[test]
fn no_request_during_the_back_off_after_server_errors() {
    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(setup(&clock, &fake, PASSWORD), &clock);
    fake.fail_read(Fault::Code("InternalServerError"));
    fake.fail_read(Fault::BadGateway);
    for _ in 0..2 {
        let row = b.step();
        assert_eq!(row["state"], "backing off", "{row}");
        let next = row["nextPoll"].as_i64().unwrap();
        let asked = fake.log().len();
        clock.set(next - 1_000);
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(b.row()["state"], "backing off");
        assert_eq!(fake.log().len(), asked, "a request during the back-off");
    }
    assert_eq!(b.step()["state"], "idle");
    assert_eq!(fake.logins(), 1, "server errors keep the session");
}

#[test]
fn a_reading_dated_in_the_future_does_not_stall_the_bridge() {
    let (clock, fake) = clock_and_fake();
    // A receiver clock a year ahead: stored (it is a valid document), but the next polls must
    // neither wait for that date nor fetch from it.
    let ahead = clock.now_ms() + 365 * DAY;
    fake.serve_also(json!({"WT": format!("Date({ahead})"), "Value": 120, "Trend": "Flat"}));
    let b = Bridge::start(setup(&clock, &fake, PASSWORD), &clock);
    let row = b.row();
    assert_eq!(counter(&row, "stored"), 289, "{row}");
    let next = row["nextPoll"].as_i64().unwrap();
    assert!(next <= clock.now_ms() + 5 * MIN + 36_000, "{row}");
    let t0 = clock.now_ms();
    b.step();
    // A failed poll: the next one fetches what it missed, from the stored readings on.
    fake.fail_read(Fault::BadGateway);
    assert_eq!(b.step()["state"], "backing off");
    for _ in 0..3 {
        b.step();
    }
    let stored: Vec<i64> = b
        .entries(1000)
        .iter()
        .map(|e| e["date"].as_i64().unwrap())
        .collect();
    let new = fake.readings_until(clock.now_ms());
    let new: Vec<&i64> = new.iter().filter(|t| **t > t0 - 5 * MIN).collect();
    assert!(new.len() >= 4, "{new:?}");
    for t in new {
        assert!(stored.contains(t), "the reading at {t} was never fetched");
    }
}

#[test]
fn a_429_at_login_waits_its_retry_after_then_logs_in_once() {
    let (clock, fake) = clock_and_fake();
    fake.fail_login(Fault::TooMany(300));
    let b = Bridge::start(setup(&clock, &fake, PASSWORD), &clock);
    let row = b.row();
    assert_eq!(row["state"], "backing off", "{row}");
    assert_eq!(row["lastError"]["class"], "throttle");
    assert_eq!(row["nextPoll"], clock.now_ms() + 300_000, "{row}");
    clock.advance(299_000);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(fake.log().len(), 1, "no request during the back-off");
    let row = b.step();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(fake.logins(), 2);
    assert_eq!(counter(&row, "stored"), 288);
}
