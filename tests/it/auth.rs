//! Authentication: the API secret in its accepted forms, wrong credentials and
//! AUTH_DEFAULT_ROLES.

use serde_json::json;

use crate::support::{now_ms, secret_sha1, sgv, TestServer, SECRET};

fn assert_401(r: &crate::support::Resp) {
    assert_eq!(r.status, 401, "{}", r.text);
    let v = r.json();
    assert_eq!(v["status"], 401);
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

#[test]
fn denied_default_refuses_anonymous_reads() {
    let s = TestServer::start();
    assert_401(&s.get("/api/v1/entries.json"));
    assert_401(&s.get("/api/v1/treatments.json"));
    assert_401(&s.get("/api/v1/devicestatus.json"));
    assert_401(&s.get("/api/v1/profile"));
}

#[test]
fn denied_default_refuses_anonymous_writes_and_stores_nothing() {
    let s = TestServer::start();
    let body = serde_json::to_vec(&sgv("anon", now_ms(), 100)).unwrap();
    let r = s.request(
        "POST",
        "/api/v1/entries",
        &[("Content-Type", "application/json")],
        Some(&body),
    );
    assert_401(&r);
    assert!(s.list("/api/v1/entries.json").is_empty());
}

#[test]
fn wrong_secret_is_401() {
    let s = TestServer::start();
    let wrong = nightlite::auth::sha1_hex("not-the-secret-at-all");
    assert_401(&s.request(
        "GET",
        "/api/v1/entries.json",
        &[("api-secret", &wrong)],
        None,
    ));
    assert_401(&s.get(&format!("/api/v1/entries.json?secret={wrong}")));
}

#[test]
fn wrong_secret_is_401_even_when_anonymous_may_read() {
    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable")]);
    let wrong = nightlite::auth::sha1_hex("not-the-secret-at-all");
    assert_401(&s.request(
        "GET",
        "/api/v1/entries.json",
        &[("api-secret", &wrong)],
        None,
    ));
}

#[test]
fn sha1_in_upper_case_is_accepted() {
    let s = TestServer::start();
    let upper = secret_sha1().to_uppercase();
    let r = s.request(
        "GET",
        "/api/v1/entries.json",
        &[("api-secret", &upper)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn sha512_hex_is_accepted() {
    let s = TestServer::start();
    let sha512 = nightlite::auth::sha512_hex(SECRET);
    assert_eq!(sha512.len(), 128);
    let r = s.request(
        "GET",
        "/api/v1/entries.json",
        &[("api-secret", &sha512)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let body = serde_json::to_vec(&sgv("sha512", now_ms(), 101)).unwrap();
    let r = s.request(
        "POST",
        "/api/v1/entries",
        &[
            ("api-secret", &sha512),
            ("Content-Type", "application/json"),
        ],
        Some(&body),
    );
    assert_eq!(r.status, 200, "{}", r.text);
}

#[test]
fn secret_query_parameter_is_accepted() {
    let s = TestServer::start();
    let r = s.get(&format!("/api/v1/entries.json?secret={}", secret_sha1()));
    assert_eq!(r.status, 200, "{}", r.text);
    let body = serde_json::to_vec(&sgv("query-secret", now_ms(), 102)).unwrap();
    let r = s.request(
        "POST",
        &format!("/api/v1/entries?secret={}", secret_sha1()),
        &[("Content-Type", "application/json")],
        Some(&body),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.list("/api/v1/entries.json").len(), 1);
}

#[test]
fn readable_default_reads_but_cannot_write() {
    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable")]);
    s.post_ok("/api/v1/entries", &sgv("readable", now_ms(), 120));
    let r = s.get("/api/v1/entries.json");
    assert_eq!(r.list().len(), 1);

    let body = serde_json::to_vec(&json!({"eventType": "Note", "notes": "anon"})).unwrap();
    let r = s.request(
        "POST",
        "/api/v1/treatments",
        &[("Content-Type", "application/json")],
        Some(&body),
    );
    assert_401(&r);
    assert_401(&s.request("DELETE", "/api/v1/entries?find[device]=readable", &[], None));
    assert!(s.list("/api/v1/treatments.json").is_empty());
    assert_eq!(s.list("/api/v1/entries.json").len(), 1);
}
