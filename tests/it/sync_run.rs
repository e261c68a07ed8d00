//! `nightlite sync --direction both|upload|download` (docs/sync.md): two nightlites on
//! loopback. A is the appliance (stopped while the command runs on its data directory, as
//! `import` requires), B the cloud site (served, reached with an access token).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use serde_json::{json, Value};

use crate::support::{command, now_ms, Http, TestServer};

const MIN: i64 = 60_000;
const COLLECTIONS: [&str; 5] = ["entries", "treatments", "devicestatus", "profile", "food"];

fn iso(ms: i64) -> String {
    nightlite::dates::to_iso(ms)
}

fn entry(i: i64, t0: i64) -> Value {
    let date = t0 - i * 5 * MIN;
    json!({"type": "sgv", "sgv": 100 + i % 50, "date": date, "dateString": iso(date),
           "device": "xDrip-A"})
}

fn treatment(i: i64, t0: i64, what: &str) -> Value {
    json!({"eventType": "Note", "notes": format!("{what} {i}"), "enteredBy": "test",
           "created_at": iso(t0 - i * 7 * MIN)})
}

/// Every document of `coll` through API v3 history (deleted ones included), by identifier:
/// (isValid, the content without the fields each server sets itself).
fn snapshot(http: &Http, bearer: &str, coll: &str) -> BTreeMap<String, (bool, Value)> {
    let mut out = BTreeMap::new();
    // API v3 refuses a bound before 2000-01-01.
    let mut since = 946_684_800_000;
    loop {
        let r = http.request(
            "GET",
            &format!("/api/v3/{coll}/history/{since}?limit=1000"),
            &[("Authorization", bearer)],
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text);
        let docs = r.json()["result"].as_array().cloned().unwrap_or_default();
        for d in &docs {
            since = since.max(d["srvModified"].as_i64().unwrap());
            let mut c = d.clone();
            let o = c.as_object_mut().unwrap();
            for k in [
                "_id",
                "srvModified",
                "srvCreated",
                "isValid",
                "modifiedBy",
                "subject",
            ] {
                o.remove(k);
            }
            // API v3 needs an `app`: an upload of a document without one says "nightlite".
            if o.get("app") == Some(&json!("nightlite")) {
                o.remove("app");
            }
            let valid = d["isValid"] != json!(false);
            out.insert(d["identifier"].as_str().unwrap().to_string(), (valid, c));
        }
        if docs.len() < 1000 {
            return out;
        }
    }
}

/// Both sides hold the same documents: the same identifiers, deletions and content, but for
/// what API v3 adds to a document it creates (Nightscout's `created_at` and `utcOffset` of
/// an entry, an `app`).
fn assert_same(
    coll: &str,
    a: &BTreeMap<String, (bool, Value)>,
    b: &BTreeMap<String, (bool, Value)>,
) {
    let ka: Vec<&String> = a.keys().collect();
    let kb: Vec<&String> = b.keys().collect();
    if ka != kb {
        let only_a: Vec<_> = ka.iter().filter(|k| !b.contains_key(**k)).take(5).collect();
        let only_b: Vec<_> = kb.iter().filter(|k| !a.contains_key(**k)).take(5).collect();
        panic!(
            "{coll}: {} here, {} there; only here {only_a:?}, only there {only_b:?}",
            ka.len(),
            kb.len()
        );
    }
    for (k, (va, da)) in a {
        let (vb, db) = &b[k];
        let strip = |d: &Value, other: &Value| {
            let mut d = d.clone();
            for f in ["created_at", "utcOffset"] {
                if other.get(f).is_none() {
                    d.as_object_mut().unwrap().remove(f);
                }
            }
            d
        };
        assert_eq!((va, strip(da, db)), (vb, strip(db, da)), "{coll} {k}");
    }
}

struct Site {
    bearer: String,
    http: Http,
}

impl Site {
    fn of(server: &TestServer) -> Site {
        let http = server.http();
        let (_, token) = http.create_subject("snapshot reader", &["readable"]);
        Site {
            bearer: format!("Bearer {}", http.jwt_for(&token)),
            http,
        }
    }

    fn all(&self) -> Vec<BTreeMap<String, (bool, Value)>> {
        COLLECTIONS
            .iter()
            .map(|c| snapshot(&self.http, &self.bearer, c))
            .collect()
    }

    fn post(&self, path: &str, doc: Value) {
        let r = self.http.post_json(path, &doc);
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
}

fn sync(data: &Path, url: &str, token: &str, direction: &str, conflict: &str) -> Output {
    command()
        .args([
            "sync",
            "--url",
            url,
            "--direction",
            direction,
            "--conflict",
            conflict,
        ])
        .env("NIGHTLITE_DATA_DIR", data)
        .env("NIGHTLITE_LOG", "debug")
        .env("IMPORT_TOKEN", token)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// After the run, each collection's digest here equals the site's (integrity.rs).
fn in_step(out: &str) {
    assert!(!out.contains("differ after the sync"), "{out}");
}

/// B: a served site with an admin subject's token for the sync.
fn cloud() -> (TestServer, String, String) {
    let b = TestServer::start();
    let (_, token) = b.http().create_subject("mirror", &["admin"]);
    let url = b.http().url("").trim_end_matches('/').to_string();
    (b, url, token)
}

#[test]
fn offline_writes_reach_the_site_when_it_is_back_and_a_second_run_moves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a");
    let t0 = now_ms() - 10 * MIN;
    {
        let a = TestServer::in_dir(&data, &[]);
        let entries: Vec<Value> = (0..1203).map(|i| entry(i, t0)).collect();
        a.post_json("/api/v1/entries", &Value::Array(entries));
        let ts: Vec<Value> = (0..30).map(|i| treatment(i, t0, "A")).collect();
        a.post_json("/api/v1/treatments", &Value::Array(ts));
        for i in 0..3 {
            let s = json!({"device": "loop://A", "created_at": iso(t0 - i * 5 * MIN),
                           "loop": {"iob": {"iob": 1.5}}});
            a.post_json("/api/v1/devicestatus", &s);
        }
        a.post_json(
            "/api/v1/profile",
            &json!({"defaultProfile": "Default", "startDate": iso(t0), "units": "mg/dl",
                    "store": {"Default": {"dia": 4, "basal": [{"time": "00:00", "value": 0.8}]}}}),
        );
        a.post_json(
            "/api/v1/food",
            &json!({"type": "food", "name": "apple", "carbs": 12}),
        );
    }
    // The site is down: the run fails, says why, and nothing is lost.
    let closed = format!("http://127.0.0.1:{}", crate::support::free_port());
    let out = sync(&data, &closed, "mirror-0000000000000000", "both", "safe");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sync failed"), "{err}");
    assert!(!err.contains("mirror-0000000000000000"), "{err}");

    let (b, url, token) = cloud();
    let out = ok(&sync(&data, &url, &token, "both", "safe"));
    assert!(
        out.contains("entries: 1203 uploaded, 0 downloaded"),
        "{out}"
    );
    in_step(&out);
    assert!(out.contains("treatments: 30 uploaded"), "{out}");
    let on_b = Site::of(&b).all();
    let a = TestServer::in_dir(&data, &[]);
    let on_a = Site::of(&a).all();
    for (i, c) in COLLECTIONS.iter().enumerate() {
        assert_same(c, &on_a[i], &on_b[i]);
    }
    assert_eq!(on_b[0].len(), 1203);
    drop(a);
    // Again: nothing moves either way.
    let out = ok(&sync(&data, &url, &token, "both", "safe"));
    for c in COLLECTIONS {
        assert!(
            out.contains(&format!(
                "{c}: 0 uploaded, 0 downloaded, 0 conflicts, 0 refused, 0 pending"
            )),
            "{out}"
        );
    }
    // The site loses documents behind the sync's back (a restore from an older backup): the
    // digest tells, and a run that forgets where it stood sends them again, nothing else.
    let bearer = format!("Bearer {}", b.http().jwt_for(&token));
    let gone: Vec<String> = on_b[1].keys().take(2).cloned().collect();
    for id in &gone {
        let r = b.request(
            "DELETE",
            &format!("/api/v3/treatments/{id}?permanent=true"),
            &[("Authorization", bearer.as_str())],
            None,
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let out = ok(&sync(&data, &url, &token, "both", "safe"));
    assert!(
        out.contains("treatments: the sides differ after the sync"),
        "{out}"
    );
    let forgot = command()
        .args(["sync", "--url", &url, "--direction", "both", "--forget"])
        .env("NIGHTLITE_DATA_DIR", &data)
        .env("IMPORT_TOKEN", &token)
        .output()
        .unwrap();
    let out = ok(&forgot);
    assert!(
        out.contains("treatments: 2 uploaded, 0 downloaded, 0 conflicts"),
        "{out}"
    );
    assert!(
        out.contains("entries: 0 uploaded, 0 downloaded, 0 conflicts"),
        "{out}"
    );
    in_step(&out);
    assert_eq!(Site::of(&b).all()[1].len(), 30);
}

#[test]
fn writes_and_deletes_on_both_sides_reach_the_other_side() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a");
    let t0 = now_ms() - 10 * MIN;
    let (b, url, token) = cloud();
    {
        let a = TestServer::in_dir(&data, &[]);
        let ts: Vec<Value> = (0..6).map(|i| treatment(i, t0, "A")).collect();
        a.post_json("/api/v1/treatments", &Value::Array(ts));
    }
    let ts: Vec<Value> = (10..14).map(|i| treatment(i, t0, "B")).collect();
    b.post_json("/api/v1/treatments", &Value::Array(ts));
    ok(&sync(&data, &url, &token, "both", "safe"));
    let site_b = Site::of(&b);
    assert_eq!(site_b.all()[1].len(), 10);

    // A (offline) adds one, edits one, deletes one; B adds one, deletes another.
    {
        let a = TestServer::in_dir(&data, &[]);
        let a_site = Site::of(&a);
        a_site.post("/api/v1/treatments", treatment(20, t0, "A later"));
        let list = Value::Array(a.list("/api/v1/treatments.json?find[notes]=A%201"));
        let mut one = list[0].clone();
        one["notes"] = json!("A 1 edited");
        assert_eq!(a.put_json("/api/v1/treatments", &one).status, 200);
        let gone = Value::Array(a.list("/api/v1/treatments.json?find[notes]=A%202"));
        let id = gone[0]["_id"].as_str().unwrap();
        assert_eq!(a.delete(&format!("/api/v1/treatments/{id}")).status, 200);
    }
    site_b.post("/api/v1/treatments", treatment(30, t0, "B later"));
    let gone = Value::Array(b.list("/api/v1/treatments.json?find[notes]=B%2011"));
    let id = gone[0]["_id"].as_str().unwrap();
    assert_eq!(b.delete(&format!("/api/v1/treatments/{id}")).status, 200);

    let out = ok(&sync(&data, &url, &token, "both", "safe"));
    assert!(
        out.contains("treatments: 3 uploaded, 2 downloaded, 0 conflicts"),
        "{out}"
    );
    in_step(&out);
    let on_b = site_b.all();
    let a = TestServer::in_dir(&data, &[]);
    let on_a = Site::of(&a).all();
    assert_same("treatments", &on_a[1], &on_b[1]);
    let live = |m: &BTreeMap<String, (bool, Value)>| {
        let mut n: Vec<String> = m
            .values()
            .filter(|(v, _)| *v)
            .map(|(_, d)| d["notes"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    let expected = [
        "A 0",
        "A 1 edited",
        "A 3",
        "A 4",
        "A 5",
        "A later 20",
        "B 10",
        "B 12",
        "B 13",
        "B later 30",
    ];
    assert_eq!(live(&on_a[1]), expected);
    drop(a);
    // An upload-only run after an edit there leaves the sides apart, and says so.
    site_b.post("/api/v1/treatments", treatment(40, t0, "B unseen"));
    let out = ok(&sync(&data, &url, &token, "upload", "safe"));
    assert!(
        out.contains("treatments: the sides differ after the sync"),
        "{out}"
    );
    assert!(!out.contains("entries: the sides differ"), "{out}");
}

/// The conflict log of A: (identity, strategy, reason, kept, the local and the site's notes).
fn conflicts(data: &Path) -> Vec<(String, String, String, Option<String>, Value, Value)> {
    let db = rusqlite::Connection::open(data.join("nightlite.sqlite3")).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT identity, strategy, reason, kept, local_doc, remote_doc FROM sync_conflicts
             ORDER BY id",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let doc = |i| -> rusqlite::Result<Value> {
                let t: String = r.get(i)?;
                Ok(serde_json::from_str(&t).unwrap())
            };
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, doc(4)?, doc(5)?))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// One treatment of A's on both sides, then edited on both: A first, the site a little later.
fn edited_on_both(
    data: &Path,
    b: &TestServer,
    url: &str,
    token: &str,
    doc: Value,
    on_a: Value,
    on_b: Value,
) -> String {
    {
        let a = TestServer::in_dir(data, &[]);
        a.post_json("/api/v1/treatments", &doc);
    }
    ok(&sync(data, url, token, "both", "safe"));
    let edit = |server: &TestServer, fields: &Value| {
        let mut d = server.list("/api/v1/treatments.json")[0].clone();
        for (k, v) in fields.as_object().unwrap() {
            d[k] = v.clone();
        }
        assert_eq!(server.put_json("/api/v1/treatments", &d).status, 200);
        d["identifier"].as_str().unwrap().to_string()
    };
    let identity = {
        let a = TestServer::in_dir(data, &[]);
        edit(&a, &on_a)
    };
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert_eq!(edit(b, &on_b), identity);
    identity
}

fn notes(server: &TestServer) -> (Value, Value) {
    let d = &server.list("/api/v1/treatments.json")[0];
    (d["notes"].clone(), d["duration"].clone())
}

#[test]
fn a_conflicting_edit_is_settled_by_each_strategy_and_the_loser_is_logged() {
    let t0 = now_ms() - 10 * MIN;
    let note = json!({"eventType": "Note", "notes": "first", "created_at": iso(t0)});
    // (strategy, whose notes both sides end with)
    for (strategy, winner) in [
        ("local-wins", "on A"),
        ("remote-wins", "on B"),
        ("newest", "on B"),
        ("safe", "on B"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a");
        let (b, url, token) = cloud();
        let identity = edited_on_both(
            &data,
            &b,
            &url,
            &token,
            note.clone(),
            json!({"notes": "on A"}),
            json!({"notes": "on B"}),
        );
        let out = ok(&sync(&data, &url, &token, "both", strategy));
        assert!(
            out.contains("treatments: ") && out.contains(" 1 conflicts"),
            "{strategy}: {out}"
        );
        assert_eq!(notes(&b).0, winner, "{strategy}");
        let log = conflicts(&data);
        assert_eq!(log.len(), 1, "{strategy}: {log:?}");
        let (id, s, _, kept, local, remote) = &log[0];
        assert_eq!((id, s.as_str()), (&identity, strategy));
        let kept = kept.as_deref().unwrap();
        assert_eq!(kept, if winner == "on A" { "local" } else { "remote" });
        // Both versions are in the log.
        assert_eq!(
            (local["notes"].clone(), remote["notes"].clone()),
            (json!("on A"), json!("on B"))
        );
        let a = TestServer::in_dir(&data, &[]);
        assert_eq!(notes(&a).0, winner, "{strategy}");
        drop(a);
        // Settled: the next run finds nothing.
        let out = ok(&sync(&data, &url, &token, "both", strategy));
        assert!(
            out.contains("treatments: 0 uploaded, 0 downloaded, 0 conflicts"),
            "{out}"
        );
    }
}

#[test]
fn a_started_override_only_gets_shorter_and_a_manual_conflict_is_held() {
    let t0 = now_ms() - 10 * MIN;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a");
    let (b, url, token) = cloud();
    // Shortened here (cancelled after 20 minutes), edited there later with its old length.
    let over = json!({"eventType": "Temporary Override", "reason": "Running", "duration": 60,
                      "created_at": iso(t0)});
    edited_on_both(
        &data,
        &b,
        &url,
        &token,
        over,
        json!({"duration": 20}),
        json!({"notes": "later edit", "duration": 60}),
    );
    ok(&sync(&data, &url, &token, "both", "safe"));
    assert_eq!(notes(&b).1, json!(20));
    let log = conflicts(&data);
    assert_eq!(
        log[0].2,
        "a started override or temporary target only gets shorter"
    );
    assert_eq!(log[0].5["notes"], "later edit");

    // Manual: both versions held, neither side changes, until decided.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a");
    let (b, url, token) = cloud();
    let note = json!({"eventType": "Note", "notes": "first", "created_at": iso(t0)});
    edited_on_both(
        &data,
        &b,
        &url,
        &token,
        note,
        json!({"notes": "on A"}),
        json!({"notes": "on B"}),
    );
    for _ in 0..2 {
        let out = ok(&sync(&data, &url, &token, "both", "manual"));
        assert!(
            out.contains("treatments: 0 uploaded, 0 downloaded"),
            "{out}"
        );
        assert_eq!(notes(&b).0, "on B");
        let log = conflicts(&data);
        assert_eq!((log.len(), log[0].3.clone()), (1, None), "{log:?}");
    }
    let a = TestServer::in_dir(&data, &[]);
    assert_eq!(notes(&a).0, "on A");
    drop(a);
    // Decided for the version here (what POST /api/v4/sync/conflicts/{id} records).
    let db = rusqlite::Connection::open(data.join("nightlite.sqlite3")).unwrap();
    db.execute(
        "UPDATE sync_conflicts SET kept = 'local', reason = 'decided', applied = 0",
        [],
    )
    .unwrap();
    drop(db);
    ok(&sync(&data, &url, &token, "both", "manual"));
    assert_eq!(notes(&b).0, "on A");
    let log = conflicts(&data);
    assert_eq!(log[0].3.as_deref(), Some("local"));
}

#[test]
fn a_sync_killed_mid_upload_loses_nothing_and_copies_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a");
    let t0 = now_ms() - 10 * MIN;
    {
        let a = TestServer::in_dir(&data, &[]);
        let entries: Vec<Value> = (0..4000).map(|i| entry(i, t0)).collect();
        a.post_json("/api/v1/entries", &Value::Array(entries));
    }
    let (b, url, token) = cloud();
    let count = || {
        let r = b.get_auth("/api/v1/count/entries/where?find[date][$gte]=0");
        r.json()[0]["count"].as_u64().unwrap_or(0)
    };
    let mut child = command()
        .args(["sync", "--url", &url, "--direction", "upload"])
        .env("NIGHTLITE_DATA_DIR", &data)
        .env("IMPORT_TOKEN", &token)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while count() < 150 {
        assert!(std::time::Instant::now() < deadline, "no upload began");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = count();
    assert!(
        partial < 4000,
        "the upload ended before the kill: {partial}"
    );
    let out = ok(&sync(&data, &url, &token, "both", "safe"));
    assert!(out.contains("entries: "), "{out}");
    assert_eq!(count(), 4000);
    let a = TestServer::in_dir(&data, &[]);
    assert_same("entries", &Site::of(&a).all()[0], &Site::of(&b).all()[0]);
}

#[test]
fn device_statuses_are_copied_from_a_recent_window_only_and_no_credential_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a");
    let now = now_ms();
    let status = |who: &str, ago_h: i64| {
        json!({"device": format!("loop://{who}"), "created_at": iso(now - ago_h * 3_600_000),
               "pump": {"reservoir": ago_h}})
    };
    {
        let a = TestServer::in_dir(&data, &[]);
        for h in [1, 30] {
            a.post_json("/api/v1/devicestatus", &status("A", h));
        }
    }
    let (b, url, token) = cloud();
    for h in [2, 40] {
        b.post_json("/api/v1/devicestatus", &status("B", h));
    }
    let out = sync(&data, &url, &token, "both", "safe");
    let stdout = ok(&out);
    assert!(
        stdout.contains("devicestatus: 1 uploaded, 1 downloaded"),
        "{stdout}"
    );
    let logs = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        logs.contains("DEBUG") || logs.contains("debug"),
        "no debug log: {logs}"
    );
    assert!(!logs.contains(&token), "{logs}");
    let a = TestServer::in_dir(&data, &[]);
    let reservoirs = |s: &TestServer| {
        let mut r: Vec<i64> = s
            .list("/api/v1/devicestatus.json?count=10&find[created_at][$gte]=2000")
            .iter()
            .map(|d| d["pump"]["reservoir"].as_i64().unwrap())
            .collect();
        r.sort();
        r
    };
    assert_eq!(reservoirs(&a), [1, 2, 30]);
    assert_eq!(reservoirs(&b), [1, 2, 40]);
}

#[test]
fn with_the_api_secret_the_sync_uses_a_subject_of_its_own_on_the_site() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a");
    {
        let a = TestServer::in_dir(&data, &[]);
        a.post_json("/api/v1/treatments", &treatment(1, now_ms(), "A"));
    }
    let b = TestServer::start();
    let url = b.http().url("").trim_end_matches('/').to_string();
    let out = command()
        .args(["sync", "--url", &url, "--direction", "both"])
        .env("NIGHTLITE_DATA_DIR", &data)
        .env("IMPORT_API_SECRET", crate::support::SECRET)
        .env("NIGHTLITE_LOG", "debug")
        .output()
        .unwrap();
    let stdout = ok(&out);
    assert!(stdout.contains("treatments: 1 uploaded"), "{stdout}");
    let subjects = b.list("/api/v2/authorization/subjects");
    let sync = subjects.iter().find(|s| s["name"] == "nightlite-sync");
    assert_eq!(sync.map(|s| s["roles"].clone()), Some(json!(["admin"])));
    let logs = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!logs.contains(crate::support::SECRET), "{logs}");
    let token = sync.unwrap()["accessToken"].as_str().unwrap();
    assert!(!logs.contains(token), "{logs}");
}

#[test]
fn sites_that_received_the_same_uploads_separately_agree_without_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a");
    let t0 = now_ms() - 10 * MIN;
    let (b, url, token) = cloud();
    let bearer = format!("Bearer {}", b.http().jwt_for(&token));
    {
        let a = TestServer::in_dir(&data, &[]);
        for i in 0..5 {
            // Through API v1 here, through API v3 there (which adds created_at and
            // utcOffset, and needs an app): the same readings.
            let e = entry(i, t0);
            a.post_json("/api/v1/entries", &e);
            let mut v3 = e.clone();
            v3["app"] = json!("xDrip+");
            let r = b.request_json(
                "POST",
                "/api/v3/entries",
                &[("Authorization", &bearer)],
                Some(&v3),
            );
            assert_eq!(r.status, 201, "{}", r.text);
        }
    }
    let out = ok(&sync(&data, &url, &token, "both", "safe"));
    assert!(
        out.contains("entries: 0 uploaded, 0 downloaded, 0 conflicts, 0 refused, 0 pending"),
        "{out}"
    );
    // One reading stored differently on each side, later here: the version here is kept,
    // and goes up with the site's `app` (API v3 refuses a change of it).
    let mut there = entry(9, t0);
    there["app"] = json!("xDrip+");
    there["sgv"] = json!(77);
    let r = b.request_json(
        "POST",
        "/api/v3/entries",
        &[("Authorization", &bearer)],
        Some(&there),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    std::thread::sleep(std::time::Duration::from_millis(20));
    {
        let a = TestServer::in_dir(&data, &[]);
        let mut here = entry(9, t0);
        here["sgv"] = json!(88);
        a.post_json("/api/v1/entries", &here);
    }
    let out = ok(&sync(&data, &url, &token, "both", "safe"));
    assert!(
        out.contains("entries: 0 uploaded, 0 downloaded, 1 conflicts, 0 refused"),
        "{out}"
    );
    in_step(&out);
    let on_b = b.list("/api/v1/entries.json?count=1&find[sgv][$gte]=70&find[sgv][$lte]=90");
    assert_eq!(
        (on_b[0]["sgv"].clone(), on_b[0]["app"].clone()),
        (json!(88), json!("xDrip+"))
    );
    // A reading both sides hold the same (here without an app), edited here: it goes up
    // through the outbox, with the site's app.
    {
        let a = TestServer::in_dir(&data, &[]);
        let mut e = entry(0, t0);
        e["sgv"] = json!(66);
        a.post_json("/api/v1/entries", &e);
    }
    let out = ok(&sync(&data, &url, &token, "both", "safe"));
    assert!(
        out.contains("entries: 1 uploaded, 0 downloaded, 0 conflicts, 0 refused"),
        "{out}"
    );
    let on_b = b.list("/api/v1/entries.json?count=1&find[sgv][$gte]=60&find[sgv][$lte]=69");
    assert_eq!(
        (on_b[0]["sgv"].clone(), on_b[0]["app"].clone()),
        (json!(66), json!("xDrip+"))
    );
}

/// A Nightscout 15.0.7 as the other side (tests/it/connect/fake_nightscout): documents its
/// API v1 wrote have no srvModified (only the v1 pass finds them), a batch shares one
/// srvModified over more than a page, deletes through v3 are soft; no digest there, so the
/// integrity check samples.
#[test]
fn a_nightscout_15_site_syncs_both_ways_with_its_v1_writes_and_a_shared_millisecond() {
    use crate::connect::fake_http::Fake;
    use crate::connect::fake_nightscout::{FakeNightscout, TOKEN};
    let ns = FakeNightscout::start(true);
    let t0 = now_ms() - 60 * MIN;
    // 2,100 readings uploaded through v3 in one batch: one srvModified for all.
    let batch = t0 + 30 * MIN;
    for i in 0..2100 {
        let date = t0 - i * MIN;
        ns.add(
            "entries",
            json!({"identifier": format!("batch-{i}"), "type": "sgv", "sgv": 120, "date": date,
                   "dateString": iso(date), "device": "ns-batch", "app": "uploader",
                   "srvModified": batch, "srvCreated": batch, "utcOffset": 0}),
        );
    }
    // Careportal notes through API v1: no srvModified there.
    let (status, _) = ns.call(
        "POST",
        "/api/v1/treatments",
        json!([{"eventType": "Note", "notes": "careportal 1", "created_at": iso(t0)},
               {"eventType": "Note", "notes": "careportal 2", "created_at": iso(t0 + MIN)}]),
    );
    assert_eq!(status, 200);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("a");
    {
        let a = TestServer::in_dir(&data, &[]);
        a.post_json("/api/v1/treatments", &treatment(3, t0, "A"));
    }
    let run = |dir: &str| {
        command()
            .args(["sync", "--url", &ns.url(), "--direction", dir])
            .env("NIGHTLITE_DATA_DIR", &data)
            .env("IMPORT_TOKEN", TOKEN)
            .output()
            .unwrap()
    };
    let out = ok(&run("both"));
    assert!(
        out.contains("entries: 0 uploaded, 2100 downloaded"),
        "{out}"
    );
    assert!(
        out.contains("treatments: 1 uploaded, 2 downloaded, 0 conflicts"),
        "{out}"
    );
    assert!(
        out.contains("treatments: the same on both sides (sample"),
        "{out}"
    );
    in_step(&out);
    // On the site: A's note, through v3, with its identifier.
    let notes: Vec<String> = ns
        .docs("treatments")
        .iter()
        .map(|d| d["notes"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert!(notes.contains(&"A 3".to_string()));
    // The site's documents keep their `_id` here (REQ-MIGRATION-001).
    {
        let a = TestServer::in_dir(&data, &[]);
        for d in ns.docs("treatments").iter().filter(|d| d["notes"] != "A 3") {
            let here = a.list(&format!(
                "/api/v1/treatments.json?find[notes]={}",
                crate::support::enc(d["notes"].as_str().unwrap())
            ));
            assert_eq!(here[0]["_id"], d["_id"], "{d}");
        }
    }
    // A deletes one of the site's notes is deleted there with a v3 DELETE; the site deletes
    // A's through v3 (soft, seen in its history).
    {
        let a = TestServer::in_dir(&data, &[]);
        let list = a.list("/api/v1/treatments.json?find[notes]=careportal%201");
        let id = list[0]["_id"].as_str().unwrap();
        assert_eq!(a.delete(&format!("/api/v1/treatments/{id}")).status, 200);
    }
    let ours = ns
        .docs("treatments")
        .into_iter()
        .find(|d| d["notes"] == "A 3")
        .unwrap();
    let (status, _) = ns.call(
        "DELETE",
        &format!(
            "/api/v3/treatments/{}",
            ours["identifier"].as_str().unwrap()
        ),
        Value::Null,
    );
    assert_eq!(status, 200);
    let out = ok(&run("both"));
    assert!(
        out.contains("treatments: 1 uploaded, 1 downloaded, 0 conflicts"),
        "{out}"
    );
    in_step(&out);
    let valid = |d: &Value| d["isValid"] != json!(false);
    let there: Vec<(String, bool)> = ns
        .docs("treatments")
        .iter()
        .map(|d| (d["notes"].as_str().unwrap().to_string(), valid(d)))
        .collect();
    assert!(there.contains(&("careportal 1".into(), false)), "{there:?}");
    assert!(there.contains(&("careportal 2".into(), true)), "{there:?}");
    let a = TestServer::in_dir(&data, &[]);
    let mut here: Vec<String> = a
        .list("/api/v1/treatments.json")
        .iter()
        .map(|d| d["notes"].as_str().unwrap().to_string())
        .collect();
    here.sort();
    assert_eq!(here, ["careportal 2"]);
    assert_eq!(
        a.get_auth("/api/v1/count/entries/where?find[date][$gte]=0")
            .json()[0]["count"],
        2100
    );
    drop(a);
    // A delete through the site's API v1 leaves no trace there; the v1 pass finds the
    // document gone from its window, asks for it alone, and deletes it here.
    let kept = ns
        .docs("treatments")
        .into_iter()
        .find(|d| d["notes"] == "careportal 2")
        .unwrap();
    let (status, _) = ns.call(
        "DELETE",
        &format!("/api/v1/treatments/{}", kept["_id"].as_str().unwrap()),
        Value::Null,
    );
    assert_eq!(status, 200);
    let out = ok(&run("both"));
    assert!(
        out.contains("treatments: 0 uploaded, 1 downloaded"),
        "{out}"
    );
    let a = TestServer::in_dir(&data, &[]);
    assert_eq!(a.list("/api/v1/treatments.json"), Vec::<Value>::new());
    drop(a);
    // And then nothing moves.
    let out = ok(&run("both"));
    assert!(
        out.contains("treatments: 0 uploaded, 0 downloaded"),
        "{out}"
    );
    assert!(out.contains("entries: 0 uploaded, 0 downloaded"), "{out}");
}
