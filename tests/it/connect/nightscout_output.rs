//! CONNECT_OUTPUT (src/connect/output.rs): a nightlite that fetches from the fake Dexcom
//! uploads what it stores to a second nightlite on loopback, through API v3 with the
//! identifiers, so a restart uploads again without a second copy; `nightlite bridge` does the
//! same without the HTTP server; a site without v3 gets API v1.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::fake_dexcom::PASSWORD;
use super::fake_http::Fake;
use super::fake_nightscout::{Counts, FakeNightscout, Proxy, TOKEN};
use super::{clock_and_fake, counter, setup, Bridge};
use crate::support::TestServer;

/// The status row called `name`.
fn row_of(b: &Bridge, name: &str) -> Value {
    let r = b.s.request(
        "GET",
        "/api/v4/bridges",
        &[("Authorization", &b.auth)],
        None,
    );
    r.json()["bridges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["source"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no row {name}: {}", r.text))
}

/// Waits (in real time, for the output's task) until its row satisfies `done`.
fn wait_output(b: &Bridge, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row = row_of(b, "output");
        if row["state"] != "polling" && done(&row) {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "the output never got there: {row}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The remote's entries (API v1 with its secret), and their identifiers once each.
fn remote_entries(up: &TestServer) -> (usize, usize) {
    let list = up.list("/api/v1/entries.json?count=2000");
    let mut ids: Vec<String> = list
        .iter()
        .map(|e| e["identifier"].as_str().unwrap_or("").to_string())
        .collect();
    ids.sort();
    ids.dedup();
    (list.len(), ids.len())
}

#[test]
fn the_output_uploads_through_v3_and_a_restart_makes_no_duplicates() {
    let up = TestServer::start();
    let (_, token) = up.create_subject("uploader", &["admin"]);
    let proxy = Proxy::start(up.port);
    let url = format!("http://127.0.0.1:{}?token={token}", proxy.port());
    let (clock, fake) = clock_and_fake();
    let data = tempfile::tempdir().unwrap();
    let local = || {
        setup(&clock, &fake, PASSWORD)
            .data_dir(data.path())
            .env("CONNECT_OUTPUT", &url)
    };
    let b = Bridge::start(local(), &clock);
    let row = wait_output(&b, |r| counter(r, "stored") >= 288);
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(counter(&row, "stored"), 288, "{row}");
    assert_eq!(remote_entries(&up), (288, 288));
    // Every upload went to API v3 with a JWT, never with the token itself.
    let uploads: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(uploads.len(), 288);
    assert!(uploads.iter().all(|r| r.path == "/api/v3/entries"
        && r.header("authorization")
            .is_some_and(|h| h.starts_with("Bearer "))
        && !r.query.contains(&token)));
    // The remote has the local identifiers, and the local device.
    let ours = b.entries(1);
    let remote = up.list("/api/v1/entries.json?count=1");
    assert_eq!(remote[0]["identifier"], ours[0]["identifier"]);
    assert_eq!(remote[0]["device"], "share2");
    assert_eq!(remote[0]["sgv"], ours[0]["sgv"]);

    // The next reading: one more upload.
    b.step();
    wait_output(&b, |r| counter(r, "stored") == 289);
    assert_eq!(remote_entries(&up), (289, 289));
    drop(b);

    // A restart uploads the last day again: updates on the remote, no second copy.
    let b = Bridge::start(local(), &clock);
    let row = wait_output(&b, |r| counter(r, "duplicates") >= 289);
    assert_eq!(counter(&row, "stored"), 0, "{row}");
    assert_eq!(remote_entries(&up), (289, 289));
    assert_eq!(proxy.count_prefix("/api/v2/authorization/request/"), 2);
}

#[test]
fn a_refused_output_token_stops_the_output_only() {
    let up = TestServer::start();
    let proxy = Proxy::start(up.port);
    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(
        setup(&clock, &fake, PASSWORD).env(
            "CONNECT_OUTPUT",
            &format!(
                "http://127.0.0.1:{}?token=nobody-0000000000000000",
                proxy.port()
            ),
        ),
        &clock,
    );
    let row = wait_output(&b, |r| r["state"] == "stopped: fatal");
    assert_eq!(row["lastError"]["class"], "fatal");
    assert!(!row.to_string().contains("nobody-0000"), "{row}");
    assert_eq!(row_of(&b, "dexcomshare")["state"], "idle");
    assert_eq!(b.entries(400).len(), 288, "local storage goes on");
    assert_eq!(remote_entries(&up), (0, 0));
}

/// `nightlite bridge`: the bridges and the output without the HTTP server, as a process;
/// killed and started again, it uploads no second copy.
#[test]
fn nightlite_bridge_runs_the_bridges_and_uploads() {
    let up = TestServer::start();
    let (_, token) = up.create_subject("uploader", &["admin"]);
    let (_clock, fake) = clock_and_fake();
    let data = tempfile::tempdir().unwrap();
    let run = || {
        crate::support::command()
            .arg("bridge")
            .env("NIGHTLITE_DATA_DIR", data.path())
            .env("API_SECRET", crate::support::SECRET)
            .env("CONNECT_SOURCE", "dexcomshare")
            .env("CONNECT_SHARE_ACCOUNT_NAME", super::fake_dexcom::ACCOUNT)
            .env("CONNECT_SHARE_PASSWORD", PASSWORD)
            .env("CONNECT_SHARE_SERVER", fake.url())
            .env(
                "CONNECT_OUTPUT",
                format!("http://127.0.0.1:{}?token={token}", up.port),
            )
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while remote_entries(&up).0 < n {
            assert!(Instant::now() < deadline, "{:?}", remote_entries(&up));
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mut child = run();
    wait_for(288);
    child.kill().unwrap();
    child.wait().unwrap();
    // The remote's history after now lists what is uploaded again.
    let auth = format!("Bearer {}", up.jwt_for(&token));
    let since = crate::support::now_ms();
    let uploaded_again = || {
        let r = up.request(
            "GET",
            &format!("/api/v3/entries/history/{since}?limit=1000"),
            &[("Authorization", &auth)],
            None,
        );
        r.json()["result"].as_array().map_or(0, Vec::len)
    };
    let mut child = run();
    let deadline = Instant::now() + Duration::from_secs(60);
    while uploaded_again() < 288 {
        assert!(Instant::now() < deadline, "{}", uploaded_again());
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (n, distinct) = remote_entries(&up);
    assert_eq!((n, distinct), (288, 288), "no reading twice");
}

/// A site without API v3 (Nightscout before 15): uploads go to API v1, and a restart's
/// uploads match what is there (entries by time and type).
#[test]
fn a_site_without_v3_gets_api_v1_uploads() {
    let site = FakeNightscout::start(false);
    let (clock, fake) = clock_and_fake();
    let data = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}?token={TOKEN}", site.port());
    let local = || {
        setup(&clock, &fake, PASSWORD)
            .data_dir(data.path())
            .env("CONNECT_OUTPUT", &url)
    };
    let b = Bridge::start(local(), &clock);
    let row = wait_output(&b, |r| counter(r, "duplicates") >= 288);
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(site.docs("entries").len(), 288);
    assert_eq!(site.count_prefix("/api/v3/entries"), 0, "no v3 upload");
    let posted = site
        .log()
        .into_iter()
        .rfind(|r| r.method == "POST")
        .unwrap();
    assert_eq!(posted.path, "/api/v1/entries.json");
    let doc = &posted.body[0];
    assert!(
        doc["identifier"].is_string() && doc["_id"].is_string(),
        "{doc}"
    );
    assert!(doc.get("srvModified").is_none(), "{doc}");
    drop(b);
    let b = Bridge::start(local(), &clock);
    wait_output(&b, |r| counter(r, "duplicates") >= 288);
    assert_eq!(site.docs("entries").len(), 288);
}
