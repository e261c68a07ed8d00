//! Requests the server must refuse with a Nightscout-shaped 4xx, writing nothing.

use std::io::Write;

use serde_json::{json, Value};

use crate::support::{iso, now_ms, sgv, Resp, TestServer};

fn assert_status_body(r: &Resp, status: u16) {
    assert_eq!(r.status, status, "{}", r.text);
    let v = r.json();
    assert_eq!(v["status"], status, "{v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

fn assert_no_entries(s: &TestServer) {
    let since = now_ms() - 365 * 86_400_000;
    assert!(s
        .list(&format!(
            "/api/v1/entries.json?count=0&find[date][$gte]={since}"
        ))
        .is_empty());
}

fn assert_no_treatments(s: &TestServer) {
    assert!(s
        .list("/api/v1/treatments.json?count=0&find[created_at][$gte]=2000-01-01")
        .is_empty());
}

#[test]
fn malformed_json_is_400() {
    let s = TestServer::start();
    let r = s.post_raw(
        "/api/v1/entries",
        br#"[{"type": "sgv", "sgv": 100, "date": 1"#,
    );
    assert_status_body(&r, 400);
    assert_no_entries(&s);
    let r = s.post_raw("/api/v1/treatments", b"{eventType: 'Note'}");
    assert_status_body(&r, 400);
    assert_no_treatments(&s);
}

#[test]
fn non_object_array_item_is_400_and_nothing_is_stored() {
    let s = TestServer::start();
    let r = s.post_json("/api/v1/entries", &json!([sgv("mixed", now_ms(), 100), 5]));
    assert_status_body(&r, 400);
    assert_no_entries(&s);
    let r = s.post_json(
        "/api/v1/treatments",
        &json!([{"eventType": "Note", "notes": "ok"}, "not an object"]),
    );
    assert_status_body(&r, 400);
    assert_no_treatments(&s);
}

#[test]
fn scalar_body_is_400() {
    let s = TestServer::start();
    assert_status_body(&s.post_raw("/api/v1/entries", b"42"), 400);
    assert_status_body(&s.post_raw("/api/v1/devicestatus", b"\"text\""), 400);
    assert_no_entries(&s);
}

#[test]
fn boolean_entry_date_is_400() {
    let s = TestServer::start();
    let r = s.post_json(
        "/api/v1/entries",
        &json!([sgv("ok", now_ms(), 100), {"type": "sgv", "sgv": 100, "date": true}]),
    );
    assert_status_body(&r, 400);
    assert_no_entries(&s);
}

#[test]
fn non_numeric_insulin_is_400() {
    let s = TestServer::start();
    let r = s.post_json(
        "/api/v1/treatments",
        &json!([{"eventType": "Note", "notes": "fine"}, {"eventType": "Correction Bolus", "insulin": "lots"}]),
    );
    assert_status_body(&r, 400);
    assert_no_treatments(&s);
}

#[test]
fn unparseable_date_filter_is_400() {
    let s = TestServer::start();
    let r = s.get_auth("/api/v1/treatments.json?find[created_at][$gte]=soon");
    assert_status_body(&r, 400);
    let r = s.get_auth("/api/v1/entries.json?find[dateString][$gte]=yesterday");
    assert_status_body(&r, 400);
}

#[test]
fn non_numeric_sgv_filter_is_400() {
    let s = TestServer::start();
    assert_status_body(&s.get_auth("/api/v1/entries.json?find[sgv]=abc"), 400);
    assert_status_body(
        &s.get_auth("/api/v1/entries.json?find[sgv][$gte]=high"),
        400,
    );
}

#[test]
fn unknown_operator_is_400() {
    let s = TestServer::start();
    assert_status_body(&s.get_auth("/api/v1/entries.json?find[sgv][$where]=1"), 400);
    assert_status_body(&s.get_auth("/api/v1/treatments.json?find[$where]=1"), 400);
}

#[test]
fn invalid_regular_expression_is_400() {
    let s = TestServer::start();
    assert_status_body(
        &s.get_auth("/api/v1/treatments.json?find[eventType][$regex]=(unclosed"),
        400,
    );
    assert_status_body(
        &s.get_auth("/api/v1/treatments.json?find[notes]=/[a-/"),
        400,
    );
}

#[test]
fn delete_with_a_bad_filter_is_400_and_deletes_nothing() {
    let s = TestServer::start();
    s.post_ok("/api/v1/entries", &sgv("keep", now_ms(), 100));
    assert_status_body(&s.delete("/api/v1/entries?find[sgv][$where]=1"), 400);
    assert_status_body(&s.delete("/api/v1/entries/sgv?find[sgv]=abc"), 400);
    assert_eq!(s.list("/api/v1/entries.json").len(), 1);
}

fn big_batch(bytes: usize) -> Vec<u8> {
    let t = now_ms();
    let filler = "x".repeat(1000);
    let mut items: Vec<Value> = vec![];
    let mut i = 0;
    while items.len() * 1100 < bytes {
        let mut e = sgv("big", t - i * 1000, 100);
        e["filler"] = json!(filler);
        items.push(e);
        i += 1;
    }
    serde_json::to_vec(&items).unwrap()
}

#[test]
fn body_over_the_limit_is_413() {
    let s = TestServer::with(&[("NIGHTLITE_MAX_BODY_MB", "1")]);
    let body = big_batch(2 * 1024 * 1024);
    assert!(body.len() > 2 * 1024 * 1024);
    let r = s.post_raw("/api/v1/entries", &body);
    assert_status_body(&r, 413);
    assert_no_entries(&s);
}

#[test]
fn gzip_body_over_the_limit_after_decoding_is_413() {
    let s = TestServer::with(&[("NIGHTLITE_MAX_BODY_MB", "1")]);
    let body = big_batch(2 * 1024 * 1024);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&body).unwrap();
    let gz = enc.finish().unwrap();
    assert!(gz.len() < 1024 * 1024);
    let r = s.request_auth(
        "POST",
        "/api/v1/entries",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        Some(&gz),
    );
    assert_status_body(&r, 413);
    assert_no_entries(&s);
}

#[test]
fn corrupt_gzip_body_is_400() {
    let s = TestServer::start();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(br#"{"eventType": "Note", "notes": "cut short"}"#)
        .unwrap();
    let gz = enc.finish().unwrap();
    for body in [&b"not gzip at all"[..], &gz[..gz.len() / 2]] {
        let r = s.request_auth(
            "POST",
            "/api/v1/treatments",
            &[
                ("Content-Type", "application/json"),
                ("Content-Encoding", "gzip"),
            ],
            Some(body),
        );
        assert_status_body(&r, 400);
    }
    assert_no_treatments(&s);
}

#[test]
fn body_under_the_limit_is_accepted() {
    let s = TestServer::with(&[("NIGHTLITE_MAX_BODY_MB", "1")]);
    let body = big_batch(512 * 1024);
    let r = s.post_raw("/api/v1/entries", &body);
    assert_eq!(r.status, 200, "{}", &r.text[..r.text.len().min(300)]);
}

#[test]
fn empty_body_is_400() {
    let s = TestServer::start();
    assert_status_body(&s.post_raw("/api/v1/entries", b""), 400);
    assert_status_body(&s.post_raw("/api/v1/treatments", b"  \n"), 400);
    assert_status_body(&s.post_raw("/api/v1/devicestatus", b""), 400);
    assert_no_entries(&s);
    assert_no_treatments(&s);
}

#[test]
fn bad_count_is_400() {
    let s = TestServer::start();
    assert_status_body(&s.get_auth("/api/v1/entries.json?count=ten"), 400);
}

#[test]
fn bad_sort_direction_is_400() {
    let s = TestServer::start();
    assert_status_body(&s.get_auth("/api/v1/entries.json?sort[sgv]=up"), 400);
}

/// One document may be at most 1 MB of text (docs/security.md): a larger one refuses the
/// whole request with 413 and nothing stored; one just under is stored whole.
#[test]
fn document_over_the_per_document_limit_is_413() {
    let s = TestServer::start();
    let t = now_ms();
    let mut big = sgv("big-doc", t, 100);
    big["filler"] = json!("x".repeat(1024 * 1024));
    let body = json!([sgv("small-doc", t - 60_000, 101), big]);
    let r = s.post_raw("/api/v1/entries", &serde_json::to_vec(&body).unwrap());
    assert_status_body(&r, 413);
    assert!(r.text.contains("document 1"), "{}", r.text);
    assert_no_entries(&s);
    for path in ["/api/v1/treatments", "/api/v1/devicestatus"] {
        let doc = json!({"created_at": iso(t), "filler": "y".repeat(1024 * 1024)});
        let r = s.post_raw(path, &serde_json::to_vec(&doc).unwrap());
        assert_status_body(&r, 413);
    }

    let mut under = sgv("under-limit", t, 102);
    under["filler"] = json!("z".repeat(1000 * 1000));
    let reply = s.post_ok("/api/v1/entries", &under);
    assert_eq!(reply[0]["filler"].as_str().map(str::len), Some(1000 * 1000));
    let stored = s.list("/api/v1/entries.json?find[device]=under-limit");
    assert_eq!(stored[0]["filler"], under["filler"]);
}

/// A document of small numbers parses to some 40 times its text: a value count per document
/// (and per body read whole) bounds that before anything is parsed.
#[test]
fn documents_with_too_many_values_are_413() {
    let s = TestServer::start();
    let t = now_ms();
    let numbers = |n: usize| Value::Array(vec![json!(1); n]);
    let mut big = sgv("many-values", t, 100);
    big["predicted"] = numbers(50_000);
    let body = json!([sgv("small-doc", t - 60_000, 101), big]);
    let r = s.post_raw("/api/v1/entries", &serde_json::to_vec(&body).unwrap());
    assert_status_body(&r, 413);
    assert!(
        r.text.contains("document 1") && r.text.contains("50000 JSON values"),
        "{}",
        r.text
    );
    assert_no_entries(&s);
    // A batch of more documents than one request may hold: 413 before any is parsed.
    let many: Vec<Value> = (0..50_001)
        .map(|i| json!({"type": "sgv", "sgv": 100, "date": t - i}))
        .collect();
    let r = s.post_raw("/api/v1/entries", &serde_json::to_vec(&many).unwrap());
    assert_status_body(&r, 413);
    assert!(r.text.contains("at most 50000 per request"), "{}", r.text);
    assert_no_entries(&s);
    // A real device status's prediction curves are far below it.
    let status = json!({"created_at": iso(t), "device": "loop", "predicted": numbers(5_000)});
    s.post_ok("/api/v1/devicestatus", &status);
}

/// What the outline of a batch lets through but a parse refuses (a lone surrogate, nesting
/// past serde_json's limit) is bad JSON: 400, nothing stored.
#[test]
fn items_that_only_fail_their_own_parse_are_400() {
    let s = TestServer::start();
    let t = now_ms();
    let deep = format!("{}1{}", "[".repeat(3000), "]".repeat(3000));
    for bad in ["\"\\ud800\"".to_string(), deep] {
        let body = format!(
            r#"[{},{{"type":"sgv","sgv":100,"date":{t},"x":{bad}}}]"#,
            sgv("fine", t - 60_000, 99)
        );
        let r = s.post_raw("/api/v1/entries", body.as_bytes());
        assert_status_body(&r, 400);
    }
    assert_no_entries(&s);
}
