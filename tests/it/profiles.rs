//! API v4 profile routes (docs/api-v4.md): the effective profile at a moment and the timeline,
//! from real upload shapes: AndroidAPS's profile store and v3 Profile Switch (percentage,
//! timeshift in ms, profileJson, the pre-2025 ms duration), Loop's profile document in its
//! time zone, Nightscout careportal switches through API v1.

use serde_json::{json, Value};

use crate::support::{enc, iso, TestServer};

const H: i64 = 3_600_000;
const MIN: i64 = 60_000;
/// 2026-04-20T00:00:00Z.
const DAY: i64 = 1_776_643_200_000;

fn block(pairs: &[(i64, f64)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(h, v)| json!({"time": format!("{h:02}:00"), "timeAsSeconds": h * 3600, "value": v}))
            .collect(),
    )
}

fn weekday() -> Value {
    json!({
        "dia": 5, "units": "mg/dl", "timezone": "UTC",
        "basal": block(&[(0, 0.8), (6, 1.2), (22, 0.6)]),
        "carbratio": block(&[(0, 10.0)]), "sens": block(&[(0, 50.0)]),
        "target_low": block(&[(0, 100.0)]), "target_high": block(&[(0, 120.0)])
    })
}

/// AndroidAPS's profile store upload, starting at `DAY`.
fn aaps_store() -> Value {
    json!({
        "defaultProfile": "Weekday", "date": DAY, "created_at": iso(DAY),
        "startDate": iso(DAY), "units": "mg/dl", "enteredBy": "openaps://AndroidAPS",
        "store": {
            "Weekday": weekday(),
            "Night": {"dia": 5, "units": "mg/dl", "timezone": "UTC",
                      "basal": block(&[(0, 0.5)]), "carbratio": block(&[(0, 12.0)]),
                      "sens": block(&[(0, 70.0)]), "target_low": block(&[(0, 110.0)]),
                      "target_high": block(&[(0, 130.0)])}
        }
    })
}

/// AndroidAPS NSClientV3's Profile Switch (wave2.md A.4): customized name, -1 h in ms,
/// uncustomized profileJson.
fn aaps_switch(date: i64, minutes: i64) -> Value {
    json!({
        "eventType": "Profile Switch", "date": date, "utcOffset": 120, "isValid": true,
        "profile": "Weekday (150%,-1h)", "originalProfileName": "Weekday",
        "percentage": 150, "timeshift": -3_600_000,
        "duration": minutes, "durationInMilliseconds": minutes * MIN,
        "originalDuration": minutes * MIN,
        "profileJson": weekday().to_string(),
        "pumpId": 11000, "pumpType": "DANA_I", "pumpSerial": "bbbb", "app": "AAPS"
    })
}

fn careportal(at: i64, profile: &str, minutes: i64) -> Value {
    json!({"eventType": "Profile Switch", "created_at": iso(at), "profile": profile,
           "duration": minutes, "enteredBy": "careportal"})
}

struct Client<'a> {
    s: &'a TestServer,
    auth: String,
}

impl<'a> Client<'a> {
    fn new(s: &'a TestServer, roles: &[&str]) -> Client<'a> {
        let name = format!("profiles {}", roles.join(" "));
        let (_, token) = s.create_subject(&name, roles);
        Client {
            s,
            auth: format!("Bearer {}", s.jwt_for(&token)),
        }
    }

    fn get(&self, path: &str) -> crate::support::Resp {
        self.s
            .request("GET", path, &[("Authorization", &self.auth)], None)
    }

    fn ok(&self, path: &str) -> Value {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        r.json()
    }

    fn v3_create(&self, col: &str, body: &Value) -> String {
        let bytes = serde_json::to_vec(body).unwrap();
        let r = self.s.request(
            "POST",
            &format!("/api/v3/{col}"),
            &[
                ("Authorization", &self.auth),
                ("Content-Type", "application/json"),
            ],
            Some(&bytes),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()["identifier"].as_str().unwrap().to_string()
    }
}

fn effective(c: &Client, at: &str) -> Value {
    c.ok(&format!("/api/v4/profile/effective?at={}", enc(at)))
}

#[test]
fn aaps_v3_switch_scales_shifts_and_uses_its_profile_json() {
    let s = TestServer::start();
    let c = Client::new(&s, &["admin"]);
    assert_eq!(s.post_json("/api/v1/profile", &aaps_store()).status, 200);
    let t0 = DAY + 4 * H;
    let id = c.v3_create("treatments", &aaps_switch(t0, 120));

    // 05:30 UTC: the -1 h shift brings the 06:00 rate (1.2) forward, ×1.5.
    let e = effective(&c, &(t0 + 90 * MIN).to_string());
    assert_eq!(e["profileName"], "Weekday (150%,-1h)", "{e}");
    assert_eq!(e["profileSource"], "profileJson");
    assert_eq!(e["percentage"], 150);
    assert_eq!(e["timeshift"], -1);
    assert_eq!(e["timeshiftMs"], -3_600_000);
    assert_eq!(e["values"]["basal"], 1.8);
    assert_eq!(e["values"]["sens"], 33.3333);
    assert_eq!(e["values"]["carbratio"], 6.6667);
    assert_eq!(e["values"]["target_low"], 100);
    assert_eq!(e["schedules"]["basal"][1]["time"], "05:00");
    assert_eq!(e["schedules"]["basal"][1]["value"], 1.8);
    let sw = &e["switch"];
    assert_eq!(sw["identifier"], id.as_str());
    assert_eq!(sw["name"], "Weekday (150%,-1h)");
    assert_eq!(sw["start"], t0);
    assert_eq!(sw["end"], t0 + 2 * H);
    assert_eq!(sw["duration"], 120);
    assert_eq!(sw["source"], "AAPS");
    assert_eq!(sw["CircadianPercentageProfile"], Value::Null);

    // After its two hours (ISO this time): the default profile, unscaled.
    let after = effective(&c, &iso(t0 + 3 * H));
    assert_eq!(after["profileName"], "Weekday");
    assert_eq!(after["profileSource"], "defaultProfile");
    assert_eq!(after["switch"], Value::Null);
    assert_eq!(after["values"]["basal"], 1.2);

    // The stored treatment is as uploaded: no renaming, profileJson still the string.
    let stored = c.ok(&format!("/api/v3/treatments/{id}"))["result"].clone();
    assert_eq!(stored["profile"], "Weekday (150%,-1h)");
    assert_eq!(stored["profileJson"], weekday().to_string());
    assert_eq!(stored["duration"], 120);
}

#[test]
fn pre_2025_aaps_duration_in_ms_ends_after_original_duration() {
    let s = TestServer::start();
    let c = Client::new(&s, &["admin"]);
    assert_eq!(s.post_json("/api/v1/profile", &aaps_store()).status, 200);
    let t0 = DAY + 8 * H;
    let mut body = aaps_switch(t0, 60);
    body["duration"] = json!(3_600_000);
    body["durationInMilliseconds"] = json!(216_000_000_000_i64);
    c.v3_create("treatments", &body);
    let during = effective(&c, &(t0 + 30 * MIN).to_string());
    assert_eq!(
        during["switch"]["durationSource"], "originalDuration",
        "{during}"
    );
    assert_eq!(during["switch"]["end"], t0 + H);
    let after = effective(&c, &(t0 + 2 * H).to_string());
    assert_eq!(after["switch"], Value::Null, "not 6.8 years");
}

#[test]
fn loop_profile_is_read_in_its_time_zone() {
    let s = TestServer::start();
    let c = Client::new(&s, &["admin"]);
    // NightscoutKit's ProfileSet as Loop uploads it.
    let lp = json!({
        "defaultProfile": "Default", "startDate": "2026-04-01T00:00:00.000Z",
        "mills": "1775001600000", "units": "mg/dL", "enteredBy": "Loop",
        "loopSettings": {"dosingEnabled": true, "overridePresets": [
            {"name": "Running", "symbol": "🏃", "duration": 3600,
             "targetRange": [140, 160], "insulinNeedsScaleFactor": 0.8}]},
        "store": {"Default": {
            "timezone": "America/Los_Angeles", "units": "mg/dL", "dia": 6,
            "basal": [{"time": "00:00", "timeAsSeconds": 0, "value": 0.9},
                      {"time": "06:00", "timeAsSeconds": 21600, "value": 1.1}],
            "carbratio": [{"time": "00:00", "timeAsSeconds": 0, "value": 9}],
            "sens": [{"time": "00:00", "timeAsSeconds": 0, "value": 45}],
            "target_low": [{"time": "00:00", "timeAsSeconds": 0, "value": 100}],
            "target_high": [{"time": "00:00", "timeAsSeconds": 0, "value": 110}]
        }}
    });
    assert_eq!(s.post_json("/api/v1/profile", &lp).status, 200);
    // 12:00Z is 05:00 PDT, 14:00Z 07:00 PDT.
    let early = effective(&c, "2026-04-20T12:00:00Z");
    assert_eq!(early["zone"], "America/Los_Angeles", "{early}");
    assert_eq!(early["values"]["basal"], 0.9);
    assert_eq!(early["units"], "mg/dL");
    assert_eq!(early["dia"], 6);
    assert_eq!(
        effective(&c, "2026-04-20T14:00:00Z")["values"]["basal"],
        1.1
    );
}

#[test]
fn careportal_switches_fall_back_and_make_a_timeline() {
    let s = TestServer::start();
    let c = Client::new(&s, &["admin"]);
    assert_eq!(s.post_json("/api/v1/profile", &aaps_store()).status, 200);
    for body in [
        careportal(DAY + 8 * H, "Night", 0),
        careportal(DAY + 10 * H, "Weekday", 60),
    ] {
        assert_eq!(s.post_json("/api/v1/treatments", &body).status, 200);
    }
    let back = effective(&c, &iso(DAY + 11 * H + 30 * MIN));
    assert_eq!(back["profileName"], "Night", "{back}");
    assert_eq!(back["switch"]["source"], "careportal");
    assert_eq!(back["values"]["basal"], 0.5);

    let t = c.ok(&format!(
        "/api/v4/profile/timeline?from={DAY}&to={}",
        enc(&iso(DAY + 24 * H))
    ));
    let segs: Vec<(i64, i64, String)> = t["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                (s["start"].as_i64().unwrap() - DAY) / MIN,
                (s["end"].as_i64().unwrap() - DAY) / MIN,
                s["profileName"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        (0, 480, "Weekday"),
        (480, 600, "Night"),
        (600, 660, "Weekday"),
        (660, 1440, "Night"),
    ];
    assert_eq!(
        segs,
        want.map(|(a, b, n)| (a, b, n.to_string())).to_vec(),
        "{t}"
    );
    assert_eq!(t["segments"][2]["switch"]["duration"], 60);
    assert_eq!(t["segments"][0]["switch"], Value::Null);

    // A deleted switch no longer counts.
    let night = s.list("/api/v1/treatments?find[profile]=Night&find[created_at][$gte]=2026-04-01");
    let r = s.delete(&format!(
        "/api/v1/treatments/{}",
        night[0]["_id"].as_str().unwrap()
    ));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(effective(&c, &iso(DAY + 9 * H))["profileName"], "Weekday");
}

#[test]
fn without_profiles_everything_is_null() {
    let s = TestServer::start();
    let c = Client::new(&s, &["admin"]);
    let e = effective(&c, "1776700303000");
    assert_eq!(e["at"], 1_776_700_303_000_i64);
    assert_eq!(e["profileName"], Value::Null);
    assert_eq!(e["values"], Value::Null);
    let t = c.ok("/api/v4/profile/timeline");
    assert_eq!(t["segments"], json!([]));
}

#[test]
fn bad_times_are_400_naming_the_parameter() {
    let s = TestServer::start();
    let c = Client::new(&s, &["admin"]);
    for (path, name) in [
        ("/api/v4/profile/effective?at=yesterday", "at"),
        ("/api/v4/profile/effective?at=", "at"),
        ("/api/v4/profile/timeline?from=abc", "from"),
        ("/api/v4/profile/timeline?to=2026-02-30", "to"),
    ] {
        let r = c.get(path);
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        let body = r.json();
        assert_eq!(body["status"], 400);
        assert!(
            body["message"].as_str().unwrap().starts_with(name),
            "{path}: {body}"
        );
    }
    let r = c.get(&format!(
        "/api/v4/profile/timeline?from={}&to={DAY}",
        DAY + 1
    ));
    assert_eq!(r.status, 400);
    let r = c.get(&format!("/api/v4/profile/timeline?from=0&to={DAY}"));
    assert_eq!(r.status, 400);
    assert!(r.text.contains("366 days"), "{}", r.text);
}

#[test]
fn v3_style_auth_needs_profile_and_treatments_read() {
    let s = TestServer::start();
    let r = s.get("/api/v4/profile/effective");
    assert_eq!(r.status, 401, "{}", r.text);
    let r = s.get_auth("/api/v4/profile/effective");
    assert_eq!(r.status, 401, "the API secret is not v3 auth: {}", r.text);
    let role = s.post_json(
        "/api/v2/authorization/roles",
        &json!({"name": "profile-only", "permissions": ["api:profile:read"]}),
    );
    assert_eq!(role.status, 200, "{}", role.text);
    let only_profile = Client::new(&s, &["profile-only"]);
    let r = only_profile.get("/api/v4/profile/timeline");
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("api:treatments:read"), "{}", r.text);
    let reader = Client::new(&s, &["readable"]);
    assert_eq!(reader.get("/api/v4/profile/effective").status, 200);
}

#[test]
fn v1_profile_current_adds_the_active_switch_and_changes_nothing_else() {
    let s = TestServer::start();
    let now = crate::support::now_ms();
    let mut store = aaps_store();
    store["startDate"] = json!(iso(now - 24 * H));
    assert_eq!(s.post_json("/api/v1/profile", &store).status, 200);
    let plain = s.get_auth("/api/v1/profile/current");
    assert_eq!(plain.status, 200);
    assert!(
        plain.json().get("activeSwitch").is_none(),
        "no switch, no field"
    );

    let mut sw = careportal(now - 10 * MIN, "Night", 60);
    sw["percentage"] = json!(80);
    sw["timeshift"] = json!(1);
    sw["CircadianPercentageProfile"] = json!(true);
    assert_eq!(s.post_json("/api/v1/treatments", &sw).status, 200);
    let r = s.get_auth("/api/v1/profile/current");
    assert_eq!(r.status, 200);
    let mut cur = r.json();
    let active = cur.as_object_mut().unwrap().remove("activeSwitch").unwrap();
    assert_eq!(active["name"], "Night");
    assert_eq!(active["percentage"], 80);
    assert_eq!(active["timeshift"], 1);
    assert_eq!(active["CircadianPercentageProfile"], true);
    assert_eq!(active["source"], "careportal");
    assert_eq!(cur, plain.json(), "every other field as before");
    assert!(r.text.starts_with(&plain.text[..plain.text.len() - 1]));
}

#[test]
fn a_newer_profile_document_starts_from_its_default_profile() {
    let s = TestServer::start();
    let c = Client::new(&s, &["admin"]);
    assert_eq!(s.post_json("/api/v1/profile", &aaps_store()).status, 200);
    let sw = careportal(DAY + 2 * H, "Night", 0);
    assert_eq!(s.post_json("/api/v1/treatments", &sw).status, 200);
    // AndroidAPS uploads a new document on every profile edit.
    let mut newer = aaps_store();
    newer["startDate"] = json!(iso(DAY + 6 * H));
    newer["created_at"] = json!(iso(DAY + 6 * H));
    newer["date"] = json!(DAY + 6 * H);
    newer["store"]["Weekday"]["basal"] = block(&[(0, 0.9)]);
    assert_eq!(s.post_json("/api/v1/profile", &newer).status, 200);

    assert_eq!(effective(&c, &iso(DAY + 5 * H))["profileName"], "Night");
    let e = effective(&c, &iso(DAY + 7 * H));
    assert_eq!(e["profileName"], "Weekday", "{e}");
    assert_eq!(
        e["switch"],
        Value::Null,
        "the older switch does not carry over"
    );
    assert_eq!(e["values"]["basal"], 0.9);
    assert_eq!(e["document"]["startDate"], iso(DAY + 6 * H));
    let t = c.ok(&format!(
        "/api/v4/profile/timeline?from={DAY}&to={}",
        DAY + 12 * H
    ));
    let names: Vec<&str> = t["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["profileName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Weekday", "Night", "Weekday"], "{t}");
    assert_eq!(t["segments"][2]["start"], DAY + 6 * H);
}
