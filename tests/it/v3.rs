//! API v3 (Nightscout 15, lib/api3): version/status/lastModified, Bearer-JWT authorization,
//! create with identifiers and dedup (also against API v1 documents), validation, immutable
//! and read-only documents, read/update/patch/delete, search, history (paging, ETag), 207
//! batches, output formats, v1 ↔ v3 consistency and the OpenAPI document against the route
//! table.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Map, Value};

use crate::support::{enc, is_object_id, iso, now_ms, sgv, Resp, TestServer};

const MIN: i64 = 60_000;
/// The identifier vector of Nightscout's API v3 tests (device "dexcom", this date, no eventType).
const VECTOR_DATE: i64 = 1_491_717_830_000;
const VECTOR_IDENTIFIER: &str = "b07c45bc-b043-56aa-a8c0-125c16a085a2";

static SUBJECTS: AtomicUsize = AtomicUsize::new(0);

/// A JWT for a new subject with `roles` (created with the API secret, exchanged through
/// /api/v2/authorization/request).
fn jwt(s: &TestServer, roles: &[&str]) -> String {
    let n = SUBJECTS.fetch_add(1, Ordering::Relaxed);
    jwt_named(s, &format!("v3 subject {n}"), roles)
}

fn jwt_named(s: &TestServer, name: &str, roles: &[&str]) -> String {
    let (_, token) = s.create_subject(name, roles);
    s.jwt_for(&token)
}

/// A custom role with exactly these permissions.
fn role(s: &TestServer, name: &str, permissions: &[&str]) {
    let r = s.post_json(
        "/api/v2/authorization/roles",
        &json!({ "name": name, "permissions": permissions }),
    );
    assert_eq!(r.status, 200, "creating role {name}: {}", r.text);
}

/// An API v3 client with one JWT; paths are under /api/v3.
struct V3<'a> {
    s: &'a TestServer,
    auth: String,
}

impl<'a> V3<'a> {
    fn new(s: &'a TestServer, jwt: &str) -> V3<'a> {
        V3 {
            s,
            auth: format!("Bearer {jwt}"),
        }
    }

    fn admin(s: &'a TestServer) -> V3<'a> {
        V3::new(s, &jwt(s, &["admin"]))
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let mut all: Vec<(&str, &str)> = vec![("Authorization", self.auth.as_str())];
        if body.is_some() {
            all.push(("Content-Type", "application/json"));
        }
        all.extend_from_slice(headers);
        self.s
            .request(method, &format!("/api/v3{path}"), &all, body)
    }

    fn get(&self, path: &str) -> Resp {
        self.send("GET", path, &[], None)
    }

    fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.send("GET", path, headers, None)
    }

    fn write(&self, method: &str, path: &str, body: &Value) -> Resp {
        self.send(method, path, &[], Some(&serde_json::to_vec(body).unwrap()))
    }

    fn post(&self, path: &str, body: &Value) -> Resp {
        self.write("POST", path, body)
    }

    fn put(&self, path: &str, body: &Value) -> Resp {
        self.write("PUT", path, body)
    }

    fn patch(&self, path: &str, body: &Value) -> Resp {
        self.write("PATCH", path, body)
    }

    fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, &[], None)
    }

    /// POST that must create (201); returns the identifier.
    fn create(&self, col: &str, body: &Value) -> String {
        let r = self.post(&format!("/{col}"), body);
        assert_eq!(r.status, 201, "POST /{col} {body}: {}", r.text);
        r.json()["identifier"]
            .as_str()
            .expect("identifier")
            .to_string()
    }

    /// GET of one document that must answer 200; returns `result`.
    fn doc(&self, col: &str, identifier: &str) -> Value {
        let r = self.get(&format!("/{col}/{identifier}"));
        assert_eq!(r.status, 200, "GET /{col}/{identifier}: {}", r.text);
        result(&r)
    }

    /// A search or history that must answer 200 with a list.
    fn list(&self, path: &str) -> Vec<Value> {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        match result(&r) {
            Value::Array(items) => items,
            other => panic!("GET {path}: result is not a list: {other}"),
        }
    }
}

/// The `result` of a `{status: 200, result}` envelope.
#[track_caller]
fn result(r: &Resp) -> Value {
    let v = r.json();
    assert_eq!(v["status"], r.status, "envelope status: {v}");
    v["result"].clone()
}

/// Asserts an error reply: the status, and `{status, message}` with this message.
#[track_caller]
fn assert_error(r: &Resp, status: u16, message: &str) {
    assert_eq!(
        r.status, status,
        "expected {status} {message:?}: {}",
        r.text
    );
    let v = r.json();
    assert_eq!(v["status"], status, "{v}");
    assert_eq!(v["message"], message, "{v}");
}

/// A v3 treatment.
fn treatment(date: i64, event: &str) -> Value {
    json!({
        "date": date,
        "utcOffset": 0,
        "app": "v3-tests",
        "device": "test-device",
        "eventType": event,
    })
}

fn with(mut doc: Value, fields: Value) -> Value {
    let (Value::Object(d), Value::Object(f)) = (&mut doc, fields) else {
        panic!("objects expected");
    };
    d.extend(f);
    doc
}

fn identifiers(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["identifier"].as_str().expect("identifier").to_string())
        .collect()
}

fn sorted_identifiers(items: &[Value]) -> Vec<String> {
    let mut ids = identifiers(items);
    ids.sort();
    ids
}

/// Nightscout's identifier, computed here with the uuid crate: UUID v5 in the namespace whose
/// bytes are "NightscoutRocks!", of `${device}_${date}` and `_${eventType}` when present.
fn ns_identifier(device: &str, date: i64, event: Option<&str>) -> String {
    let namespace = uuid::Uuid::from_bytes(*b"NightscoutRocks!");
    let mut key = format!("{device}_{date}");
    if let Some(e) = event {
        key.push('_');
        key.push_str(e);
    }
    uuid::Uuid::new_v5(&namespace, key.as_bytes()).to_string()
}

/// ISO 8601 without milliseconds (a `.` in the last path segment would be read as an output
/// suffix, in Nightscout as here).
fn iso_seconds(ms: i64) -> String {
    iso(ms - ms.rem_euclid(1000)).replace(".000Z", "Z")
}

fn http_date(ms: i64) -> String {
    nightlite::dates::to_http_date(ms)
}

fn ms(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

// ---------------------------------------------------------------------------------------------
// version, status, lastModified

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

// ---------------------------------------------------------------------------------------------
// authorization

#[test]
fn bearer_jwt_is_required() {
    let s = TestServer::start();
    // No credentials, or API v1's credentials: 401.
    let r = s.get("/api/v3/treatments");
    assert_error(&r, 401, "Missing or bad access token or JWT");
    let r = s.get_auth("/api/v3/treatments");
    assert_eq!(
        r.status, 401,
        "the API secret is not a v3 credential: {}",
        r.text
    );
    let r = s.get("/api/v3/status");
    assert_eq!(r.status, 401, "{}", r.text);

    let good = jwt(&s, &["admin"]);
    assert_eq!(V3::new(&s, &good).get("/treatments").status, 200);
    // The scheme is compared case-insensitively (security.js).
    let r = s.request(
        "GET",
        "/api/v3/treatments",
        &[("Authorization", &format!("bearer {good}"))],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);

    // Garbage, a forged signature, a tampered payload.
    let r = V3::new(&s, "not-a-jwt").get("/treatments");
    assert_error(&r, 401, "Bad access token or JWT");
    let (head, sig) = good.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let forged = format!("{head}.{flipped}{}", &sig[1..]);
    let r = V3::new(&s, &forged).get("/treatments");
    assert_error(&r, 401, "Bad access token or JWT");
    let parts: Vec<&str> = good.split('.').collect();
    let payload = nightlite::auth::jwt::b64url_decode(parts[1]).unwrap();
    let mut claims: Value = serde_json::from_slice(&payload).unwrap();
    claims["accessToken"] = json!("admin-0123456789abcdef");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        nightlite::auth::jwt::b64url_encode(claims.to_string().as_bytes()),
        parts[2]
    );
    let r = V3::new(&s, &tampered).get("/treatments");
    assert_error(&r, 401, "Bad access token or JWT");
}

#[test]
fn missing_permission_is_403_naming_it() {
    let s = TestServer::start();
    let admin = V3::admin(&s);
    let id = admin.create("treatments", &treatment(now_ms() - MIN, "Note"));

    // careportal may create treatments but not read them.
    let uploader = V3::new(&s, &jwt(&s, &["careportal"]));
    let r = uploader.get("/treatments");
    assert_error(&r, 403, "Missing permission api:treatments:read");
    let r = uploader.get(&format!("/treatments/{id}"));
    assert_error(&r, 403, "Missing permission api:treatments:read");
    let r = uploader.get("/treatments/history/1700000000000");
    assert_error(&r, 403, "Missing permission api:treatments:read");
    let r = uploader.post(
        "/entries",
        &json!({"type": "sgv", "sgv": 1, "date": now_ms(), "app": "x"}),
    );
    assert_error(&r, 403, "Missing permission api:entries:create");
    let r = uploader.patch(&format!("/treatments/{id}"), &json!({"notes": "x"}));
    assert_error(&r, 403, "Missing permission api:treatments:update");
    let r = uploader.delete(&format!("/treatments/{id}"));
    assert_error(&r, 403, "Missing permission api:treatments:delete");
    // Creating is allowed; a dedup needs update as well.
    let dup = treatment(now_ms() - 2 * MIN, "Note");
    let r = uploader.post("/treatments", &dup);
    assert_eq!(r.status, 201, "{}", r.text);
    let r = uploader.post("/treatments", &dup);
    assert_eq!(r.status, 403, "a dedup is an update: {}", r.text);
    // In a batch, per item.
    let fresh = treatment(now_ms() - 3 * MIN, "Note");
    let r = uploader.post("/treatments", &json!([fresh, dup]));
    assert_eq!(r.status, 207, "{}", r.text);
    let res = r.json()["result"].clone();
    assert_eq!(res[0]["status"], 201, "{res}");
    assert_eq!(res[1]["status"], 403, "{res}");
    assert_eq!(
        res[1]["message"], "Missing permission api:treatments:update",
        "{res}"
    );

    // A readable subject may not write.
    let reader = V3::new(&s, &jwt(&s, &["readable"]));
    assert_eq!(reader.get("/treatments").status, 200);
    let r = reader.post("/treatments", &treatment(now_ms(), "Note"));
    assert_error(&r, 403, "Missing permission api:treatments:create");
    let r = reader.put(&format!("/treatments/{id}"), &treatment(now_ms(), "Note"));
    assert_eq!(r.status, 403, "{}", r.text);
    // Permission is checked before the body: a reader learns nothing from validation.
    for body in [&b"not json"[..], b"{}", b"{\"date\": \"never\"}"] {
        for path in [
            format!("/treatments/{id}"),
            "/treatments/brand-new".to_string(),
        ] {
            let r = reader.send("PUT", &path, &[], Some(body));
            assert_error(&r, 403, "Missing permission api:treatments:update");
        }
    }

    // PUT needs update for an existing document, create for a new one.
    let r = uploader.put(&format!("/treatments/{id}"), &treatment(now_ms(), "Note"));
    assert_error(&r, 403, "Missing permission api:treatments:update");
    role(&s, "treatments-updater", &["api:treatments:update"]);
    let updater = V3::new(&s, &jwt(&s, &["treatments-updater"]));
    let r = updater.put("/treatments/brand-new", &treatment(now_ms(), "Note"));
    assert_error(&r, 403, "Missing permission api:treatments:create");
    let r = updater.patch(&format!("/treatments/{id}"), &json!({"notes": "ok"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(admin.doc("treatments", &id)["notes"], "ok");
}

/// Nightscout 15 (authorization.resolve): "Tokens have to be well formed JWTs"; an access
/// token is exchanged for a JWT first, never taken as a Bearer value.
#[test]
fn bearer_access_token_is_not_a_jwt() {
    let s = TestServer::start();
    let (_, token) = s.create_subject("Token Tom", &["admin"]);
    let r = V3::new(&s, &token).get("/treatments");
    assert_error(&r, 401, "Bad access token or JWT");
    assert_eq!(
        V3::new(&s, &s.jwt_for(&token)).get("/treatments").status,
        200
    );
}

#[test]
fn settings_listing_needs_settings_admin() {
    let s = TestServer::start();
    let admin = V3::admin(&s);
    let id = admin.create(
        "settings",
        &json!({"date": now_ms(), "app": "aaps", "key": "k", "value": 1}),
    );
    let reader = V3::new(&s, &jwt(&s, &["readable"]));
    let r = reader.get("/settings");
    assert_error(&r, 403, "Missing permission api:settings:admin");
    let r = reader.get("/settings/history/1700000000000");
    assert_error(&r, 403, "Missing permission api:settings:admin");
    // Reading one document needs only read.
    assert_eq!(reader.get(&format!("/settings/{id}")).status, 200);
    let items = admin.list("/settings");
    assert_eq!(identifiers(&items), vec![id]);
}

#[test]
fn unknown_collection_is_404() {
    let s = TestServer::start();
    let admin = V3::admin(&s);
    let r = admin.get("/nosuch");
    assert_eq!(r.status, 404, "{}", r.text);
    let r = admin.post("/activity", &treatment(now_ms(), "Note"));
    assert_eq!(r.status, 404, "activity is not a v3 collection: {}", r.text);
}

// ---------------------------------------------------------------------------------------------
// create

#[test]
fn create_answers_201_with_identifier_location_and_last_modified() {
    let s = TestServer::start();
    let name = "Uploader Ursula";
    let v3 = V3::new(&s, &jwt_named(&s, name, &["admin"]));
    let before = now_ms();
    let r = v3.post(
        "/treatments",
        &with(treatment(VECTOR_DATE, "Note"), json!({"notes": "hi"})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let v = r.json();
    assert_eq!(v["status"], 201, "{v}");
    let id = v["identifier"].as_str().unwrap().to_string();
    assert_eq!(id, ns_identifier("test-device", VECTOR_DATE, Some("Note")));
    let last = ms(&v["lastModified"]);
    assert!(last >= before && last <= now_ms(), "lastModified {last}");
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v3/treatments/{id}").as_str())
    );
    assert_eq!(r.header("last-modified"), Some(http_date(last).as_str()));

    let doc = v3.doc("treatments", &id);
    assert_eq!(doc["identifier"], id.as_str());
    assert_eq!(doc["date"], VECTOR_DATE);
    assert_eq!(
        doc["created_at"], "2017-04-09T06:03:50.000Z",
        "created_at from date"
    );
    assert_eq!(doc["utcOffset"], 0);
    assert_eq!(doc["notes"], "hi");
    assert_eq!(doc["subject"], name, "subject is the JWT's subject");
    assert_eq!(doc["srvModified"], last);
    // srvCreated is the request's time; srvModified the (strictly increasing) write stamp.
    let created = ms(&doc["srvCreated"]);
    assert!(
        created >= before && created <= last,
        "srvCreated {created}, lastModified {last}"
    );
    assert!(
        doc.get("isValid").is_none() || doc["isValid"] == true,
        "{doc}"
    );
}

#[test]
fn identifier_vectors() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    assert_eq!(
        ns_identifier("dexcom", VECTOR_DATE, None),
        VECTOR_IDENTIFIER
    );
    let id = v3.create(
        "entries",
        &json!({"device": "dexcom", "date": VECTOR_DATE, "app": "xdrip", "type": "sgv", "sgv": 100}),
    );
    assert_eq!(id, VECTOR_IDENTIFIER);
    let id = v3.create(
        "treatments",
        &json!({"device": "dexcom", "date": VECTOR_DATE, "app": "aaps", "eventType": "Meal Bolus"}),
    );
    assert_eq!(id, ns_identifier("dexcom", VECTOR_DATE, Some("Meal Bolus")));
    // No device: JavaScript's "undefined".
    let id = v3.create(
        "devicestatus",
        &json!({"date": VECTOR_DATE, "app": "aaps", "uploaderBattery": 50}),
    );
    assert_eq!(id, ns_identifier("undefined", VECTOR_DATE, None));
}

/// Every identifier v3 accepts can be read, updated and deleted through the path its Location
/// names; the ones no path can carry back are refused with 400 before anything is stored.
#[test]
fn identifiers_are_refused_unless_a_path_can_carry_them_back() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t = now_ms();
    for (i, bad) in ["cr\rlf", "lf\nx", "nul\0x", "dot.json", "a.b"]
        .into_iter()
        .enumerate()
    {
        let doc = with(
            treatment(t - i as i64 * MIN, "Note"),
            json!({ "identifier": bad }),
        );
        let r = v3.post("/treatments", &doc);
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text);
        let message = r.json()["message"].as_str().unwrap().to_string();
        assert!(message.starts_with("Bad identifier field"), "{message}");
        // In a batch: that item alone is refused.
        let r = v3.post("/treatments", &json!([doc]));
        assert_eq!(r.status, 207, "{}", r.text);
        assert_eq!(result(&r)[0]["status"], 400, "{}", r.text);
        // As the path of a PUT that would create it (a path's `.x` is an output format).
        if !bad.contains('.') {
            let r = v3.put(&format!("/treatments/{}", enc(bad)), &doc);
            assert_eq!(r.status, 400, "PUT {bad:?}: {}", r.text);
        }
    }
    assert!(v3.list("/treatments").is_empty(), "nothing was stored");

    for (i, good) in [
        "sl/ash",
        "pct%41",
        "a b",
        "q?x",
        "h#x",
        "p+x",
        "ü-ö",
        "xDrip-1234_5~",
    ]
    .into_iter()
    .enumerate()
    {
        let doc = with(
            treatment(t + i as i64 * MIN, "Note"),
            json!({ "identifier": good }),
        );
        let r = v3.post("/treatments", &doc);
        assert_eq!(r.status, 201, "{good:?}: {}", r.text);
        let location = r.header("location").unwrap().to_string();
        assert_eq!(location, format!("/api/v3/treatments/{}", enc(good)));
        let path = location.strip_prefix("/api/v3").unwrap();
        let r = v3.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        assert_eq!(result(&r)["identifier"], good);
        let r = v3.patch(path, &json!({ "notes": "patched" }));
        assert_eq!(r.status, 200, "PATCH {path}: {}", r.text);
        let r = v3.delete(path);
        assert_eq!(r.status, 200, "DELETE {path}: {}", r.text);
        assert_eq!(v3.get(path).status, 410, "{path}");
    }
}

/// `1e400` parses, but no double holds it: strict JSON decoders reject its echo and alarms read
/// infinity. Refused with 400 naming the field, at any depth, on v1 and v3 (and Socket.IO,
/// which goes through the same store functions: store::prepare's unit test).
#[test]
fn non_finite_numbers_are_refused_naming_the_field() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t = now_ms();
    let body = format!(r#"{{"type":"sgv","sgv":1e400,"date":{t}}}"#);
    let r = s.post_raw("/api/v1/entries", body.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.json()["message"],
        "entries[0].sgv: must be a finite number (at most about ±1.8e308)"
    );
    let body = format!(
        r#"[{{"eventType":"Note","created_at":"{}"}},{{"eventType":"Note","a":{{"b":[1,-1e309]}}}}]"#,
        iso(t)
    );
    let r = s.post_raw("/api/v1/treatments", body.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text);
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(message.starts_with("treatments[1].a.b[1]: "), "{message}");
    assert!(s.list("/api/v1/entries.json").is_empty());
    assert!(s.list("/api/v1/treatments.json").is_empty());

    let body = format!(
        r#"{{"date":{t},"utcOffset":0,"app":"t","device":"d","eventType":"Note","carbs":1e400}}"#
    );
    let r = v3.send("POST", "/treatments", &[], Some(body.as_bytes()));
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.text.contains("carbs: must be a finite number"),
        "{}",
        r.text
    );
    let id = v3.create("treatments", &treatment(t, "Note"));
    let r = v3.send(
        "PATCH",
        &format!("/treatments/{id}"),
        &[],
        Some(br#"{"x":{"y":[-1e999]}}"#),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.text.contains("x.y[0]: must be a finite number"),
        "{}",
        r.text
    );
    assert!(v3.doc("treatments", &id).get("x").is_none());
}

#[test]
fn client_identifier_is_kept() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let r = v3.post(
        "/treatments",
        &with(
            treatment(now_ms(), "Note"),
            json!({"identifier": "client-ident-1"}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["identifier"], "client-ident-1");
    assert_eq!(
        r.header("location"),
        Some("/api/v3/treatments/client-ident-1")
    );
    assert_eq!(
        v3.doc("treatments", "client-ident-1")["identifier"],
        "client-ident-1"
    );
}

#[test]
fn dates_in_seconds_and_iso_are_understood() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    // Seconds.
    let id = v3.create(
        "treatments",
        &json!({"date": VECTOR_DATE / 1000, "app": "a", "device": "s", "eventType": "Note"}),
    );
    let doc = v3.doc("treatments", &id);
    assert_eq!(doc["date"], VECTOR_DATE, "{doc}");
    assert_eq!(doc["created_at"], "2017-04-09T06:03:50.000Z");
    assert_eq!(id, ns_identifier("s", VECTOR_DATE, Some("Note")));
    // ISO with an offset: utcOffset follows it.
    let id = v3.create(
        "treatments",
        &json!({"date": "2017-04-09T08:03:50+02:00", "app": "a", "device": "iso", "eventType": "Iso"}),
    );
    let doc = v3.doc("treatments", &id);
    assert_eq!(doc["date"], VECTOR_DATE, "{doc}");
    assert_eq!(doc["utcOffset"], 120, "{doc}");
    assert_eq!(doc["created_at"], "2017-04-09T06:03:50.000Z");
    // created_at alone dates the document.
    let id = v3.create(
        "treatments",
        &json!({"created_at": "2017-04-09T06:03:50.000Z", "app": "a", "device": "c", "eventType": "CreatedAt"}),
    );
    assert_eq!(v3.doc("treatments", &id)["date"], VECTOR_DATE);
}

#[test]
fn server_fields_are_never_taken_from_the_client() {
    let s = TestServer::start();
    let v3 = V3::new(&s, &jwt_named(&s, "Honest Harry", &["admin"]));
    let before = now_ms();
    let id = v3.create(
        "treatments",
        &with(
            treatment(now_ms() - MIN, "Note"),
            json!({"srvModified": 1, "srvCreated": 2, "subject": "Mallory",
                   "modifiedBy": "Mallory", "isValid": false}),
        ),
    );
    let doc = v3.doc("treatments", &id);
    assert!(ms(&doc["srvModified"]) >= before, "{doc}");
    assert!(ms(&doc["srvCreated"]) >= before, "{doc}");
    assert_eq!(doc["subject"], "Honest Harry", "{doc}");
    assert!(doc.get("modifiedBy").is_none(), "{doc}");
    assert!(
        doc.get("isValid").is_none() || doc["isValid"] == true,
        "{doc}"
    );
    assert_eq!(identifiers(&v3.list("/treatments")), vec![id.clone()]);
    // The history shows it as live too.
    let h = v3.list(&format!("/treatments/history/{}", before - 1));
    assert_eq!(h.len(), 1);
    assert!(
        h[0].get("isValid").is_none() || h[0]["isValid"] == true,
        "{}",
        h[0]
    );
}

// ---------------------------------------------------------------------------------------------
// deduplication

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

// ---------------------------------------------------------------------------------------------
// validation

#[test]
fn validation_errors_use_nightscouts_messages() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let now = now_ms();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"app": "a", "eventType": "Note"}),
            "Bad or missing date field",
        ),
        (
            json!({"date": "yesterday", "app": "a"}),
            "Bad or missing date field",
        ),
        (
            json!({"date": "1999-12-31T23:59:59Z", "app": "a"}),
            "Bad or missing date field",
        ),
        (
            json!({"date": now, "app": "a", "utcOffset": 1441}),
            "Bad or missing utcOffset field",
        ),
        (
            json!({"date": now, "app": "a", "utcOffset": -1441}),
            "Bad or missing utcOffset field",
        ),
        (
            json!({"date": now, "app": "a", "utcOffset": "x"}),
            "Bad or missing utcOffset field",
        ),
        (json!({"date": now}), "Bad or missing app field"),
        (json!({"date": now, "app": ""}), "Bad or missing app field"),
        (
            json!({"date": now, "app": "   "}),
            "Bad or missing app field",
        ),
        (json!({"date": now, "app": 5}), "Bad or missing app field"),
        (
            json!({"date": now, "app": "a", "identifier": 5}),
            "Bad or missing identifier field",
        ),
        (json!({}), "Bad or missing request body"),
        (json!("a string"), "Bad or missing request body"),
        (json!(42), "Bad or missing request body"),
    ];
    for (body, message) in cases {
        let r = v3.post("/treatments", &body);
        assert_error(&r, 400, message);
    }
    // The edges are allowed.
    for offset in [-1440, 1440] {
        let r = v3.post(
            "/treatments",
            &json!({"date": now - i64::from(offset) * 7, "app": "a", "utcOffset": offset}),
        );
        assert_eq!(r.status, 201, "utcOffset {offset}: {}", r.text);
    }
    assert!(v3.list("/treatments").len() == 2, "nothing invalid stored");
}

/// Nightscout's parseToMoment: a number below 2000-01-01 in ms is read as seconds; if that is
/// no valid date either (beyond JavaScript's ±8.64e15 ms), the date is bad.
#[test]
fn a_millisecond_date_before_2000_is_refused() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let r = v3.post(
        "/treatments",
        &json!({"date": 915_148_800_000_i64, "app": "a", "eventType": "Note"}),
    );
    assert_error(&r, 400, "Bad or missing date field");
}

#[test]
fn malformed_and_empty_bodies_are_400() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    for body in [&b"{\"date\": 1"[..], b"not json", b"{'a': 1}"] {
        for (method, path) in [
            ("POST", "/treatments"),
            ("PUT", "/treatments/x"),
            ("PATCH", "/treatments/x"),
        ] {
            let r = v3.send(method, path, &[], Some(body));
            assert_eq!(r.status, 400, "{method} {body:?}: {}", r.text);
            assert_eq!(r.json()["status"], 400, "{}", r.text);
        }
    }
    let r = v3.send("POST", "/treatments", &[], Some(b""));
    assert_eq!(r.status, 400, "{}", r.text);
    for (method, path) in [("PUT", "/treatments/x"), ("PATCH", "/treatments/x")] {
        assert_error(
            &v3.write(method, path, &json!({})),
            400,
            "Bad or missing request body",
        );
        assert_error(
            &v3.write(method, path, &json!("x")),
            400,
            "Bad or missing request body",
        );
    }
}

/// A body read whole (API v3) is bounded by its count of JSON values before it is parsed.
#[test]
fn v3_bodies_with_too_many_values_are_413() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let doc =
        json!({"date": now_ms(), "app": "a", "eventType": "Note", "numbers": vec![1; 200_001]});
    let r = v3.send(
        "POST",
        "/treatments",
        &[],
        Some(&serde_json::to_vec(&doc).unwrap()),
    );
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.text.contains("200000 JSON values"), "{}", r.text);
    assert_eq!(v3.get("/treatments").json()["result"], json!([]));
}

#[test]
fn empty_body_has_nightscouts_message() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let r = v3.send("POST", "/treatments", &[], Some(b""));
    assert_error(&r, 400, "Bad or missing request body");
}

// ---------------------------------------------------------------------------------------------
// immutable fields, read-only documents

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

// ---------------------------------------------------------------------------------------------
// read

#[test]
fn read_one_404_410_304_and_fields() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let id = v3.create(
        "treatments",
        &with(
            treatment(now_ms() - MIN, "Meal Bolus"),
            json!({"carbs": 30, "insulin": 2}),
        ),
    );
    let path = format!("/treatments/{id}");
    let r = v3.get(&path);
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = result(&r);
    let modified = ms(&doc["srvModified"]);
    let last = r
        .header("last-modified")
        .expect("Last-Modified")
        .to_string();
    assert_eq!(last, http_date(modified));

    // If-Modified-Since: the same second or later → 304; earlier → 200.
    let r = v3.get_with(&path, &[("If-Modified-Since", &last)]);
    assert_eq!(r.status, 304, "{}", r.text);
    assert!(r.text.is_empty());
    let later = http_date(modified + 3_600_000);
    assert_eq!(
        v3.get_with(&path, &[("If-Modified-Since", &later)]).status,
        304
    );
    let earlier = http_date(modified - 3_600_000);
    assert_eq!(
        v3.get_with(&path, &[("If-Modified-Since", &earlier)])
            .status,
        200
    );

    // fields
    let v = result(&v3.get(&format!("{path}?fields=carbs,insulin")));
    assert_eq!(v, json!({"carbs": 30, "insulin": 2}));
    let v = result(&v3.get(&format!("{path}?fields=_all")));
    assert_eq!(v, doc);

    assert_eq!(v3.get("/treatments/no-such-identifier").status, 404);
    assert_eq!(v3.get("/treatments/5f1e2d3c4b5a697887766554").status, 404);

    let r = v3.delete(&path);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(v3.get(&path).status, 410);
}

#[test]
fn output_formats_by_suffix_and_accept() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let id = v3.create(
        "treatments",
        &with(
            treatment(now_ms() - MIN, "Note"),
            json!({"notes": "a, \"quoted\" <note>"}),
        ),
    );

    let r = v3.get(&format!("/treatments/{id}.json"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.content_type().starts_with("application/json"),
        "{}",
        r.content_type()
    );
    assert_eq!(result(&r)["identifier"], id.as_str());

    let r = v3.get(&format!("/treatments/{id}.csv"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.content_type().starts_with("text/csv"),
        "{}",
        r.content_type()
    );
    let lines: Vec<&str> = r.text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.text);
    let header: Vec<&str> = lines[0].split(',').collect();
    assert!(
        header.contains(&"identifier") && header.contains(&"notes"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains(&id), "{}", r.text);
    assert!(
        lines[1].contains("\"a, \"\"quoted\"\" <note>\""),
        "{}",
        r.text
    );

    let r = v3.get(&format!("/treatments/{id}.xml"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type().contains("xml"), "{}", r.content_type());
    assert!(r.text.starts_with("<?xml"), "{}", r.text);
    assert!(
        r.text.contains(&format!("<identifier>{id}</identifier>")),
        "{}",
        r.text
    );
    assert!(r.text.contains("&lt;note&gt;"), "{}", r.text);

    // Search too.
    let r = v3.get("/treatments.csv");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.text.lines().next().unwrap().contains("identifier"),
        "{}",
        r.text
    );
    assert_eq!(r.text.lines().count(), 2);
    let r = v3.get("/treatments.xml");
    assert!(r.text.starts_with("<?xml"), "{}", r.text);

    // Unknown suffix: 406.
    assert_eq!(v3.get(&format!("/treatments/{id}.txt")).status, 406);
    assert_eq!(v3.get("/treatments.txt").status, 406);

    // Accept without a suffix.
    let r = v3.get_with(&format!("/treatments/{id}"), &[("Accept", "text/csv")]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.content_type().starts_with("text/csv"),
        "{}",
        r.content_type()
    );
    assert!(r.text.lines().next().unwrap().contains("identifier"));
    let r = v3.get_with("/treatments", &[("Accept", "application/xml")]);
    assert!(r.text.starts_with("<?xml"), "{}", r.text);
    let r = v3.get_with("/treatments", &[("Accept", "image/png")]);
    assert_eq!(r.status, 406, "{}", r.text);
}

// ---------------------------------------------------------------------------------------------
// update (PUT)

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

// ---------------------------------------------------------------------------------------------
// delete

#[test]
fn soft_delete_permanent_delete_and_revive() {
    let s = TestServer::start();
    let v3 = V3::new(&s, &jwt_named(&s, "Deleter", &["admin"]));
    let t0 = now_ms() - 1;
    let body = with(
        treatment(now_ms() - MIN, "Note"),
        json!({"notes": "doomed"}),
    );
    let id = v3.create("treatments", &body);
    let keep = v3.create("treatments", &treatment(now_ms() - 2 * MIN, "Note"));
    let path = format!("/treatments/{id}");
    let before = v3.doc("treatments", &id);

    let r = v3.delete(&path);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(v3.get(&path).status, 410);
    assert_eq!(identifiers(&v3.list("/treatments")), vec![keep.clone()]);
    let h = v3.list(&format!("/treatments/history/{t0}"));
    let deleted = h
        .iter()
        .find(|d| d["identifier"] == id.as_str())
        .expect("in history");
    assert_eq!(deleted["isValid"], false, "{deleted}");
    assert!(
        ms(&deleted["srvModified"]) > ms(&before["srvModified"]),
        "{deleted}"
    );
    assert_eq!(
        h.last().unwrap()["identifier"],
        id.as_str(),
        "the delete is the newest change"
    );
    // Deleting again is allowed and bumps srvModified again (sync clients see it).
    assert_eq!(v3.delete(&path).status, 200);

    // A re-POST revives it.
    let r = v3.post("/treatments", &with(body, json!({"notes": "back"})));
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
    assert_eq!(r.json()["identifier"], id.as_str());
    let doc = v3.doc("treatments", &id);
    assert_eq!(doc["notes"], "back");
    assert!(
        doc.get("isValid").is_none() || doc["isValid"] == true,
        "{doc}"
    );
    assert_eq!(v3.list("/treatments").len(), 2);

    // Permanent: gone from everything.
    let r = v3.delete(&format!("{path}?permanent=true"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(v3.get(&path).status, 404);
    let h = v3.list(&format!("/treatments/history/{t0}"));
    assert!(h.iter().all(|d| d["identifier"] != id.as_str()), "{h:?}");
    assert_eq!(v3.delete(&path).status, 404);
    assert_eq!(v3.delete("/treatments/never-was").status, 404);
}

// ---------------------------------------------------------------------------------------------
// search

/// Five treatments a minute apart (oldest first), with assorted field types.
fn search_fixture(v3: &V3) -> (i64, Vec<String>) {
    let base = now_ms() - 60 * MIN;
    let docs = [
        json!({"eventType": "Meal Bolus", "carbs": 10, "notes": "lunch", "isSMB": false, "code": "123"}),
        json!({"eventType": "Meal Bolus", "carbs": 20, "notes": "dinner", "isSMB": false, "code": 123}),
        json!({"eventType": "Correction Bolus", "carbs": 30, "notes": "Lunch late", "isSMB": true}),
        json!({"eventType": "Note", "carbs": 40, "notes": "x", "device": "other"}),
        json!({"eventType": "Note", "carbs": 50, "notes": "y"}),
    ];
    let mut ids = vec![];
    for (i, d) in docs.iter().enumerate() {
        let date = base + i64::try_from(i).unwrap() * MIN;
        let body = with(
            json!({"date": date, "app": "s", "device": "dev", "utcOffset": 0}),
            d.clone(),
        );
        ids.push(v3.create("treatments", &body));
    }
    (base, ids)
}

#[test]
fn search_filters() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let (base, ids) = search_fixture(&v3);
    let find =
        |q: &str| -> Vec<String> { sorted_identifiers(&v3.list(&format!("/treatments?{q}"))) };
    let pick = |idx: &[usize]| -> Vec<String> {
        let mut v: Vec<String> = idx.iter().map(|i| ids[*i].clone()).collect();
        v.sort();
        v
    };
    assert_eq!(find(""), pick(&[0, 1, 2, 3, 4]));
    assert_eq!(find("carbs$eq=20"), pick(&[1]));
    assert_eq!(find("carbs=20"), pick(&[1]), "plain field=value is eq");
    assert_eq!(find("carbs$ne=20"), pick(&[0, 2, 3, 4]));
    assert_eq!(find("carbs$gt=30"), pick(&[3, 4]));
    assert_eq!(find("carbs$gte=30"), pick(&[2, 3, 4]));
    assert_eq!(find("carbs$lt=30"), pick(&[0, 1]));
    assert_eq!(find("carbs$lte=30"), pick(&[0, 1, 2]));
    assert_eq!(
        find("carbs$gte=20&carbs$lt=40"),
        pick(&[1, 2]),
        "two operators on one field"
    );
    assert_eq!(find("carbs$in=10|30|99"), pick(&[0, 2]));
    assert_eq!(find("carbs$nin=10|30"), pick(&[1, 3, 4]));
    assert_eq!(
        find(&format!("eventType={}", enc("Meal Bolus"))),
        pick(&[0, 1])
    );
    assert_eq!(
        find(&format!("eventType$in={}", enc("Note|Correction Bolus"))),
        pick(&[2, 3, 4])
    );
    assert_eq!(find("notes$re=unch"), pick(&[0, 2]));
    assert_eq!(find(&format!("notes$re={}", enc("^Lun"))), pick(&[2]));
    assert_eq!(find("isSMB=true"), pick(&[2]), "booleans");
    assert_eq!(find("isSMB=false"), pick(&[0, 1]));
    assert!(
        find("code=123").contains(&ids[1]),
        "an unquoted number matches the number"
    );
    assert_eq!(find("device=other"), pick(&[3]));
    assert_eq!(
        find("eventType=Note&carbs$gt=40"),
        pick(&[4]),
        "filters combine with AND"
    );

    // Dates: epoch ms and ISO, on `date` and `created_at`.
    let third = base + 2 * MIN;
    assert_eq!(find(&format!("date$gte={third}")), pick(&[2, 3, 4]));
    assert_eq!(
        find(&format!("date$lt={}", enc(&iso(third)))),
        pick(&[0, 1])
    );
    assert_eq!(find(&format!("date={third}")), pick(&[2]));
    assert_eq!(
        find(&format!("created_at$gte={}", enc(&iso(third)))),
        pick(&[2, 3, 4])
    );
    assert_eq!(find(&format!("created_at$lt={third}")), pick(&[0, 1]));
    let d = v3.doc("treatments", &ids[3]);
    assert_eq!(
        find(&format!("srvModified$gte={}", ms(&d["srvModified"]))),
        pick(&[3, 4])
    );

    // Only live documents.
    assert_eq!(v3.delete(&format!("/treatments/{}", ids[1])).status, 200);
    assert_eq!(find("eventType=Meal%20Bolus"), pick(&[0]));
    assert_eq!(find(""), pick(&[0, 2, 3, 4]));

    // An unknown operator.
    let r = v3.get("/treatments?device$foo=x");
    assert_error(&r, 400, "Unsupported filter operator foo");
}

/// search/input.js parseValue: a value in single quotes is a string, so it does not match a
/// number (MongoDB compares by type).
#[test]
fn quoted_search_value_matches_strings_only() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let (_, ids) = search_fixture(&v3);
    let found = identifiers(&v3.list("/treatments?code='123'"));
    assert_eq!(found, vec![ids[0].clone()], "only the string \"123\"");
}

#[test]
fn search_sort_limit_skip_fields() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let (_, ids) = search_fixture(&v3);
    let carbs = |q: &str| -> Vec<i64> {
        v3.list(&format!("/treatments?{q}"))
            .iter()
            .map(|d| ms(&d["carbs"]))
            .collect()
    };
    assert_eq!(carbs("sort=carbs"), vec![10, 20, 30, 40, 50]);
    assert_eq!(carbs("sort$desc=carbs"), vec![50, 40, 30, 20, 10]);
    assert_eq!(carbs("sort=date"), vec![10, 20, 30, 40, 50]);
    assert_eq!(carbs("sort$desc=date"), vec![50, 40, 30, 20, 10]);
    assert_eq!(carbs("sort=carbs&limit=2"), vec![10, 20]);
    assert_eq!(carbs("sort=carbs&limit=2&skip=2"), vec![30, 40]);
    assert_eq!(carbs("sort$desc=carbs&skip=4"), vec![10]);
    assert_eq!(carbs("sort=carbs&skip=5"), Vec::<i64>::new());
    assert_eq!(carbs("sort=carbs&limit=1000").len(), 5);
    let r = v3.get("/treatments?sort=carbs&sort$desc=carbs");
    assert_error(&r, 400, "Parameters sort and sort_desc cannot be combined");
    for bad in ["0", "-1", "1001", "abc"] {
        let r = v3.get(&format!("/treatments?limit={bad}"));
        assert_error(&r, 400, "Parameter limit out of tolerance");
        let r = v3.get(&format!("/treatments/history/1700000000000?limit={bad}"));
        assert_error(&r, 400, "Parameter limit out of tolerance");
    }
    for bad in ["-1", "abc"] {
        let r = v3.get(&format!("/treatments?skip={bad}"));
        assert_error(&r, 400, "Parameter skip out of tolerance");
    }
    // fields: exactly the fields asked for.
    let items = v3.list("/treatments?sort=carbs&fields=carbs,notes");
    assert_eq!(items[0], json!({"carbs": 10, "notes": "lunch"}));
    assert!(
        items.iter().all(|d| d.as_object().unwrap().len() == 2),
        "{items:?}"
    );
    let items = v3.list("/treatments?sort=carbs&fields=identifier");
    assert_eq!(items[0], json!({"identifier": ids[0]}));
}

#[test]
fn search_limit_defaults_to_1000() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let base = now_ms() - 2000 * MIN;
    let batch: Vec<Value> = (0..1005)
        .map(|i| sgv("bulk", base + i * MIN, 100 + i % 50))
        .collect();
    assert_eq!(
        s.post_ok("/api/v1/entries", &Value::Array(batch)).len(),
        1005
    );
    assert_eq!(v3.list("/entries").len(), 1000);
    assert_eq!(v3.list("/entries?limit=1000").len(), 1000);
    assert_eq!(v3.list("/entries?limit=1000&skip=1000").len(), 5);
    let all = v3.list("/entries?sort=date&limit=3");
    assert_eq!(ints(&all, "date"), vec![base, base + MIN, base + 2 * MIN]);
    // Entries' own date filters (numbers in storage), epoch and ISO.
    let from = base + 1000 * MIN;
    assert_eq!(v3.list(&format!("/entries?date$gte={from}")).len(), 5);
    assert_eq!(
        v3.list(&format!("/entries?date$gte={}", enc(&iso(from))))
            .len(),
        5
    );
    assert_eq!(
        v3.list("/entries/history/1700000000000").len(),
        1000,
        "history limit too"
    );
}

fn ints(items: &[Value], field: &str) -> Vec<i64> {
    items.iter().map(|d| ms(&d[field])).collect()
}

// ---------------------------------------------------------------------------------------------
// history

#[test]
fn history_since_a_time() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t0 = now_ms() - 1;
    let a = v3.create("treatments", &treatment(now_ms() - 3 * MIN, "Note"));
    let b = v3.create("treatments", &treatment(now_ms() - 2 * MIN, "Note"));
    let c = v3.create("treatments", &treatment(now_ms() - 4 * MIN, "Note"));
    assert_eq!(v3.delete(&format!("/treatments/{a}")).status, 200);

    let r = v3.get(&format!("/treatments/history/{t0}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let items = match result(&r) {
        Value::Array(items) => items,
        other => panic!("{other}"),
    };
    // Ascending srvModified: b, c, then a (deleted last).
    assert_eq!(identifiers(&items), vec![b.clone(), c.clone(), a.clone()]);
    assert_eq!(items[2]["isValid"], false);
    let mods = ints(&items, "srvModified");
    assert!(mods.windows(2).all(|w| w[0] < w[1]), "{mods:?}");
    let max = *mods.last().unwrap();
    assert_eq!(r.header("etag"), Some(format!("W/\"{max}\"").as_str()));
    assert_eq!(r.header("last-modified"), Some(http_date(max).as_str()));

    // After a mark: strictly later.
    let after_b = v3.list(&format!("/treatments/history/{}", mods[0]));
    assert_eq!(identifiers(&after_b), vec![c.clone(), a.clone()]);
    // limit
    let r = v3.get(&format!("/treatments/history/{t0}?limit=2"));
    let limited = match result(&r) {
        Value::Array(items) => items,
        other => panic!("{other}"),
    };
    assert_eq!(identifiers(&limited), vec![b.clone(), c.clone()]);
    assert_eq!(
        r.header("etag"),
        Some(format!("W/\"{}\"", mods[1]).as_str())
    );
    // An ISO mark.
    assert_eq!(
        v3.list(&format!("/treatments/history/{}", enc(&iso_seconds(t0))))
            .len(),
        3
    );
    // fields
    let items = v3.list(&format!("/treatments/history/{t0}?fields=identifier"));
    assert_eq!(items[0], json!({"identifier": b}));

    // Nothing newer: 200 [] without ETag.
    let r = v3.get(&format!("/treatments/history/{}", max));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(result(&r), json!([]));
    assert!(r.header("etag").is_none(), "{:?}", r.headers);

    // A bad mark.
    for bad in ["abc", "1999-01-01T00:00:00Z"] {
        let r = v3.get(&format!("/treatments/history/{}", enc(bad)));
        assert_error(&r, 400, "Bad or missing Last-Modified header/parameter");
    }
}

#[test]
fn history_etag_header_is_spelled_etag() {
    let s = TestServer::start();
    let token = jwt(&s, &["admin"]);
    let v3 = V3::new(&s, &token);
    let t0 = now_ms() - 1;
    v3.create("treatments", &treatment(now_ms() - MIN, "Note"));
    let r = s.raw(
        &format!(
            "GET /api/v3/treatments/history/{t0} HTTP/1.1\nHost: localhost\nAuthorization: Bearer {token}\nConnection: close\n"
        ),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<&str> = r
        .head
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':').map(|(k, _)| k))
        .collect();
    assert!(names.contains(&"ETag"), "raw header names: {names:?}");
    let line = r
        .head
        .split("\r\n")
        .find(|l| l.starts_with("ETag:"))
        .unwrap();
    let value = line["ETag:".len()..].trim();
    assert!(value.starts_with("W/\"") && value.ends_with('"'), "{line}");
    let max: i64 = value[3..value.len() - 1].parse().expect("number in ETag");
    assert!(max > t0, "{line}");
}

#[test]
fn history_with_last_modified_header() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let id = v3.create("treatments", &treatment(now_ms() - MIN, "Note"));
    let modified = ms(&v3.doc("treatments", &id)["srvModified"]);

    // The same second (floored) is included.
    let r = v3.get_with(
        "/treatments/history",
        &[("Last-Modified", &http_date(modified))],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        identifiers(result(&r).as_array().unwrap()),
        vec![id.clone()]
    );
    assert_eq!(r.header("etag"), Some(format!("W/\"{modified}\"").as_str()));
    let r = v3.get_with(
        "/treatments/history",
        &[("Last-Modified", "Sat, 01 Jan 2022 00:00:00 GMT")],
    );
    assert_eq!(identifiers(result(&r).as_array().unwrap()), vec![id]);
    let r = v3.get_with(
        "/treatments/history",
        &[("Last-Modified", &http_date(modified + 2000))],
    );
    assert_eq!(r.status, 200);
    assert_eq!(result(&r), json!([]));
    assert!(r.header("etag").is_none());

    let r = v3.get("/treatments/history");
    assert_error(&r, 400, "Bad or missing Last-Modified header/parameter");
    let r = v3.get_with("/treatments/history", &[("Last-Modified", "yesterday-ish")]);
    assert_error(&r, 400, "Bad or missing Last-Modified header/parameter");
}

/// Four writers (two through v1, two through v3) and a reader paging the history with a small
/// limit at the same time: following the last srvModified, every document is seen exactly once.
#[test]
fn paging_history_during_a_burst_never_skips_or_repeats() {
    const WRITERS: usize = 4;
    const REQUESTS: usize = 40;
    const PER_REQUEST: usize = 3;
    let s = TestServer::start();
    let token = jwt(&s, &["admin"]);
    let v3 = V3::new(&s, &token);
    let t0 = now_ms() - 1;
    let base = now_ms() - 100_000 * MIN;
    let done = AtomicUsize::new(0);

    let seen: Vec<Value> = std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let (s, token, done) = (&s, token.as_str(), &done);
            scope.spawn(move || {
                let v3 = V3::new(s, token);
                for i in 0..REQUESTS {
                    let docs: Vec<Value> = (0..PER_REQUEST)
                        .map(|j| {
                            let n = i64::try_from((w * REQUESTS + i) * PER_REQUEST + j).unwrap();
                            let at = base + n * 1000;
                            json!({"eventType": "Note", "notes": format!("w{w}-{i}-{j}"),
                                   "created_at": iso(at), "date": at, "app": "burst"})
                        })
                        .collect();
                    if w % 2 == 0 {
                        s.post_ok("/api/v1/treatments", &Value::Array(docs));
                    } else if i % 2 == 0 {
                        let r = v3.post("/treatments", &Value::Array(docs));
                        assert_eq!(r.status, 207, "{}", r.text);
                        assert!(
                            r.json()["result"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .all(|x| x["status"] == 201),
                            "{}",
                            r.text
                        );
                    } else {
                        for d in docs {
                            let r = v3.post("/treatments", &d);
                            assert_eq!(r.status, 201, "{}", r.text);
                        }
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let reader = scope.spawn(|| {
            let mut seen = vec![];
            let mut last = t0;
            let mut quiet_after_done = false;
            loop {
                let writers_done = done.load(Ordering::SeqCst) == WRITERS;
                let r = v3.get(&format!("/treatments/history/{last}?limit=7"));
                assert_eq!(r.status, 200, "{}", r.text);
                let page = result(&r).as_array().unwrap().clone();
                assert!(page.len() <= 7);
                if page.is_empty() {
                    if quiet_after_done {
                        break;
                    }
                    quiet_after_done = writers_done;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    continue;
                }
                let mods = ints(&page, "srvModified");
                assert!(
                    mods[0] > last,
                    "page starts at or before the mark {last}: {mods:?}"
                );
                assert!(
                    mods.windows(2).all(|w| w[0] < w[1]),
                    "not strictly ascending: {mods:?}"
                );
                last = *mods.last().unwrap();
                assert_eq!(r.header("etag"), Some(format!("W/\"{last}\"").as_str()));
                seen.extend(page);
            }
            seen
        });
        reader.join().unwrap()
    });

    let total = WRITERS * REQUESTS * PER_REQUEST;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for d in &seen {
        *counts
            .entry(d["notes"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "seen more than once: {repeated:?}");
    let expected: BTreeSet<String> = (0..WRITERS)
        .flat_map(|w| {
            (0..REQUESTS).flat_map(move |i| (0..PER_REQUEST).map(move |j| format!("w{w}-{i}-{j}")))
        })
        .collect();
    let got: BTreeSet<String> = counts.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    assert!(missing.is_empty(), "skipped: {missing:?}");
    assert_eq!(seen.len(), total);
    assert_eq!(v3.list("/treatments").len(), total);
}

// ---------------------------------------------------------------------------------------------
// batches

#[test]
fn batch_post_answers_207_per_item_in_order() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t = now_ms() - 10 * MIN;
    let existing = v3.create(
        "treatments",
        &with(treatment(t, "Note"), json!({"identifier": "exists"})),
    );
    let items = json!([
        with(treatment(t + 1000, "Note"), json!({"notes": "first"})),
        {"app": "a", "eventType": "Note"},
        with(treatment(t, "Note"), json!({"identifier": existing, "notes": "dup"})),
        42,
        with(treatment(t + 2000, "Note"), json!({"identifier": "client-x", "utcOffset": 5000})),
        with(treatment(t + 3000, "Note"), json!({"identifier": "client-y"})),
    ]);
    let r = v3.post("/treatments", &items);
    assert_eq!(r.status, 207, "{}", r.text);
    let v = r.json();
    assert_eq!(v["status"], 207, "{v}");
    let res = v["result"].as_array().expect("result list");
    assert_eq!(res.len(), 6, "{v}");
    let statuses: Vec<&Value> = res.iter().map(|x| &x["status"]).collect();
    assert_eq!(
        statuses,
        vec![
            &json!(201),
            &json!(400),
            &json!(200),
            &json!(400),
            &json!(400),
            &json!(201)
        ],
        "{v}"
    );
    let first = ns_identifier("test-device", t + 1000, Some("Note"));
    assert_eq!(res[0]["identifier"], first.as_str(), "{v}");
    assert!(res[0]["lastModified"].is_i64(), "{v}");
    assert_eq!(res[1]["message"], "Bad or missing date field", "{v}");
    assert_eq!(res[2]["identifier"], "exists", "{v}");
    assert_eq!(res[2]["isDeduplication"], true, "{v}");
    assert_eq!(res[3]["message"], "Bad or missing request body", "{v}");
    assert_eq!(res[4]["message"], "Bad or missing utcOffset field", "{v}");
    assert_eq!(res[5]["identifier"], "client-y", "{v}");

    // The valid items are stored; the invalid are not.
    let stored = sorted_identifiers(&v3.list("/treatments"));
    let mut want = vec![first.clone(), "exists".to_string(), "client-y".to_string()];
    want.sort();
    assert_eq!(stored, want);
    assert_eq!(v3.doc("treatments", "exists")["notes"], "dup");

    // A retried batch: the stored items are deduplications.
    let r = v3.post("/treatments", &items);
    assert_eq!(r.status, 207, "{}", r.text);
    let res = r.json()["result"].as_array().unwrap().clone();
    for i in [0, 2, 5] {
        assert_eq!(res[i]["status"], 200, "{i}: {}", r.text);
        assert_eq!(res[i]["isDeduplication"], true, "{i}: {}", r.text);
    }
    assert_eq!(res[0]["identifier"], first.as_str());
    assert_eq!(v3.list("/treatments").len(), 3);

    // An array of one is still a batch.
    let r = v3.post("/treatments", &json!([treatment(t + 9000, "Note")]));
    assert_eq!(r.status, 207, "{}", r.text);
    let res = r.json()["result"].clone();
    assert_eq!(res.as_array().unwrap().len(), 1);
    assert_eq!(res[0]["status"], 201);
}

#[test]
fn failed_batch_item_keeps_its_client_identifier() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let r = v3.post(
        "/treatments",
        &json!([with(
            treatment(now_ms(), "Note"),
            json!({"identifier": "bad-one", "utcOffset": 5000})
        )]),
    );
    assert_eq!(r.status, 207, "{}", r.text);
    let res = &r.json()["result"][0];
    assert_eq!(res["status"], 400, "{res}");
    assert_eq!(res["identifier"], "bad-one", "{res}");
}

// ---------------------------------------------------------------------------------------------
// every collection

#[test]
fn every_collection_supports_the_generic_operations() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t0 = now_ms() - 1;
    let at = now_ms() - 5 * MIN;
    let docs = [
        (
            "devicestatus",
            json!({"device": "openaps://p", "uploaderBattery": 55}),
        ),
        (
            "entries",
            json!({"type": "sgv", "sgv": 111, "device": "cgm"}),
        ),
        (
            "food",
            json!({"name": "apple", "carbs": 15, "category": "fruit"}),
        ),
        (
            "profile",
            json!({"defaultProfile": "Default", "store": {"Default": {"dia": 5}},
                           "startDate": iso(at)}),
        ),
        ("settings", json!({"key": "aaps-prefs", "value": {"a": 1}})),
        ("treatments", json!({"eventType": "Note", "notes": "n"})),
    ];
    for (col, fields) in docs {
        let body = with(json!({"date": at, "app": "every"}), fields);
        let id = v3.create(col, &body);
        let doc = v3.doc(col, &id);
        assert_eq!(doc["date"], at, "{col}: {doc}");
        assert_eq!(doc["app"], "every", "{col}: {doc}");
        assert_eq!(
            identifiers(&v3.list(&format!("/{col}"))),
            vec![id.clone()],
            "{col}"
        );
        let h = v3.list(&format!("/{col}/history/{t0}"));
        assert_eq!(identifiers(&h), vec![id.clone()], "{col}");
        let again = v3.post(&format!("/{col}"), &body);
        assert_eq!(again.status, 200, "{col}: {}", again.text);
        let r = v3.patch(&format!("/{col}/{id}"), &json!({"extra": 1}));
        assert_eq!(r.status, 200, "{col}: {}", r.text);
        assert_eq!(v3.doc(col, &id)["extra"], 1, "{col}");
        let r = v3.put(
            &format!("/{col}/{id}"),
            &with(body.clone(), json!({"extra": 2})),
        );
        assert_eq!(r.status, 200, "{col}: {}", r.text);
        assert_eq!(v3.doc(col, &id)["extra"], 2, "{col}");
        assert_eq!(v3.delete(&format!("/{col}/{id}")).status, 200, "{col}");
        assert_eq!(v3.get(&format!("/{col}/{id}")).status, 410, "{col}");
        assert!(v3.list(&format!("/{col}")).is_empty(), "{col}");
    }
    let v = result(&v3.get("/lastModified"));
    for col in [
        "devicestatus",
        "entries",
        "food",
        "profile",
        "settings",
        "treatments",
    ] {
        assert!(ms(&v["collections"][col]) > t0, "{col}: {v}");
    }
}

// ---------------------------------------------------------------------------------------------
// v1 ↔ v3

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

// ---------------------------------------------------------------------------------------------
// OpenAPI document

/// The OpenAPI document as served (include_str! of this file).
fn swagger_document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/v3/swagger.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("swagger.json is JSON")
}

#[test]
fn swagger_json_is_served_openly() {
    let s = TestServer::start();
    let r = s.get("/api/v3/swagger.json");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.content_type().starts_with("application/json"),
        "{}",
        r.content_type()
    );
    assert_eq!(r.json(), swagger_document());
}

#[test]
fn swagger_matches_the_route_table() {
    let doc = swagger_document();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");

    let documented: BTreeSet<String> = paths.keys().map(|k| format!("/api/v3{k}")).collect();
    let rules: Vec<_> = nightlite::api::routes::RULES
        .iter()
        .filter(|r| r.path.starts_with("/api/v3/"))
        .collect();
    let routed: BTreeSet<String> = rules.iter().map(|r| r.path.to_string()).collect();
    assert_eq!(documented, routed, "swagger paths vs route table");

    const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];
    for r in &rules {
        let key = &r.path["/api/v3".len()..];
        let ops = paths[key].as_object().unwrap();
        assert!(
            ops.contains_key(&r.method.to_ascii_lowercase()),
            "{} {} not documented",
            r.method,
            r.path
        );
    }
    for (key, ops) in paths {
        let path = format!("/api/v3{key}");
        for m in ops
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| METHODS.contains(&m.as_str()))
        {
            assert!(
                rules
                    .iter()
                    .any(|r| r.path == path && r.method.eq_ignore_ascii_case(m)),
                "documented {m} {path} has no route rule"
            );
        }
    }
}
