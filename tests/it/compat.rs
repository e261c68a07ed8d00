//! What real clients do against Nightscout 15.0.7 and expect to work the same here
//! (docs/compatibility.md).

use serde_json::{json, Value};

use crate::support::{now_ms, TestServer};

/// Loop's setup: `GET /api/v1/experiments/test` with the secret must answer 200.
#[test]
fn loop_setup_experiments_test() {
    let s = TestServer::start();
    let r = s.get_auth("/api/v1/experiments/test");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({ "status": "ok" }));
    let r = s.get("/api/v1/experiments/test");
    assert_eq!(r.status, 401, "{}", r.text);
}

/// An API v3 request with a Bearer JWT of an admin subject.
fn v3(
    s: &TestServer,
    jwt: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> crate::support::Resp {
    let auth = format!("Bearer {jwt}");
    let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
    s.request(
        method,
        &format!("/api/v3{path}"),
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        bytes.as_deref(),
    )
}

fn admin_jwt(s: &TestServer) -> String {
    let (_, token) = s.create_subject("aaps", &["admin"]);
    s.jwt_for(&token)
}

/// AndroidAPS (NSClientV3) sends `isValid: true` in every v3 write and edits a treatment with
/// a PATCH of the whole document; Nightscout accepts all of them. `isValid: false` is still a
/// modification and refused.
#[test]
fn aaps_is_valid_true_in_v3_writes_is_accepted() {
    let s = TestServer::start();
    let jwt = admin_jwt(&s);
    let date = now_ms() - 60_000;
    let mut doc = json!({
        "identifier": "aaps-bolus-1", "date": date, "utcOffset": 60, "app": "AAPS",
        "device": "AAPS", "eventType": "Correction Bolus", "insulin": 1.5, "isValid": true
    });
    let r = v3(&s, &jwt, "POST", "/treatments", Some(&doc));
    assert_eq!(r.status, 201, "{}", r.text);
    let r = v3(&s, &jwt, "POST", "/treatments", Some(&doc));
    assert_eq!(r.status, 200, "re-POST: {}", r.text);
    assert_eq!(r.json()["isDeduplication"], true, "{}", r.text);
    doc["insulin"] = json!(2.0);
    let r = v3(&s, &jwt, "PATCH", "/treatments/aaps-bolus-1", Some(&doc));
    assert_eq!(r.status, 200, "PATCH: {}", r.text);
    doc["notes"] = json!("put");
    let r = v3(&s, &jwt, "PUT", "/treatments/aaps-bolus-1", Some(&doc));
    assert_eq!(r.status, 200, "PUT: {}", r.text);
    let stored = v3(&s, &jwt, "GET", "/treatments/aaps-bolus-1", None).json();
    assert_eq!(stored["result"]["insulin"], 2.0, "{stored}");
    assert_eq!(stored["result"]["notes"], "put", "{stored}");
    // Entries and device statuses alike.
    let entry = json!({"identifier": "aaps-sgv-1", "date": date, "utcOffset": 60, "app": "AAPS",
        "device": "AAPS", "type": "sgv", "sgv": 120, "isValid": true});
    assert_eq!(v3(&s, &jwt, "POST", "/entries", Some(&entry)).status, 201);
    let r = v3(&s, &jwt, "POST", "/entries", Some(&entry));
    assert_eq!(r.status, 200, "entries re-POST: {}", r.text);
    // isValid: false would delete by the back door: refused, nothing changed.
    let r = v3(
        &s,
        &jwt,
        "PATCH",
        "/treatments/aaps-bolus-1",
        Some(&json!({"isValid": false})),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    let r = v3(&s, &jwt, "GET", "/treatments/aaps-bolus-1", None);
    assert_eq!(r.status, 200, "{}", r.text);
}

/// `PUT /api/v1/food` with one object answers an array, as Nightscout's does.
#[test]
fn food_put_answers_an_array() {
    let s = TestServer::start();
    let created = s.post_ok(
        "/api/v1/food",
        &json!({"type": "food", "name": "apple", "carbs": 12}),
    );
    let id = created[0]["_id"].as_str().unwrap().to_string();
    let r = s.put_json(
        "/api/v1/food",
        &json!({"_id": id, "type": "food", "name": "apple", "carbs": 14}),
    );
    let items = r.list();
    assert_eq!(items.len(), 1, "{}", r.text);
    assert_eq!(items[0]["_id"], id.as_str());
    assert_eq!(items[0]["carbs"], 14);
}

/// /api/versions and /api/v3/version name the same API v3 version.
#[test]
fn v3_version_is_the_same_everywhere() {
    let s = TestServer::start();
    let versions = s.get("/api/versions").list();
    let listed = versions
        .iter()
        .find(|v| v["url"] == "/api/v3")
        .map(|v| v["version"].clone());
    let v3 = s.get("/api/v3/version").json();
    assert_eq!(
        listed.as_ref(),
        Some(&v3["result"]["apiVersion"]),
        "{versions:?} {v3}"
    );
    assert_eq!(v3["result"]["apiVersion"], "3.0.3-alpha");
    // The OpenAPI document says the same.
    let doc = s.get("/api/v3/swagger.json").json();
    assert_eq!(doc["info"]["version"], v3["result"]["apiVersion"]);
}

/// AndroidAPS uploads `openaps.iob` as an object with `time` and no `timestamp`; Nightscout
/// reads `time` as its timestamp, so `openaps.lastIOB` is set.
#[test]
fn openaps_last_iob_from_aaps_time() {
    let s = TestServer::start();
    let t = now_ms() - 60_000;
    let status = json!({
        "device": "openaps://samsung SM-G970F",
        "created_at": crate::support::iso(t),
        "openaps": {
            "iob": {"iob": 1.25, "basaliob": 0.5, "activity": 0.01, "time": crate::support::iso(t)},
            "suggested": {"timestamp": crate::support::iso(t), "bg": 120, "reason": "x"}
        }
    });
    s.post_ok("/api/v1/devicestatus", &status);
    let p = s.get_auth("/api/v2/properties/openaps").json();
    let last = &p["openaps"]["lastIOB"];
    assert_eq!(last["iob"], 1.25, "{p}");
    assert_eq!(last["timestamp"], crate::support::iso(t).as_str(), "{p}");
}

/// A browser tool's preflight and request with ENABLE=cors, as Nightscout answers them; none
/// of the headers without it.
#[test]
fn cors_preflight_and_headers_when_enabled() {
    let s = TestServer::with(&[("ENABLE", "careportal cors")]);
    let preflight = [
        ("Origin", "https://reporter.example"),
        ("Access-Control-Request-Method", "GET"),
        ("Access-Control-Request-Headers", "api-secret"),
    ];
    let r = s.request("OPTIONS", "/api/v1/entries.json", &preflight, None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET,PUT,POST,DELETE,OPTIONS")
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("Content-Type, Authorization, Content-Length, X-Requested-With")
    );
    let r = s.get_auth_with(
        "/api/v1/entries.json",
        &[("Origin", "https://reporter.example")],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    // Refused requests carry it too (the browser can then read the 401).
    let r = s.get("/api/v1/entries.json");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));

    let s = TestServer::with(&[
        ("ENABLE", "cors"),
        ("CORS_ALLOW_ORIGIN", "https://a.example"),
    ]);
    let r = s.request("OPTIONS", "/api/v1/status.json", &preflight, None);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://a.example")
    );

    let s = TestServer::start();
    let r = s.get_auth("/api/v1/entries.json");
    assert_eq!(r.header("access-control-allow-origin"), None);
    let r = s.request("OPTIONS", "/api/v1/entries.json", &preflight, None);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(r.status, 405, "{}", r.text);
}

/// A fresh Nightscout 15.0.7's status.json settings (lib/settings.js defaults, as
/// filteredSettings sends them), with a value of each key's JSON type.
fn nightscout_default_settings() -> Value {
    let mut s = json!({
        "units": "mg/dl", "timeFormat": 12, "dayStart": 7, "dayEnd": 21, "nightMode": false,
        "editMode": true, "showRawbg": "never", "customTitle": "Nightscout", "theme": "default",
        "alarmUrgentHigh": true, "alarmUrgentHighMins": [30, 60, 90, 120], "alarmHigh": true,
        "alarmHighMins": [30, 60, 90, 120], "alarmLow": true, "alarmLowMins": [15, 30, 45, 60],
        "alarmUrgentLow": true, "alarmUrgentLowMins": [15, 30, 45],
        "alarmUrgentMins": [30, 60, 90, 120], "alarmWarnMins": [30, 60, 90, 120],
        "alarmTimeagoWarn": true, "alarmTimeagoWarnMins": 15, "alarmTimeagoUrgent": true,
        "alarmTimeagoUrgentMins": 30, "alarmPumpBatteryLow": false, "language": "en"
    });
    let rest = json!({
        "scaleY": "log", "showPlugins": "dbsize delta direction upbat", "showForecast": "ar2",
        "focusHours": 3, "heartbeat": 60, "baseURL": "", "authDefaultRoles": "readable",
        "thresholds": {"bgHigh": 260, "bgTargetTop": 180, "bgTargetBottom": 80, "bgLow": 55},
        "insecureUseHttp": false, "secureHstsHeader": true,
        "secureHstsHeaderIncludeSubdomains": false, "secureHstsHeaderPreload": false,
        "secureCsp": false, "deNormalizeDates": false, "showClockDelta": false,
        "showClockLastTime": false, "authFailDelay": 5000, "adminNotifiesEnabled": true,
        "authenticationPromptOnLoad": false, "DEFAULT_FEATURES": [], "alarmTypes": ["predict"],
        "enable": []
    });
    for (k, v) in rest.as_object().unwrap() {
        s[k] = v.clone();
    }
    for i in 1..=8 {
        s[format!("frameUrl{i}")] = json!("");
        s[format!("frameName{i}")] = json!("");
    }
    s
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// status.json carries every key of Nightscout's, with the same JSON types; whole numbers
/// print as JavaScript prints them; `enable` has the default features and careportalEnabled
/// follows from it.
#[test]
fn status_json_has_every_nightscout_key() {
    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable")]);
    let r = s.get_auth("/api/v1/status.json");
    let st = r.json();
    let ours = st["settings"].as_object().unwrap();
    for (k, v) in nightscout_default_settings().as_object().unwrap() {
        let got = ours
            .get(k)
            .unwrap_or_else(|| panic!("settings.{k} missing: {st}"));
        assert_eq!(json_type(got), json_type(v), "settings.{k}: {got}");
    }
    for k in ["bgHigh", "bgTargetTop", "bgTargetBottom", "bgLow"] {
        assert_eq!(
            json_type(&ours["thresholds"][k]),
            "number",
            "thresholds.{k}"
        );
    }
    for k in [
        "status",
        "name",
        "version",
        "serverTime",
        "serverTimeEpoch",
        "apiEnabled",
        "careportalEnabled",
        "boluscalcEnabled",
        "settings",
        "extendedSettings",
        "authorized",
        "runtimeState",
    ] {
        assert!(st.get(k).is_some(), "{k} missing: {st}");
    }
    assert_eq!(
        st["extendedSettings"]["devicestatus"],
        json!({"advanced": true, "days": 1})
    );
    // ALARM_TYPES as lib/settings.js reports it: simplealarms for simple, ar2 for predict.
    assert_eq!(st["settings"]["alarmTypes"], json!(["simple"]));
    let enable = |st: &Value, f: &str| {
        st["settings"]["enable"]
            .as_array()
            .unwrap()
            .contains(&json!(f))
    };
    assert!(enable(&st, "simplealarms") && !enable(&st, "ar2"), "{st}");
    let both = TestServer::with(&[
        ("AUTH_DEFAULT_ROLES", "readable"),
        ("ALARM_TYPES", "simple predict"),
    ]);
    let st = both.get_auth("/api/v1/status.json").json();
    assert_eq!(st["settings"]["alarmTypes"], json!(["simple", "predict"]));
    assert!(enable(&st, "simplealarms") && enable(&st, "ar2"), "{st}");
    // JavaScript prints 7.0 and 260 as 7 and 260.
    for text in [
        "\"dayStart\":7,",
        "\"dayEnd\":21,",
        "\"bgHigh\":260,",
        "\"bgLow\":55}",
    ] {
        assert!(r.text.contains(text), "{text} not in {}", r.text);
    }
    assert_eq!(ours["showPlugins"], "dbsize delta direction upbat");
    let enable: Vec<&str> = ours["enable"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for f in [
        "bgnow",
        "delta",
        "direction",
        "upbat",
        "careportal",
        "devicestatus",
        "basal",
    ] {
        assert!(enable.contains(&f), "{f} not in {enable:?}");
    }
    assert_eq!(st["careportalEnabled"], true);

    // ENABLE comes first; DISABLE removes a default feature, and careportalEnabled follows.
    let s = TestServer::with(&[("ENABLE", "iob cob"), ("DISABLE", "careportal")]);
    let st = s.get_auth("/api/v1/status.json").json();
    let enable = st["settings"]["enable"].as_array().unwrap();
    assert_eq!(enable[0], "iob");
    assert_eq!(enable[1], "cob");
    assert!(!enable.contains(&json!("careportal")), "{enable:?}");
    assert_eq!(st["careportalEnabled"], false);
}

/// `/api/v1/count/<storage>/where` answers Mongo's group count of what the find matches.
#[test]
fn count_where() {
    let s = TestServer::start();
    let now = now_ms();
    let entries: Vec<Value> = (0..3)
        .map(|i| crate::support::sgv("xdrip", now - i * 300_000, 100 + i * 50))
        .collect();
    s.post_ok("/api/v1/entries", &json!(entries));
    let r = s.get_auth("/api/v1/count/entries/where?find[sgv][$gte]=150");
    assert_eq!(r.json(), json!([{ "_id": null, "count": 2 }]), "{}", r.text);
    let r = s.get_auth("/api/v1/count/treatments/where");
    assert_eq!(r.json(), json!([]), "{}", r.text);
    assert_eq!(s.get("/api/v1/count/entries/where").status, 401);
}

/// Nightscout's documentation routes answer, without credentials, with an OpenAPI document.
#[test]
fn api_docs_routes_serve_the_openapi_document() {
    let s = TestServer::start();
    for path in ["/swagger.json", "/api-docs", "/api3-docs", "/api-docs/"] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert!(r.json()["openapi"].as_str().is_some(), "{path}: {}", r.text);
    }
}

/// v1 JSON lists carry a weak ETag; If-None-Match with it answers 304 until the list changes;
/// the same documents under another query (xDrip+'s `rr` cache buster) have the same ETag.
#[test]
fn v1_lists_etag_and_if_none_match() {
    let s = TestServer::start();
    let now = now_ms();
    s.post_ok("/api/v1/treatments", &json!({"eventType": "Note", "created_at": crate::support::iso(now - 60_000), "notes": "a"}));
    let r = s.get_auth("/api/v1/treatments.json?rr=1");
    assert_eq!(r.status, 200);
    let tag = r.header("etag").expect("ETag").to_string();
    assert!(tag.starts_with("W/\""), "{tag}");
    let again = s.get_auth("/api/v1/treatments.json?rr=2");
    assert_eq!(again.header("etag"), Some(tag.as_str()));
    let r = s.get_auth_with("/api/v1/treatments.json?rr=3", &[("If-None-Match", &tag)]);
    assert_eq!(r.status, 304, "{}", r.text);
    assert_eq!(r.text, "");
    // A change: a new tag and the full list.
    s.post_ok(
        "/api/v1/treatments",
        &json!({"eventType": "Note", "created_at": crate::support::iso(now), "notes": "b"}),
    );
    let r = s.get_auth_with("/api/v1/treatments.json?rr=4", &[("If-None-Match", &tag)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.list().len(), 2);
    assert_ne!(r.header("etag"), Some(tag.as_str()));
    // A stale tag wins over a fresh date: If-Modified-Since is ignored beside If-None-Match.
    let r = s.get_auth_with(
        "/api/v1/treatments.json?rr=5",
        &[
            ("If-None-Match", &tag),
            ("If-Modified-Since", "Fri, 31 Dec 2100 23:59:59 GMT"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.list().len(), 2);
    // Food too.
    s.post_ok(
        "/api/v1/food",
        &json!({"type": "food", "name": "pear", "carbs": 10}),
    );
    let tag = s
        .get_auth("/api/v1/food.json")
        .header("etag")
        .expect("food ETag")
        .to_string();
    let r = s.get_auth_with("/api/v1/food/regular", &[("If-None-Match", &tag)]);
    assert_eq!(r.status, 304, "the same documents: {}", r.text);
    // Entries too.
    s.post_ok("/api/v1/entries", &crate::support::sgv("xdrip", now, 120));
    let r = s.get_auth("/api/v1/entries.json");
    let tag = r.header("etag").expect("entries ETag").to_string();
    let r = s.get_auth_with("/api/v1/entries.json", &[("If-None-Match", &tag)]);
    assert_eq!(r.status, 304);
}

/// xDrip+ sends `dateString` and `sysTime` with an offset (`+0100`); Nightscout stores and
/// returns both in UTC (`Z`) with the offset in utcOffset.
#[test]
fn xdrip_offset_date_string_is_normalised_to_utc() {
    let s = TestServer::start();
    let date = 1_733_514_295_000_i64; // 2024-12-06T19:44:55Z
    let entry = json!({
        "type": "sgv", "sgv": 131, "date": date, "device": "xDrip-DexcomG6",
        "dateString": "2024-12-06T20:44:55.000+0100", "sysTime": "2024-12-06T20:44:55.000+0100",
        "direction": "Flat"
    });
    let reply = s.post_ok("/api/v1/entries", &entry);
    for e in [
        &reply[0],
        &s.list(&format!("/api/v1/entries.json?find[date]={date}"))[0],
    ] {
        assert_eq!(e["dateString"], "2024-12-06T19:44:55.000Z", "{e}");
        assert_eq!(e["sysTime"], "2024-12-06T19:44:55.000Z", "{e}");
        assert_eq!(e["utcOffset"], 60, "{e}");
        assert_eq!(e["date"], date, "{e}");
    }
}

/// `find[date][$gte]=…&sort[date]=1&count=n`: Nightscout sorts ascending before the limit, so
/// the oldest n matching entries come back, oldest first.
#[test]
fn entries_find_with_ascending_sort() {
    let s = TestServer::start();
    let now = now_ms();
    let entries: Vec<Value> = (0..6)
        .map(|i| crate::support::sgv("xdrip", now - i * 300_000, 100 + i))
        .collect();
    s.post_ok("/api/v1/entries", &json!(entries));
    let since = now - 4 * 300_000 - 1;
    let items = s.list(&format!(
        "/api/v1/entries.json?find[date][$gte]={since}&sort[date]=1&count=3"
    ));
    assert_eq!(crate::support::ints(&items, "sgv"), vec![104, 103, 102]);
    // And descending, the default.
    let items = s.list(&format!(
        "/api/v1/entries.json?find[date][$gte]={since}&count=3"
    ));
    assert_eq!(crate::support::ints(&items, "sgv"), vec![100, 101, 102]);
    // Without a date in find, the 4-day window still applies before the ascending sort.
    s.post_ok(
        "/api/v1/entries",
        &crate::support::sgv("xdrip", now - 5 * 86_400_000, 40),
    );
    let items = s.list("/api/v1/entries.json?sort[date]=1&count=2");
    assert_eq!(crate::support::ints(&items, "sgv"), vec![105, 104]);
}
