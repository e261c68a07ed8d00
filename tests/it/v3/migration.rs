//! REQ-MIGRATION-001..004 (../shared/spec/seeds/004_*.txt): documents moved from a Nightscout
//! (its export uploaded through API v1, as migration scripts and bridges do) keep their `_id`,
//! their unknown and nested fields verbatim, and srvModified is the server's time of the
//! write, not the document's.

use super::*;

/// Nightscout's ObjectId from the requirement's example, and more in the same form.
const OLD_ID: &str = "507f1f77bcf86cd799439011";

fn exported(coll: &str, id: &str, at: i64) -> Value {
    let base = match coll {
        "entries" => json!({"type": "sgv", "sgv": 123, "date": at, "dateString": iso(at),
                            "device": "xDrip-DexcomG6"}),
        "treatments" => json!({"eventType": "Correction Bolus", "insulin": 1.5,
                               "created_at": iso(at), "enteredBy": "careportal"}),
        "devicestatus" => json!({"device": "openaps://phone", "created_at": iso(at)}),
        "profile" => json!({"defaultProfile": "Default", "startDate": iso(at),
                            "created_at": iso(at), "store": {"Default": {"dia": 5}}}),
        _ => json!({"type": "food", "name": "apple", "carbs": 12, "created_at": iso(at)}),
    };
    with(base, json!({"_id": id}))
}

#[test]
fn req_migration_001_the_original_id_of_each_imported_document_is_kept() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let at = now_ms() - 60 * MIN;
    for (n, coll) in ["entries", "treatments", "devicestatus", "profile", "food"]
        .iter()
        .enumerate()
    {
        let id = format!("507f1f77bcf86cd79943901{n}");
        let written = s.post_ok(
            &format!("/api/v1/{coll}"),
            &json!([exported(coll, &id, at)]),
        );
        assert_eq!(written[0]["_id"], id.as_str(), "{coll}: the reply");
        let found = s.list(&format!("/api/v1/{coll}.json?find[_id]={id}&count=10"));
        assert_eq!(found.len(), 1, "{coll}: found by the original _id");
        assert_eq!(found[0]["_id"], id.as_str());
        // API v3 finds it under its identifier; a second import of the same export is the
        // same document, not a copy.
        let again = s.post_ok(
            &format!("/api/v1/{coll}"),
            &json!([exported(coll, &id, at)]),
        );
        assert_eq!(again[0]["_id"], id.as_str(), "{coll}: re-import");
        let ident = found[0]["identifier"].as_str().unwrap();
        assert_eq!(v3.doc(coll, ident)["identifier"], ident);
    }
    // Entries are also read by their _id in the path, as Nightscout serves them.
    let by_path = s.list("/api/v1/entries/507f1f77bcf86cd799439010.json");
    assert_eq!(by_path[0]["_id"], "507f1f77bcf86cd799439010");
}

#[test]
fn req_migration_002_unknown_and_nested_fields_come_back_verbatim() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let at = now_ms() - 60 * MIN;
    let doc = with(
        exported("treatments", OLD_ID, at),
        json!({"custom_field": "value", "NSCLIENT_ID": 1_700_000_000_123_i64,
               "plugin": {"rates": [0.05, {"at": "06:00", "u": 1.25}], "flag": null,
                          "nested": {"deeper": ["é", "🏃"]}}}),
    );
    // Number text as sent: 2.50 stays 2.50 (the body is built as text for that).
    let body = serde_json::to_string(&doc).unwrap().replacen(
        "\"custom_field\"",
        "\"dose\":2.50,\"custom_field\"",
        1,
    );
    let r = s.request_auth(
        "POST",
        "/api/v1/treatments",
        &[("Content-Type", "application/json")],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let v1 = s.get_auth(&format!("/api/v1/treatments.json?find[_id]={OLD_ID}"));
    assert!(v1.text.contains("\"dose\":2.50"), "{}", v1.text);
    let got = &v1.list()[0];
    for key in ["custom_field", "NSCLIENT_ID", "plugin"] {
        assert_eq!(got[key], doc[key], "v1: {key}");
    }
    let ident = got["identifier"].as_str().unwrap();
    let r = v3.get(&format!("/treatments/{ident}"));
    assert!(r.text.contains("\"dose\":2.50"), "{}", r.text);
    let stored = result(&r);
    for key in ["custom_field", "NSCLIENT_ID", "plugin"] {
        assert_eq!(stored[key], doc[key], "v3: {key}");
    }
}

#[test]
fn req_migration_003_device_status_objects_keep_their_structure_and_are_queryable() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let at = now_ms() - 10 * MIN;
    let loop_status = json!({
        "device": "loop://iPhone", "created_at": iso(at),
        "loop": {"name": "Loop", "version": "3.4.1", "timestamp": iso(at),
                 "iob": {"iob": 1.2, "timestamp": iso(at)},
                 "predicted": {"startDate": iso(at), "values": [120, 118, 115, 113, 110]},
                 "override": {"name": "Running", "active": true, "duration": 3600,
                              "multiplier": 0.8,
                              "currentCorrectionRange": {"minValue": 140, "maxValue": 160}}},
        "pump": {"battery": {"percent": 62}, "reservoir": 120.5, "suspended": false},
        "uploader": {"battery": 80}
    });
    let aaps_status = json!({
        "device": "openaps://AndroidAPS", "created_at": iso(at + MIN),
        "openaps": {"suggested": {"bg": 140, "eventualBG": 120, "reason": "COB: 0, Dev: -5",
                                  "predBGs": {"IOB": [140, 138, 136], "ZT": [140, 130]}},
                    "enacted": {"rate": 0.5, "duration": 30, "received": true},
                    "iob": {"iob": 0.8, "basaliob": 0.1}},
        "pump": {"clock": iso(at + MIN), "battery": {"percent": 75}}
    });
    s.post_ok("/api/v1/devicestatus", &json!([loop_status, aaps_status]));
    let listed = s.list("/api/v1/devicestatus.json?count=10");
    let find = |device: &str| {
        listed
            .iter()
            .find(|d| d["device"] == device)
            .unwrap()
            .clone()
    };
    for (device, sent) in [
        ("loop://iPhone", &loop_status),
        ("openaps://AndroidAPS", &aaps_status),
    ] {
        let got = find(device);
        for (k, v) in sent.as_object().unwrap() {
            assert_eq!(&got[k], v, "v1 {device}: {k}");
        }
        let ident = got["identifier"].as_str().unwrap();
        let v3doc = v3.doc("devicestatus", ident);
        for (k, v) in sent.as_object().unwrap() {
            assert_eq!(&v3doc[k], v, "v3 {device}: {k}");
        }
    }
    // Nested fields answer queries (Nightscout's find on dotted paths).
    let q = s.list("/api/v1/devicestatus.json?find[openaps][enacted][rate]=0.5");
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["device"], "openaps://AndroidAPS");
    let q = s.list("/api/v1/devicestatus.json?find[pump][battery][percent][$gte]=70");
    assert_eq!(q.len(), 1);
    let q = v3.list("/devicestatus?loop.override.active=true");
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["device"], "loop://iPhone");
}

#[test]
fn req_migration_004_srv_modified_is_the_write_time_not_the_event_time() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let last_sync = now_ms();
    let yesterday = last_sync - 24 * 60 * MIN;
    std::thread::sleep(std::time::Duration::from_millis(2));
    s.post_ok(
        "/api/v1/treatments",
        &exported("treatments", OLD_ID, yesterday),
    );
    let v3_ident = v3.create(
        "treatments",
        &json!({"eventType": "Note", "date": yesterday - MIN, "notes": "backdated",
                "app": "test"}),
    );
    let hist = v3.list(&format!("/treatments/history/{last_sync}"));
    assert_eq!(
        hist.len(),
        2,
        "both backdated documents are news to a client: {hist:?}"
    );
    for d in &hist {
        let m = d["srvModified"].as_i64().unwrap();
        assert!(m > last_sync && m <= now_ms(), "srvModified is now: {d}");
        assert!(d["date"].as_i64().unwrap() < last_sync - 23 * 60 * MIN);
    }
    let found = v3.list(&format!("/treatments?srvModified$gt={last_sync}"));
    assert_eq!(found.len(), 2);
    assert!(identifiers(&found).contains(&v3_ident));
    let v1 = s.list(&format!(
        "/api/v1/treatments.json?find[srvModified][$gt]={last_sync}&find[created_at][$gte]={}",
        yesterday - 2 * MIN
    ));
    assert_eq!(v1.len(), 2, "v1 filters on srvModified too");
}
