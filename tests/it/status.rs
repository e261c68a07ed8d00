//! /api/v1/status in its formats, /api/versions, verifyauth, adminnotifies and the /api/v2
//! alias.

use serde_json::Value;

use crate::support::{now_ms, TestServer};

#[test]
fn status_json_fields() {
    let s = TestServer::start();
    let r = s.get_auth("/api/v1/status.json");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.content_type().starts_with("application/json"),
        "{}",
        r.content_type()
    );
    let st = r.json();
    assert_eq!(st["status"], "ok");
    assert!(
        st["version"].as_str().is_some_and(|v| !v.is_empty()),
        "{st}"
    );
    let epoch = st["serverTimeEpoch"].as_i64().expect("serverTimeEpoch");
    assert!((epoch - now_ms()).abs() < 60_000, "{epoch}");
    let server_time = nightlite::dates::parse_iso(st["serverTime"].as_str().unwrap()).unwrap();
    assert!((server_time.ms - epoch).abs() < 1000);
    assert_eq!(st["apiEnabled"], true);
    assert_eq!(st["settings"]["units"], "mg/dl");
    let th = &st["settings"]["thresholds"];
    assert_eq!(th["bgHigh"].as_f64(), Some(260.0));
    assert_eq!(th["bgTargetTop"].as_f64(), Some(180.0));
    assert_eq!(th["bgTargetBottom"].as_f64(), Some(80.0));
    assert_eq!(th["bgLow"].as_f64(), Some(55.0));
    assert!(!r.text.contains(crate::support::SECRET));
}

#[test]
fn status_reflects_configured_units_and_thresholds() {
    let s = TestServer::with(&[("DISPLAY_UNITS", "mmol"), ("BG_HIGH", "14")]);
    let st = s.get_auth("/api/v1/status.json").json();
    assert_eq!(st["settings"]["units"], "mmol");
    assert_eq!(st["settings"]["thresholds"]["bgHigh"].as_f64(), Some(252.0));
}

/// NIGHT_MODE and the ALARM_*_MINS snooze lists, as Nightscout's status shows them.
#[test]
fn status_reflects_snooze_choices_and_night_mode() {
    let s = TestServer::with(&[("ALARM_URGENT_LOW_MINS", "10 20"), ("NIGHT_MODE", "on")]);
    let st = s.get_auth("/api/v1/status.json").json();
    assert_eq!(
        st["settings"]["alarmUrgentLowMins"],
        serde_json::json!([10, 20])
    );
    assert_eq!(
        st["settings"]["alarmLowMins"],
        serde_json::json!([15, 30, 45, 60])
    );
    assert_eq!(st["settings"]["nightMode"], true);
}

#[test]
fn status_txt_html_and_js() {
    let s = TestServer::start();
    let r = s.get_auth("/api/v1/status.txt");
    assert_eq!(r.status, 200);
    assert!(
        r.content_type().starts_with("text/plain"),
        "{}",
        r.content_type()
    );
    assert_eq!(r.text, "STATUS OK");

    let r = s.get_auth("/api/v1/status.html");
    assert_eq!(r.status, 200);
    assert!(
        r.content_type().starts_with("text/html"),
        "{}",
        r.content_type()
    );
    assert!(r.text.contains("STATUS OK"), "{}", r.text);

    let r = s.get_auth("/api/v1/status.js");
    assert_eq!(r.status, 200);
    assert!(r.text.starts_with("this.serverSettings ="), "{}", r.text);
    let json = r
        .text
        .trim_start_matches("this.serverSettings =")
        .trim()
        .trim_end_matches(';')
        .trim();
    let v: Value = serde_json::from_str(json).unwrap();
    assert_eq!(v["status"], "ok");
}

#[test]
fn status_suffixless_with_accept_json() {
    let s = TestServer::start();
    let r = s.get_auth_with("/api/v1/status", &[("Accept", "application/json")]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["status"], "ok");
}

#[test]
fn status_suffixless_with_accept_text_plain_or_none() {
    let s = TestServer::start();
    let r = s.get_auth_with("/api/v1/status", &[("Accept", "text/plain")]);
    assert_eq!(r.text, "STATUS OK");
    let head = format!(
        "GET /api/v1/status HTTP/1.1\nHost: 127.0.0.1\napi-secret: {}\nConnection: close\n",
        crate::support::secret_sha1()
    );
    let r = s.raw(&head, b"");
    assert_eq!(r.status, 200);
    assert!(
        r.content_type().starts_with("text/html"),
        "{}",
        r.content_type()
    );
    assert!(r.text.contains("STATUS OK"));
}

#[test]
fn status_suffixless_honours_accept_quality() {
    let s = TestServer::start();
    let r = s.get_auth_with(
        "/api/v1/status",
        &[("Accept", "text/html;q=0.1, application/json")],
    );
    assert!(
        r.content_type().starts_with("application/json"),
        "{}: {}",
        r.content_type(),
        r.text
    );
    assert_eq!(r.json()["status"], "ok");
    let r = s.get_auth_with(
        "/api/v1/status",
        &[("Accept", "application/json;q=0.1, text/plain")],
    );
    assert_eq!(r.text, "STATUS OK");
    let r = s.get_auth_with(
        "/api/v1/status",
        &[("Accept", "text/plain, application/json")],
    );
    assert_eq!(r.text, "STATUS OK");
}

#[test]
fn status_needs_read_permission() {
    let s = TestServer::start();
    let r = s.get("/api/v1/status.json");
    assert_eq!(r.status, 401, "{}", r.text);
    let readable = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable")]);
    assert_eq!(readable.get("/api/v1/status.json").json()["status"], "ok");
}

#[test]
fn versions_without_auth() {
    let s = TestServer::start();
    let r = s.get("/api/versions");
    assert_eq!(r.status, 200, "{}", r.text);
    let urls: Vec<String> = r
        .list()
        .iter()
        .map(|v| v["url"].as_str().unwrap().to_string())
        .collect();
    assert!(urls.contains(&"/api/v1".to_string()), "{urls:?}");
    assert!(urls.contains(&"/api/v3".to_string()), "{urls:?}");
}

#[test]
fn verifyauth_with_secret() {
    let s = TestServer::start();
    let r = s.get_auth("/api/v1/verifyauth");
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["message"]["message"], "OK");
    assert_eq!(v["message"]["canRead"], true);
    assert_eq!(v["message"]["canWrite"], true);
    assert_eq!(v["message"]["permissions"], "ROLE");
}

#[test]
fn verifyauth_without_secret() {
    let s = TestServer::start();
    let r = s.get("/api/v1/verifyauth");
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["message"]["message"], "UNAUTHORIZED");
    assert_eq!(v["message"]["canRead"], false);
    assert_eq!(v["message"]["permissions"], "DEFAULT");
}

#[test]
fn verifyauth_with_readable_defaults_is_still_unauthorized() {
    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable")]);
    let v = s.get("/api/v1/verifyauth").json();
    assert_eq!(v["message"]["message"], "UNAUTHORIZED");
    assert_eq!(v["message"]["canRead"], true);
    assert_eq!(v["message"]["canWrite"], false);
}

#[test]
fn adminnotifies() {
    let s = TestServer::start();
    let r = s.get_auth("/api/v1/adminnotifies");
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["status"], 200);
    assert!(v["message"]["notifies"].is_array(), "{v}");
    assert_eq!(v["message"]["notifyCount"], 0);
}

#[test]
fn api_v2_serves_the_v1_routes() {
    let s = TestServer::start();
    assert_eq!(s.get_auth("/api/v2/status.json").json()["status"], "ok");
    s.post_ok(
        "/api/v2/treatments",
        &serde_json::json!({"eventType": "Note", "notes": "via v2", "created_at": nightlite::dates::to_iso(now_ms())}),
    );
    let items = s.list("/api/v1/treatments.json");
    assert_eq!(items.len(), 1);
    assert_eq!(s.list("/api/v2/treatments.json"), items);
    assert!(s.list("/api/v2/entries.json").is_empty());
}

#[test]
fn unknown_path_is_404_json() {
    let s = TestServer::start();
    let r = s.get_auth("/api/v1/nosuchthing");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["status"], 404);
}
