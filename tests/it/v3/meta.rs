//! API v3 version, status and lastModified.

use super::*;

#[test]
fn version_is_open_and_complete() {
    let s = TestServer::start();
    let before = now_ms();
    let r = s.get("/api/v3/version");
    assert_eq!(r.status, 200, "{}", r.text);
    let v = result(&r);
    assert_eq!(v["version"], nightlite::NIGHTSCOUT_VERSION, "{v}");
    assert_eq!(v["apiVersion"], "3.0.3-alpha", "{v}");
    let srv = ms(&v["srvDate"]);
    assert!(
        srv >= before - 1000 && srv <= now_ms() + 1000,
        "srvDate {srv}"
    );
    assert!(
        v["storage"]["storage"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{v}"
    );
    assert!(
        v["storage"]["version"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{v}"
    );
}

#[test]
fn status_lists_permissions_per_collection() {
    let s = TestServer::start();
    let all = [
        "devicestatus",
        "entries",
        "food",
        "profile",
        "settings",
        "treatments",
    ];

    let admin = V3::admin(&s);
    let r = admin.get("/status");
    assert_eq!(r.status, 200, "{}", r.text);
    let v = result(&r);
    let expected: Map<String, Value> = all.iter().map(|c| ((*c).into(), json!("crud"))).collect();
    assert_eq!(v["apiPermissions"], Value::Object(expected), "{v}");
    assert_eq!(v["apiVersion"], "3.0.3-alpha");
    assert!(v["srvDate"].is_i64(), "{v}");
    assert!(v["storage"]["storage"].is_string(), "{v}");

    let reader = V3::new(&s, &jwt(&s, &["readable"]));
    let v = result(&reader.get("/status"));
    let expected: Map<String, Value> = all.iter().map(|c| ((*c).into(), json!("r"))).collect();
    assert_eq!(v["apiPermissions"], Value::Object(expected), "{v}");

    role(
        &s,
        "treatments-rc",
        &["api:treatments:read", "api:treatments:create"],
    );
    let partial = V3::new(&s, &jwt(&s, &["treatments-rc"]));
    let v = result(&partial.get("/status"));
    assert_eq!(v["apiPermissions"], json!({"treatments": "cr"}), "{v}");
}

#[test]
fn last_modified_lists_only_readable_collections() {
    let s = TestServer::start();
    let admin = V3::admin(&s);
    let t0 = now_ms();
    let r = admin.post("/treatments", &treatment(t0 - MIN, "Note"));
    assert_eq!(r.status, 201, "{}", r.text);
    let treated = ms(&r.json()["lastModified"]);
    let r = admin.post(
        "/entries",
        &json!({"type": "sgv", "sgv": 99, "date": t0 - MIN, "app": "x", "device": "d"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);

    let v = result(&admin.get("/lastModified"));
    assert!(v["srvDate"].is_i64(), "{v}");
    let cols = v["collections"].as_object().expect("collections");
    assert!(ms(&cols["treatments"]) >= treated, "{v}");
    assert!(ms(&cols["entries"]) >= t0 - MIN, "{v}");
    assert!(
        cols.get("food").is_none(),
        "empty collections are left out: {v}"
    );

    role(&s, "treatments-reader", &["api:treatments:read"]);
    let reader = V3::new(&s, &jwt(&s, &["treatments-reader"]));
    let v = result(&reader.get("/lastModified"));
    let cols = v["collections"].as_object().expect("collections");
    assert_eq!(
        cols.keys().collect::<Vec<_>>(),
        vec!["treatments"],
        "only readable collections: {v}"
    );
}
