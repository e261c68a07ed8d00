//! Data written by one server is there for the next one on the same data directory.

use serde_json::json;

use crate::support::{iso, now_ms, sgv, TestServer};

#[test]
fn data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    let (entry_id, treatment_id) = {
        let s = TestServer::in_dir(dir.path(), &[]);
        let e = s.post_ok("/api/v1/entries", &sgv("persist", t, 131));
        let tr = s.post_ok(
            "/api/v1/treatments",
            &json!({"eventType": "Note", "notes": "kept", "created_at": iso(t)}),
        );
        (e[0]["_id"].clone(), tr[0]["_id"].clone())
    };

    let s = TestServer::in_dir(dir.path(), &[]);
    let entries = s.list("/api/v1/entries.json");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["_id"], entry_id);
    assert_eq!(entries[0]["sgv"], 131);
    let treatments = s.list("/api/v1/treatments.json");
    assert_eq!(treatments.len(), 1);
    assert_eq!(treatments[0]["_id"], treatment_id);
    assert_eq!(treatments[0]["notes"], "kept");

    let again = s.post_ok("/api/v1/entries", &sgv("persist", t, 131));
    assert_eq!(again[0]["_id"], entry_id);
    assert_eq!(s.list("/api/v1/entries.json").len(), 1);
}

#[test]
fn deletes_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    {
        let s = TestServer::in_dir(dir.path(), &[]);
        let e = s.post_ok(
            "/api/v1/entries",
            &json!([sgv("p", t, 100), sgv("p", t - 60_000, 101)]),
        );
        let id = e[0]["_id"].as_str().unwrap();
        assert_eq!(s.delete(&format!("/api/v1/entries/{id}")).status, 200);
    }
    let s = TestServer::in_dir(dir.path(), &[]);
    let entries = s.list("/api/v1/entries.json");
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["sgv"], 101);
}
