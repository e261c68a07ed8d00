//! API v3 validation errors.

use super::*;

#[test]
fn validation_errors_use_nightscouts_messages() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let now = now_ms();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"app": "a", "eventType": "Note"}),
            "Bad or missing date field",
        ),
        (
            json!({"date": "yesterday", "app": "a"}),
            "Bad or missing date field",
        ),
        (
            json!({"date": "1999-12-31T23:59:59Z", "app": "a"}),
            "Bad or missing date field",
        ),
        (
            json!({"date": now, "app": "a", "utcOffset": 1441}),
            "Bad or missing utcOffset field",
        ),
        (
            json!({"date": now, "app": "a", "utcOffset": -1441}),
            "Bad or missing utcOffset field",
        ),
        (
            json!({"date": now, "app": "a", "utcOffset": "x"}),
            "Bad or missing utcOffset field",
        ),
        (json!({"date": now}), "Bad or missing app field"),
        (json!({"date": now, "app": ""}), "Bad or missing app field"),
        (
            json!({"date": now, "app": "   "}),
            "Bad or missing app field",
        ),
        (json!({"date": now, "app": 5}), "Bad or missing app field"),
        (
            json!({"date": now, "app": "a", "identifier": 5}),
            "Bad or missing identifier field",
        ),
        (json!({}), "Bad or missing request body"),
        (json!("a string"), "Bad or missing request body"),
        (json!(42), "Bad or missing request body"),
    ];
    for (body, message) in cases {
        let r = v3.post("/treatments", &body);
        assert_error(&r, 400, message);
    }
    // The edges are allowed.
    for offset in [-1440, 1440] {
        let r = v3.post(
            "/treatments",
            &json!({"date": now - i64::from(offset) * 7, "app": "a", "utcOffset": offset}),
        );
        assert_eq!(r.status, 201, "utcOffset {offset}: {}", r.text);
    }
    assert!(v3.list("/treatments").len() == 2, "nothing invalid stored");
}

/// Nightscout's parseToMoment: a number below 2000-01-01 in ms is read as seconds; if that is
/// no valid date either (beyond JavaScript's ±8.64e15 ms), the date is bad.
#[test]
fn a_millisecond_date_before_2000_is_refused() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let r = v3.post(
        "/treatments",
        &json!({"date": 915_148_800_000_i64, "app": "a", "eventType": "Note"}),
    );
    assert_error(&r, 400, "Bad or missing date field");
}

#[test]
fn malformed_and_empty_bodies_are_400() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    for body in [&b"{\"date\": 1"[..], b"not json", b"{'a': 1}"] {
        for (method, path) in [
            ("POST", "/treatments"),
            ("PUT", "/treatments/x"),
            ("PATCH", "/treatments/x"),
        ] {
            let r = v3.send(method, path, &[], Some(body));
            assert_eq!(r.status, 400, "{method} {body:?}: {}", r.text);
            assert_eq!(r.json()["status"], 400, "{}", r.text);
        }
    }
    let r = v3.send("POST", "/treatments", &[], Some(b""));
    assert_eq!(r.status, 400, "{}", r.text);
    for (method, path) in [("PUT", "/treatments/x"), ("PATCH", "/treatments/x")] {
        assert_error(
            &v3.write(method, path, &json!({})),
            400,
            "Bad or missing request body",
        );
        assert_error(
            &v3.write(method, path, &json!("x")),
            400,
            "Bad or missing request body",
        );
    }
}

/// A body read whole (API v3) is bounded by its count of JSON values before it is parsed.
#[test]
fn v3_bodies_with_too_many_values_are_413() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let doc =
        json!({"date": now_ms(), "app": "a", "eventType": "Note", "numbers": vec![1; 200_001]});
    let r = v3.send(
        "POST",
        "/treatments",
        &[],
        Some(&serde_json::to_vec(&doc).unwrap()),
    );
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.text.contains("200000 JSON values"), "{}", r.text);
    assert_eq!(v3.get("/treatments").json()["result"], json!([]));
}

#[test]
fn empty_body_has_nightscouts_message() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let r = v3.send("POST", "/treatments", &[], Some(b""));
    assert_error(&r, 400, "Bad or missing request body");
}
