//! `GET /api/v2/stats` (docs/api-stats.md): report numbers checked against values worked out
//! by hand, the window and time-zone rules, validation, permission, and the speed on 90 days
//! of 1-minute data.

use std::time::Instant;

use serde_json::{json, Value};

use crate::support::{now_ms, sgv, TestServer};

const MIN: i64 = 60_000;
const BUCKET: i64 = 15 * MIN;
const DAY: i64 = 86_400_000;

fn close(got: &Value, want: f64) {
    let g = got
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {got}"));
    assert!((g - want).abs() < 0.006, "got {g}, want {want}");
}

/// The start of the 15-minute bucket three hours ago: far enough back that six readings a
/// minute apart stay inside it and inside a one-day window.
fn bucket_start(now: i64) -> i64 {
    (now - 3 * 3_600_000) / BUCKET * BUCKET
}

fn seed_hand_set(s: &TestServer, now: i64) -> i64 {
    let b = bucket_start(now);
    let mut docs: Vec<Value> = [50, 60, 100, 150, 200]
        .iter()
        .enumerate()
        .map(|(k, v)| sgv("stats", b + k as i64 * MIN, *v))
        .collect();
    // One more reading an hour earlier, in a bucket of its own.
    docs.push(sgv("stats", b - 4 * BUCKET + MIN, 300));
    // Not glucose: a Dexcom error code, a finger check, a reading outside a 1-day window.
    docs.push(sgv("stats", b + 7 * MIN, 5));
    docs.push(json!({ "type": "mbg", "mbg": 400, "date": b + 8 * MIN, "device": "stats" }));
    docs.push(sgv("stats", now - DAY - 3_600_000, 400));
    s.post_ok("/api/v1/entries", &Value::Array(docs));
    // A deleted reading does not count.
    let gone = sgv("stats", b + 9 * MIN, 390);
    let id = s.post_ok("/api/v1/entries", &gone)[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(s.delete(&format!("/api/v1/entries/{id}")).status, 200);
    b
}

#[test]
fn numbers_match_a_hand_computation() {
    let s = TestServer::start();
    let now = now_ms();
    let b = seed_hand_set(&s, now);
    let r = s.get_auth("/api/v2/stats?days=1");
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    // Readings 50, 60, 100, 150, 200, 300 (mg/dl), defaults BG_TARGET_BOTTOM 80, TOP 180.
    assert_eq!(j["days"], 1);
    assert_eq!(j["units"], "mg/dl");
    assert_eq!(
        j["bands"],
        json!({ "veryLow": 54.0, "low": 80.0, "high": 180.0, "veryHigh": 250.0 })
    );
    assert_eq!(j["count"], 6);
    // mean = 860 / 6
    close(&j["mean"], 143.33);
    // population SD: sqrt(((50-m)² + (60-m)² + ... + (300-m)²) / 6) = sqrt(7555.56)
    close(&j["sd"], 86.92);
    // CV = SD / mean
    close(&j["cv"], 60.64);
    // GMI = 3.31 + 0.02392 × 143.333
    close(&j["gmi"], 6.74);
    // one each of very low (50), low (60), high (200), very high (300); two in range
    for (k, count, pct) in [
        ("veryLow", 1, 16.67),
        ("low", 1, 16.67),
        ("inRange", 2, 33.33),
        ("high", 1, 16.67),
        ("veryHigh", 1, 16.67),
    ] {
        assert_eq!(j["ranges"][k]["count"], count, "{k}");
        close(&j["ranges"][k]["percent"], pct);
    }
    assert_eq!(j["first"], b - 4 * BUCKET + MIN);
    assert_eq!(j["last"], b + 4 * MIN);

    let agp = j["agp"].as_array().unwrap();
    assert_eq!(agp.len(), 2, "{agp:?}");
    let minute = |ms: i64| (ms % DAY) / MIN;
    // The lone 300 first (earlier in the day, unless the hour before crossed midnight).
    let (lone, five) = if minute(b - 4 * BUCKET) < minute(b) {
        (&agp[0], &agp[1])
    } else {
        (&agp[1], &agp[0])
    };
    assert_eq!(lone["minute"], minute(b - 4 * BUCKET));
    assert_eq!(lone["count"], 1);
    for p in ["p5", "p25", "p50", "p75", "p95"] {
        close(&lone[p], 300.0);
    }
    assert_eq!(five["minute"], minute(b));
    assert_eq!(five["count"], 5);
    // 50, 60, 100, 150, 200: rank h = 4p, interpolated between neighbours.
    close(&five["p5"], 52.0); // h 0.2: 50 + 0.2 × 10
    close(&five["p25"], 60.0); // h 1
    close(&five["p50"], 100.0); // h 2
    close(&five["p75"], 150.0); // h 3
    close(&five["p95"], 190.0); // h 3.8: 150 + 0.8 × 50

    // A longer window takes in the reading of yesterday (400: very high).
    let j = s.get_auth("/api/v2/stats?days=3").json();
    assert_eq!(j["count"], 7);
    assert_eq!(j["ranges"]["veryHigh"]["count"], 2);
    // A window that ended two days ago sees none of them.
    let j = s
        .get_auth(&format!("/api/v2/stats?days=1&end={}", now - 2 * DAY))
        .json();
    assert_eq!(j["count"], 0);
    assert_eq!(j["mean"], Value::Null);
    assert_eq!(j["agp"], json!([]));
}

#[test]
fn time_zone_and_target_overrides() {
    let s = TestServer::start();
    let now = now_ms();
    let b = seed_hand_set(&s, now);
    // UTC+2: every bucket moves 120 minutes later in the day.
    let j = s.get_auth("/api/v2/stats?days=1&tz=120").json();
    assert_eq!(j["tz"], 120);
    let minutes: Vec<i64> = j["agp"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["minute"].as_i64().unwrap())
        .collect();
    assert!(
        minutes.contains(&(((b + 120 * MIN) % DAY) / MIN)),
        "{minutes:?}"
    );
    // The consensus 70-180 range instead of the configured 80-180: 60 stays low, 100 and 150
    // in range.
    let j = s.get_auth("/api/v2/stats?days=1&low=70&high=180").json();
    assert_eq!(j["bands"]["low"], 70.0);
    assert_eq!(j["ranges"]["inRange"]["count"], 2);
    let j = s.get_auth("/api/v2/stats?days=1&low=55&high=210").json();
    // 60 is in range now, 200 too.
    assert_eq!(j["ranges"]["inRange"]["count"], 4);
    assert_eq!(j["ranges"]["low"]["count"], 0);
}

#[test]
fn thresholds_come_from_settings_in_mmol() {
    let s = TestServer::with(&[
        ("DISPLAY_UNITS", "mmol"),
        ("BG_TARGET_BOTTOM", "3.9"),
        ("BG_TARGET_TOP", "10"),
    ]);
    let j = s.get_auth("/api/v2/stats").json();
    assert_eq!(j["days"], 14);
    assert_eq!(j["units"], "mmol");
    // Settings in mmol are held in whole mg/dl: 3.9 × 18.01559 = 70.3, 10 × 18.01559 = 180.2.
    close(&j["bands"]["low"], 70.0);
    close(&j["bands"]["high"], 180.0);
    assert_eq!(j["count"], 0);
}

#[test]
fn bad_parameters_are_400() {
    let s = TestServer::start();
    for q in [
        "days=0",
        "days=366",
        "days=abc",
        "days=1.5",
        "tz=1000",
        "tz=x",
        "end=-5",
        "low=20",
        "high=400",
        "low=150&high=120",
    ] {
        let r = s.get_auth(&format!("/api/v2/stats?{q}"));
        assert_eq!(r.status, 400, "{q}: {}", r.text);
        let j = r.json();
        assert_eq!(j["status"], 400);
        assert!(j["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[test]
fn needs_entries_read() {
    let s = TestServer::start(); // AUTH_DEFAULT_ROLES=denied
    let r = s.get("/api/v2/stats?days=7");
    assert_eq!(r.status, 401);
    let (_, token) = s.create_subject("stats reader", &["readable"]);
    let r = s.get(&format!("/api/v2/stats?days=7&token={token}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let (_, token) = s.create_subject("stats status", &["status-only"]);
    let r = s.get(&format!("/api/v2/stats?days=7&token={token}"));
    assert_eq!(r.status, 401);
    let open = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable")]);
    assert_eq!(open.get("/api/v2/stats").status, 200);
}

/// 90 days of 1-minute readings (129,600 rows) answered well under a second. Seeded straight
/// into the database file (WAL lets a second connection write while the server runs), since
/// posting them over HTTP would take most of the test's time.
#[test]
fn ninety_days_of_one_minute_data_is_fast() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::in_dir(dir.path(), &[]);
    let now = now_ms();
    let rows = 90 * 24 * 60;
    {
        let mut conn = rusqlite::Connection::open(dir.path().join("nightlite.sqlite3")).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut ins = tx
                .prepare(&format!(
                    "INSERT INTO entries (id, doc, mills, srv_created, sgv) \
                         VALUES (?1, ?2, ?3, ?3, {})",
                    // The server's own value for the sgv column (schema version 3).
                    nightlite::store::upsert::entry_sgv("?2")
                ))
                .unwrap();
            for i in 0..rows {
                let mills = now - 1000 - i * MIN;
                // A daily wave between 70 and 250 with some jitter.
                let phase = (mills % DAY) as f64 / DAY as f64 * std::f64::consts::TAU;
                let v = (160.0 + 90.0 * phase.sin() + ((i * 37) % 23) as f64).round();
                let doc = format!(
                    r#"{{"type":"sgv","sgv":{v},"date":{mills},"device":"bulk","direction":"Flat"}}"#
                );
                ins.execute(rusqlite::params![format!("{i:024x}"), doc, mills])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    // The first request warms the page cache; time the second, as a report page would see it.
    let r = s.get_auth("/api/v2/stats?days=90");
    assert_eq!(r.status, 200, "{}", r.text);
    let start = Instant::now();
    let r = s.get_auth("/api/v2/stats?days=90&tz=60");
    let took = start.elapsed();
    assert_eq!(r.status, 200);
    let j = r.json();
    assert_eq!(j["count"], rows);
    assert_eq!(j["agp"].as_array().unwrap().len(), 96);
    println!("stats over {rows} readings: {took:?}");
    // Debug builds run SQLite unoptimised; the release figure is in docs/api-stats.md.
    let limit = if cfg!(debug_assertions) { 5.0 } else { 1.0 };
    assert!(took.as_secs_f64() < limit, "stats took {took:?}");
}
