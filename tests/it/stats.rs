//! `GET /api/v2/stats` (docs/api-stats.md): report numbers checked against values worked out
//! by hand, the window and time-zone rules, validation, permission, and the speed on 90 days
//! of 1-minute data.

use std::time::Instant;

use serde_json::{json, Value};

use crate::support::{iso, now_ms, sgv, TestServer};

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
    // Glucose distribution (below 80, 80..=180, above 180): low 50, 60; in range 100, 150;
    // high 200, 300. Two values each: mean = median = their middle, SD half their gap.
    let d = &j["distribution"];
    for (k, mean, sd) in [
        ("low", 55.0, 5.0),
        ("inRange", 125.0, 25.0),
        ("high", 250.0, 50.0),
    ] {
        assert_eq!(d[k]["count"], 2, "{k}: {d}");
        close(&d[k]["percent"], 33.33);
        close(&d[k]["mean"], mean);
        close(&d[k]["median"], mean);
        close(&d[k]["sd"], sd);
    }
    let all = &d["overall"];
    assert_eq!(all["count"], 6);
    close(&all["percent"], 100.0);
    close(&all["mean"], 143.33);
    // Sorted 50, 60, 100, 150, 200, 300: h = 5 × 0.5 = 2.5, between 100 and 150.
    close(&all["median"], 125.0);
    close(&all["sd"], 86.92);
    // A1c (143.333 + 46.7) / 28.7 = 6.6214 %; IFCC (6.6214 - 2.15) × 10.929 = 48.87 mmol/mol.
    close(&all["a1c"]["dcct"], 6.62);
    close(&all["a1c"]["ifcc"], 48.87);
    close(&all["gmi"], 6.74);
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
    assert_eq!(j["distribution"], json!({}));
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

/// Monday 2026-11-02 00:00 at UTC+1, the start of the fixture's window.
const MON: i64 = 1_793_574_000_000;
const HOUR: i64 = 3_600_000;

/// Six readings over eight local days (UTC+1), worked through by hand below.
fn seed_days(s: &TestServer) {
    let at = |day: i64, h: i64, m: i64| MON + day * DAY + h * HOUR + m * MIN;
    let docs: Vec<Value> = [
        (at(0, 8, 10), 100),
        (at(0, 8, 20), 140),
        (at(0, 23, 30), 60),
        // Sunday 00:30 local is Saturday 23:30 UTC.
        (at(6, 0, 30), 200),
        (at(6, 8, 40), 300),
        (at(7, 8, 0), 50),
        // Outside the window (the next day), and a Dexcom error code inside it.
        (at(8, 8, 0), 180),
        (at(1, 8, 0), 5),
    ]
    .iter()
    .map(|(t, v)| sgv("days", *t, *v))
    .collect();
    s.post_ok("/api/v1/entries", &Value::Array(docs));
}

fn groups(s: &TestServer, by: &str, tz: i64) -> Value {
    let r = s.get_auth(&format!(
        "/api/v2/stats/{by}?start={MON}&end={}&tz={tz}&low=70&high=180",
        MON + 8 * DAY
    ));
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

#[test]
fn days_weeks_and_hours_match_a_hand_computation() {
    let s = TestServer::start();
    seed_days(&s);
    let j = groups(&s, "days", 60);
    assert_eq!(j["by"], "days");
    assert_eq!(j["days"], 8);
    assert_eq!(
        (j["from"].as_i64(), j["to"].as_i64()),
        (Some(MON), Some(MON + 8 * DAY))
    );
    assert_eq!(j["count"], 6);
    let g = j["groups"].as_array().unwrap();
    let dates: Vec<&str> = g.iter().map(|d| d["date"].as_str().unwrap()).collect();
    assert_eq!(dates, ["2026-11-02", "2026-11-08", "2026-11-09"]);
    assert_eq!(g[0]["start"], MON);
    assert_eq!(g[1]["start"], MON + 6 * DAY);
    // Monday: 60, 100, 140. Mean 100; SD sqrt((40² + 0 + 40²) / 3) = 32.66; ranks h = 2p.
    let mon = &g[0];
    assert_eq!(mon["count"], 3);
    close(&mon["mean"], 100.0);
    close(&mon["sd"], 32.66);
    close(&mon["min"], 60.0);
    close(&mon["max"], 140.0);
    close(&mon["p5"], 64.0); // h 0.1: 60 + 0.1 × 40
    close(&mon["p25"], 80.0); // h 0.5
    close(&mon["p50"], 100.0);
    close(&mon["p75"], 120.0);
    close(&mon["p95"], 136.0); // h 1.9: 100 + 0.9 × 40
    assert_eq!(
        mon["ranges"],
        json!({ "veryLow": 0, "low": 1, "inRange": 2, "high": 0, "veryHigh": 0 })
    );
    // Sunday: 200 (high, at most 250) and 300 (very high); mean 250, SD 50.
    close(&g[1]["mean"], 250.0);
    close(&g[1]["sd"], 50.0);
    assert_eq!(g[1]["ranges"]["high"], 1);
    assert_eq!(g[1]["ranges"]["veryHigh"], 1);
    // Monday 9th: 50, very low.
    assert_eq!(g[2]["count"], 1);
    assert_eq!(g[2]["ranges"]["veryLow"], 1);

    // In UTC the Sunday 00:30 reading falls on Saturday.
    let utc = groups(&s, "days", 0);
    let dates: Vec<&str> = utc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["date"].as_str().unwrap())
        .collect();
    assert_eq!(
        dates,
        ["2026-11-02", "2026-11-07", "2026-11-08", "2026-11-09"]
    );

    // Weeks from Monday: 60, 100, 140, 200, 300 (mean 160), then 50.
    let w = groups(&s, "weeks", 60);
    let w = w["groups"].as_array().unwrap();
    assert_eq!(w.len(), 2);
    assert_eq!(
        (w[0]["date"].as_str(), w[0]["start"].as_i64()),
        (Some("2026-11-02"), Some(MON))
    );
    assert_eq!(w[0]["count"], 5);
    close(&w[0]["mean"], 160.0);
    close(&w[0]["p50"], 140.0);
    assert_eq!(w[1]["date"], "2026-11-09");
    assert_eq!(w[1]["count"], 1);
    // Each week's curve, [hour of the week from Monday 00:00, mean]: Monday 08h (100, 140),
    // Monday 23h (60), Sunday 00h (6 × 24 = 144: 200), Sunday 08h (152: 300); then 50.
    assert_eq!(
        w[0]["curve"],
        json!([[8, 120.0], [23, 60.0], [144, 200.0], [152, 300.0]])
    );
    assert_eq!(w[1]["curve"], json!([[8, 50.0]]));
    // In UTC the Sunday 00:30 reading is Saturday 23:30 (5 × 24 + 23 = 143), Monday's 07h.
    let utc = groups(&s, "weeks", 0);
    assert_eq!(
        utc["groups"][0]["curve"],
        json!([[7, 120.0], [22, 60.0], [143, 200.0], [151, 300.0]])
    );
    // Days carry no curve.
    assert!(groups(&s, "days", 60)["groups"][0].get("curve").is_none());

    // Hours of the local day: 00 (200), 08 (100, 140, 300, 50), 23 (60).
    let h = groups(&s, "hours", 60);
    let h = h["groups"].as_array().unwrap();
    let hours: Vec<i64> = h.iter().map(|x| x["hour"].as_i64().unwrap()).collect();
    assert_eq!(hours, [0, 8, 23]);
    assert_eq!(h[1]["count"], 4);
    close(&h[1]["mean"], 147.5);
    close(&h[1]["min"], 50.0);
    close(&h[1]["max"], 300.0);
    close(&h[1]["p50"], 120.0); // 50, 100, 140, 300: h 1.5
    assert!(h[1].get("date").is_none());

    // The summary takes the same window.
    let sum = s
        .get_auth(&format!(
            "/api/v2/stats?start={MON}&end={}&tz=60",
            MON + 8 * DAY
        ))
        .json();
    assert_eq!(
        (sum["count"].as_i64(), sum["days"].as_i64()),
        (Some(6), Some(8))
    );
}

#[test]
fn grouped_reports_check_their_input() {
    let s = TestServer::start();
    let r = s.get_auth("/api/v2/stats/months");
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(r.text.contains("hours, days, weeks"), "{}", r.text);
    for q in [
        format!("start={MON}&end={MON}"),
        format!("start={}&end={MON}", MON + DAY),
        format!("start={}&end={MON}", MON - 366 * DAY),
        "start=yesterday".to_string(),
    ] {
        let r = s.get_auth(&format!("/api/v2/stats/days?{q}"));
        assert_eq!(r.status, 400, "{q}: {}", r.text);
        assert_eq!(r.json()["status"], 400);
    }
    // Reading glucose needs the same permission as the entries.
    assert_eq!(s.get("/api/v2/stats/days").status, 401);
}

#[test]
fn loop_analysis_matches_a_hand_computation() {
    let s = TestServer::start();
    let at = |day: i64, h: i64, m: i64| iso(MON + day * DAY + h * HOUR + m * MIN);
    let docs = json!([
        // 08:10, 08:40 and (next day) 08:05 local at UTC+1: OpenAPS, Loop, AndroidAPS's array
        // form with Nightscout's misspelt `recieved`.
        { "device": "openaps://rig", "created_at": at(0, 8, 10),
          "openaps": { "iob": { "iob": 1.5 }, "suggested": { "COB": 20 }, "enacted": { "received": true } } },
        { "device": "loop://iPhone", "created_at": at(0, 8, 40),
          "loop": { "iob": { "iob": 2.5 }, "cob": { "cob": 10 }, "enacted": { "received": false } } },
        { "device": "openaps://phone", "created_at": at(1, 8, 5),
          "openaps": { "iob": [{ "iob": 0.5 }], "enacted": { "recieved": true } } },
        // No loop numbers: left out.
        { "device": "uploader", "created_at": at(0, 9, 0), "uploader": { "battery": 50 } },
        { "device": "loop://iPhone", "created_at": at(6, 23, 30), "loop": { "iob": { "iob": -0.5 } } },
        // Outside the window.
        { "device": "loop://iPhone", "created_at": at(9, 8, 0), "loop": { "iob": { "iob": 9 } } }
    ]);
    s.post_ok("/api/v1/devicestatus", &docs);
    let r = s.get_auth(&format!(
        "/api/v2/stats/loop?start={MON}&end={}&tz=60",
        MON + 8 * DAY
    ));
    assert_eq!(r.status, 200, "{}", r.text);
    let j = r.json();
    assert_eq!(
        (j["statuses"].as_i64(), j["enacted"].as_i64()),
        (Some(4), Some(2))
    );
    let h = j["hours"].as_array().unwrap();
    assert_eq!(h.len(), 2, "{h:?}");
    // Hour 8: IOB (1.5 + 2.5 + 0.5) / 3 = 1.5 U; COB (20 + 10) / 2 = 15 g; two enacted.
    assert_eq!(
        h[0],
        json!({ "hour": 8, "statuses": 3, "iob": 1.5, "cob": 15.0, "enacted": 2 })
    );
    assert_eq!(
        h[1],
        json!({ "hour": 23, "statuses": 1, "iob": -0.5, "cob": null, "enacted": 0 })
    );
    // Device statuses need their own read permission.
    assert_eq!(s.get("/api/v2/stats/loop").status, 401);
}
