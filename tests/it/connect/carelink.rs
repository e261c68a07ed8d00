//! Medtronic CareLink against its fake (fake_carelink.rs), on the manual clock: the imported
//! token file, its refresh and write-back, the v13 display/message into the three
//! collections at their true times, and the faults.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nightlite::connect::{Clock, ManualClock};
use nightlite::dates::parse_iso;
use serde_json::Value;

use super::fake_carelink::{FakeCarelink, Fault, HOUR, MAG, MIN, PATIENT, USERNAME};
use super::fake_http::Fake;
use super::{counter, Bridge};
use crate::support::Setup;

fn ms(iso: &str) -> i64 {
    parse_iso(iso).unwrap().ms
}

/// A clock at 12:02 UTC (13:02 on the pump), a fake, and a token file the login tool wrote.
fn clock_fake_file() -> (Arc<ManualClock>, FakeCarelink, tempfile::TempDir) {
    let clock = ManualClock::new(ms("2026-01-10T12:02:00Z"));
    let fake = FakeCarelink::start(&clock);
    let dir = tempfile::tempdir().unwrap();
    write_file(&login_path(&dir), &fake.login_file());
    (clock, fake, dir)
}

fn login_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("logindata.json")
}

fn write_file(path: &Path, v: &Value) {
    std::fs::write(path, v.to_string()).unwrap();
}

fn read_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn setup(clock: &Arc<ManualClock>, fake: &FakeCarelink, file: &Path) -> Setup {
    Setup::new()
        .clock(clock)
        .env("CONNECT_SOURCE", "minimedcarelink")
        .env("CONNECT_CARELINK_USERNAME", USERNAME)
        .env("CONNECT_CARELINK_LOGIN_FILE", file.to_str().unwrap())
        .env("CONNECT_CARELINK_SERVER", &fake.url())
}

fn entries(b: &Bridge) -> Vec<Value> {
    b.s.list("/api/v1/entries.json?count=2000&find[date][$gte]=1767000000000")
}

fn treatments(b: &Bridge) -> Vec<Value> {
    b.s.list("/api/v1/treatments.json?count=1000&find[created_at][$gte]=2026-01-01")
}

fn statuses(b: &Bridge) -> Vec<Value> {
    b.s.list("/api/v1/devicestatus.json?count=1000&find[created_at][$gte]=2026-01-01")
}

fn created(t: &Value) -> i64 {
    ms(t["created_at"].as_str().unwrap())
}

/// Every identifier once.
fn assert_unique(docs: &[Value]) {
    let mut ids: Vec<&str> = docs
        .iter()
        .map(|d| d["identifier"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "duplicate identifiers");
}

#[test]
fn the_display_message_becomes_entries_treatments_and_a_status_at_true_times() {
    let (clock, fake, dir) = clock_fake_file();
    let b = Bridge::start(setup(&clock, &fake, &login_path(&dir)), &clock);
    let row = b.row();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(
        (fake.reads(), fake.refreshes()),
        (1, 0),
        "a live token needs no refresh"
    );
    let read = fake.log().into_iter().last().unwrap();
    assert_eq!(read.body["username"], USERNAME);
    assert_eq!(read.body["role"], "patient");
    assert_eq!(read.header("mag-identifier"), Some(MAG));
    assert!(read
        .header("authorization")
        .unwrap()
        .starts_with("Bearer ey"));

    // Readings: the pump's wall clock with a fake Z, stored at the true instant (an hour
    // earlier) with the pump's offset.
    let times = FakeCarelink::reading_times(clock.now_ms());
    let e = entries(&b);
    assert_eq!(e.len(), times.len());
    for (doc, t) in e.iter().rev().zip(&times) {
        assert_eq!(doc["date"].as_i64(), Some(*t), "{doc}");
        assert_eq!(
            doc["sgv"].as_i64(),
            Some(FakeCarelink::value_at(*t)),
            "{doc}"
        );
        assert_eq!(doc["utcOffset"].as_i64(), Some(60), "{doc}");
        assert_eq!(doc["device"], "carelink");
    }
    assert_eq!(
        e[0]["direction"], "SingleUp",
        "the newest has CareLink's trend"
    );
    assert!(e[1].get("direction").is_none(), "{}", e[1]);

    // Markers: a bolus with its meal at :10 every 3 hours, a finger stick at :40 every 6.
    let t = treatments(&b);
    let meals: Vec<&Value> = t
        .iter()
        .filter(|d| d["eventType"] == "Meal Bolus")
        .collect();
    let bolus_times: Vec<i64> = times
        .iter()
        .copied()
        .filter(|t| t % (3 * HOUR) == 10 * MIN)
        .collect();
    assert_eq!(meals.len(), bolus_times.len(), "{t:?}");
    for m in &meals {
        assert!(bolus_times.contains(&created(m)), "{m}");
        assert_eq!(
            (m["insulin"].as_f64(), m["carbs"].as_i64()),
            (Some(2.5), Some(30))
        );
        assert_eq!(m["utcOffset"].as_i64(), Some(60), "{m}");
    }
    let checks: Vec<&Value> = t.iter().filter(|d| d["eventType"] == "BG Check").collect();
    let check_times: Vec<i64> = times
        .iter()
        .copied()
        .filter(|t| t % (6 * HOUR) == 40 * MIN)
        .collect();
    assert_eq!(checks.len(), check_times.len());
    assert!(checks
        .iter()
        .all(|c| check_times.contains(&created(c)) && c["glucose"].as_i64() == Some(110)));
    assert_eq!(t.len(), meals.len() + checks.len(), "nothing else: {t:?}");

    // The pump's state as of the upload's server time.
    let s = statuses(&b);
    assert_eq!(s.len(), 1, "{s:?}");
    let s = &s[0];
    assert_eq!(created(s), FakeCarelink::upload_at(clock.now_ms()), "{s}");
    assert_eq!(s["pump"]["battery"]["percent"].as_i64(), Some(75), "{s}");
    assert_eq!(s["pump"]["reservoir"].as_i64(), Some(120));
    assert_eq!(s["pump"]["iob"]["bolusiob"].as_f64(), Some(1.3));
    assert_eq!(s["uploader"]["battery"].as_i64(), Some(90));
    assert_eq!(s["connect"]["sensorState"], "NORMAL");
    assert_eq!(s["connect"]["medicalDeviceFamily"], "NGP");
}

#[test]
fn the_rotated_refresh_token_is_written_back_and_a_restart_stores_nothing_twice() {
    let (clock, fake, dir) = clock_fake_file();
    let file = login_path(&dir);
    let data = tempfile::tempdir().unwrap();
    let start = clock.now_ms();
    let b = Bridge::start(setup(&clock, &fake, &file).data_dir(data.path()), &clock);
    // The access token lives an hour: refreshed once when less than 10 minutes are left.
    while clock.now_ms() < start + 55 * MIN {
        assert_eq!(b.step()["state"], "idle");
    }
    assert_eq!(fake.refreshes(), 1);
    let written = read_file(&file);
    assert_eq!(written["refresh_token"], fake.refresh_token().as_str());
    assert_ne!(written["refresh_token"], "synthetic-refresh-0", "rotated");
    assert_eq!(written["mag-identifier"], MAG, "every other field kept");
    assert!(written["token_url"]
        .as_str()
        .unwrap()
        .ends_with("/oauth/token"));

    let first = FakeCarelink::reading_times(start)[0];
    let distinct = |now: i64| ((now / (5 * MIN) * (5 * MIN) - first) / (5 * MIN) + 1) as usize;
    let n = (entries(&b).len(), treatments(&b).len(), statuses(&b).len());
    assert_eq!(n.0, distinct(clock.now_ms()), "each reading once");
    assert_unique(&treatments(&b));
    assert_unique(&statuses(&b));
    assert!(counter(&b.row(), "duplicates") > 0, "overlapping replies");
    drop(b);

    // A restart when the token is near its end again: it refreshes with the rotated token
    // from the file (the first one is refused by now) and stores each record once.
    clock.advance(50 * MIN);
    let b = Bridge::start(setup(&clock, &fake, &file).data_dir(data.path()), &clock);
    let row = b.row();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(fake.refreshes(), 2);
    assert_eq!(entries(&b).len(), distinct(clock.now_ms()));
    assert_unique(&treatments(&b));
    assert!(treatments(&b).len() >= n.1);
    assert_eq!(statuses(&b).len(), n.2 + 1);
}

/// The pump's clock goes back an hour (2026-10-25 01:00 UTC, 03:00 CEST becomes 02:00 CET):
/// readings fetched before the change and again after it keep their true times.
#[test]
fn readings_keep_their_true_times_across_a_dst_change() {
    let clock = ManualClock::new(ms("2026-10-24T23:02:00Z"));
    let fake = FakeCarelink::start(&clock);
    let dir = tempfile::tempdir().unwrap();
    write_file(&login_path(&dir), &fake.login_file());
    let start = clock.now_ms();
    let b = Bridge::start(setup(&clock, &fake, &login_path(&dir)), &clock);
    while clock.now_ms() < start + 4 * HOUR {
        assert_eq!(b.step()["state"], "idle");
    }
    let mut served: Vec<i64> = FakeCarelink::reading_times(start);
    served.extend(FakeCarelink::reading_times(clock.now_ms()));
    served.sort_unstable();
    served.dedup();
    let e = entries(&b);
    let mut dates: Vec<i64> = e.iter().map(|d| d["date"].as_i64().unwrap()).collect();
    dates.sort_unstable();
    assert_eq!(dates, served, "each reading once, at its true time");
    let change = ms("2026-10-25T01:00:00Z");
    for d in &e {
        let t = d["date"].as_i64().unwrap();
        assert_eq!(d["sgv"].as_i64(), Some(FakeCarelink::value_at(t)), "{d}");
        let offset = if t < change { 120 } else { 60 };
        assert_eq!(d["utcOffset"].as_i64(), Some(offset), "{d}");
    }
    let mut at: Vec<i64> = treatments(&b).iter().map(created).collect();
    at.sort_unstable();
    let expected: Vec<i64> = served
        .iter()
        .copied()
        .filter(|t| t % (3 * HOUR) == 10 * MIN || t % (6 * HOUR) == 40 * MIN)
        .collect();
    assert_eq!(at, expected, "each marker once, at its true time");
}

#[test]
fn a_failed_write_back_keeps_the_new_tokens_and_writes_them_later() {
    let (clock, fake, dir) = clock_fake_file();
    let file = login_path(&dir);
    let start = clock.now_ms();
    let b = Bridge::start(setup(&clock, &fake, &file), &clock);
    // The temporary file cannot be made (a directory has its name), whoever runs the test.
    let blocker = dir.path().join("logindata.json.nightlite-new");
    std::fs::create_dir(&blocker).unwrap();
    while fake.refreshes() == 0 {
        assert_eq!(
            b.step()["state"],
            "idle",
            "the refresh worked, only its write failed"
        );
    }
    assert_eq!(read_file(&file)["refresh_token"], "synthetic-refresh-0");
    // The rotated tokens in memory go on working (the file's refresh token is refused by
    // now: using it would stop the source), and are written as soon as it can be.
    b.step();
    assert_eq!(b.row()["state"], "idle");
    std::fs::remove_dir(&blocker).unwrap();
    while clock.now_ms() < start + 80 * MIN {
        assert_eq!(b.step()["state"], "idle");
    }
    assert_eq!(fake.refreshes(), 1);
    assert_eq!(
        read_file(&file)["refresh_token"],
        fake.refresh_token().as_str()
    );
}

#[test]
fn a_401_refreshes_once_and_a_refused_refresh_stops_the_source() {
    let (clock, fake, dir) = clock_fake_file();
    let b = Bridge::start(setup(&clock, &fake, &login_path(&dir)), &clock);

    // 401: one refresh, the data read again.
    fake.fault(Fault::Data(401));
    let reads = fake.reads();
    let row = b.step();
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!((fake.refreshes(), fake.reads()), (1, reads + 2));

    // 403 and 5xx on the data: transient, the token kept.
    for status in [403, 502] {
        fake.fault(Fault::Data(status));
        b.assert_transient_once(status);
    }
    assert_eq!(fake.refreshes(), 1);

    // 401 and the refresh refused: fatal, with what to do, and no request after it.
    fake.fault(Fault::Data(401));
    fake.fault(Fault::Refresh(403));
    b.step();
    assert_eq!(fake.refreshes(), 2);
    let secrets = fake.secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    b.assert_stopped_for_good(&fake, "log in again", &secrets);
}

#[test]
fn a_care_partner_reads_the_patient_it_follows() {
    let (clock, fake, dir) = clock_fake_file();
    let setup =
        setup(&clock, &fake, &login_path(&dir)).env("CONNECT_CARELINK_PATIENT_USERNAME", PATIENT);
    let b = Bridge::start(setup, &clock);
    assert_eq!(b.row()["state"], "idle");
    let read = fake.log().into_iter().last().unwrap();
    assert_eq!(read.body["username"], USERNAME);
    assert_eq!(read.body["role"], "carepartner");
    assert_eq!(read.body["patientId"], PATIENT);
    assert!(read.body["appVersion"].is_string(), "{}", read.body);
}

#[test]
fn a_missing_token_file_stops_the_source_with_what_to_do() {
    let (clock, fake, dir) = clock_fake_file();
    let b = Bridge::start(
        setup(&clock, &fake, &dir.path().join("nothing-here.json")),
        &clock,
    );
    assert!(fake.log().is_empty());
    b.assert_stopped_for_good(&fake, "login tool", &[]);
}

/// The real binary at trace level through a refresh and a read: neither the log nor the
/// status API shows an access or refresh token.
#[test]
fn no_token_is_logged_or_shown() {
    let clock = ManualClock::new(crate::support::now_ms());
    let fake = FakeCarelink::start(&clock);
    let dir = tempfile::tempdir().unwrap();
    let mut file = fake.login_file();
    // Two minutes left: refreshed at once.
    let stale = super::fake_carelink::jwt(99, clock.now_ms() + 2 * MIN);
    file["access_token"] = stale.clone().into();
    write_file(&login_path(&dir), &file);
    let p = Setup::new()
        .env("NIGHTLITE_LOG", "trace")
        .env("CONNECT_SOURCE", "minimedcarelink")
        .env("CONNECT_CARELINK_USERNAME", USERNAME)
        .env(
            "CONNECT_CARELINK_LOGIN_FILE",
            login_path(&dir).to_str().unwrap(),
        )
        .env("CONNECT_CARELINK_SERVER", &fake.url())
        .spawn();
    let status = super::spawned_status(&p, |row| row["lastSuccess"].is_i64());
    assert_eq!((fake.refreshes(), fake.reads()), (1, 1));
    let logs = p.logs();
    assert!(logs.contains("bridge started"), "{logs}");
    let mut secrets = fake.secrets();
    secrets.push(stale);
    secrets.push(super::fake_carelink::CLIENT_ID.into());
    secrets.push(MAG.into());
    for secret in &secrets {
        assert!(!logs.contains(secret.as_str()), "{secret} is in the log");
        assert!(
            !status.contains(secret.as_str()),
            "{secret} is in the status"
        );
    }
}
