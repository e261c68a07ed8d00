//! The sync service (SYNC_URL, src/sync/service.rs, docs/sync.md): a nightlite on a manual
//! clock syncing with a second nightlite on loopback. These tests assert the service's states
//! and records (runs, triggers, status, permissions, conflict decisions), not what is copied,
//! which is the engine's (its own tests).

use std::sync::Arc;
use std::time::{Duration, Instant};

use nightlite::connect::{Clock, ManualClock};
use serde_json::{json, Value};

use crate::support::{free_port, Resp, Setup, TestServer};

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600_000;
const MIN: i64 = 60_000;
/// src/sync/service.rs DEBOUNCE_MS.
const DEBOUNCE: i64 = 10_000;

struct Synced {
    /// This side: the server whose sync is tested.
    s: TestServer,
    /// The site it syncs with (None when SYNC_URL goes nowhere).
    _site: Option<TestServer>,
    clock: Arc<ManualClock>,
    /// The sync's access token on the site.
    token: String,
}

fn site_with_token() -> (TestServer, String) {
    let site = TestServer::start();
    let (_, token) = site.create_subject("sync", &["admin"]);
    (site, token)
}

impl Synced {
    /// A server syncing with a second nightlite, `more` settings added.
    fn start(more: &[(&str, &str)]) -> Synced {
        let (site, token) = site_with_token();
        let url = format!("http://127.0.0.1:{}?token={token}", site.port);
        Synced::with_url(&url, token, Some(site), more)
    }

    fn with_url(
        url: &str,
        token: String,
        site: Option<TestServer>,
        more: &[(&str, &str)],
    ) -> Synced {
        let clock = ManualClock::new(T0);
        let s = Setup::new()
            .clock(&clock)
            .env("SYNC_URL", url)
            .envs(more)
            .start();
        Synced {
            s,
            _site: site,
            clock,
            token,
        }
    }

    fn status(&self) -> Value {
        let r = self.s.get_auth("/api/v4/sync/status");
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(!r.text.contains(&self.token), "a credential in {}", r.text);
        r.json()
    }

    fn runs(&self) -> Vec<Value> {
        let r = self.s.get_auth("/api/v4/sync/runs");
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(!r.text.contains(&self.token), "a credential in {}", r.text);
        r.json()["runs"].as_array().unwrap().clone()
    }

    /// Waits (in real time, for the service's task) until `n` runs are recorded, the last
    /// finished, and the service waits for its next run; returns the runs (newest first) and
    /// the status.
    fn after_runs(&self, n: usize) -> (Vec<Value>, Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let runs = self.runs();
            let status = self.status();
            let settled = runs.len() == n
                && runs[0]["outcome"].is_string()
                && status["running"].is_null()
                && status["nextRun"].is_i64();
            if settled {
                return (runs, status);
            }
            assert!(Instant::now() < deadline, "not {n} runs: {runs:?} {status}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn a_run_at_start_is_recorded_and_the_interval_triggers_the_next() {
    let t = Synced::start(&[("SYNC_INTERVAL_MINUTES", "7")]);
    let (runs, status) = t.after_runs(1);
    assert_eq!(runs[0]["trigger"], "start");
    assert_eq!(runs[0]["direction"], "both");
    assert_eq!(runs[0]["outcome"], "complete", "{runs:?}");
    assert_eq!(runs[0]["started"], T0);
    assert_eq!(runs[0]["error"], Value::Null);
    assert_eq!(status["state"], "IDLE", "{status}");
    assert_eq!(status["lastSuccess"], T0);
    assert_eq!(status["lastRun"]["outcome"], "complete");
    assert_eq!(status["nextRun"], T0 + 7 * MIN);
    assert_eq!(status["intervalMinutes"], 7);
    assert_eq!(status["direction"], "both");
    assert_eq!(status["conflictStrategy"], "safe");
    let remote = status["remote"].as_str().unwrap();
    assert!(
        remote.starts_with("http://127.0.0.1:") && !remote.contains('?'),
        "{remote}"
    );
    let names: Vec<&str> = status["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["collection"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["entries", "treatments", "devicestatus", "profile", "food"]
    );
    assert_eq!(status["conflicts"], json!({"open": 0, "total": 0}));

    // Not before the interval...
    t.clock.set(T0 + 7 * MIN - 1);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(t.runs().len(), 1);
    // ...then the periodic run.
    t.clock.set(T0 + 7 * MIN);
    let (runs, status) = t.after_runs(2);
    assert_eq!(runs[0]["trigger"], "interval");
    assert_eq!(runs[0]["started"], T0 + 7 * MIN);
    assert_eq!(status["nextRun"], T0 + 14 * MIN);
}

#[test]
fn a_local_change_triggers_a_run_after_the_debounce_and_not_before() {
    let t = Synced::start(&[]);
    t.after_runs(1);
    let r = t.s.post_json(
        "/api/v1/treatments",
        &json!({"eventType": "Note", "notes": "sync me", "created_at": "2026-01-01T00:00:00Z"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    // The service heard it: its next run moves to the debounce's end.
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.status()["nextRun"] != T0 + DEBOUNCE {
        assert!(Instant::now() < deadline, "{}", t.status());
        std::thread::sleep(Duration::from_millis(10));
    }
    t.clock.set(T0 + DEBOUNCE - 1);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(t.runs().len(), 1, "a run before the debounce ended");
    t.clock.set(T0 + DEBOUNCE);
    let (runs, status) = t.after_runs(2);
    assert_eq!(runs[0]["trigger"], "change");
    assert_eq!(runs[0]["started"], T0 + DEBOUNCE);
    assert_eq!(runs[0]["outcome"], "complete");
    assert_eq!(status["nextRun"], T0 + DEBOUNCE + 5 * MIN);
}

#[test]
fn a_manual_run_is_for_admins_and_status_for_readers() {
    let t = Synced::start(&[]);
    t.after_runs(1);
    let (_, reader) = t.s.create_subject("reader", &["readable"]);
    let (_, nobody) = t.s.create_subject("nobody", &["denied"]);
    let (_, admin) = t.s.create_subject("sync admin", &["admin"]);
    let as_token = |method: &str, path: &str, token: &str| -> Resp {
        let body = (method == "POST").then_some(&b"{}"[..]);
        let sep = if path.contains('?') { '&' } else { '?' };
        t.s.request(
            method,
            &format!("{path}{sep}token={token}"),
            &[("Content-Type", "application/json")],
            body,
        )
    };
    for path in [
        "/api/v4/sync/status",
        "/api/v4/sync/runs",
        "/api/v4/sync/conflicts",
    ] {
        assert_eq!(as_token("GET", path, &reader).status, 200, "{path}");
        assert_eq!(as_token("GET", path, &nobody).status, 401, "{path}");
        assert_eq!(t.s.get(path).status, 401, "{path} without credentials");
    }
    // The viewer's pill reads the summary in status.json, which only such callers get.
    let (_, status_only) = t.s.create_subject("status only", &["status-only"]);
    let summary = as_token("GET", "/api/v1/status.json", &reader).json()["sync"].clone();
    assert_eq!(summary["state"], "IDLE", "{summary}");
    assert_eq!(summary["lastSuccess"], T0, "{summary}");
    assert_eq!(summary["pending"], 0, "{summary}");
    let r = as_token("GET", "/api/v1/status.json", &status_only);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json().get("sync").is_none(), "{}", r.text);
    assert_eq!(
        as_token("GET", "/api/v4/sync/status", &status_only).status,
        401
    );
    // A JWT works too.
    let jwt = t.s.jwt_for(&reader);
    let r = t.s.request(
        "GET",
        "/api/v4/sync/status",
        &[("Authorization", &format!("Bearer {jwt}"))],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(as_token("POST", "/api/v4/sync/run", &reader).status, 401);
    assert_eq!(t.runs().len(), 1);
    let r = as_token("POST", "/api/v4/sync/run", &admin);
    assert_eq!(r.status, 200, "{}", r.text);
    let (runs, _) = t.after_runs(2);
    assert_eq!(runs[0]["trigger"], "manual");
    assert_eq!(runs[0]["started"], T0, "at once, not at the interval");
}

#[test]
fn a_held_conflict_is_decided_once_and_triggers_a_run() {
    let data = tempfile::tempdir().unwrap();
    let (site, token) = site_with_token();
    let url = format!("http://127.0.0.1:{}?token={token}", site.port);
    let clock = ManualClock::new(T0);
    let s = Setup::new()
        .clock(&clock)
        .data_dir(data.path())
        .env("SYNC_URL", &url)
        .env("SYNC_CONFLICT", "manual")
        .start();
    let t = Synced {
        s,
        _site: Some(site),
        clock,
        token,
    };
    t.after_runs(1);
    // As the engine logs a conflict it holds for a decision (the engine's own tests make real
    // ones): a row of sync_conflicts, written beside the running server as SQLite allows.
    let remote = t.status()["remote"].as_str().unwrap().to_string();
    let db = rusqlite::Connection::open(data.path().join("nightlite.sqlite3")).unwrap();
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let held = |identity: &str, at: i64| {
        let c = nightlite::store::sync::Conflict::found(
            "treatments",
            identity,
            at,
            "manual",
            (r#"{"notes":"here"}"#.into(), None),
            (r#"{"notes":"there"}"#.into(), None),
        );
        nightlite::store::sync::add_conflict(&db, &remote, &c).unwrap()
    };
    let first = held("t-1", T0 - 2 * MIN);
    let second = held("t-2", T0 - MIN);
    let list = t.s.get_auth("/api/v4/sync/conflicts").json()["conflicts"].clone();
    assert_eq!(list[0]["id"], second, "newest first: {list}");
    assert_eq!(list[1]["id"], first);
    assert_eq!(list[1]["kept"], Value::Null);
    assert_eq!(list[1]["localDoc"], json!({"notes": "here"}));
    assert_eq!(list[1]["remoteDoc"], json!({"notes": "there"}));
    assert_eq!(list[1]["detectedAt"], T0 - 2 * MIN);
    assert_eq!(t.status()["conflicts"], json!({"open": 2, "total": 2}));

    let decide = |id: &str, body: &[u8]| -> Resp {
        t.s.request_auth(
            "POST",
            &format!("/api/v4/sync/conflicts/{id}"),
            &[("Content-Type", "application/json")],
            Some(body),
        )
    };
    let r = decide(&first.to_string(), br#"{"keep":"mine"}"#);
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.json()["message"].as_str().unwrap().contains("keep"),
        "{}",
        r.text
    );
    let r = decide("999999", br#"{"keep":"local"}"#);
    assert_eq!(
        (r.status, r.json()["status"].clone()),
        (404, json!(404)),
        "{}",
        r.text
    );
    assert_eq!(decide("x", br#"{"keep":"local"}"#).status, 404);
    assert_eq!(t.runs().len(), 1, "refused decisions trigger nothing");

    let r = decide(&first.to_string(), br#"{"keep":"remote"}"#);
    assert_eq!(r.status, 200, "{}", r.text);
    let (runs, status) = t.after_runs(2);
    assert_eq!(runs[0]["trigger"], "decision");
    assert_eq!(status["conflicts"], json!({"open": 1, "total": 2}));
    let list = t.s.get_auth("/api/v4/sync/conflicts?limit=1").json()["conflicts"].clone();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let c = t.s.get_auth("/api/v4/sync/conflicts").json()["conflicts"][1].clone();
    assert_eq!(
        (c["id"].clone(), c["kept"].clone()),
        (json!(first), json!("remote"))
    );
    assert!(c["resolvedAt"].is_i64(), "{c}");

    let r = decide(&first.to_string(), br#"{"keep":"local"}"#);
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.json()["status"], 409);
    let c = t.s.get_auth("/api/v4/sync/conflicts").json()["conflicts"][1].clone();
    assert_eq!(c["kept"], "remote", "a decided conflict stays decided");
}

#[test]
fn without_sync_url_the_status_says_so_and_the_rest_is_404() {
    let s = TestServer::start();
    let r = s.get_auth("/api/v4/sync/status");
    assert_eq!((r.status, r.json()), (200, json!({"configured": false})));
    for (method, path) in [
        ("GET", "/api/v4/sync/runs"),
        ("GET", "/api/v4/sync/conflicts"),
        ("POST", "/api/v4/sync/run"),
        ("POST", "/api/v4/sync/conflicts/1"),
    ] {
        let r = s.request_auth(
            method,
            path,
            &[("Content-Type", "application/json")],
            Some(b"{}"),
        );
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
        assert!(r.text.contains("SYNC_URL"), "{}", r.text);
    }
}

/// The real binary, so its log can be read: a site that is not there is never named with
/// its credential, in the log, the status or `nightlite settings`.
#[test]
fn an_unreachable_site_shows_no_credential_anywhere() {
    let token = "sync-never-show-0123456789";
    let url = format!("http://127.0.0.1:{}/ns?token={token}", free_port());
    let p = Setup::new()
        .env("SYNC_URL", &url)
        .env("NIGHTLITE_LOG", "debug")
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(30);
    let runs = loop {
        let r = p.get_auth("/api/v4/sync/runs");
        let runs = r.json()["runs"].as_array().unwrap().clone();
        if runs.first().is_some_and(|r| r["outcome"].is_string()) {
            break r.text;
        }
        assert!(Instant::now() < deadline, "{}", r.text);
        std::thread::sleep(Duration::from_millis(20));
    };
    let status = p.get_auth("/api/v4/sync/status").text;
    assert!(status.contains("/ns\""), "{status}");
    for text in [&runs, &status, &p.logs()] {
        assert!(!text.contains(token), "a credential in {text}");
    }
    let out = crate::support::command()
        .arg("settings")
        .env("SYNC_URL", &url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SYNC_URL"), "{text}");
    assert!(text.contains("?token=(not shown)"), "{text}");
    assert!(!text.contains(token), "{text}");
}

/// Once the engine's CHECKING reaches the site (the lead's engine; the skeleton's stub
/// completes without a request), a closed port is a transient error: QUEUED, recorded as
/// `queued`, tried again after the back-off on the clock.
#[test]
fn an_unreachable_site_is_queued_and_tried_again_after_the_back_off() {
    let token = "sync-closed-port-token".to_string();
    let url = format!("http://127.0.0.1:{}?token={token}", free_port());
    let t = Synced::with_url(&url, token, None, &[]);
    let (runs, status) = t.after_runs(1);
    assert_eq!(runs[0]["outcome"], "queued", "{runs:?}");
    assert!(
        runs[0]["error"].as_str().unwrap().starts_with("transient"),
        "{runs:?}"
    );
    assert_eq!(status["state"], "QUEUED");
    assert_eq!(status["failures"], 1);
    assert_eq!(status["lastSuccess"], Value::Null);
    let next = status["nextRun"].as_i64().unwrap();
    assert!((T0 + 30_000..=T0 + 33_000).contains(&next), "{status}");
    t.clock.set(next);
    let (runs, status) = t.after_runs(2);
    assert_eq!(runs[0]["trigger"], "retry");
    assert_eq!(status["failures"], 2);
    assert!(
        status["nextRun"].as_i64().unwrap() - t.clock.now_ms() >= 60_000,
        "{status}"
    );
}

/// The site's `/storage` events (src/sync/storage_events.rs): a change there triggers a run
/// here after the debounce, without waiting for the interval.
#[test]
fn a_change_on_the_site_triggers_a_run_after_the_debounce() {
    let (site, token) = site_with_token();
    let url = format!("http://127.0.0.1:{}?token={token}", site.port);
    let t = Synced::with_url(&url, token, None, &[]);
    t.after_runs(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.status()["realtime"] != "listening" {
        assert!(Instant::now() < deadline, "{}", t.status());
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = site.post_json(
        "/api/v1/treatments",
        &json!({"eventType": "Note", "notes": "there", "created_at": "2026-01-01T00:00:00Z"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    while t.status()["nextRun"] != T0 + DEBOUNCE {
        assert!(Instant::now() < deadline, "{}", t.status());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(t.runs().len(), 1);
    t.clock.set(T0 + DEBOUNCE);
    let (runs, _) = t.after_runs(2);
    assert_eq!(runs[0]["trigger"], "remote");
    assert_eq!(runs[0]["started"], T0 + DEBOUNCE);
}

/// With only the site's API secret there is no token to subscribe to its events with: the
/// status says so, and the secret is nowhere in it.
#[test]
fn with_the_api_secret_the_sites_events_are_off() {
    let site = TestServer::start();
    let url = format!("http://127.0.0.1:{}", site.port);
    let t = Synced::with_url(
        &url,
        crate::support::SECRET.to_string(),
        Some(site),
        &[("SYNC_API_SECRET", crate::support::SECRET)],
    );
    let (runs, status) = t.after_runs(1);
    assert_eq!(runs[0]["trigger"], "start");
    assert_eq!(status["realtime"], "off", "{status}");
}

/// The whole service with the real engine: writes made here while the site is down wait in
/// the outbox and reach it when it returns (B ends with exactly A's documents); the site's
/// writes come back at the next run.
#[test]
fn offline_writes_reach_the_site_when_it_returns_and_its_writes_come_back() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let t = Synced::with_url(
        &url,
        "not-a-token".into(),
        None,
        &[("SYNC_API_SECRET", crate::support::SECRET)],
    );
    let (runs, _) = t.after_runs(1);
    assert_eq!(runs[0]["outcome"], "queued", "{runs:?}");
    for i in 0..3 {
        let r = t.s.post_json(
            "/api/v1/treatments",
            &json!({"eventType": "Note", "notes": format!("offline {i}"),
                    "created_at": format!("2025-12-31T23:0{i}:00Z")}),
        );
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let pending = t.status()["collections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["collection"] == "treatments")
        .unwrap()["pending"]
        .clone();
    assert_eq!(pending, 3);
    // The site comes back (its own process, on the port SYNC_URL names).
    let site = Setup::new().env("PORT", &port.to_string()).spawn();
    let notes = |s: &crate::support::Http| {
        let mut n: Vec<String> = s
            .list("/api/v1/treatments.json?find[created_at][$gte]=2000")
            .iter()
            .map(|d| d["notes"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    // The back-off ends on the clock.
    let next = t.status()["nextRun"].as_i64().unwrap();
    t.clock.set(next.max(T0 + 10 * MIN));
    let deadline = Instant::now() + Duration::from_secs(60);
    while notes(&site) != ["offline 0", "offline 1", "offline 2"] {
        assert!(Instant::now() < deadline, "{:?} {}", t.runs(), site.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = site.post_json(
        "/api/v1/treatments",
        &json!({"eventType": "Note", "notes": "from the site", "created_at": "2025-12-31T23:30:00Z"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = t.s.request_auth("POST", "/api/v4/sync/run", &[], None);
    assert!(r.status < 300, "{}", r.text);
    while notes(&t.s.http()).len() < 4 {
        assert!(Instant::now() < deadline, "{:?}", t.runs());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(notes(&t.s.http()), notes(&site));
}

/// A real conflict under SYNC_CONFLICT=manual: both versions held, neither side changed,
/// until decided through the API; the decision's run makes the version kept the one on both.
#[test]
fn a_manual_conflict_is_held_and_the_decision_is_carried_out_on_both_sides() {
    let (site, token) = site_with_token();
    let url = format!("http://127.0.0.1:{}?token={token}", site.port);
    let site_http = site.http();
    let t = Synced::with_url(&url, token, Some(site), &[("SYNC_CONFLICT", "manual")]);
    t.after_runs(1);
    let wait = |what: &str, ok: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ok() {
            assert!(Instant::now() < deadline, "{what}: {:?}", t.runs());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let run_now = || {
        let r = t.s.request_auth("POST", "/api/v4/sync/run", &[], None);
        assert!(r.status < 300, "{}", r.text);
    };
    let note = |s: &crate::support::Http| -> Value {
        s.list("/api/v1/treatments.json?find[created_at][$gte]=2000")
            .first()
            .cloned()
            .unwrap_or(Value::Null)
    };
    let r = t.s.post_json(
        "/api/v1/treatments",
        &json!({"eventType": "Note", "notes": "first", "created_at": "2025-12-31T22:00:00Z"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    run_now();
    wait("uploaded", &|| note(&site_http)["notes"] == "first");
    let edit = |s: &crate::support::Http, text: &str| {
        let mut d = note(s);
        d["notes"] = json!(text);
        assert_eq!(s.put_json("/api/v1/treatments", &d).status, 200);
    };
    edit(&t.s.http(), "here");
    edit(&site_http, "there");
    run_now();
    let conflicts = || t.s.get_auth("/api/v4/sync/conflicts").json()["conflicts"].clone();
    wait("held", &|| {
        conflicts().as_array().is_some_and(|c| c.len() == 1)
    });
    let c = conflicts()[0].clone();
    assert_eq!(
        (
            c["kept"].clone(),
            c["localDoc"]["notes"].clone(),
            c["remoteDoc"]["notes"].clone()
        ),
        (Value::Null, json!("here"), json!("there"))
    );
    // Held: another run changes neither side.
    let before = t.runs().len();
    run_now();
    wait("another run", &|| {
        t.runs().len() > before && t.runs()[0]["outcome"].is_string()
    });
    assert_eq!(note(&t.s.http())["notes"], "here");
    assert_eq!(note(&site_http)["notes"], "there");
    let r = t.s.request_auth(
        "POST",
        &format!("/api/v4/sync/conflicts/{}", c["id"]),
        &[("Content-Type", "application/json")],
        Some(br#"{"keep":"remote"}"#),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    wait("carried out", &|| note(&t.s.http())["notes"] == "there");
    assert_eq!(note(&site_http)["notes"], "there");
    let c = conflicts()[0].clone();
    assert_eq!(
        (c["kept"].clone(), c["applied"].clone()),
        (json!("remote"), json!(true))
    );
}
