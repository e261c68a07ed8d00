//! API v3 update (PUT) and patch.

use super::*;

#[test]
fn put_replaces_creates_and_honours_if_unmodified_since() {
    let s = TestServer::start();
    let v3 = V3::new(&s, &jwt_named(&s, "Putter", &["admin"]));
    let t = now_ms() - MIN;
    let body = with(treatment(t, "Note"), json!({"notes": "one", "extra": 1}));
    let id = v3.create("treatments", &body);
    let path = format!("/treatments/{id}");
    let before = v3.doc("treatments", &id);

    // Replace: fields not sent are gone.
    let r = v3.put(&path, &with(treatment(t, "Note"), json!({"notes": "two"})));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("last-modified").is_some());
    let doc = v3.doc("treatments", &id);
    assert_eq!(doc["notes"], "two");
    assert!(doc.get("extra").is_none(), "PUT replaces: {doc}");
    assert_eq!(doc["srvCreated"], before["srvCreated"]);
    assert!(ms(&doc["srvModified"]) > ms(&before["srvModified"]));
    assert_eq!(doc["identifier"], id.as_str());

    // A stale If-Unmodified-Since: 412 and nothing changed.
    let stale = http_date(ms(&doc["srvModified"]) - 3_600_000);
    let r = v3.send(
        "PUT",
        &path,
        &[("If-Unmodified-Since", &stale)],
        Some(&serde_json::to_vec(&with(treatment(t, "Note"), json!({"notes": "three"}))).unwrap()),
    );
    assert_eq!(r.status, 412, "{}", r.text);
    assert_eq!(v3.doc("treatments", &id), doc);
    // A current one passes.
    let current = http_date(ms(&doc["srvModified"]));
    let r = v3.send(
        "PUT",
        &path,
        &[("If-Unmodified-Since", &current)],
        Some(&serde_json::to_vec(&with(treatment(t, "Note"), json!({"notes": "four"}))).unwrap()),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(v3.doc("treatments", &id)["notes"], "four");

    // Create when absent: 201 with Location.
    let r = v3.put(
        "/treatments/put-created",
        &with(treatment(t + 1000, "Note"), json!({"notes": "new"})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("location"), Some("/api/v3/treatments/put-created"));
    assert!(r.header("last-modified").is_some());
    let doc = v3.doc("treatments", "put-created");
    assert_eq!(doc["notes"], "new");
    assert_eq!(doc["subject"], "Putter");

    // Deleted: 410.
    assert_eq!(v3.delete(&path).status, 200);
    let r = v3.put(
        &path,
        &with(treatment(t, "Note"), json!({"notes": "revive?"})),
    );
    assert_eq!(r.status, 410, "{}", r.text);
}

// ---------------------------------------------------------------------------------------------
// patch

#[test]
fn patch_merges_and_stamps() {
    let s = TestServer::start();
    let v3 = V3::new(&s, &jwt_named(&s, "Patcher Pat", &["admin"]));
    let id = v3.create(
        "treatments",
        &with(
            treatment(now_ms() - MIN, "Note"),
            json!({"notes": "a", "carbs": 10}),
        ),
    );
    let path = format!("/treatments/{id}");
    let before = v3.doc("treatments", &id);
    let r = v3.patch(&path, &json!({"notes": "b", "glucose": 110}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("last-modified").is_some());
    let after = v3.doc("treatments", &id);
    assert_eq!(after["notes"], "b");
    assert_eq!(after["glucose"], 110);
    assert_eq!(after["carbs"], 10, "merge keeps other fields");
    assert_eq!(after["date"], before["date"]);
    assert!(
        ms(&after["srvModified"]) > ms(&before["srvModified"]),
        "{after}"
    );
    assert_eq!(after["srvCreated"], before["srvCreated"]);
    assert_eq!(after["modifiedBy"], "Patcher Pat");
    assert_eq!(after["subject"], "Patcher Pat");

    // Stale If-Unmodified-Since: 412, nothing changed.
    let stale = http_date(ms(&after["srvModified"]) - 3_600_000);
    let r = v3.send(
        "PATCH",
        &path,
        &[("If-Unmodified-Since", &stale)],
        Some(br#"{"notes": "c"}"#),
    );
    assert_eq!(r.status, 412, "{}", r.text);
    assert_eq!(v3.doc("treatments", &id), after);

    assert_eq!(
        v3.patch("/treatments/nope", &json!({"notes": "x"})).status,
        404
    );
    assert_eq!(v3.delete(&path).status, 200);
    assert_eq!(v3.patch(&path, &json!({"notes": "x"})).status, 410);
}
