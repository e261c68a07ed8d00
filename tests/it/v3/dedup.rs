//! API v3 deduplication, also against API v1 documents.

use super::*;

#[test]
fn same_document_again_is_a_deduplication() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let doc = with(treatment(now_ms() - MIN, "Note"), json!({"notes": "one"}));
    let first = v3.post("/treatments", &doc);
    assert_eq!(first.status, 201, "{}", first.text);
    let id = first.json()["identifier"].as_str().unwrap().to_string();
    let first_modified = ms(&first.json()["lastModified"]);
    let again = v3.post("/treatments", &with(doc, json!({"notes": "two"})));
    assert_eq!(again.status, 200, "{}", again.text);
    let v = again.json();
    assert_eq!(v["status"], 200, "{v}");
    assert_eq!(v["isDeduplication"], true, "{v}");
    assert_eq!(v["identifier"], id.as_str(), "{v}");
    assert!(
        v.get("deduplicatedIdentifier").is_none(),
        "identifier unchanged: {v}"
    );
    assert!(ms(&v["lastModified"]) > first_modified, "{v}");
    let all = v3.list("/treatments");
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(
        all[0]["notes"], "two",
        "the duplicate replaces the stored document"
    );
}

#[test]
fn v1_entry_then_v3_entry_is_one_document() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t = now_ms() - 5 * MIN;
    s.post_ok("/api/v1/entries", &sgv("dexcom", t, 120));
    let v1_ident = ns_identifier("dexcom", t, None);

    // The same reading through v3: the same identifier.
    let r = v3.post(
        "/entries",
        &json!({"type": "sgv", "sgv": 120, "date": t, "device": "dexcom", "app": "xdrip"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["isDeduplication"], true, "{v}");
    assert_eq!(v["identifier"], v1_ident.as_str(), "{v}");
    assert!(v.get("deduplicatedIdentifier").is_none(), "{v}");
    assert_eq!(s.list("/api/v1/entries.json").len(), 1);

    // Without a device the identifier differs: the (date, type) fallback finds it.
    let r = v3.post(
        "/entries",
        &json!({"type": "sgv", "sgv": 121, "date": t, "app": "xdrip"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["isDeduplication"], true, "{v}");
    assert_eq!(
        v["identifier"],
        ns_identifier("undefined", t, None).as_str()
    );
    assert_eq!(v["deduplicatedIdentifier"], v1_ident.as_str(), "{v}");
    let v1 = s.list("/api/v1/entries.json");
    assert_eq!(v1.len(), 1, "{v1:?}");
    assert_eq!(v1[0]["sgv"], 121);
    assert_eq!(v3.list("/entries").len(), 1);
}

#[test]
fn v1_treatment_then_v3_treatment_is_one_document() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t = now_ms() - 10 * MIN;
    s.post_ok(
        "/api/v1/treatments",
        &json!({"eventType": "Correction Bolus", "insulin": 1.5, "created_at": iso(t)}),
    );
    let v1_ident = ns_identifier("undefined", t, Some("Correction Bolus"));
    // AAPS adds its device: a different identifier; created_at + eventType finds it.
    let r = v3.post(
        "/treatments",
        &json!({"eventType": "Correction Bolus", "insulin": 1.5, "date": t, "app": "AAPS",
                "device": "AAPS-phone", "utcOffset": 0}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["isDeduplication"], true, "{v}");
    let new_ident = ns_identifier("AAPS-phone", t, Some("Correction Bolus"));
    assert_eq!(v["identifier"], new_ident.as_str(), "{v}");
    assert_eq!(v["deduplicatedIdentifier"], v1_ident.as_str(), "{v}");
    let v1 = s.list("/api/v1/treatments.json");
    assert_eq!(v1.len(), 1, "{v1:?}");
    assert_eq!(v1[0]["device"], "AAPS-phone");
    assert_eq!(identifiers(&v3.list("/treatments")), vec![new_ident]);

    // Without a device (the identifier v1 gave it), a plain identifier match.
    let t2 = t + MIN;
    s.post_ok(
        "/api/v1/treatments",
        &json!({"eventType": "Note", "notes": "v1", "created_at": iso(t2)}),
    );
    let r = v3.post(
        "/treatments",
        &json!({"eventType": "Note", "notes": "v3", "date": t2, "app": "AAPS"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["isDeduplication"], true);
    assert_eq!(s.list("/api/v1/treatments.json").len(), 2);
}

#[test]
fn v1_devicestatus_then_v3_devicestatus_is_one_document() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t = now_ms() - 3 * MIN;
    s.post_ok(
        "/api/v1/devicestatus",
        &json!({"device": "openaps://phone", "created_at": iso(t), "uploaderBattery": 40}),
    );
    let r = v3.post(
        "/devicestatus",
        &json!({"device": "openaps://phone", "date": t, "app": "AAPS", "uploaderBattery": 41}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["isDeduplication"], true, "{}", r.text);
    let v1 = s.list("/api/v1/devicestatus.json");
    assert_eq!(v1.len(), 1, "{v1:?}");
    assert_eq!(v1[0]["uploaderBattery"], 41);
}

/// The same document from four clients at once (two through v1, two through v3): one
/// document, one 201.
#[test]
fn concurrent_duplicates_are_one_document() {
    let s = TestServer::start();
    let token = jwt(&s, &["admin"]);
    let t = now_ms() - 20 * MIN;
    for round in 0..5 {
        let at = t + round * MIN;
        let statuses: Vec<u16> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|k| {
                    let (s, token) = (&s, token.as_str());
                    scope.spawn(move || {
                        if k % 2 == 0 {
                            let r = s.post_json(
                                "/api/v1/treatments",
                                &json!({"eventType": "Note", "created_at": iso(at), "notes": "c"}),
                            );
                            assert_eq!(r.status, 200, "{}", r.text);
                            0
                        } else {
                            let r = V3::new(s, token).post(
                                "/treatments",
                                &json!({"eventType": "Note", "date": at, "app": "c", "notes": "c"}),
                            );
                            r.status
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for st in statuses.iter().filter(|st| **st != 0) {
            assert!(*st == 200 || *st == 201, "{statuses:?}");
        }
        assert!(
            statuses.iter().filter(|st| **st == 201).count() <= 1,
            "{statuses:?}"
        );
    }
    let v3 = V3::new(&s, &token);
    assert_eq!(v3.list("/treatments").len(), 5);
    assert_eq!(s.list("/api/v1/treatments.json").len(), 5);
}

#[test]
fn distinct_client_identifiers_are_never_merged() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t = now_ms() - MIN;
    let a = v3.post(
        "/treatments",
        &with(
            treatment(t, "Note"),
            json!({"identifier": "client-a", "notes": "a"}),
        ),
    );
    assert_eq!(a.status, 201, "{}", a.text);
    let b = v3.post(
        "/treatments",
        &with(
            treatment(t, "Note"),
            json!({"identifier": "client-b", "notes": "b"}),
        ),
    );
    assert_eq!(b.status, 201, "{}", b.text);
    assert_eq!(
        sorted_identifiers(&v3.list("/treatments")),
        vec!["client-a", "client-b"]
    );
}

/// Nightscout's fallback deduplication only matches documents without an identifier (API v1
/// uploads); two v3 documents from different devices at the same time are two documents.
#[test]
fn v3_documents_of_two_devices_at_the_same_time_are_two_documents() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t = now_ms() - MIN;
    let a = v3.post(
        "/treatments",
        &json!({"date": t, "app": "app", "device": "pump-a", "eventType": "Note"}),
    );
    assert_eq!(a.status, 201, "{}", a.text);
    let b = v3.post(
        "/treatments",
        &json!({"date": t, "app": "app", "device": "pump-b", "eventType": "Note"}),
    );
    assert_eq!(b.status, 201, "{}", b.text);
    assert_eq!(v3.list("/treatments").len(), 2);
}
