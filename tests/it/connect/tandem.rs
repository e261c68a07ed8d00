//! Tandem Source against its fake (fake_tandem.rs), on the manual clock, across the end of US
//! daylight saving time (2026-11-01 06:00 UTC: 02:00 EDT becomes 01:00 EST).

use std::sync::Arc;

use nightlite::connect::{Clock, ManualClock};
use nightlite::dates::{parse_iso, to_iso};
use serde_json::Value;

use super::fake_http::Fake;
use super::fake_tandem::{Event, FakeTandem, Fault, EMAIL, HOUR, MIN, PASSWORD, ZONE};
use super::{counter, Bridge};
use crate::support::Setup;

fn ms(iso: &str) -> i64 {
    parse_iso(iso).unwrap().ms
}

/// A clock at 07:02 EST the morning the clocks went back; a fake with the 20 hours before,
/// and a suspension at 04:00 EST.
fn clock_and_fake() -> (Arc<ManualClock>, FakeTandem) {
    let t0 = ms("2026-11-01T12:02:00Z");
    let clock = ManualClock::new(t0);
    let fake = FakeTandem::start(
        &clock,
        t0 - 20 * HOUR,
        t0 + 6 * HOUR,
        ms("2026-11-01T09:00:00Z"),
    );
    (clock, fake)
}

fn setup(clock: &Arc<ManualClock>, fake: &FakeTandem, password: &str) -> Setup {
    Setup::new()
        .clock(clock)
        .env("CONNECT_SOURCE", "tandem")
        .env("CONNECT_TANDEM_EMAIL", EMAIL)
        .env("CONNECT_TANDEM_PASSWORD", password)
        .env("CONNECT_TANDEM_SERVER", &fake.url())
        .env("CONNECT_TANDEM_TIMEZONE", ZONE)
}

fn list(b: &Bridge, path: &str) -> Vec<Value> {
    let r =
        b.s.request("GET", path, &[("Authorization", &b.auth)], None);
    r.list()
}

fn entries(b: &Bridge) -> Vec<Value> {
    list(
        b,
        "/api/v1/entries.json?count=1000&find[date][$gte]=1790000000000",
    )
}

fn treatments(b: &Bridge) -> Vec<Value> {
    list(
        b,
        "/api/v1/treatments.json?count=1000&find[created_at][$gte]=2026-10-01",
    )
}

fn devicestatus(b: &Bridge) -> Vec<Value> {
    list(
        b,
        "/api/v1/devicestatus.json?count=100&find[created_at][$gte]=2026-10-01",
    )
}

fn of(events: &[Event], code: i64) -> Vec<Event> {
    events
        .iter()
        .filter(|e| e.body["eventCode"] == code)
        .cloned()
        .collect()
}

/// Documents per served event: readings, basals, bolus completions, suspends and resumes.
fn expected(served: &[Event]) -> (usize, usize) {
    let treatments = [279, 20, 11, 12].iter().map(|c| of(served, *c).len()).sum();
    (of(served, 399).len(), treatments)
}

fn at<'a>(docs: &'a [Value], key: &str, when: i64, kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d[key] == to_iso(when) && d["eventType"] == kind)
        .unwrap_or_else(|| panic!("no {kind} at {}", to_iso(when)))
}

#[test]
fn pump_events_become_entries_treatments_and_device_status_across_dst() {
    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(setup(&clock, &fake, PASSWORD), &clock);
    let row = b.row();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(row["device"], "tandem");

    // Login, PKCE authorization and exchange (the fake checks the verifier), then Source.
    let paths = fake.paths();
    assert_eq!(
        paths[..4],
        [
            "/accounts/api/login",
            "/accounts/api/connect/authorize",
            "/accounts/api/connect/token",
            "/api/reports/bff/pumper/5b1d2c3e-0000-4000-8000-00000000d0e1",
        ]
    );
    assert!(
        paths[4].starts_with("/api/reports/bff/pump-logs/8f00aa11"),
        "{paths:?}"
    );
    let log = fake.log();
    assert_eq!(
        log[1].param("code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(
        !log[2].raw.contains(PASSWORD),
        "the password only goes to the login"
    );
    assert!(log[2].raw.contains("code_verifier="));
    assert!(log[3]
        .header("authorization")
        .unwrap()
        .starts_with("Bearer access-"));

    let served = fake.served(clock.now_ms());
    let (n_entries, n_treatments) = expected(&served);
    let stored = entries(&b);
    let treatments = treatments(&b);
    assert_eq!((stored.len(), treatments.len()), (n_entries, n_treatments));

    // Readings on both sides of the change, at their true instants.
    for (when, offset) in [
        ("2026-10-31T20:00:00Z", -240),
        ("2026-11-01T08:00:00Z", -300),
    ] {
        let e = stored
            .iter()
            .find(|e| e["date"] == ms(when))
            .unwrap_or_else(|| panic!("no reading at {when}"));
        assert_eq!(e["sgv"], FakeTandem::value_at(ms(when)), "{e}");
        assert_eq!(e["utcOffset"], offset, "{e}");
        assert_eq!(e["device"], "tandem");
    }

    // Boluses reassembled: carbs and BG from the request, insulin from the completion.
    for (when, offset) in [
        ("2026-10-31T18:10:00Z", -240),
        ("2026-11-01T09:10:00Z", -300),
    ] {
        let request = of(&served, 64)
            .into_iter()
            .find(|e| e.at == ms(when))
            .unwrap();
        let carbs = request.body["eventProperties"]["carbAmount"]
            .as_i64()
            .unwrap();
        let kind = if carbs > 0 {
            "Meal Bolus"
        } else {
            "Correction Bolus"
        };
        let bolus = at(&treatments, "created_at", ms(when), kind);
        assert_eq!(bolus["insulin"].as_f64(), Some(2.25), "{bolus}");
        assert_eq!(
            bolus["carbs"].as_i64(),
            (carbs > 0).then_some(carbs),
            "{bolus}"
        );
        assert_eq!(
            (bolus["glucose"].as_i64(), bolus["utcOffset"].as_i64()),
            (Some(120), Some(offset))
        );
    }

    // Basal: milliunits/h as U/h, lasting until the next delivery.
    let t = ms("2026-11-01T07:00:00Z");
    let basal = at(&treatments, "created_at", t, "Temp Basal");
    let rate = FakeTandem::milliunits_at(t) as f64 / 1000.0;
    assert_eq!(
        (basal["absolute"].as_f64(), basal["duration"].as_i64()),
        (Some(rate), Some(5))
    );

    // Suspend and resume: a PumpMode span of 30 minutes; basals as TempBasal spans.
    at(
        &treatments,
        "created_at",
        ms("2026-11-01T09:00:00Z"),
        "Suspend Pump",
    );
    at(
        &treatments,
        "created_at",
        ms("2026-11-01T09:30:00Z"),
        "Resume Pump",
    );
    let spans = list(
        &b,
        "/api/v4/state-spans?from=2026-11-01T08:00:00Z&to=2026-11-01T10:00:00Z&category=PumpMode",
    );
    let suspended = spans
        .iter()
        .find(|s| s["state"] == "Suspended")
        .unwrap_or_else(|| panic!("{spans:?}"));
    assert_eq!(
        (
            suspended["startMills"].as_i64(),
            suspended["endMills"].as_i64()
        ),
        (
            Some(ms("2026-11-01T09:00:00Z")),
            Some(ms("2026-11-01T09:30:00Z"))
        )
    );
    let spans = list(
        &b,
        "/api/v4/state-spans?from=2026-11-01T07:00:00Z&to=2026-11-01T07:10:00Z&category=TempBasal",
    );
    let span = spans
        .iter()
        .find(|s| s["startMills"] == t)
        .unwrap_or_else(|| panic!("{spans:?}"));
    assert_eq!(span["endMills"], t + 5 * MIN);

    // Device status: the newest IOB, battery and insulin left.
    let ds = devicestatus(&b);
    assert_eq!(ds.len(), 1, "{ds:?}");
    let pump = &ds[0]["pump"];
    assert_eq!(pump["iob"]["iob"], 1.5, "{pump}");
    assert_eq!(
        (
            pump["battery"]["percent"].as_i64(),
            pump["battery"]["voltage"].as_f64()
        ),
        (Some(32), Some(3.9))
    );
    assert_eq!(pump["reservoir"], 119);
    assert_eq!(ds[0]["device"], "tandem");
}

#[test]
fn the_log_is_read_only_when_the_pump_moves_and_never_stores_twice() {
    let (clock, fake) = clock_and_fake();
    let data = tempfile::tempdir().unwrap();
    fake.freeze(clock.now_ms() - 30 * MIN);
    let b = Bridge::start(setup(&clock, &fake, PASSWORD).data_dir(data.path()), &clock);
    assert_eq!(
        fake.count("/pump-logs/8f00aa11-1111-4222-8333-444455556666"),
        1
    );
    // The pump has not uploaded since: the pumper is asked, its log is not.
    b.step();
    b.step();
    assert_eq!(
        fake.count("/api/reports/bff/pumper/5b1d2c3e-0000-4000-8000-00000000d0e1"),
        3
    );
    assert_eq!(
        fake.count("/pump-logs/8f00aa11-1111-4222-8333-444455556666"),
        1
    );
    assert_eq!(fake.logins(), 1);

    fake.thaw();
    let row = b.step();
    assert_eq!(
        fake.count("/pump-logs/8f00aa11-1111-4222-8333-444455556666"),
        2
    );
    assert!(
        counter(&row, "duplicates") > 0,
        "overlapping windows: {row}"
    );
    let served = fake.served(clock.now_ms());
    let counts = (entries(&b).len(), treatments(&b).len());
    assert_eq!(counts, expected(&served));
    drop(b);

    // A restart reads the log again (it cannot know it is unchanged) and stores nothing.
    let b = Bridge::start(setup(&clock, &fake, PASSWORD).data_dir(data.path()), &clock);
    let row = b.row();
    assert_eq!(counter(&row, "stored"), 0, "{row}");
    assert_eq!((entries(&b).len(), treatments(&b).len()), counts);
    assert_eq!(
        devicestatus(&b).len(),
        1,
        "no IOB, battery or insulin news since the first read: no second status"
    );
}

#[test]
fn refused_logins_are_fatal_and_api_faults_are_classified() {
    for (password, fault, words) in [
        ("wrong password", None, "email or password"),
        (
            PASSWORD,
            Some(Fault::Token("invalid_client")),
            "CONNECT_TANDEM_CLIENT_ID",
        ),
        (PASSWORD, Some(Fault::OtherIssuer), "issuer"),
    ] {
        let (clock, fake) = clock_and_fake();
        if let Some(f) = fault {
            fake.fault(f);
        }
        let b = Bridge::start(setup(&clock, &fake, password), &clock);
        assert_eq!(fake.logins(), 1, "never retried");
        b.assert_stopped_for_good(&fake, words, &[PASSWORD, EMAIL]);
    }

    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(setup(&clock, &fake, PASSWORD), &clock);
    // An expired token: one new login within the poll.
    fake.fault(Fault::Api(401));
    assert_eq!(b.step()["state"], "idle");
    assert_eq!(fake.logins(), 2);
    // The same, with that login answered 500: back off, log in at the next poll.
    fake.fault(Fault::Api(401));
    fake.fault(Fault::Login(500));
    let row = b.step();
    assert_eq!(row["lastError"]["class"], "transient", "{row}");
    assert_eq!(b.step()["state"], "idle");
    assert_eq!(fake.logins(), 4);
    // A server error and the firewall: transient, the session kept.
    for status in [500, 403] {
        fake.fault(Fault::Api(status));
        b.assert_transient_once(status);
    }
    assert_eq!(fake.logins(), 4);
}

/// The real binary at trace level through a whole login and read: neither the log nor the
/// status API shows the password, the session cookie, the code, the verifier or the tokens.
#[test]
fn no_secret_of_the_login_is_logged_or_shown() {
    let now = crate::support::now_ms();
    let clock = ManualClock::new(now);
    let fake = FakeTandem::start(&clock, now - 6 * HOUR, now, now - 2 * HOUR);
    let p = Setup::new()
        .env("NIGHTLITE_LOG", "trace")
        .env("CONNECT_SOURCE", "tandem")
        .env("CONNECT_TANDEM_EMAIL", EMAIL)
        .env("CONNECT_TANDEM_PASSWORD", PASSWORD)
        .env("CONNECT_TANDEM_SERVER", &fake.url())
        .env("CONNECT_TANDEM_TIMEZONE", ZONE)
        .spawn();
    let status = super::spawned_status(&p, |row| row["lastSuccess"].is_i64());
    let log = fake.log();
    let verifier = log[2]
        .raw
        .split('&')
        .find_map(|kv| kv.strip_prefix("code_verifier="))
        .unwrap()
        .to_string();
    let logs = p.logs();
    assert!(logs.contains("bridge started"), "{logs}");
    for secret in [
        PASSWORD,
        "tdc_session=tdc1",
        "code-1",
        "access-1",
        verifier.as_str(),
    ] {
        assert!(!logs.contains(secret), "{secret} is in the log");
        assert!(!status.contains(secret), "{secret} is in the status");
    }
    assert!(!status.contains(EMAIL), "{status}");
}
