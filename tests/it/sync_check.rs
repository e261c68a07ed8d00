//! `nightlite sync --url URL --direction check` (docs/sync.md): two nightlites on loopback
//! with overlapping data; the command runs on A's data directory while A serves, reads B
//! through its API, and must report exact numbers and change nothing on either side.

use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};

use crate::data_care::stderr;
use crate::import_site::assert_clean;
use crate::support::{command, Http, TestServer, SECRET};

/// 2024-03-01T00:00:00Z.
const T0: i64 = 1_709_251_200_000;
const MIN: i64 = 60_000;

fn id(kind: u64, i: u64) -> String {
    format!("{:08x}{:016x}", 0x5e00_0000 + kind, i)
}

fn iso(ms: i64) -> String {
    nightlite::dates::to_iso(ms)
}

fn entry(i: u64) -> Value {
    let date = T0 - i as i64 * 5 * MIN;
    json!({"_id": id(1, i), "identifier": format!("entry-{i}"), "type": "sgv", "sgv": 100 + i,
           "date": date, "dateString": iso(date), "device": "test"})
}

fn treatment(i: u64) -> Value {
    json!({"_id": id(2, i), "eventType": "Note", "notes": format!("n{i}"),
           "created_at": iso(T0 - i as i64 * 7 * MIN)})
}

fn status(i: u64) -> Value {
    json!({"_id": id(3, i), "device": "loop://phone", "pump": {"reservoir": i},
           "created_at": iso(T0 - i as i64 * 11 * MIN)})
}

fn profile(i: u64, dia: u64) -> Value {
    json!({"_id": id(4, i), "defaultProfile": "Default", "units": "mg/dl",
           "startDate": iso(T0 - i as i64 * 86_400_000), "created_at": iso(T0),
           "store": {"Default": {"dia": dia, "basal": [{"time": "00:00", "value": 0.5}]}}})
}

fn food(i: u64) -> Value {
    // With a time: a food without one gets on each server an identifier of the moment it was
    // stored (docs/sync.md).
    json!({"_id": id(5, i), "type": "food", "name": format!("food {i}"), "carbs": 10 + i,
           "created_at": iso(T0 - i as i64 * MIN)})
}

fn post(http: &Http, path: &str, doc: Value) {
    let r = http.post_json(path, &doc);
    assert_eq!(r.status, 200, "{path}: {}", r.text);
}

/// Per collection: documents on both (the same), only on A, only on B; then one treatment
/// and one profile edited on B, and another treatment edited on A later.
fn fill(a: &Http, b: &Http) {
    type Make = fn(u64) -> Value;
    // (path, document i, on both, only on A, only on B)
    let plan: [(&str, Make, u64, u64, u64); 4] = [
        // More than a page (1000) of entries, so the site is read in pages.
        ("/api/v1/entries", entry, 1203, 2, 1),
        ("/api/v1/treatments", treatment, 4, 1, 2),
        ("/api/v1/devicestatus", status, 2, 0, 1),
        ("/api/v1/food", food, 1, 0, 1),
    ];
    for (path, make, both, only_a, only_b) in plan {
        let on_a: Vec<Value> = (0..both + only_a).map(make).collect();
        let on_b = (0..both).chain(both + only_a..both + only_a + only_b);
        post(a, path, Value::Array(on_a));
        post(b, path, Value::Array(on_b.map(make).collect()));
    }
    for i in 0..2 {
        post(a, "/api/v1/profile", profile(i, 3));
    }
    post(b, "/api/v1/profile", profile(0, 3));
    // Edits on B.
    let mut t = treatment(1);
    t["notes"] = json!("edited on B");
    let r = b.put_json("/api/v1/treatments", &t);
    assert_eq!(r.status, 200, "{}", r.text);
    let r = b.put_json("/api/v1/profile", &profile(0, 5));
    assert_eq!(r.status, 200, "{}", r.text);
    // And one on A, after those: a millisecond later at least, so its srvModified is later.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let mut t = treatment(2);
    t["notes"] = json!("edited on A");
    let r = a.put_json("/api/v1/treatments", &t);
    assert_eq!(r.status, 200, "{}", r.text);
}

/// Every collection's (_id, srvModified) list through API v3, to tell nothing changed.
fn state(server: &TestServer) -> Vec<Value> {
    let http = server.http();
    let (_, token) = http.create_subject("state reader", &["readable"]);
    let bearer = format!("Bearer {}", http.jwt_for(&token));
    ["entries", "treatments", "devicestatus", "profile", "food"]
        .iter()
        .map(|c| {
            let r = http.request(
                "GET",
                &format!("/api/v3/{c}?limit=1000&sort=_id&fields=_id,srvModified,isValid"),
                &[("Authorization", bearer.as_str())],
                None,
            );
            assert_eq!(r.status, 200, "{}", r.text);
            r.json()["result"].clone()
        })
        .collect()
}

fn check(data: &Path, remote: &TestServer, envs: &[(&str, &str)]) -> Output {
    let url = remote.http().url("");
    command()
        .args([
            "sync",
            "--url",
            url.trim_end_matches('/'),
            "--direction",
            "check",
        ])
        .env("NIGHTLITE_DATA_DIR", data)
        .env("NIGHTLITE_LOG", "trace")
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn the_check_counts_each_sides_differences_exactly_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a");
    let a = TestServer::in_dir(&data, &[]);
    let b = TestServer::start();
    fill(&a.http(), &b.http());
    let (_, token) = b.http().create_subject("checker", &["readable"]);
    let before = (state(&a), state(&b));

    let out = check(&data, &b, &[("IMPORT_TOKEN", &token)]);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(3), "{report}{}", stderr(&out));
    assert_clean(&out, &[&token]);
    for line in [
        "entries: 2 only here, 1 only there, 0 differ (0 newer here, 0 newer there, 0 \
         undecided), 1203 the same; direction: both",
        "treatments: 1 only here, 2 only there, 2 differ (1 newer here, 1 newer there, 0 \
         undecided), 2 the same; direction: both",
        "devicestatus: 0 only here, 1 only there, 0 differ (0 newer here, 0 newer there, 0 \
         undecided), 2 the same; direction: download",
        "profile: 1 only here, 0 only there, 1 differ (0 newer here, 1 newer there, 0 \
         undecided), 0 the same; direction: both",
        "food: 0 only here, 1 only there, 0 differ (0 newer here, 0 newer there, 0 \
         undecided), 1 the same; direction: download",
    ] {
        assert!(report.contains(line), "{line:?} not in:\n{report}");
    }
    assert_eq!((state(&a), state(&b)), before);

    // A side compared with itself is in sync: exit 0 (here with the API secret).
    let out = check(&data, &a, &[("IMPORT_API_SECRET", SECRET)]);
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(0), "{report}{}", stderr(&out));
    assert!(
        report.contains("entries: 0 only here, 0 only there, 0 differ"),
        "{report}"
    );
    assert!(report.contains("direction: none (in sync)"), "{report}");
    assert_clean(&out, &[SECRET, &nightlite::auth::sha1_hex(SECRET)]);
    assert_eq!((state(&a), state(&b)), before);
}

#[test]
fn a_refused_token_fails_clearly_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a");
    let _a = TestServer::in_dir(&data, &[]);
    let b = TestServer::start();
    let token = "checker-0123456789abcdef";
    let out = check(&data, &b, &[("IMPORT_TOKEN", token)]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("refused the access token"), "{err}");
    assert_clean(&out, &[token]);
}
