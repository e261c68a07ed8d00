//! API v3 (Nightscout 15, lib/api3): version/status/lastModified, Bearer-JWT authorization,
//! create with identifiers and dedup (also against API v1 documents), validation, immutable
//! and read-only documents, read/update/patch/delete, search, history (paging, ETag), 207
//! batches, output formats, v1 ↔ v3 consistency and the OpenAPI document against the route
//! table.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Map, Value};

use crate::support::{enc, is_object_id, iso, now_ms, sgv, Resp, TestServer};

mod auth;
mod batch;
mod collections;
mod create;
mod dedup;
mod delete;
mod history;
mod immutable;
mod meta;
mod migration;
mod openapi;
mod profiles;
mod read;
mod search;
mod update;
mod v1;
mod validation;

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

/// One date field of each document, in ms.
fn ints(items: &[Value], field: &str) -> Vec<i64> {
    items.iter().map(|d| ms(&d[field])).collect()
}
