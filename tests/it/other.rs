//! devicestatus, profile, food and activity round trips, retried uploads, and exact
//! preservation of the fields clients send.

use serde_json::{json, Value};

use crate::support::{is_object_id, iso, now_ms, TestServer};

const MIN: i64 = 60_000;

#[test]
fn devicestatus_round_trip_newest_first() {
    let s = TestServer::start();
    let t = now_ms();
    let reply = s.post_ok(
        "/api/v1/devicestatus",
        &json!([
            {"device": "loop://iPhone", "created_at": iso(t - 5 * MIN), "loop": {"iob": {"iob": 1.2}}},
            {"device": "loop://iPhone", "created_at": iso(t), "loop": {"iob": {"iob": 0.9}}}
        ]),
    );
    assert_eq!(reply.len(), 2);
    assert!(reply
        .iter()
        .all(|d| is_object_id(d["_id"].as_str().unwrap())));
    let items = s.list("/api/v1/devicestatus.json");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["created_at"], iso(t).as_str());
    assert_eq!(items[0]["loop"]["iob"]["iob"], json!(0.9));
    assert_eq!(items[1]["_id"], reply[0]["_id"]);
    assert_eq!(s.list("/api/v1/devicestatus.json?count=1").len(), 1);
}

#[test]
fn devicestatus_created_at_is_normalised() {
    let s = TestServer::start();
    let reply = s.post_ok(
        "/api/v1/devicestatus",
        &json!({"device": "tz", "created_at": "2024-01-01T12:00:00+02:00"}),
    );
    assert_eq!(reply[0]["created_at"], "2024-01-01T10:00:00.000Z");
    assert_eq!(reply[0]["utcOffset"], 120);
    let items = s.list("/api/v1/devicestatus.json?find[created_at][$gte]=2024-01-01");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["created_at"], "2024-01-01T10:00:00.000Z");
}

#[test]
fn devicestatus_delete_by_id() {
    let s = TestServer::start();
    let t = now_ms();
    let reply = s.post_ok(
        "/api/v1/devicestatus",
        &json!([
            {"device": "a", "created_at": iso(t - MIN)},
            {"device": "b", "created_at": iso(t)}
        ]),
    );
    let id = reply[0]["_id"].as_str().unwrap();
    let r = s.delete(&format!("/api/v1/devicestatus/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let items = s.list("/api/v1/devicestatus.json");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["device"], "b");
}

#[test]
fn devicestatus_delete_with_find() {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok(
        "/api/v1/devicestatus",
        &json!([
            {"device": "old-rig", "created_at": iso(t - 2 * MIN)},
            {"device": "phone", "created_at": iso(t - MIN)}
        ]),
    );
    let r = s.delete("/api/v1/devicestatus?find[device]=old-rig");
    assert_eq!(r.status, 200, "{}", r.text);
    let items = s.list("/api/v1/devicestatus.json");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["device"], "phone");
}

#[test]
fn devicestatus_wildcard_delete() {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok(
        "/api/v1/devicestatus",
        &json!([
            {"device": "a", "created_at": iso(t - 2 * MIN)},
            {"device": "b", "created_at": iso(t - MIN)}
        ]),
    );
    let r = s.delete("/api/v1/devicestatus/*");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["n"], 2, "{}", r.text);
    assert!(s.list("/api/v1/devicestatus.json").is_empty());
}

#[test]
fn delete_with_an_invalid_id_is_400() {
    let s = TestServer::start();
    for path in [
        "/api/v1/devicestatus/not-an-id",
        "/api/v1/food/not-an-id",
        "/api/v1/activity/not-an-id",
    ] {
        let r = s.delete(path);
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_eq!(r.json()["status"], 400);
    }
}

#[test]
fn retried_devicestatus_is_stored_once() {
    let s = TestServer::start();
    let body = json!({"device": "openaps://rig", "created_at": iso(now_ms() - MIN), "openaps": {"iob": {"iob": 2}}});
    let first = s.post_ok("/api/v1/devicestatus", &body);
    let second = s.post_ok("/api/v1/devicestatus", &body);
    assert_eq!(first[0]["_id"], second[0]["_id"]);
    assert_eq!(s.list("/api/v1/devicestatus.json").len(), 1);
}

#[test]
fn devicestatus_of_two_devices_at_the_same_time_are_both_kept() {
    let s = TestServer::start();
    let at = iso(now_ms() - MIN);
    s.post_ok(
        "/api/v1/devicestatus",
        &json!([{"device": "phone", "created_at": at}, {"device": "rig", "created_at": at}]),
    );
    assert_eq!(s.list("/api/v1/devicestatus.json").len(), 2);
}

fn profile(name: &str, start: i64, basal: f64) -> Value {
    json!({
        "defaultProfile": name,
        "startDate": iso(start),
        "created_at": iso(start),
        "units": "mg/dl",
        "store": {name: {"dia": 5, "basal": [{"time": "00:00", "value": basal, "timeAsSeconds": 0}]}}
    })
}

#[test]
fn profile_list_profiles_and_current() {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok("/api/v1/profile", &profile("Older", t - 60 * MIN, 0.8));
    s.post_ok("/api/v1/profile", &profile("Newer", t - 10 * MIN, 0.9));

    let list = s.list("/api/v1/profile");
    let names: Vec<&Value> = list.iter().map(|p| &p["defaultProfile"]).collect();
    assert_eq!(names, vec!["Newer", "Older"]);
    assert_eq!(s.list("/api/v1/profile.json").len(), 2);
    let one = s.list("/api/v1/profile?count=1");
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["defaultProfile"], "Newer");

    let list = s.list("/api/v1/profiles");
    let names: Vec<&Value> = list.iter().map(|p| &p["defaultProfile"]).collect();
    assert_eq!(names, vec!["Newer", "Older"]);

    let r = s.get_auth("/api/v1/profile/current");
    assert_eq!(r.status, 200);
    let current = r.json();
    assert!(current.is_object(), "{current}");
    assert_eq!(current["defaultProfile"], "Newer");
    assert_eq!(current["store"]["Newer"]["basal"][0]["value"], json!(0.9));
}

#[test]
fn old_profile_is_still_listed_and_current() {
    let s = TestServer::start();
    s.post_ok(
        "/api/v1/profile",
        &profile("Ancient", 1_577_836_800_000, 0.6),
    );
    let list = s.list("/api/v1/profile");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["defaultProfile"], "Ancient");
    assert_eq!(
        s.get_auth("/api/v1/profile/current").json()["defaultProfile"],
        "Ancient"
    );
}

#[test]
fn profiles_accepts_find() {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok(
        "/api/v1/profile",
        &json!([
            profile("Work", t - 60 * MIN, 0.8),
            profile("Home", t - 10 * MIN, 0.9)
        ]),
    );
    let list = s.list("/api/v1/profiles.json?find[defaultProfile]=Work");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["defaultProfile"], "Work");
}

#[test]
fn profile_current_is_null_when_there_is_none() {
    let s = TestServer::start();
    let r = s.get_auth("/api/v1/profile/current");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), Value::Null);
}

#[test]
fn profile_put_with_object_id_replaces() {
    let s = TestServer::start();
    let t = now_ms();
    let created = s.post_ok("/api/v1/profile", &profile("Default", t - MIN, 0.8));
    let id = created[0]["_id"].as_str().unwrap().to_string();
    let mut changed = profile("Default", t - MIN, 1.1);
    changed["_id"] = json!(id);
    let r = s.put_json("/api/v1/profile", &changed);
    assert_eq!(r.status, 200, "{}", r.text);
    let list = s.list("/api/v1/profile");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["_id"], id.as_str());
    assert_eq!(list[0]["store"]["Default"]["basal"][0]["value"], json!(1.1));
}

#[test]
fn profile_put_without_hex_id_is_400() {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok("/api/v1/profile", &profile("Default", t - MIN, 0.8));
    let r = s.put_json("/api/v1/profile", &profile("Default", t - MIN, 2.0));
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["status"], 400);
    let mut bad = profile("Default", t - MIN, 2.0);
    bad["_id"] = json!("not-an-object-id");
    let r = s.put_json("/api/v1/profile", &bad);
    assert_eq!(r.status, 400, "{}", r.text);
    let list = s.list("/api/v1/profile");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["store"]["Default"]["basal"][0]["value"], json!(0.8));
}

#[test]
fn profile_delete_returns_empty_object() {
    let s = TestServer::start();
    let created = s.post_ok("/api/v1/profile", &profile("Gone", now_ms() - MIN, 0.8));
    let id = created[0]["_id"].as_str().unwrap();
    let r = s.delete(&format!("/api/v1/profile/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({}));
    assert!(s.list("/api/v1/profile").is_empty());
}

#[test]
fn retried_profile_upload_is_stored_once() {
    let s = TestServer::start();
    let p = profile("Retry", now_ms() - MIN, 0.7);
    let first = s.post_ok("/api/v1/profile", &p);
    let second = s.post_ok("/api/v1/profile", &p);
    assert_eq!(first[0]["_id"], second[0]["_id"]);
    assert_eq!(s.list("/api/v1/profile").len(), 1);
}

#[test]
fn food_lists_quickpicks_and_regular() {
    let s = TestServer::start();
    s.post_ok(
        "/api/v1/food",
        &json!([
            {"type": "quickpick", "name": "second", "hidden": "false", "position": 2, "foods": []},
            {"type": "quickpick", "name": "hidden", "hidden": "true", "position": 0, "foods": []},
            {"type": "food", "name": "apple", "category": "fruit", "carbs": 12, "portion": 100, "unit": "g"},
            {"type": "quickpick", "name": "first", "hidden": "false", "position": 1, "foods": []},
            {"type": "quickpick", "name": "third", "hidden": "false", "position": 3, "foods": []}
        ]),
    );
    let names = |path: &str| -> Vec<String> {
        s.list(path)
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("/api/v1/food").len(), 5);
    assert_eq!(names("/api/v1/food.json").len(), 5);
    assert_eq!(
        names("/api/v1/food/quickpicks"),
        vec!["first", "second", "third"]
    );
    assert_eq!(names("/api/v1/food/regular"), vec!["apple"]);
}

#[test]
fn food_delete_by_id() {
    let s = TestServer::start();
    let reply = s.post_ok(
        "/api/v1/food",
        &json!([{"type": "food", "name": "pear"}, {"type": "food", "name": "plum"}]),
    );
    let id = reply[0]["_id"].as_str().unwrap();
    let r = s.delete(&format!("/api/v1/food/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let left = s.list("/api/v1/food");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["name"], "plum");
}

#[test]
fn activity_round_trip() {
    let s = TestServer::start();
    let at = iso(now_ms() - 2 * MIN);
    let reply = s.post_ok(
        "/api/v1/activity",
        &json!({"created_at": at, "steps": 1234, "heartRate": 71, "activityLevel": "walking"}),
    );
    assert!(is_object_id(reply[0]["_id"].as_str().unwrap()));
    let items = s.list("/api/v1/activity.json");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["steps"], 1234);
    assert_eq!(items[0]["created_at"], at.as_str());
    assert_eq!(items[0]["_id"], reply[0]["_id"]);
}

#[test]
fn activity_put_and_delete() {
    let s = TestServer::start();
    let at = iso(now_ms() - 2 * MIN);
    let reply = s.post_ok("/api/v1/activity", &json!({"created_at": at, "steps": 10}));
    let id = reply[0]["_id"].as_str().unwrap().to_string();
    let r = s.put_json(
        "/api/v1/activity",
        &json!({"_id": id, "created_at": at, "steps": 20}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let items = s.list("/api/v1/activity.json");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["steps"], 20);
    assert_eq!(s.delete(&format!("/api/v1/activity/{id}")).status, 200);
    assert!(s.list("/api/v1/activity.json").is_empty());
}

#[test]
fn activity_last_modified() {
    let s = TestServer::start();
    let newest = now_ms() - 10 * MIN;
    s.post_ok(
        "/api/v1/activity",
        &json!([{"created_at": iso(newest - MIN), "steps": 1}, {"created_at": iso(newest), "steps": 2}]),
    );
    let r = s.get_auth("/api/v1/activity.json");
    assert_eq!(r.status, 200);
    let lm = r
        .header("Last-Modified")
        .expect("Last-Modified")
        .to_string();
    assert_eq!(lm, nightlite::dates::to_http_date(newest));
    let again = s.get_auth_with("/api/v1/activity.json", &[("If-Modified-Since", &lm)]);
    assert_eq!(again.status, 304);
}

/// Unknown nested fields, unicode, big integers, trailing zeros and nulls in arrays.
fn odd_fields(time_field: &str, time_value: &str) -> String {
    format!(
        r#"{{"{time_field}": {time_value}, "device": "preserve",
            "custom": {{"nested": {{"deep": [1, null, {{"k": "v"}}], "empty": {{}}, "list": []}}}},
            "text": "Grüße 🍕 日本語 \u00e9 \"quoted\"",
            "big": 123456789012345678901234567890,
            "bigNegative": -98765432109876543210,
            "floaty": 150000.5,
            "precise": 1.50,
            "tiny": 1e-7,
            "nulls": [null, 1, null],
            "flag": false}}"#
    )
}

fn assert_odd_fields_kept(raw_text: &str, doc: &Value) {
    for needle in [
        "123456789012345678901234567890",
        "-98765432109876543210",
        "150000.5",
        "1.50",
    ] {
        assert!(raw_text.contains(needle), "{needle} not in {raw_text}");
    }
    assert_eq!(
        doc["custom"],
        json!({"nested": {"deep": [1, null, {"k": "v"}], "empty": {}, "list": []}})
    );
    assert_eq!(doc["text"], "Grüße 🍕 日本語 é \"quoted\"");
    assert_eq!(doc["nulls"], json!([null, 1, null]));
    assert_eq!(doc["flag"], false);
    assert_eq!(doc["tiny"].as_f64(), Some(1e-7));
}

#[test]
fn treatment_fields_are_preserved() {
    let s = TestServer::start();
    let body = odd_fields(
        "created_at",
        &format!("\"{}\", \"eventType\": \"Note\"", iso(now_ms() - MIN)),
    );
    let r = s.post_raw("/api/v1/treatments", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_odd_fields_kept(&r.text, &r.list()[0]);
    let r = s.get_auth("/api/v1/treatments.json");
    assert_odd_fields_kept(&r.text, &r.list()[0]);
}

#[test]
fn entry_fields_are_preserved() {
    let s = TestServer::start();
    let body = odd_fields(
        "date",
        &format!("{}, \"type\": \"sgv\", \"sgv\": 100", now_ms() - MIN),
    );
    let r = s.post_raw("/api/v1/entries", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_odd_fields_kept(&r.text, &r.list()[0]);
    let r = s.get_auth("/api/v1/entries.json");
    assert_odd_fields_kept(&r.text, &r.list()[0]);
}

#[test]
fn devicestatus_fields_are_preserved() {
    let s = TestServer::start();
    let body = odd_fields("created_at", &format!("\"{}\"", iso(now_ms() - MIN)));
    let r = s.post_raw("/api/v1/devicestatus", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text);
    assert_odd_fields_kept(&r.text, &r.list()[0]);
    let r = s.get_auth("/api/v1/devicestatus.json");
    assert_odd_fields_kept(&r.text, &r.list()[0]);
}

#[test]
fn treatment_numbers_keep_their_text() {
    let s = TestServer::start();
    let body = format!(
        r#"{{"eventType": "Correction Bolus", "insulin": 1.50, "created_at": "{}"}}"#,
        iso(now_ms() - MIN)
    );
    let r = s.post_raw("/api/v1/treatments", body.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("\"insulin\":1.50"), "{}", r.text);
    let r = s.get_auth("/api/v1/treatments.json");
    assert!(r.text.contains("\"insulin\":1.50"), "{}", r.text);
}
