//! /api/v1/treatments: round trip, Nightscout's normalisation of uploads, identity and
//! dedup, list defaults and Last-Modified.

use serde_json::{json, Value};

use crate::support::{is_object_id, iso, now_ms, TestServer};

const MIN: i64 = 60_000;

fn parse_ms(v: &Value) -> i64 {
    nightlite::dates::parse_iso(v.as_str().unwrap()).unwrap().ms
}

fn one(s: &TestServer, body: &Value) -> Value {
    let mut reply = s.post_ok("/api/v1/treatments", body);
    assert_eq!(reply.len(), 1, "{reply:?}");
    reply.remove(0)
}

#[test]
fn post_get_put_delete_round_trip() {
    let s = TestServer::start();
    let at = iso(now_ms() - MIN);
    let created = one(
        &s,
        &json!({"eventType": "Note", "notes": "first", "created_at": at}),
    );
    let id = created["_id"].as_str().unwrap().to_string();
    assert!(is_object_id(&id), "{id}");

    let items = s.list("/api/v1/treatments.json");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["_id"], id.as_str());
    assert_eq!(items[0]["notes"], "first");

    let r = s.put_json(
        "/api/v1/treatments",
        &json!({"_id": id, "eventType": "Note", "notes": "second", "created_at": at}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["notes"], "second");
    let items = s.list("/api/v1/treatments.json");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["_id"], id.as_str());
    assert_eq!(items[0]["notes"], "second");

    let r = s.delete(&format!("/api/v1/treatments/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(s.list("/api/v1/treatments.json").is_empty());
}

#[test]
fn created_at_with_offset_becomes_utc_and_sets_utc_offset() {
    let s = TestServer::start();
    let t = one(
        &s,
        &json!({"eventType": "Note", "notes": "tz", "created_at": "2024-01-01T12:00:00+02:00"}),
    );
    assert_eq!(t["created_at"], "2024-01-01T10:00:00.000Z");
    assert_eq!(t["utcOffset"], 120);
    let items = s.list("/api/v1/treatments.json?find[created_at][$gte]=2024-01-01");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["created_at"], "2024-01-01T10:00:00.000Z");
    assert_eq!(items[0]["utcOffset"], 120);
}

#[test]
fn client_utc_offset_is_kept() {
    let s = TestServer::start();
    let t = one(
        &s,
        &json!({"eventType": "Note", "created_at": "2024-01-01T12:00:00+02:00", "utcOffset": -300}),
    );
    assert_eq!(t["created_at"], "2024-01-01T10:00:00.000Z");
    assert_eq!(t["utcOffset"], -300);
}

#[test]
fn missing_created_at_is_now() {
    let s = TestServer::start();
    let before = now_ms();
    let t = one(&s, &json!({"eventType": "Note", "notes": "no date"}));
    let after = now_ms();
    let at = parse_ms(&t["created_at"]);
    assert!(
        at >= before - 1000 && at <= after + 1000,
        "{at} not in {before}..{after}"
    );
    let items = s.list("/api/v1/treatments.json");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["created_at"], t["created_at"]);
}

#[test]
fn numeric_strings_are_coerced() {
    let s = TestServer::start();
    let t = one(
        &s,
        &json!({"eventType": "Meal Bolus", "insulin": "1.5", "carbs": "20", "created_at": iso(now_ms())}),
    );
    assert!(t["insulin"].is_number(), "{t}");
    assert_eq!(t["insulin"].as_f64(), Some(1.5));
    assert_eq!(t["carbs"].as_i64(), Some(20));
    let stored = &s.list("/api/v1/treatments.json")[0];
    assert_eq!(stored["insulin"].as_f64(), Some(1.5));
    assert!(stored["insulin"].is_number());
}

#[test]
fn empty_strings_are_dropped() {
    let s = TestServer::start();
    let t = one(
        &s,
        &json!({"eventType": "Correction Bolus", "insulin": 1, "carbs": "", "notes": "", "created_at": iso(now_ms())}),
    );
    assert!(t.get("carbs").is_none(), "{t}");
    assert!(t.get("notes").is_none(), "{t}");
    let stored = &s.list("/api/v1/treatments.json")[0];
    assert!(stored.get("carbs").is_none(), "{stored}");
    assert_eq!(stored["insulin"], 1);
}

#[test]
fn event_time_becomes_created_at() {
    let s = TestServer::start();
    let at = now_ms() - 20 * MIN;
    let at = at - at % 1000;
    let t = one(
        &s,
        &json!({"eventType": "Note", "notes": "et", "eventTime": iso(at)}),
    );
    assert_eq!(t["created_at"], iso(at).as_str());
    assert!(t.get("eventTime").is_none(), "{t}");
    let stored = &s.list("/api/v1/treatments.json")[0];
    assert_eq!(stored["created_at"], iso(at).as_str());
}

#[test]
fn pre_bolus_splits_carbs_into_a_later_treatment() {
    let s = TestServer::start();
    let at = now_ms() - 60 * MIN;
    let at = at - at % 1000;
    let reply = s.post_ok(
        "/api/v1/treatments",
        &json!({"eventType": "Meal Bolus", "insulin": 2, "carbs": 30, "preBolus": 15, "created_at": iso(at)}),
    );
    assert_eq!(reply.len(), 2, "{reply:?}");
    assert_eq!(reply[0]["insulin"], 2);
    assert!(reply[0].get("carbs").is_none(), "{}", reply[0]);
    assert_eq!(reply[0]["created_at"], iso(at).as_str());
    assert_eq!(reply[1]["carbs"], 30);
    assert_eq!(reply[1]["created_at"], iso(at + 15 * MIN).as_str());
    assert!(is_object_id(reply[1]["_id"].as_str().unwrap()));
    assert_ne!(reply[0]["_id"], reply[1]["_id"]);

    let items = s.list("/api/v1/treatments.json");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["carbs"], 30);
    assert_eq!(items[1]["insulin"], 2);
}

#[test]
fn announcement_is_flagged() {
    let s = TestServer::start();
    let t = one(
        &s,
        &json!({"eventType": "Announcement", "notes": "sensor change", "created_at": iso(now_ms())}),
    );
    assert_eq!(t["isAnnouncement"], true);
    assert_eq!(s.list("/api/v1/treatments.json")[0]["isAnnouncement"], true);
}

#[test]
fn loop_uuid_id_becomes_identifier() {
    let s = TestServer::start();
    let uuid = "6a1e3f38-4b1c-4f0b-9d6e-2a6d8f1b7c11";
    let t = one(
        &s,
        &json!({"_id": uuid, "eventType": "Temporary Override", "duration": 60, "created_at": iso(now_ms())}),
    );
    let id = t["_id"].as_str().unwrap();
    assert!(is_object_id(id), "{id}");
    assert_eq!(t["identifier"], uuid);
    let items = s.list("/api/v1/treatments.json");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["_id"], id);
    assert_eq!(items[0]["identifier"], uuid);
}

#[test]
fn identifier_upserts() {
    let s = TestServer::start();
    let at = iso(now_ms() - 5 * MIN);
    let first = one(
        &s,
        &json!({"identifier": "aaps-1", "eventType": "Correction Bolus", "insulin": 1, "created_at": at}),
    );
    let second = one(
        &s,
        &json!({"identifier": "aaps-1", "eventType": "Correction Bolus", "insulin": 2, "created_at": at}),
    );
    assert_eq!(first["_id"], second["_id"]);
    let items = s.list("/api/v1/treatments.json");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["insulin"], 2);
    assert_eq!(items[0]["_id"], first["_id"]);
}

#[test]
fn sync_identifier_reupload_is_not_duplicated() {
    let s = TestServer::start();
    let body = json!({
        "eventType": "Correction Bolus",
        "insulin": 0.8,
        "syncIdentifier": "pump-event-7f3a",
        "enteredBy": "loop://iPhone",
        "created_at": iso(now_ms() - 10 * MIN)
    });
    let first = one(&s, &body);
    let second = one(&s, &body);
    assert_eq!(first["_id"], second["_id"]);
    assert_eq!(s.list("/api/v1/treatments.json").len(), 1);
}

#[test]
fn two_boluses_a_minute_apart_are_both_kept() {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok(
        "/api/v1/treatments",
        &json!([
            {"eventType": "Correction Bolus", "insulin": 1, "created_at": iso(t - 2 * MIN)},
            {"eventType": "Correction Bolus", "insulin": 1, "created_at": iso(t - MIN)}
        ]),
    );
    assert_eq!(s.list("/api/v1/treatments.json").len(), 2);
}

#[test]
fn same_time_different_event_types_are_both_kept() {
    let s = TestServer::start();
    let at = iso(now_ms() - MIN);
    s.post_ok(
        "/api/v1/treatments",
        &json!([
            {"eventType": "Correction Bolus", "insulin": 1, "created_at": at},
            {"eventType": "Carb Correction", "carbs": 15, "created_at": at}
        ]),
    );
    assert_eq!(s.list("/api/v1/treatments.json").len(), 2);
}

#[test]
fn default_count_is_100_without_find() {
    let s = TestServer::start();
    let t = now_ms();
    let batch: Value = (0..105)
        .map(|i| json!({"eventType": "Note", "notes": format!("n{i}"), "created_at": iso(t - i * MIN)}))
        .collect();
    s.post_ok("/api/v1/treatments", &batch);
    let items = s.list("/api/v1/treatments.json");
    assert_eq!(items.len(), 100);
    assert_eq!(items[0]["notes"], "n0");
    assert_eq!(items[99]["notes"], "n99");
    assert_eq!(
        s.list("/api/v1/treatments.json?find[eventType]=Note").len(),
        105
    );
    assert_eq!(s.list("/api/v1/treatments.json?count=5").len(), 5);
}

#[test]
fn last_modified_is_the_newest_created_at() {
    let s = TestServer::start();
    let newest = now_ms() - 30 * MIN;
    s.post_ok(
        "/api/v1/treatments",
        &json!([
            {"eventType": "Note", "created_at": iso(newest - 10 * MIN)},
            {"eventType": "Note", "created_at": iso(newest)}
        ]),
    );
    let r = s.get_auth("/api/v1/treatments.json");
    assert_eq!(r.status, 200);
    let lm = r
        .header("Last-Modified")
        .expect("Last-Modified")
        .to_string();
    assert_eq!(lm, nightlite::dates::to_http_date(newest));
    let again = s.get_auth_with("/api/v1/treatments.json", &[("If-Modified-Since", &lm)]);
    assert_eq!(again.status, 304, "{}", again.text);
}

#[test]
fn put_by_created_at_and_event_type_replaces() {
    let s = TestServer::start();
    let at = iso(now_ms() - 3 * MIN);
    let first = one(
        &s,
        &json!({"eventType": "Note", "notes": "old", "created_at": at}),
    );
    let r = s.put_json(
        "/api/v1/treatments",
        &json!({"eventType": "Note", "notes": "new", "created_at": at}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let items = s.list("/api/v1/treatments.json");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["_id"], first["_id"]);
    assert_eq!(items[0]["notes"], "new");
}

#[test]
fn zero_temp_basal_keeps_its_rate() {
    let s = TestServer::start();
    let t = one(
        &s,
        &json!({"eventType": "Temp Basal", "absolute": 0, "rate": 0, "duration": 30, "created_at": iso(now_ms() - MIN)}),
    );
    assert_eq!(t["absolute"], 0);
    assert_eq!(t["duration"], 30);
    let stored = &s.list("/api/v1/treatments.json")[0];
    assert_eq!(stored["absolute"], 0);
    assert_eq!(stored["rate"], 0);
}

#[test]
fn epoch_created_at_becomes_iso() {
    let s = TestServer::start();
    let t = one(
        &s,
        &json!({"eventType": "Note", "created_at": 1_704_103_200_000_i64}),
    );
    assert_eq!(t["created_at"], "2024-01-01T10:00:00.000Z");
}

#[test]
fn delete_by_loop_uuid() {
    let s = TestServer::start();
    let uuid = "0a7c1d2e-3f40-4b5c-8d6e-7f8091a2b3c4";
    s.post_ok(
        "/api/v1/treatments",
        &json!([
            {"_id": uuid, "eventType": "Temporary Override", "duration": 60, "created_at": iso(now_ms() - 2 * MIN)},
            {"eventType": "Note", "notes": "stays", "created_at": iso(now_ms() - MIN)}
        ]),
    );
    let r = s.delete(&format!("/api/v1/treatments/{uuid}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let items = s.list("/api/v1/treatments.json");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["notes"], "stays");
}

#[test]
fn delete_with_find() {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok(
        "/api/v1/treatments",
        &json!([
            {"eventType": "Note", "notes": "a", "created_at": iso(t - 2 * MIN)},
            {"eventType": "Site Change", "created_at": iso(t - MIN)}
        ]),
    );
    let r = s.delete("/api/v1/treatments?find[eventType]=Note");
    assert_eq!(r.status, 200, "{}", r.text);
    let items = s.list("/api/v1/treatments.json");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["eventType"], "Site Change");
}

#[test]
fn wildcard_delete_with_find() {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok(
        "/api/v1/treatments",
        &json!([
            {"eventType": "Note", "notes": "a", "created_at": iso(t - 3 * MIN)},
            {"eventType": "Note", "notes": "b", "created_at": iso(t - 2 * MIN)},
            {"eventType": "Site Change", "created_at": iso(t - MIN)}
        ]),
    );
    let r = s.delete("/api/v1/treatments/*?find[eventType]=Note");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["n"], 2, "{}", r.text);
    let items = s.list("/api/v1/treatments.json");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["eventType"], "Site Change");
}

#[test]
fn empty_created_at_is_now() {
    let s = TestServer::start();
    let before = now_ms();
    let r = s.post_json(
        "/api/v1/treatments",
        &json!({"eventType": "Note", "notes": "blank date", "created_at": ""}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let at = parse_ms(&r.list()[0]["created_at"]);
    assert!(at >= before - 1000 && at <= now_ms() + 1000, "{at}");
    assert_eq!(s.list("/api/v1/treatments.json").len(), 1);
}

#[test]
fn reposting_a_pre_bolus_does_not_duplicate_either_part() {
    let s = TestServer::start();
    let body = json!({"eventType": "Meal Bolus", "insulin": 2, "carbs": 30, "preBolus": 15, "created_at": iso(now_ms() - 60 * MIN)});
    let first = s.post_ok("/api/v1/treatments", &body);
    let second = s.post_ok("/api/v1/treatments", &body);
    assert_eq!(crate::support::ids(&first), crate::support::ids(&second));
    assert_eq!(s.list("/api/v1/treatments.json").len(), 2);
}

#[test]
fn identifier_is_uuid_v5_of_device_time_and_event_type() {
    let s = TestServer::start();
    let t = one(
        &s,
        &json!({"eventType": "Correction Bolus", "insulin": 1, "device": "pump-x", "created_at": "2024-01-01T10:00:00.000Z"}),
    );
    let name = "pump-x_1704103200000_Correction Bolus";
    let expected = uuid::Uuid::new_v5(
        &uuid::Uuid::from_bytes(*b"NightscoutRocks!"),
        name.as_bytes(),
    )
    .to_string();
    assert_eq!(t["identifier"], expected.as_str());
}

#[test]
fn server_fields_cannot_be_set_by_clients() {
    let s = TestServer::start();
    let t = one(
        &s,
        &json!({"eventType": "Note", "notes": "sneaky", "isValid": false, "srvModified": 1, "srvCreated": 1, "created_at": iso(now_ms() - MIN)}),
    );
    for field in ["isValid", "srvModified", "srvCreated"] {
        assert!(t.get(field).is_none(), "{field} in {t}");
    }
    let items = s.list("/api/v1/treatments.json");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["notes"], "sneaky");
    assert!(items[0].get("isValid").is_none(), "{}", items[0]);
}
