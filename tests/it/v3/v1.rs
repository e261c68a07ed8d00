//! API v1 ↔ v3 consistency.

use super::*;

#[test]
fn v1_documents_are_v3_documents() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t0 = now_ms() - 1;
    let at = now_ms() - 7 * MIN;
    s.post_ok("/api/v1/entries", &sgv("dexcom", at, 140));
    let ident = ns_identifier("dexcom", at, None);

    let h = v3.list(&format!("/entries/history/{t0}"));
    assert_eq!(h.len(), 1, "v1 writes appear in v3 history: {h:?}");
    assert_eq!(h[0]["identifier"], ident.as_str());
    assert_eq!(h[0]["date"], at);
    assert!(
        ms(&h[0]["srvModified"]) > t0 && ms(&h[0]["srvCreated"]) > t0,
        "{}",
        h[0]
    );
    let doc = v3.doc("entries", &ident);
    assert_eq!(doc["sgv"], 140);
    assert_eq!(doc["date"], at);
    assert!(
        doc["srvModified"].is_i64() && doc["srvCreated"].is_i64(),
        "{doc}"
    );

    // A v1 treatment: v3 shows it with a date, by identifier and by its _id.
    let reply = s.post_ok(
        "/api/v1/treatments",
        &json!({"eventType": "Note", "notes": "from v1", "created_at": iso(at)}),
    );
    let oid = reply[0]["_id"].as_str().unwrap().to_string();
    let tident = ns_identifier("undefined", at, Some("Note"));
    let doc = v3.doc("treatments", &tident);
    assert_eq!(doc["date"], at, "{doc}");
    assert_eq!(doc["notes"], "from v1");
    assert_eq!(v3.doc("treatments", &oid)["identifier"], tident.as_str());

    // A v3 entry in v1.
    let eid = v3.create(
        "entries",
        &json!({"type": "sgv", "sgv": 150, "date": at + MIN, "device": "v3cgm", "app": "x"}),
    );
    let v1 = s.list("/api/v1/entries.json?find[device]=v3cgm");
    assert_eq!(v1.len(), 1, "{v1:?}");
    assert_eq!(v1[0]["sgv"], 150);
    assert_eq!(v1[0]["date"], at + MIN);
    assert_eq!(v1[0]["identifier"], eid.as_str());
    assert!(is_object_id(v1[0]["_id"].as_str().unwrap()), "{}", v1[0]);

    // A v3 treatment in v1.
    let id = v3.create(
        "treatments",
        &with(treatment(at + MIN, "Note"), json!({"notes": "from v3"})),
    );
    let v1 = s.list(&format!(
        "/api/v1/treatments.json?find[notes]={}",
        enc("from v3")
    ));
    assert_eq!(v1.len(), 1, "{v1:?}");
    assert!(is_object_id(v1[0]["_id"].as_str().unwrap()), "{}", v1[0]);
    assert_eq!(v1[0]["created_at"], iso(at + MIN).as_str());
    assert_eq!(v1[0]["identifier"], id.as_str());

    // Deleted through v3: gone from v1.
    assert_eq!(v3.delete(&format!("/treatments/{id}")).status, 200);
    let v1 = s.list(&format!(
        "/api/v1/treatments.json?find[notes]={}",
        enc("from v3")
    ));
    assert!(v1.is_empty(), "{v1:?}");
    assert_eq!(s.list("/api/v1/treatments.json").len(), 1);
    // A v1 document can be patched by its _id.
    let r = v3.patch(&format!("/treatments/{oid}"), &json!({"notes": "patched"}));
    assert_eq!(r.status, 200, "{}", r.text);
    let v1 = s.list("/api/v1/treatments.json");
    assert_eq!(v1[0]["notes"], "patched", "{v1:?}");
    assert_eq!(v1[0]["_id"], oid.as_str());
    // And a v1 delete is a v3 410 with the delete in history.
    let r = s.delete(&format!("/api/v1/treatments/{oid}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(v3.get(&format!("/treatments/{tident}")).status, 410);
}
