//! API v3 immutable fields and read-only documents.

use super::*;

/// A treatment with every client-set immutable field, patched once so modifiedBy is set.
fn immutable_fixture(v3: &V3) -> (String, Value) {
    let t = now_ms() - 30 * MIN;
    let id = v3.create(
        "treatments",
        &json!({"identifier": "imm-1", "date": t, "utcOffset": 60, "app": "app-a",
                "device": "dev-a", "eventType": "Note", "notes": "n"}),
    );
    let r = v3.patch(&format!("/treatments/{id}"), &json!({"notes": "patched"}));
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = v3.doc("treatments", &id);
    for f in [
        "identifier",
        "date",
        "utcOffset",
        "eventType",
        "device",
        "app",
        "srvCreated",
        "subject",
        "srvModified",
        "modifiedBy",
    ] {
        assert!(doc.get(f).is_some(), "fixture lacks {f}: {doc}");
    }
    (id, doc)
}

/// The document as a client would send it back: without server fields.
fn client_copy(doc: &Value) -> Value {
    let mut d = doc.clone();
    for f in [
        "srvCreated",
        "srvModified",
        "subject",
        "modifiedBy",
        "isValid",
    ] {
        d.as_object_mut().unwrap().remove(f);
    }
    d
}

fn changed(field: &str, current: &Value) -> Value {
    match current {
        Value::Number(n) if field == "utcOffset" => json!(n.as_i64().unwrap() - 60),
        Value::Number(n) => json!(n.as_i64().unwrap() + 60_000),
        Value::Bool(b) => json!(!b),
        _ => json!("something-else"),
    }
}

#[test]
fn immutable_client_fields_are_refused_on_patch_put_and_dedup() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let (id, doc) = immutable_fixture(&v3);
    let path = format!("/treatments/{id}");
    let message = |f: &str| format!("Field {f} cannot be modified by the client");
    for field in [
        "identifier",
        "date",
        "utcOffset",
        "eventType",
        "device",
        "app",
    ] {
        let value = changed(field, &doc[field]);
        // PATCH
        let r = v3.patch(&path, &json!({ field: value, "notes": "no" }));
        assert_error(&r, 400, &message(field));
        // PUT (the path names the document, so its identifier is not the body's)
        if field != "identifier" {
            let mut body = client_copy(&doc);
            body[field] = value.clone();
            body["notes"] = json!("no");
            assert_error(&v3.put(&path, &body), 400, &message(field));
            // dedup: a POST of the same identifier
            assert_error(&v3.post("/treatments", &body), 400, &message(field));
        }
        assert_eq!(v3.doc("treatments", &id), doc, "{field}: document changed");
    }
    // Unchanged values are fine.
    let r = v3.patch(
        &path,
        &json!({"eventType": "Note", "device": "dev-a", "notes": "ok"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn immutable_server_fields_are_refused_on_patch() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let (id, doc) = immutable_fixture(&v3);
    let path = format!("/treatments/{id}");
    for field in ["srvCreated", "subject", "srvModified", "modifiedBy"] {
        let r = v3.patch(
            &path,
            &json!({ field: changed(field, &doc[field]), "notes": "no" }),
        );
        assert_error(
            &r,
            400,
            &format!("Field {field} cannot be modified by the client"),
        );
        assert_eq!(v3.doc("treatments", &id), doc, "{field}: document changed");
    }
}

#[test]
fn patching_is_valid_is_refused() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let (id, doc) = immutable_fixture(&v3);
    let r = v3.patch(&format!("/treatments/{id}"), &json!({"isValid": false}));
    assert_error(&r, 400, "Field isValid cannot be modified by the client");
    assert_eq!(v3.doc("treatments", &id), doc);
}

#[test]
fn immutable_server_fields_are_refused_on_put_and_dedup() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let (id, doc) = immutable_fixture(&v3);
    let path = format!("/treatments/{id}");
    for field in [
        "srvCreated",
        "subject",
        "srvModified",
        "modifiedBy",
        "isValid",
    ] {
        let mut body = client_copy(&doc);
        body[field] = match doc.get(field) {
            Some(v) => changed(field, v),
            None => json!(false),
        };
        let message = format!("Field {field} cannot be modified by the client");
        assert_error(&v3.put(&path, &body), 400, &message);
        assert_error(&v3.post("/treatments", &body), 400, &message);
        assert_eq!(v3.doc("treatments", &id), doc, "{field}: document changed");
    }
}

#[test]
fn read_only_documents_are_422() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let body = with(
        treatment(now_ms() - MIN, "Note"),
        json!({"isReadOnly": true, "notes": "ro"}),
    );
    let id = v3.create("treatments", &body);
    let path = format!("/treatments/{id}");
    let doc = v3.doc("treatments", &id);
    let msg = "Trying to modify read-only document";
    assert_error(&v3.patch(&path, &json!({"notes": "x"})), 422, msg);
    assert_error(
        &v3.put(&path, &with(body.clone(), json!({"notes": "x"}))),
        422,
        msg,
    );
    assert_error(
        &v3.post("/treatments", &with(body, json!({"notes": "x"}))),
        422,
        msg,
    );
    assert_error(&v3.delete(&path), 422, msg);
    assert_error(&v3.delete(&format!("{path}?permanent=true")), 422, msg);
    assert_eq!(v3.doc("treatments", &id), doc);
    // The other spellings.
    for field in ["readOnly", "readonly"] {
        let id = v3.create(
            "food",
            &json!({"date": now_ms(), "app": "a", "name": field, field: true}),
        );
        assert_error(&v3.delete(&format!("/food/{id}")), 422, msg);
    }
}
