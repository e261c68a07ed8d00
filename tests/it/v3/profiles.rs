//! Profile documents' identity, srvModified and soft delete on API v1 and v3
//! (REQ-SYNC-053/059/060/061; docs/api-v1.md "Profiles: one document or two"), with
//! AndroidAPS's and Loop's profile uploads.

use super::*;

const H: i64 = 3_600_000;

fn block(v: f64) -> Value {
    json!([{"time": "00:00", "timeAsSeconds": 0, "value": v}])
}

fn schedules(basal: f64) -> Value {
    json!({"dia": 5, "units": "mg/dl", "timezone": "UTC", "basal": block(basal),
           "carbratio": block(10.0), "sens": block(50.0),
           "target_low": block(100.0), "target_high": block(120.0)})
}

/// AndroidAPS's profile store (V1 Socket.IO dbAdd and V3 POST: `date`, `created_at` and
/// `startDate` are the store's last change, LocalProfileLastChange).
fn aaps_profile(at: i64, basal: f64) -> Value {
    json!({"app": "AAPS", "date": at, "created_at": iso(at), "startDate": iso(at),
           "defaultProfile": "Weekday", "units": "mg/dl", "enteredBy": "openaps://AndroidAPS",
           "store": {"Weekday": schedules(basal)}})
}

/// Loop's profile upload (NightscoutKit ProfileSet, POST /api/v1/profile on every settings
/// change, no `created_at`, no `_id`).
fn loop_profile(at: i64, basal: f64) -> Value {
    json!({"defaultProfile": "Default", "startDate": iso(at), "mills": at.to_string(),
           "units": "mg/dL", "enteredBy": "Loop",
           "store": {"Default": schedules(basal)},
           "loopSettings": {"dosingEnabled": true, "maximumBasalRatePerHour": 3.5,
                            "overridePresets": [{"name": "Running", "symbol": "🏃",
                                                 "duration": 3600, "targetRange": [140, 160],
                                                 "insulinNeedsScaleFactor": 0.8}]}})
}

fn v1_profiles(s: &TestServer) -> Vec<Value> {
    s.list("/api/v1/profile.json?count=100")
}

fn basal_of(doc: &Value) -> f64 {
    let name = doc["defaultProfile"].as_str().unwrap();
    doc["store"][name]["basal"][0]["value"].as_f64().unwrap()
}

#[test]
fn v1_retry_of_the_same_profile_is_one_document_and_keeps_srv_modified() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t = now_ms() - H;
    let first = s.post_ok("/api/v1/profile", &aaps_profile(t, 0.8));
    let again = s.post_ok("/api/v1/profile", &aaps_profile(t, 0.8));
    assert_eq!(first[0]["_id"], again[0]["_id"]);
    assert_eq!(v1_profiles(&s).len(), 1, "REQ-SYNC-059: one document");
    let docs = v3.list("/profile?limit=10");
    assert_eq!(docs.len(), 1);
    let modified = docs[0]["srvModified"].as_i64().unwrap();
    assert_eq!(
        v3.list(&format!("/profile/history/{modified}")).len(),
        0,
        "an identical retry changes nothing"
    );
}

#[test]
fn v1_post_of_a_different_profile_with_the_same_created_at_keeps_both() {
    let s = TestServer::start();
    let t = now_ms() - H;
    let first = s.post_ok("/api/v1/profile", &aaps_profile(t, 0.8));
    let second = s.post_ok("/api/v1/profile", &aaps_profile(t, 0.9));
    assert_ne!(
        first[0]["_id"], second[0]["_id"],
        "Nightscout inserts every POST"
    );
    let stored = v1_profiles(&s);
    assert_eq!(stored.len(), 2, "the first upload is not lost");
    let current = s.get_auth("/api/v1/profile/current").json();
    assert_eq!(
        current["_id"], second[0]["_id"],
        "the later upload is current"
    );
    assert_eq!(basal_of(&current), 0.9);
}

#[test]
fn loop_profile_uploads_accumulate_as_history_and_the_newest_is_current() {
    let s = TestServer::start();
    let t = now_ms() - 3 * H;
    s.post_ok("/api/v1/profile", &json!([loop_profile(t, 0.7)]));
    s.post_ok("/api/v1/profile", &json!([loop_profile(t + H, 0.75)]));
    let stored = v1_profiles(&s);
    assert_eq!(stored.len(), 2);
    let current = s.get_auth("/api/v1/profile/current").json();
    assert_eq!(basal_of(&current), 0.75);
    assert_eq!(
        current["loopSettings"]["overridePresets"][0]["duration"], 3600,
        "presets kept as sent (seconds)"
    );
}

#[test]
fn aaps_socketio_dbadd_with_the_same_start_date_replaces() {
    let s = TestServer::start();
    let t = now_ms() - H;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (a, b) = rt.block_on(async {
        let mut sio = crate::support::Sio::connect(s.port).await;
        sio.join("/").await;
        let auth = sio
            .call(
                "/",
                &json!(["authorize", {"secret": s.secret_hash(), "history": 1}]),
            )
            .await;
        assert_eq!(auth["write"], true, "{auth}");
        let a = sio
            .call(
                "/",
                &json!(["dbAdd", {"collection": "profile", "data": aaps_profile(t, 0.8)}]),
            )
            .await;
        let b = sio
            .call(
                "/",
                &json!(["dbAdd", {"collection": "profile", "data": aaps_profile(t, 0.9)}]),
            )
            .await;
        (a, b)
    });
    assert_eq!(a[0]["_id"], b[0]["_id"], "{a} {b}");
    let stored = v1_profiles(&s);
    assert_eq!(
        stored.len(),
        1,
        "Nightscout 85f7e6ac: dbAdd dedups by startDate"
    );
    assert_eq!(basal_of(&stored[0]), 0.9);
}

#[test]
fn aaps_v3_profile_dedups_on_the_same_date_and_keeps_an_edit_as_a_new_document() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t = now_ms() - 2 * H;
    let id = v3.create("profile", &aaps_profile(t, 0.8));
    let r = v3.post("/profile", &aaps_profile(t, 0.8));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["identifier"], id.as_str());
    assert_eq!(r.json()["isDeduplication"], true);
    // An edit in AndroidAPS is a new LocalProfileLastChange: a new document (Nightscout's
    // tests/api3.aaps-patterns.test.js), the newest current.
    let edit = v3.create("profile", &aaps_profile(t + H, 1.0));
    assert_ne!(edit, id);
    assert_eq!(v1_profiles(&s).len(), 2);
    let current = s.get_auth("/api/v1/profile/current").json();
    assert_eq!(basal_of(&current), 1.0);
}

#[test]
fn v1_and_v3_profile_writes_move_srv_modified() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t = now_ms() - H;
    let id = s.post_ok("/api/v1/profile", &aaps_profile(t, 0.8))[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = v3.list("/profile?limit=10")[0].clone();
    let m0 = created["srvModified"].as_i64().unwrap();
    let ident = created["identifier"].as_str().unwrap().to_string();

    // v1 PUT (Nightscout's profile editor: the whole document by _id).
    let mut edited = aaps_profile(t, 0.85);
    edited["_id"] = json!(id);
    assert_eq!(s.put_json("/api/v1/profile", &edited).status, 200);
    let after_put = v3.doc("profile", &ident);
    let m1 = after_put["srvModified"].as_i64().unwrap();
    assert!(m1 > m0, "REQ-SYNC-060: a v1 update moves srvModified");
    assert_eq!(after_put["srvCreated"], created["srvCreated"]);
    let since = v3.list(&format!("/profile/history/{m0}"));
    assert_eq!(identifiers(&since), [ident.as_str()]);

    // v3 PATCH.
    let r = v3.patch(&format!("/profile/{ident}"), &json!({"units": "mmol"}));
    assert_eq!(r.status, 200, "{}", r.text);
    let m2 = v3.doc("profile", &ident)["srvModified"].as_i64().unwrap();
    assert!(m2 > m1);
    assert_eq!(
        v3.list(&format!("/profile?srvModified$gt={m1}")).len(),
        1,
        "srvModified$gt finds the updated profile"
    );
    assert_eq!(v3.list(&format!("/profile?srvModified$gt={m2}")).len(), 0);
}

#[test]
fn profile_deletes_are_soft_on_v1_and_v3() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t = now_ms() - 3 * H;
    let old = s.post_ok("/api/v1/profile", &aaps_profile(t, 0.7))[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let new = s.post_ok("/api/v1/profile", &aaps_profile(t + H, 0.8))[0]["_id"]
        .as_str()
        .unwrap()
        .to_string();
    let docs = v3.list("/profile?limit=10&sort$desc=date");
    let m0 = docs
        .iter()
        .map(|d| d["srvModified"].as_i64().unwrap())
        .max()
        .unwrap();
    let v1 = v1_profiles(&s);
    let ident_of = |id: &str| {
        v1.iter().find(|d| d["_id"] == id).unwrap()["identifier"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (old_ident, new_ident) = (ident_of(&old), ident_of(&new));

    // v1 DELETE of the newest: profile/current falls back to the older one.
    assert_eq!(s.delete(&format!("/api/v1/profile/{new}")).status, 200);
    assert_eq!(basal_of(&s.get_auth("/api/v1/profile/current").json()), 0.7);
    assert_eq!(v1_profiles(&s).len(), 1);
    let hist = v3.list(&format!("/profile/history/{m0}"));
    assert_eq!(identifiers(&hist), [new_ident.as_str()]);
    assert_eq!(
        hist[0]["isValid"], false,
        "REQ-SYNC-061: still there, marked"
    );
    let m1 = hist[0]["srvModified"].as_i64().unwrap();
    assert!(m1 > m0);
    assert_eq!(v3.get(&format!("/profile/{new_ident}")).status, 410);

    // v3 DELETE of the other.
    assert_eq!(v3.delete(&format!("/profile/{old_ident}")).status, 200);
    assert_eq!(v1_profiles(&s).len(), 0);
    let hist = v3.list(&format!("/profile/history/{m1}"));
    assert_eq!(identifiers(&hist), [old_ident]);
    assert_eq!(hist[0]["isValid"], false);
    assert_eq!(s.get_auth("/api/v1/profile/current").text, "null");
}

/// AndroidAPS NSClientV3's 150 %, −1 h Profile Switch (wave2.md A.4).
fn aaps_switch(date: i64, minutes: i64) -> Value {
    json!({"eventType": "Profile Switch", "date": date, "utcOffset": 120, "isValid": true,
           "profile": "Weekday (150%,-1h)", "originalProfileName": "Weekday",
           "percentage": 150, "timeshift": -3_600_000, "duration": minutes,
           "durationInMilliseconds": minutes * MIN, "originalDuration": minutes * MIN,
           "profileJson": schedules(0.8).to_string(), "app": "AAPS"})
}

#[test]
fn v3_profile_reads_carry_the_active_switch_beside_the_result() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let now = now_ms();
    let older = v3.create("profile", &aaps_profile(now - 48 * H, 0.7));
    let current = v3.create("profile", &aaps_profile(now - 24 * H, 0.8));
    let one = format!("/profile/{current}");
    let plain = v3.get(&one).json();
    assert!(plain.get("activeSwitch").is_none(), "no switch, no field");
    let search = "/profile?sort$desc=date&limit=1";
    assert!(v3.get(search).json().get("activeSwitch").is_none());

    v3.create("treatments", &aaps_switch(now - 10 * MIN, 60));
    let got = v3.get(&one).json();
    assert_eq!(got["result"], plain["result"], "the document is unchanged");
    let active = &got["activeSwitch"];
    assert_eq!(active["name"], "Weekday (150%,-1h)", "{got}");
    assert_eq!(active["percentage"], 150);
    assert_eq!(active["timeshift"], -1);
    assert_eq!(active["timeshiftMs"], -3_600_000);
    assert_eq!(active["CircadianPercentageProfile"], Value::Null);
    assert_eq!(active["source"], "AAPS");
    let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["status", "result", "activeSwitch"]);

    let found = v3.get(search).json();
    assert_eq!(
        found["activeSwitch"], *active,
        "search holding the document in force"
    );
    assert_eq!(found["result"][0]["identifier"], current.as_str());
    // The switch applies to the document in force, not to an older one.
    assert!(v3
        .get(&format!("/profile/{older}"))
        .json()
        .get("activeSwitch")
        .is_none());
    assert!(v3
        .get("/profile?sort=date&limit=1")
        .json()
        .get("activeSwitch")
        .is_none());
    // History is a sync feed: documents only.
    assert!(v3
        .get("/profile/history/0")
        .json()
        .get("activeSwitch")
        .is_none());

    // A reader of profiles who may not read treatments does not see the switch.
    role(&s, "profile-only", &["api:profile:read"]);
    let narrow = V3::new(&s, &jwt(&s, &["profile-only"]));
    let r = narrow.get(&one);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json().get("activeSwitch").is_none());

    // What a client PUTs back from the result stores no derived field.
    let r = v3.put(&one, &got["result"]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(v3.doc("profile", &current).get("activeSwitch").is_none());
}
