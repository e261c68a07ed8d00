//! The sync's integrity digest (docs/sync.md, "Integrity"): `GET /api/v4/sync/digest/{c}`
//! against what API v3 history shows of the same documents. (`sync::integrity::check`
//! against a second nightlite is tested in src/sync/integrity_tests.rs, since it uses the
//! crate's private client.)

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::TestServer;

/// `GET path` with `auth` as the Authorization header.
fn get(s: &TestServer, path: &str, auth: &str) -> crate::support::Resp {
    s.request("GET", path, &[("Authorization", auth)], None)
}

/// A Bearer JWT for a new subject with `roles`.
fn bearer(s: &TestServer, roles: &[&str]) -> String {
    let (_, token) = s.create_subject(&format!("digest {}", roles.join(" ")), roles);
    format!("Bearer {}", s.jwt_for(&token))
}

fn entry(i: i64, sgv: i64) -> Value {
    let date = 1_709_251_200_000 + i * 300_000;
    json!({"_id": format!("5e00000000000000000000{i:02}"), "identifier": format!("entry-{i}"),
           "type": "sgv", "sgv": sgv, "date": date, "device": "test"})
}

/// (identifier, srvModified, isValid) of every document of `coll` API v3 history lists.
fn history(s: &TestServer, auth: &str, coll: &str) -> Vec<(String, i64, bool)> {
    let r = get(
        s,
        &format!("/api/v3/{coll}/history/946684800000?limit=1000"),
        auth,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["identifier"].as_str().unwrap().to_string(),
                d["srvModified"].as_i64().unwrap(),
                d["isValid"] != false,
            )
        })
        .collect()
}

/// SHA-256 (hex) of the lines `identifier\tsrvModified\n`, identifiers in byte order.
fn expected_hash(rows: &[(String, i64, bool)], since: i64) -> (u64, String) {
    let mut rows: Vec<&(String, i64, bool)> = rows.iter().filter(|r| r.1 > since).collect();
    rows.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let text: String = rows.iter().map(|r| format!("{}\t{}\n", r.0, r.1)).collect();
    (
        rows.len() as u64,
        nightlite::ids::hex(&Sha256::digest(text.as_bytes())),
    )
}

#[test]
fn the_digest_is_of_identifiers_and_times_as_history_shows_them() {
    let s = TestServer::start();
    s.post_ok(
        "/api/v1/entries",
        &json!([entry(1, 100), entry(2, 110), entry(3, 120)]),
    );
    let admin = bearer(&s, &["admin"]);
    let reader = bearer(&s, &["readable"]);
    // A treatment, then its deletion: a tombstone, which the digest counts.
    let r = s.request(
        "POST",
        "/api/v3/treatments",
        &[("Authorization", &admin), ("Content-Type", "application/json")],
        Some(br#"{"eventType":"Note","notes":"x","created_at":"2024-03-01T00:00:00Z","identifier":"t-1","app":"test","date":1709251200000}"#),
    );
    assert!(matches!(r.status, 200 | 201), "{}", r.text);
    let r = s.request(
        "DELETE",
        "/api/v3/treatments/t-1",
        &[("Authorization", &admin)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);

    // Anonymous, or with the API secret but no JWT: refused, as API v3 is.
    assert_eq!(s.get("/api/v4/sync/digest/entries").status, 401);
    assert_eq!(s.get_auth("/api/v4/sync/digest/entries").status, 401);
    let no_read = bearer(&s, &["denied"]);
    assert_eq!(get(&s, "/api/v4/sync/digest/entries", &no_read).status, 403);

    for coll in ["entries", "treatments"] {
        let rows = history(&s, &reader, coll);
        let middle = rows[0].1;
        for since in [0, middle] {
            let r = get(
                &s,
                &format!("/api/v4/sync/digest/{coll}?since={since}"),
                &reader,
            );
            assert_eq!(r.status, 200, "{}", r.text);
            let body = r.json();
            let (count, hash) = expected_hash(&rows, since);
            assert_eq!(body["collection"], coll);
            assert_eq!(body["since"], since);
            assert_eq!(body["count"], count, "{coll} since {since}");
            assert_eq!(body["hash"], hash.as_str(), "{coll} since {since}");
        }
    }
    let treatments = history(&s, &reader, "treatments");
    assert_eq!(treatments.len(), 1);
    assert!(!treatments[0].2, "the deleted treatment is in history");
    let r = get(&s, "/api/v4/sync/digest/treatments", &reader);
    assert_eq!(r.json()["count"], 1);

    // No `since`: from the start. Bad input: 400, with a message.
    let all = get(&s, "/api/v4/sync/digest/entries", &reader).json();
    assert_eq!(all["count"], 3);
    for bad in [
        "/api/v4/sync/digest/nothing",
        "/api/v4/sync/digest/entries?since=yesterday",
    ] {
        let r = get(&s, bad, &reader);
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
        assert!(r.json()["message"].is_string(), "{}", r.text);
    }
}
