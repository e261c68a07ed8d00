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

/// `nightlite settings` (the real binary) hides the vendor account names unless `--reveal`;
/// the passwords never.
#[test]
fn settings_masks_account_names_unless_revealed_and_never_shows_passwords() {
    let names = [
        ("CONNECT_SHARE_ACCOUNT_NAME", "share-owner@example.org"),
        ("CONNECT_LINK_UP_USERNAME", "libre-follower@example.org"),
        ("BRIDGE_USER_NAME", "legacy-bridge-user"),
    ];
    let passwords = [
        ("CONNECT_SHARE_PASSWORD", "Share-Pa55-Never"),
        ("CONNECT_LINK_UP_PASSWORD", "Libre-Pa55-Never"),
        ("BRIDGE_PASSWORD", "Bridge-Pa55-Never"),
    ];
    let run = |reveal: bool| {
        let mut c = crate::support::command();
        c.arg("settings")
            .envs(names.iter().copied())
            .envs(passwords.iter().copied());
        if reveal {
            c.arg("--reveal");
        }
        let out = c.output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let line = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} in {text}"))
            .to_string()
    };
    let masked = run(false);
    for (name, value) in names {
        assert!(!masked.contains(value), "{masked}");
        assert!(line(&masked, name).contains("(set, not shown: --reveal shows it)"));
    }
    let revealed = run(true);
    for (name, value) in names {
        assert!(line(&revealed, name).contains(value), "{revealed}");
    }
    for (name, value) in passwords {
        assert!(!masked.contains(value) && !revealed.contains(value));
        assert!(line(&revealed, name).contains("(set, not shown)"));
    }
}
