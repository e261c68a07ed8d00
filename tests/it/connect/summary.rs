//! The bridges in short in `/api/v1/status.json`: state and last success per source, for
//! callers who may read the bridges' status; never a credential.

use serde_json::Value;

use super::fake_dexcom::{ACCOUNT, PASSWORD};
use super::{clock_and_fake, setup, Bridge};
use crate::support::Setup;

/// `/api/v1/status.json` as `auth` sees it; it never holds the account or its password.
fn status(b: &Bridge, auth: &str) -> Value {
    let r = b.s.request(
        "GET",
        "/api/v1/status.json",
        &[("Authorization", auth)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        !r.text.contains(PASSWORD) && !r.text.contains(ACCOUNT),
        "{}",
        r.text
    );
    r.json()
}

#[test]
fn status_json_summarises_the_bridges_for_callers_who_may_read_them() {
    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(setup(&clock, &fake, PASSWORD), &clock);
    let row = b.row();
    let s = status(&b, &b.auth);
    assert_eq!(s["bridges"].as_array().map(Vec::len), Some(1), "{s}");
    let summary = &s["bridges"][0];
    assert_eq!(summary["source"], "dexcomshare");
    assert_eq!(summary["state"], "idle");
    assert_eq!(summary["lastSuccess"], row["lastSuccess"]);
    assert!(summary["lastSuccess"].is_i64(), "{summary}");
    assert_eq!(summary["lastError"], Value::Null);

    // A subject that may read the status but not the bridges sees no summary.
    let (_, token) = b.s.create_subject("status only", &["status-only"]);
    let jwt = format!("Bearer {}", b.s.jwt_for(&token));
    let s = status(&b, &jwt);
    assert_eq!(s["status"], "ok");
    assert!(s.get("bridges").is_none(), "{s}");

    // A stopped source says so, with the message and no password.
    drop(b);
    let (clock, fake) = clock_and_fake();
    let b = Bridge::start(setup(&clock, &fake, "a wrong password"), &clock);
    let s = status(&b, &b.auth);
    assert_eq!(s["bridges"][0]["state"], "stopped: fatal", "{s}");
    assert_eq!(s["bridges"][0]["lastError"]["class"], "fatal");
    assert!(!s.to_string().contains("a wrong password"));
}

#[test]
fn status_json_has_no_bridges_without_bridges() {
    let s = Setup::new().start();
    let r = s.get_auth("/api/v1/status.json");
    assert_eq!(r.status, 200);
    assert!(r.json().get("bridges").is_none(), "{}", r.text);
}
