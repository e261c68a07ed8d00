//! Glooko against its fake (fake_glooko.rs), on the manual clock, across the end of US
//! daylight saving time (2026-11-01 06:00 UTC: 02:00 EDT becomes 01:00 EST).

use std::sync::Arc;

use nightlite::connect::{Clock, ManualClock};
use nightlite::dates::parse_iso;
use serde_json::Value;

use super::fake_glooko::{FakeGlooko, Fault, Record, EMAIL, HOUR, PASSWORD, ZONE};
use super::fake_http::Fake;
use super::{counter, Bridge};
use crate::support::Setup;

fn ms(iso: &str) -> i64 {
    parse_iso(iso).unwrap().ms
}

/// A clock at 07:02 EST the morning the clocks went back, and a fake with the 30 hours before.
fn clock_and_fake() -> (Arc<ManualClock>, FakeGlooko) {
    let t0 = ms("2026-11-01T12:02:00Z");
    let clock = ManualClock::new(t0);
    let fake = FakeGlooko::start(&clock, t0 - 30 * HOUR, t0 + 6 * HOUR);
    (clock, fake)
}

fn setup(clock: &Arc<ManualClock>, fake: &FakeGlooko, password: &str) -> Setup {
    Setup::new()
        .clock(clock)
        .env("CONNECT_SOURCE", "glooko")
        .env("CONNECT_GLOOKO_EMAIL", EMAIL)
        .env("CONNECT_GLOOKO_PASSWORD", password)
        .env("CONNECT_GLOOKO_SERVER", &fake.url())
        .env("CONNECT_GLOOKO_TIMEZONE", ZONE)
}

fn treatments(b: &Bridge) -> Vec<Value> {
    b.s.list("/api/v1/treatments.json?count=1000&find[created_at][$gte]=2026-10-01")
}

fn entries(b: &Bridge) -> Vec<Value> {
    b.s.list("/api/v1/entries.json?count=1000&find[date][$gte]=1790000000000")
}

fn of(records: &[Record], list: &str) -> Vec<Record> {
    records.iter().filter(|r| r.list == list).cloned().collect()
}

fn by_identifier<'a>(docs: &'a [Value], guid: &Value) -> &'a Value {
    docs.iter()
        .find(|d| d["identifier"] == *guid)
        .unwrap_or_else(|| panic!("no document with identifier {guid}"))
}

#[test]
fn lists_become_treatments_and_entries_at_their_true_times_across_dst() {
    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(setup(&clock, &fake, PASSWORD), &clock);
    let row = b.row();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(row["device"], "glooko");

    // The sign-in, then five lists with the cookie, the patient code and the web origin.
    let log = fake.log();
    assert_eq!(log[0].path, "/api/v2/users/sign_in");
    assert_eq!(log[0].body["userLogin"]["email"], EMAIL);
    assert_eq!(log.len(), 6, "{:?}", fake.paths());
    for r in &log[1..] {
        assert!(
            r.header("cookie")
                .unwrap()
                .contains("_logbook-web_session=sess1"),
            "{r:?}"
        );
        assert_eq!(r.param("patient").unwrap(), fake.code());
        assert!(r.header("origin").is_some());
        assert!(r.param("lastGuid").is_some() && r.param("limit").is_some());
    }

    let served = fake.served(clock.now_ms());
    let readings = of(&served, "readings");
    let stored = entries(&b);
    assert_eq!(stored.len(), readings.len());
    let treatments = treatments(&b);
    assert_eq!(treatments.len(), served.len() - readings.len());
    assert_eq!(
        counter(&row, "stored"),
        served.len() as i64,
        "every record once: {row}"
    );

    // Readings on both sides of the change: the true instant, the zone's offset then.
    for (at, offset) in [
        ("2026-10-31T16:00:00Z", -240),
        ("2026-11-01T08:00:00Z", -300),
    ] {
        let r = readings.iter().find(|r| r.at == ms(at)).unwrap();
        let e = by_identifier(&stored, &r.body["guid"]);
        assert_eq!(e["date"], ms(at), "{e}");
        assert_eq!(e["sgv"], FakeGlooko::value_at(ms(at)), "{e}");
        assert_eq!(e["utcOffset"], offset, "{e}");
        assert_eq!(e["dateString"], nightlite::dates::to_iso(ms(at)), "{e}");
        assert_eq!(e["device"], "glooko");
    }

    // Boluses before and after the change, with carbs or without.
    for (list, at, offset) in [
        ("normalBoluses", "2026-10-31T15:10:00Z", -240),
        ("normalBoluses", "2026-11-01T09:10:00Z", -300),
        ("scheduledBasals", "2026-11-01T04:00:00Z", -240),
        ("scheduledBasals", "2026-11-01T07:00:00Z", -300),
        ("foods", "2026-10-31T18:20:00Z", -240),
        ("insulins", "2026-10-31T12:40:00Z", -240),
    ] {
        let r = of(&served, list)
            .into_iter()
            .find(|r| r.at == ms(at))
            .unwrap_or_else(|| panic!("{list} at {at}"));
        let t = by_identifier(&treatments, &r.body["guid"]);
        assert_eq!(t["created_at"], nightlite::dates::to_iso(ms(at)), "{t}");
        assert_eq!(t["utcOffset"], offset, "{t}");
        assert_eq!(t["enteredBy"], "glooko");
        match list {
            "normalBoluses" => {
                assert_eq!(t["insulin"], 2.5);
                let carbs = r.body["carbsInput"].as_i64().unwrap();
                if carbs > 0 {
                    assert_eq!(
                        (t["eventType"].as_str(), t["carbs"].as_i64()),
                        (Some("Meal Bolus"), Some(carbs))
                    );
                } else {
                    assert_eq!(t["eventType"], "Correction Bolus", "{t}");
                }
            }
            "scheduledBasals" => {
                assert_eq!(t["eventType"], "Temp Basal");
                assert_eq!(t["absolute"], FakeGlooko::rate_at(ms(at)));
                assert_eq!(t["duration"], 60);
            }
            "foods" => {
                assert_eq!(
                    (t["eventType"].as_str(), t["carbs"].as_i64()),
                    (Some("Carb Correction"), Some(15))
                );
                assert_eq!(t["notes"], "apple");
            }
            _ => assert_eq!(
                (t["eventType"].as_str(), t["insulin"].as_i64()),
                (Some("Correction Bolus"), Some(4))
            ),
        }
    }

    // The scheduled basals are temp-basal spans, one after the other.
    let r = b.s.request(
        "GET",
        "/api/v4/state-spans?from=2026-11-01T00:00:00Z&to=2026-11-01T03:00:00Z&category=TempBasal",
        &[("Authorization", &b.auth)],
        None,
    );
    let spans = r.list();
    let at = ms("2026-11-01T01:00:00Z");
    let span = spans
        .iter()
        .find(|s| s["startMills"] == at)
        .unwrap_or_else(|| panic!("{spans:?}"));
    assert_eq!(span["category"], "TempBasal");
    assert_eq!(span["endMills"], at + HOUR, "{span}");
    assert_eq!(
        span["metadata"]["absolute"],
        FakeGlooko::rate_at(at),
        "{span}"
    );
}

#[test]
fn re_runs_and_a_restart_store_every_record_once() {
    let (clock, fake) = clock_and_fake();
    let data = tempfile::tempdir().unwrap();
    let b = Bridge::start(setup(&clock, &fake, PASSWORD).data_dir(data.path()), &clock);
    for _ in 0..3 {
        b.step();
    }
    let row = b.row();
    assert_eq!(fake.sign_ins(), 1, "one session for every poll");
    let served = fake.served(clock.now_ms());
    assert!(
        served.len() > fake.served(clock.now_ms() - 10 * 60_000).len(),
        "new records came"
    );
    assert_eq!(counter(&row, "stored"), served.len() as i64, "{row}");
    assert!(
        counter(&row, "duplicates") > 0,
        "overlapping windows: {row}"
    );
    let n = (entries(&b).len(), treatments(&b).len());
    assert_eq!(n.0 + n.1, served.len());
    drop(b);

    let b = Bridge::start(setup(&clock, &fake, PASSWORD).data_dir(data.path()), &clock);
    let row = b.row();
    assert_eq!(fake.sign_ins(), 2);
    assert_eq!(counter(&row, "stored"), 0, "{row}");
    assert!(counter(&row, "duplicates") > 0, "{row}");
    assert_eq!((entries(&b).len(), treatments(&b).len()), n);
}

#[test]
fn a_refused_sign_in_stops_the_source_without_another_request() {
    for (password, fault, words) in [
        ("wrong password", None, "email or password"),
        (PASSWORD, Some(Fault::SignIn(422)), "422"),
        (PASSWORD, Some(Fault::SignIn(403)), "email or password"),
    ] {
        let (clock, fake) = clock_and_fake();
        if let Some(f) = fault {
            fake.fault(f);
        }
        let b = Bridge::start(setup(&clock, &fake, password), &clock);
        assert_eq!(fake.log().len(), 1, "the sign-in, never retried");
        b.assert_stopped_for_good(&fake, words, &[PASSWORD, EMAIL]);
    }
}

#[test]
fn a_changed_patient_code_signs_in_again_and_list_faults_back_off() {
    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(setup(&clock, &fake, PASSWORD), &clock);
    // 403 data_cant_view with the old code: one new sign-in reads the new code.
    fake.change_code();
    let row = b.step();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(fake.sign_ins(), 2);
    let last = fake.log().into_iter().last().unwrap();
    assert_eq!(last.param("patient").unwrap(), fake.code());

    // 432: transient, the session kept.
    fake.fault(Fault::List(432));
    let row = b.step();
    assert_eq!(row["state"], "backing off", "{row}");
    assert_eq!(row["lastError"]["class"], "transient");
    assert!(row["lastError"]["message"]
        .as_str()
        .unwrap()
        .contains("432"));
    assert_eq!(b.step()["state"], "idle");
    assert_eq!(fake.sign_ins(), 2, "a 432 keeps the session");

    // 422 on a list: a throttle.
    fake.fault(Fault::List(422));
    let row = b.step();
    assert_eq!(row["lastError"]["class"], "throttle", "{row}");
    assert_eq!(b.step()["state"], "idle");

    // A session refused twice: one new sign-in, then back-off.
    fake.fault(Fault::List(401));
    fake.fault(Fault::List(401));
    let row = b.step();
    assert_eq!(row["lastError"]["class"], "auth", "{row}");
    assert_eq!(fake.sign_ins(), 3);
    assert_eq!(b.step()["state"], "idle");
}

/// The real binary at trace level through a sign-in and a read: neither the log nor the
/// status API shows the password, the session cookie or the patient code.
#[test]
fn no_secret_of_the_session_is_logged_or_shown() {
    let now = crate::support::now_ms();
    let clock = ManualClock::new(now);
    let fake = FakeGlooko::start(&clock, now - 6 * HOUR, now);
    let p = Setup::new()
        .env("NIGHTLITE_LOG", "trace")
        .env("CONNECT_SOURCE", "glooko")
        .env("CONNECT_GLOOKO_EMAIL", EMAIL)
        .env("CONNECT_GLOOKO_PASSWORD", PASSWORD)
        .env("CONNECT_GLOOKO_SERVER", &fake.url())
        .env("CONNECT_GLOOKO_TIMEZONE", ZONE)
        .spawn();
    let status = super::spawned_status(&p, |row| row["lastSuccess"].is_i64());
    assert!(fake.log().len() > 1, "signed in and read");
    let logs = p.logs();
    assert!(logs.contains("bridge started"), "{logs}");
    for secret in [
        PASSWORD,
        "_logbook-web_session=sess1",
        fake.code().as_str(),
        EMAIL,
    ] {
        assert!(!logs.contains(secret), "{secret} is in the log");
        assert!(!status.contains(secret), "{secret} is in the status");
    }
}
