//! /api/v2/properties and /pebble over HTTP, against values computed by hand from fixtures
//! posted through API v1: mg/dl and mmol, a single reading (no delta), no data at all, the
//! selection syntax and the permissions.

use serde_json::{json, Value};

use crate::support::{iso, now_ms, sgv, TestServer};

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

/// Three readings five minutes apart, newest one minute ago: 111, 115, 120 (Flat).
fn post_readings(s: &TestServer, now: i64) -> i64 {
    let t0 = now - MIN;
    s.post_ok(
        "/api/v1/entries",
        &json!([
            sgv("xDrip-DexcomG6", t0 - 10 * MIN, 111),
            sgv("xDrip-DexcomG6", t0 - 5 * MIN, 115),
            sgv("xDrip-DexcomG6", t0, 120)
        ]),
    );
    t0
}

/// A Loop upload two minutes ago: phone battery, pump, IOB, COB, an enacted temp basal.
fn post_devicestatus(s: &TestServer, now: i64) {
    let at = iso(now - 2 * MIN);
    s.post_ok(
        "/api/v1/devicestatus",
        &json!({
            "device": "loop://iPhone",
            "created_at": at,
            "uploader": { "battery": 88 },
            "pump": {
                "clock": at, "reservoir": 85.5, "battery": { "percent": 75 },
                "status": { "status": "normal", "bolusing": false, "suspended": false }
            },
            "loop": {
                "timestamp": at,
                "iob": { "iob": 1.2345, "timestamp": at },
                "cob": { "cob": 20.26, "timestamp": at },
                "enacted": { "timestamp": at, "rate": 0.5, "duration": 30, "received": true },
                "predicted": { "startDate": at, "values": [120, 118, 116] }
            }
        }),
    );
}

/// Site change 53 h ago, sensor change 76 h ago (after a start 240 h ago), pump battery
/// change 361 h ago.
fn post_treatments(s: &TestServer, now: i64) {
    s.post_ok(
        "/api/v1/treatments",
        &json!([
            { "eventType": "Site Change", "created_at": iso(now - 53 * HOUR), "notes": "belly" },
            { "eventType": "Sensor Start", "created_at": iso(now - 240 * HOUR) },
            { "eventType": "Sensor Change", "created_at": iso(now - 76 * HOUR) },
            { "eventType": "Pump Battery Change", "created_at": iso(now - 361 * HOUR) }
        ]),
    );
}

fn properties(s: &TestServer, path: &str) -> Value {
    let r = s.get_auth(path);
    assert_eq!(r.status, 200, "{path}: {}", r.text);
    assert!(
        r.content_type().starts_with("application/json"),
        "{}",
        r.content_type()
    );
    r.json()
}

#[test]
fn properties_from_fixtures_in_mgdl() {
    let s = TestServer::start();
    let now = now_ms();
    let t0 = post_readings(&s, now);
    post_devicestatus(&s, now);
    post_treatments(&s, now);
    let p = properties(&s, "/api/v2/properties");

    // bgnow: the newest 5-minute bucket holds only 120.
    assert_eq!(p["bgnow"]["last"], 120);
    assert_eq!(p["bgnow"]["mean"], 120);
    assert_eq!(p["bgnow"]["mills"], t0);
    let first = &p["bgnow"]["sgvs"][0];
    assert_eq!(first["direction"], "Flat");
    assert_eq!(first["mgdl"], 120);
    assert_eq!(first["scaled"], 120);
    assert_eq!(first["device"], "xDrip-DexcomG6");
    // delta: 120 - 115 over five minutes.
    let d = &p["delta"];
    assert_eq!(d["mgdl"], 5);
    assert_eq!(d["scaled"], 5);
    assert_eq!(d["display"], "+5");
    assert_eq!(d["absolute"], 5);
    assert_eq!(d["elapsedMins"], 5);
    assert_eq!(d["interpolated"], false);
    assert_eq!(d["mean5MinsAgo"], 115);
    assert_eq!(d["previous"]["last"], 115);
    assert_eq!(
        d["times"],
        json!({ "recent": t0, "previous": t0 - 5 * MIN })
    );
    assert_eq!(
        p["direction"],
        json!({ "display": null, "value": "Flat", "label": "→", "entity": "&#8594;" })
    );
    assert_eq!(p["buckets"].as_array().map(Vec::len), Some(4));

    // Uploader battery 88 %: level 75 (55..95), no warning.
    assert_eq!(p["upbat"]["display"], "88%");
    assert_eq!(p["upbat"]["level"], 75);
    assert_eq!(p["upbat"]["status"], "current");
    assert_eq!(p["upbat"]["devices"]["loop://iPhone"]["min"]["battery"], 88);

    // Pump: (85.5).toPrecision(3) = "85.5"; 75 % is above the 30 % warning.
    let pump = &p["pump"];
    assert_eq!(pump["pump"]["reservoir"], 85.5);
    assert_eq!(pump["data"]["reservoir"]["display"], "85.5U");
    assert_eq!(pump["data"]["reservoir"]["level"], -3);
    assert_eq!(pump["data"]["battery"]["display"], "75%");
    assert_eq!(pump["data"]["clock"]["display"], "2m ago");
    assert_eq!(pump["data"]["status"]["display"], "normal");
    assert_eq!(pump["data"]["level"], -3);
    assert_eq!(pump["data"]["title"], "Pump Status");

    // IOB: 1.2345 → 1234.5 → Math.round 1235 → 1.235; 1.235 is stored just above the tie, so
    // toFixed(2) is "1.24".
    assert_eq!(
        p["iob"],
        json!({ "iob": 1.235, "source": "Loop", "device": "loop://iPhone",
                "mills": now - 2 * MIN, "display": "1.24", "displayLine": "IOB: 1.24U" })
    );
    // COB: Math.round(202.6) / 10 = 20.3.
    assert_eq!(p["cob"]["cob"], 20.26);
    assert_eq!(p["cob"]["display"], 20.3);
    assert_eq!(p["cob"]["displayLine"], "COB: 20.3g");

    // Loop: enacted two minutes ago.
    let l = &p["loop"];
    assert_eq!(l["display"]["label"], "Enacted");
    assert_eq!(l["display"]["symbol"], "⌁");
    assert_eq!(l["lastEnacted"]["rate"], 0.5);
    assert_eq!(l["lastPredicted"]["values"], json!([120, 118, 116]));
    assert_eq!(l["lastOkMoment"], iso(now - 2 * MIN));
    assert_eq!(p["openaps"]["lastEnacted"], Value::Null);

    // Ages. Cannula: 53 h = 2 d 5 h, shown in hours, warning (48..72).
    let c = &p["cage"];
    assert_eq!(c["found"], true);
    assert_eq!(c["age"], 53);
    assert_eq!(
        (c["days"].clone(), c["hours"].clone()),
        (json!(2), json!(5))
    );
    assert_eq!(c["display"], "53h");
    assert_eq!(c["level"], 1);
    assert_eq!(c["notes"], "belly");
    assert_eq!(c["treatmentDate"], now - 53 * HOUR);
    // Sensor: the change (76 h = 3 d 4 h) supersedes the older start.
    let sage = &p["sage"];
    assert_eq!(sage["min"], "Sensor Change");
    assert_eq!(sage["Sensor Change"]["display"], "3d4h");
    assert_eq!(sage["Sensor Change"]["displayLong"], "3 days 4 hours");
    assert_eq!(sage["Sensor Change"]["level"], -3);
    assert_eq!(sage["Sensor Start"]["found"], false);
    // No insulin change; pump battery 361 h = 15 d 1 h, past the 360 h urgent mark.
    assert_eq!(p["iage"]["found"], false);
    assert_eq!(p["bage"]["display"], "15d1h");
    assert_eq!(p["bage"]["level"], 2);

    // The database: a few hundred kB of 496 MiB is 0 %.
    assert_eq!(p["dbsize"]["display"], "0%");
    assert_eq!(p["dbsize"]["details"]["maxSize"], 496);
    assert!(p["dbsize"]["totalDataSize"]
        .as_f64()
        .is_some_and(|s| s > 0.0));
    assert_eq!(p["runtimestate"], json!({ "state": "loaded" }));

    // Nightguard's reads, all present.
    for path in [
        "/bgnow/last",
        "/bgnow/mills",
        "/bgnow/sgvs/0/direction",
        "/delta/display",
        "/delta/mgdl",
        "/upbat/display",
        "/iob/display",
        "/cob/display",
    ] {
        assert!(p.pointer(path).is_some(), "{path}");
    }
}

#[test]
fn selection_and_pretty() {
    let s = TestServer::start();
    let now = now_ms();
    post_readings(&s, now);
    post_devicestatus(&s, now);
    let p = properties(&s, "/api/v2/properties/delta,bgnow");
    let keys: Vec<&String> = p.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["delta", "bgnow"]);
    assert_eq!(
        properties(&s, "/api/v2/properties/iob.display,upbat.display,nothing"),
        json!({ "iob": { "display": "1.24" }, "upbat": { "display": "88%" } })
    );
    // The API v1 routes under /api/v2 still answer.
    assert_eq!(s.get_auth("/api/v2/entries.json").status, 200);

    let r = s.get_auth("/api/v2/properties/upbat?pretty=1");
    assert_eq!(r.status, 200);
    assert!(r.content_type().starts_with("application/json"));
    assert!(r.text.starts_with("{\n  \"upbat\": {\n    "), "{}", r.text);
}

#[test]
fn mmol_display() {
    let s = TestServer::with(&[("DISPLAY_UNITS", "mmol")]);
    let now = now_ms();
    post_readings(&s, now);
    let p = properties(&s, "/api/v2/properties");
    // 120 / 18.01559 = 6.6609 → "6.7"; 115 → 6.3833 → 6.4; 6.7 - 6.4 → 0.3.
    assert_eq!(p["bgnow"]["sgvs"][0]["scaled"], "6.7");
    assert_eq!(p["bgnow"]["last"], 120);
    assert_eq!(p["delta"]["mgdl"], 5);
    assert_eq!(p["delta"]["scaled"], 0.3);
    assert_eq!(p["delta"]["display"], "+0.3");

    let b = s.get_auth("/pebble").json();
    let first = &b["bgs"][0];
    assert_eq!(first["sgv"], "6.7");
    assert_eq!(first["bgdelta"], "0.3");
    assert_eq!(first["trend"], 4);
}

#[test]
fn single_reading_has_no_delta() {
    let s = TestServer::start();
    let now = now_ms();
    s.post_ok("/api/v1/entries", &json!([sgv("dexcom", now - MIN, 140)]));
    let p = properties(&s, "/api/v2/properties");
    assert_eq!(p["bgnow"]["last"], 140);
    assert!(p.get("delta").is_none(), "{}", p["delta"]);
    assert_eq!(p["direction"]["label"], "→");

    // /pebble sends 0 for a missing delta ("0.0" in mmol).
    let b = s.get_auth("/pebble").json();
    assert_eq!(b["bgs"][0]["bgdelta"], 0);
    assert_eq!(b["bgs"][0]["sgv"], "140");
    let b = s.get_auth("/pebble?units=mmol").json();
    // 140 / 18.01559 = 7.771 → "7.8".
    assert_eq!(b["bgs"][0]["sgv"], "7.8");
    assert_eq!(b["bgs"][0]["bgdelta"], "0.0");
}

#[test]
fn no_data_at_all() {
    let s = TestServer::start();
    let p = properties(&s, "/api/v2/properties");
    assert_eq!(p["bgnow"], json!({}));
    assert!(p.get("delta").is_none());
    assert!(p.get("direction").is_none());
    assert_eq!(p["upbat"], json!({ "display": "?%", "devices": {} }));
    assert_eq!(p["iob"], json!({}));
    assert_eq!(p["cob"], json!({}));
    assert_eq!(p["pump"]["data"]["level"], -3);
    assert_eq!(p["pump"]["data"]["reservoir"], Value::Null);
    assert_eq!(p["loop"]["lastLoop"], Value::Null);
    assert_eq!(p["loop"]["display"]["code"], "warning");
    assert_eq!(p["openaps"]["status"]["code"], "warning");
    assert_eq!(p["cage"]["display"], "n/a ");
    assert_eq!(p["sage"]["min"], "Sensor Start");
    assert_eq!(p["iage"]["found"], false);
    assert_eq!(p["bage"]["found"], false);
    assert_eq!(p["dbsize"]["display"], "0%");
    assert_eq!(p["runtimestate"]["state"], "loaded");
    assert_eq!(
        properties(&s, "/api/v2/properties/delta,direction"),
        json!({})
    );

    // Not implemented yet (docs/properties.md).
    assert_eq!(s.get_auth("/api/v2/ddata/at").status, 404);

    let r = s.get_auth("/pebble?count=5&units=mmol");
    assert_eq!(r.status, 200, "{}", r.text);
    let b = r.json();
    assert_eq!(b["bgs"], json!([]));
    assert_eq!(b["cals"], json!([]));
    let now = b["status"][0]["now"].as_i64().expect("now");
    assert!((now - now_ms()).abs() < 60_000);
}

#[test]
fn pebble_from_fixtures() {
    let s = TestServer::start();
    let now = now_ms();
    let t0 = post_readings(&s, now);
    post_devicestatus(&s, now);
    let r = s.get_auth("/pebble?count=2");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type().starts_with("application/json"));
    let b = r.json();
    let bgs = b["bgs"].as_array().expect("bgs");
    assert_eq!(bgs.len(), 2);
    // Newest first; the extras ride on the first: delta +5, phone battery, Loop's IOB and COB.
    assert_eq!(
        bgs[0],
        json!({ "sgv": "120", "trend": 4, "direction": "Flat", "datetime": t0,
                "bgdelta": 5, "battery": "88", "iob": "1.24", "cob": 20.3 })
    );
    assert_eq!(
        bgs[1],
        json!({ "sgv": "115", "trend": 4, "direction": "Flat", "datetime": t0 - 5 * MIN })
    );
    assert_eq!(b["cals"], json!([]));
    // No count is one reading; a bad count too (parseInt(...) || 1).
    assert_eq!(
        s.get_auth("/pebble").json()["bgs"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        s.get_auth("/pebble?count=abc").json()["bgs"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        s.get_auth("/pebble?count=10").json()["bgs"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
}

#[test]
fn permissions() {
    // The harness runs with AUTH_DEFAULT_ROLES=denied.
    let s = TestServer::start();
    for path in ["/api/v2/properties", "/api/v2/properties/bgnow", "/pebble"] {
        let r = s.get(path);
        assert_eq!(r.status, 401, "{path}: {}", r.text);
        assert_eq!(r.json()["message"], "Unauthorized");
    }
    // A token whose role reads entries only: properties needs treatments too; pebble needs
    // api:pebble:read as well (Nightscout's `api:pebble,entries:read`).
    let r = s.post_json(
        "/api/v2/authorization/roles",
        &json!({ "name": "entries-only", "permissions": ["api:entries:read"] }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let (_, token) = s.create_subject("entries reader", &["entries-only"]);
    assert_eq!(
        s.get(&format!("/api/v2/properties?token={token}")).status,
        401
    );
    assert_eq!(s.get(&format!("/pebble?token={token}")).status, 401);
    let (_, reader) = s.create_subject("reader", &["readable"]);
    assert_eq!(
        s.get(&format!("/api/v2/properties?token={reader}")).status,
        200
    );
    assert_eq!(s.get(&format!("/pebble?token={reader}")).status, 200);

    // Readable by default: no credentials needed.
    let open = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable")]);
    assert_eq!(open.get("/api/v2/properties").status, 200);
    assert_eq!(open.get("/pebble").status, 200);
}
