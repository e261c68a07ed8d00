//! LibreLinkUp against its fake (fake_libre.rs), on the manual clock.

use std::sync::Arc;

use nightlite::connect::{Clock, ManualClock};
use serde_json::Value;

use super::fake_http::Fake;
use super::fake_libre::{FakeLibre, Fault, EMAIL, MIN, PASSWORD};
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
