//! /api/v1/entries: upload replies, lists and their formats, the 4-day window, deletes, dedup,
//! identifiers, gzip bodies and conditional GETs.

use serde_json::{json, Value};

use crate::support::{enc, ids, ints, is_object_id, iso, now_ms, secret_sha1, sgv, TestServer};

const MIN: i64 = 60_000;
const DAY: i64 = 86_400_000;

fn seed(s: &TestServer, device: &str, n: i64, newest: i64) -> Vec<Value> {
    let batch: Vec<Value> = (0..n)
        .map(|i| sgv(device, newest - i * 5 * MIN, 100 + i))
        .collect();
    s.post_ok("/api/v1/entries", &Value::Array(batch))
}

#[test]
fn post_single_object_replies_with_one_item() {
    let s = TestServer::start();
    let t = now_ms();
    let reply = s.post_ok("/api/v1/entries", &sgv("single", t, 123));
    assert_eq!(reply.len(), 1);
    let id = reply[0]["_id"].as_str().unwrap();
    assert!(is_object_id(id), "{id}");
    assert_eq!(reply[0]["sgv"], 123);
    assert_eq!(reply[0]["date"].as_i64(), Some(t));
    assert_eq!(reply[0]["device"], "single");
}

#[test]
fn post_array_replies_one_item_per_entry_in_order() {
    let s = TestServer::start();
    let t = now_ms();
    let batch = json!([
        sgv("arr", t - 10 * MIN, 101),
        sgv("arr", t, 103),
        sgv("arr", t - 5 * MIN, 102)
    ]);
    let reply = s.post_ok("/api/v1/entries", &batch);
    assert_eq!(ints(&reply, "sgv"), vec![101, 103, 102]);
    let ids = ids(&reply);
    assert!(ids.iter().all(|i| is_object_id(i)), "{ids:?}");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 3, "{ids:?}");
}

#[test]
fn list_is_newest_first_with_default_count_ten() {
    let s = TestServer::start();
    let t = now_ms();
    seed(&s, "list", 12, t);
    let items = s.list("/api/v1/entries.json");
    assert_eq!(items.len(), 10);
    let dates = ints(&items, "date");
    let expected: Vec<i64> = (0..10).map(|i| t - i * 5 * MIN).collect();
    assert_eq!(dates, expected);
}

#[test]
fn count_limits_the_list() {
    let s = TestServer::start();
    let t = now_ms();
    seed(&s, "count", 12, t);
    assert_eq!(
        ints(&s.list("/api/v1/entries.json?count=3"), "sgv"),
        vec![100, 101, 102]
    );
    assert_eq!(s.list("/api/v1/entries.json?count=12").len(), 12);
    assert_eq!(s.list("/api/v1/entries.json?count=11").len(), 11);
}

#[test]
fn suffixless_list_with_accept_json_is_json() {
    let s = TestServer::start();
    seed(&s, "accept", 2, now_ms());
    let r = s.get_auth_with("/api/v1/entries", &[("Accept", "application/json")]);
    assert_eq!(r.status, 200);
    assert!(
        r.content_type().starts_with("application/json"),
        "{}",
        r.content_type()
    );
    assert_eq!(r.list().len(), 2);
}

#[test]
fn type_routes_list_only_that_type() {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok(
        "/api/v1/entries",
        &json!([
            sgv("types", t, 110),
            {"type": "mbg", "mbg": 130, "date": t - MIN, "device": "types"},
            {"type": "cal", "slope": 900, "date": t - 2 * MIN, "device": "types"}
        ]),
    );
    let sgvs = s.list("/api/v1/entries/sgv.json");
    assert_eq!(sgvs.len(), 1);
    assert_eq!(sgvs[0]["sgv"], 110);
    let mbgs = s.list("/api/v1/entries/mbg.json");
    assert_eq!(mbgs.len(), 1);
    assert_eq!(mbgs[0]["mbg"], 130);
    assert_eq!(s.list("/api/v1/entries.json").len(), 3);
}

#[test]
fn entry_by_id() {
    let s = TestServer::start();
    let reply = seed(&s, "byid", 3, now_ms());
    let id = reply[1]["_id"].as_str().unwrap();
    let items = s.list(&format!("/api/v1/entries/{id}.json"));
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["_id"], id);
    assert_eq!(items[0]["sgv"], 101);
}

#[test]
fn entry_by_id_is_found_outside_the_window() {
    let s = TestServer::start();
    let reply = s.post_ok("/api/v1/entries", &sgv("old-byid", now_ms() - 10 * DAY, 77));
    let id = reply[0]["_id"].as_str().unwrap();
    let items = s.list(&format!("/api/v1/entries/{id}.json"));
    assert_eq!(ints(&items, "sgv"), vec![77]);
}

#[test]
fn current_is_the_newest_entry() {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok(
        "/api/v1/entries",
        &json!([
            sgv("cur", t - 10 * MIN, 90),
            sgv("cur", t, 95),
            sgv("cur", t - 5 * MIN, 93)
        ]),
    );
    let items = s.list("/api/v1/entries/current.json");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["sgv"], 95);
}

#[test]
fn four_day_window_hides_old_entries_unless_a_date_filter_is_given() {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok(
        "/api/v1/entries",
        &json!([sgv("win", t, 100), sgv("win", t - 10 * DAY, 200)]),
    );
    assert_eq!(ints(&s.list("/api/v1/entries.json"), "sgv"), vec![100]);
    let since = t - 11 * DAY;
    let items = s.list(&format!("/api/v1/entries.json?find[date][$gte]={since}"));
    assert_eq!(ints(&items, "sgv"), vec![100, 200]);
}

fn row(e: &Value, sep: &str) -> String {
    format!(
        "\"{}\"{sep}{}{sep}{}{sep}\"{}\"{sep}\"{}\"",
        e["dateString"].as_str().unwrap(),
        e["date"],
        e["sgv"],
        e["direction"].as_str().unwrap(),
        e["device"].as_str().unwrap()
    )
}

fn two_rows(s: &TestServer, device: &str, sep: &str) -> String {
    let t = now_ms();
    let a = sgv(device, t, 120);
    let b = sgv(device, t - 5 * MIN, 118);
    s.post_ok("/api/v1/entries", &json!([b, a]));
    format!("{}\r\n{}", row(&a, sep), row(&b, sep))
}

#[test]
fn csv_output_rows() {
    let s = TestServer::start();
    let expected = two_rows(&s, "csv-dev", ",");
    let r = s.get_auth("/api/v1/entries.csv");
    assert_eq!(r.status, 200);
    assert!(
        r.content_type().starts_with("text/csv"),
        "{}",
        r.content_type()
    );
    assert_eq!(r.text, expected);
}

#[test]
fn tsv_output_rows() {
    let s = TestServer::start();
    let expected = two_rows(&s, "tsv-dev", "\t");
    let r = s.get_auth("/api/v1/entries.tsv");
    assert_eq!(r.status, 200);
    assert!(
        r.content_type().starts_with("text/tab-separated-values"),
        "{}",
        r.content_type()
    );
    assert_eq!(r.text, expected);
}

#[test]
fn txt_output_rows() {
    let s = TestServer::start();
    let expected = two_rows(&s, "txt-dev", "\t");
    let r = s.get_auth("/api/v1/entries.txt");
    assert_eq!(r.status, 200);
    assert!(
        r.content_type().starts_with("text/plain"),
        "{}",
        r.content_type()
    );
    assert_eq!(r.text, expected);
}

#[test]
fn suffixless_list_prefers_the_first_listed_of_equal_accept_types() {
    let s = TestServer::start();
    seed(&s, "accept-order", 2, now_ms());
    let r = s.get_auth_with(
        "/api/v1/entries",
        &[("Accept", "application/json, text/plain, */*")],
    );
    assert_eq!(r.status, 200);
    assert!(
        r.content_type().starts_with("application/json"),
        "{}: {}",
        r.content_type(),
        r.text
    );
    assert_eq!(r.list().len(), 2);
    let r = s.get_auth_with("/api/v1/entries", &[("Accept", "text/csv, text/plain")]);
    assert!(
        r.content_type().starts_with("text/csv"),
        "{}",
        r.content_type()
    );
}

#[test]
fn suffixless_list_honours_accept_quality() {
    let s = TestServer::start();
    let expected = two_rows(&s, "accept-q", ",");
    let r = s.get_auth_with(
        "/api/v1/entries",
        &[("Accept", "text/plain;q=0.2, text/csv")],
    );
    assert!(
        r.content_type().starts_with("text/csv"),
        "{}",
        r.content_type()
    );
    assert_eq!(r.text, expected);
}

#[test]
fn suffixless_list_without_accept_is_tab_separated_text() {
    let s = TestServer::start();
    let expected = two_rows(&s, "noaccept", "\t");
    let head = format!(
        "GET /api/v1/entries HTTP/1.1\nHost: 127.0.0.1\napi-secret: {}\nConnection: close\n",
        secret_sha1()
    );
    let r = s.raw(&head, b"");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.content_type().starts_with("text/plain"),
        "{}",
        r.content_type()
    );
    assert_eq!(r.text, expected);
}

#[test]
fn unsupported_suffix_is_406() {
    let s = TestServer::start();
    seed(&s, "xml", 1, now_ms());
    let r = s.get_auth("/api/v1/entries.xml");
    assert_eq!(r.status, 406, "{}", r.text);
}

#[test]
fn preview_stores_nothing() {
    let s = TestServer::start();
    let r = s.post_json(
        "/api/v1/entries/preview",
        &json!([sgv("preview", now_ms(), 140)]),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ints(&r.list(), "sgv"), vec![140]);
    assert!(s.list("/api/v1/entries.json?count=100").is_empty());
}

#[test]
fn delete_by_id() {
    let s = TestServer::start();
    let reply = seed(&s, "del-id", 3, now_ms());
    let id = reply[0]["_id"].as_str().unwrap();
    let r = s.delete(&format!("/api/v1/entries/{id}"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(s.list(&format!("/api/v1/entries/{id}.json")).is_empty());
    assert_eq!(ints(&s.list("/api/v1/entries.json"), "sgv"), vec![101, 102]);
}

#[test]
fn delete_by_type_and_find() {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok(
        "/api/v1/entries",
        &json!([
            sgv("del-x", t, 100),
            sgv("del-y", t - MIN, 101),
            {"type": "mbg", "mbg": 150, "date": t - 2 * MIN, "device": "del-x"}
        ]),
    );
    let r = s.delete("/api/v1/entries/sgv?find[device]=del-x");
    assert_eq!(r.status, 200, "{}", r.text);
    let left = s.list("/api/v1/entries.json");
    let kept: Vec<(String, String)> = left
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["device"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        vec![
            ("sgv".to_string(), "del-y".to_string()),
            ("mbg".to_string(), "del-x".to_string())
        ]
    );
}

#[test]
fn delete_with_find_on_all_entries() {
    let s = TestServer::start();
    let t = now_ms();
    s.post_ok(
        "/api/v1/entries",
        &json!([
            sgv("gone", t, 100),
            {"type": "mbg", "mbg": 150, "date": t - MIN, "device": "gone"},
            sgv("stays", t - 2 * MIN, 102)
        ]),
    );
    let r = s.delete("/api/v1/entries?find[device]=gone");
    assert_eq!(r.status, 200, "{}", r.text);
    let left = s.list("/api/v1/entries.json");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["device"], "stays");
}

#[test]
fn reposting_a_batch_is_deduplicated() {
    let s = TestServer::start();
    let t = now_ms();
    let batch: Value = (0..3)
        .map(|i| sgv("dedup", t - i * 5 * MIN, 100 + i))
        .collect();
    let first = s.post_json("/api/v1/entries", &batch);
    assert_eq!(first.status, 200);
    assert_eq!(first.header("X-Sync-Inserted"), Some("3"));
    assert_eq!(first.header("X-Sync-Updated"), Some("0"));
    let second = s.post_json("/api/v1/entries", &batch);
    assert_eq!(second.status, 200);
    assert_eq!(ids(&first.list()), ids(&second.list()));
    assert_eq!(second.header("X-Sync-Inserted"), Some("0"));
    assert_eq!(second.header("X-Sync-Updated"), Some("3"));
    assert_eq!(s.list("/api/v1/entries.json?count=100").len(), 3);
}

#[test]
fn identifier_is_nightscouts_uuid_v5() {
    let s = TestServer::start();
    let reply = s.post_ok(
        "/api/v1/entries",
        &json!({"type": "sgv", "sgv": 100, "date": 1_491_717_830_000_i64, "device": "dexcom"}),
    );
    assert_eq!(
        reply[0]["identifier"],
        "b07c45bc-b043-56aa-a8c0-125c16a085a2"
    );
    let items = s.list("/api/v1/entries.json?find[date]=1491717830000");
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]["identifier"],
        "b07c45bc-b043-56aa-a8c0-125c16a085a2"
    );
}

#[test]
fn gzip_request_body_is_accepted() {
    let s = TestServer::start();
    let t = now_ms();
    let body =
        serde_json::to_vec(&json!([sgv("gzip", t, 111), sgv("gzip", t - MIN, 112)])).unwrap();
    let gz = crate::support::gzip(&body);
    let r = s.request_auth(
        "POST",
        "/api/v1/entries",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        Some(&gz),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ints(&r.list(), "sgv"), vec![111, 112]);
    assert_eq!(ints(&s.list("/api/v1/entries.json"), "sgv"), vec![111, 112]);
}

#[test]
fn last_modified_and_if_modified_since() {
    let s = TestServer::start();
    let newest = now_ms() - 30 * MIN;
    s.post_ok(
        "/api/v1/entries",
        &json!([sgv("lm", newest, 100), sgv("lm", newest - 5 * MIN, 99)]),
    );
    let r = s.get_auth("/api/v1/entries.json");
    assert_eq!(r.status, 200);
    let lm = r
        .header("Last-Modified")
        .expect("Last-Modified")
        .to_string();
    assert_eq!(lm, nightlite::dates::to_http_date(newest));

    let same = s.get_auth_with("/api/v1/entries.json", &[("If-Modified-Since", &lm)]);
    assert_eq!(same.status, 304, "{}", same.text);
    let later = nightlite::dates::to_http_date(newest + 3_600_000);
    let r = s.get_auth_with("/api/v1/entries.json", &[("If-Modified-Since", &later)]);
    assert_eq!(r.status, 304, "{}", r.text);
    let earlier = nightlite::dates::to_http_date(newest - 3_600_000);
    let r = s.get_auth_with("/api/v1/entries.json", &[("If-Modified-Since", &earlier)]);
    assert_eq!(r.status, 200);
    assert_eq!(r.list().len(), 2);
}

#[test]
fn routes_are_also_served_under_api_v2() {
    let s = TestServer::start();
    seed(&s, "v2", 2, now_ms());
    assert_eq!(ints(&s.list("/api/v2/entries.json"), "sgv"), vec![100, 101]);
}

#[test]
fn date_string_without_date_sets_date() {
    let s = TestServer::start();
    let t = now_ms() - 7 * MIN;
    let t = t - t % 1000;
    let reply = s.post_ok(
        "/api/v1/entries",
        &json!({"type": "sgv", "sgv": 99, "dateString": iso(t), "device": "ds"}),
    );
    assert_eq!(reply[0]["date"].as_i64(), Some(t));
    let items = s.list(&format!("/api/v1/entries.json?find[device]={}", enc("ds")));
    assert_eq!(ints(&items, "date"), vec![t]);
}

#[test]
fn client_object_id_is_kept() {
    let s = TestServer::start();
    let mut e = sgv("client-id", now_ms(), 150);
    e["_id"] = json!("5F1E2D3C4B5A697887766554");
    let reply = s.post_ok("/api/v1/entries", &e);
    assert_eq!(reply[0]["_id"], "5f1e2d3c4b5a697887766554");
    let items = s.list("/api/v1/entries/5f1e2d3c4b5a697887766554.json");
    assert_eq!(ints(&items, "sgv"), vec![150]);
}

#[test]
fn repost_with_a_new_value_updates_the_same_entry() {
    let s = TestServer::start();
    let t = now_ms();
    let first = s.post_ok("/api/v1/entries", &sgv("update", t, 100));
    let second = s.post_json("/api/v1/entries", &sgv("update", t, 104));
    assert_eq!(second.header("X-Sync-Updated"), Some("1"));
    assert_eq!(second.list()[0]["_id"], first[0]["_id"]);
    assert_eq!(ints(&s.list("/api/v1/entries.json"), "sgv"), vec![104]);
}

#[test]
fn readings_of_different_types_at_the_same_time_are_both_kept() {
    let s = TestServer::start();
    let t = now_ms();
    let reply = s.post_ok(
        "/api/v1/entries",
        &json!([sgv("same-ms", t, 100), {"type": "mbg", "mbg": 104, "date": t, "device": "same-ms"}]),
    );
    assert_ne!(reply[0]["_id"], reply[1]["_id"]);
    assert_ne!(reply[0]["identifier"], reply[1]["identifier"]);
    assert_eq!(s.list("/api/v1/entries.json").len(), 2);
}

#[test]
fn concurrent_duplicate_uploads_are_stored_once() {
    let s = TestServer::start();
    let t = now_ms();
    let batch: Value = (0..5).map(|i| sgv("race", t - i * MIN, 100 + i)).collect();
    let replies: Vec<Vec<String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| ids(&s.post_ok("/api/v1/entries", &batch))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(replies.windows(2).all(|w| w[0] == w[1]), "{replies:?}");
    assert_eq!(s.list("/api/v1/entries.json?count=100").len(), 5);
}

#[test]
fn trailing_slash_is_accepted() {
    let s = TestServer::start();
    seed(&s, "slash", 2, now_ms());
    let r = s.get_auth_with("/api/v1/entries/", &[("Accept", "application/json")]);
    assert_eq!(r.list().len(), 2);
}

#[test]
fn head_is_answered_like_get() {
    let s = TestServer::start();
    let r = s.request_auth("HEAD", "/api/v1/entries.json", &[], None);
    assert_eq!(r.status, 200);
    assert!(r.text.is_empty());
    let r = s.request_auth("HEAD", "/api/v1/status.json", &[], None);
    assert_eq!(r.status, 200);
}

fn v3_uuid(name: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::from_bytes(*b"NightscoutRocks!"),
        name.as_bytes(),
    )
    .to_string()
}

#[test]
fn identifier_of_an_entry_without_device_uses_undefined() {
    let s = TestServer::start();
    let t = now_ms() - MIN;
    let reply = s.post_ok(
        "/api/v1/entries",
        &json!({"type": "sgv", "sgv": 90, "date": t}),
    );
    assert_eq!(
        reply[0]["identifier"],
        v3_uuid(&format!("undefined_{t}")).as_str()
    );
}

#[test]
fn date_string_offset_sets_utc_offset_and_sys_time() {
    let s = TestServer::start();
    let reply = s.post_ok(
        "/api/v1/entries",
        &json!({"type": "sgv", "sgv": 99, "dateString": "2023-11-14T22:13:20.000+01:00", "device": "offset"}),
    );
    let e = &reply[0];
    assert_eq!(e["date"].as_i64(), Some(1_699_996_400_000));
    assert_eq!(e["utcOffset"], 60);
    assert_eq!(e["sysTime"], "2023-11-14T21:13:20.000Z");
    // Normalised to UTC as Nightscout does; the offset lives on in utcOffset.
    assert_eq!(e["dateString"], "2023-11-14T21:13:20.000Z");
    let items = s.list("/api/v1/entries.json?find[date]=1699996400000");
    assert_eq!(ints(&items, "sgv"), vec![99]);
}

#[test]
fn deleted_entry_is_revived_by_reupload_under_the_same_id() {
    let s = TestServer::start();
    let e = sgv("revive", now_ms(), 120);
    let first = s.post_ok("/api/v1/entries", &e);
    let id = first[0]["_id"].as_str().unwrap();
    assert_eq!(s.delete(&format!("/api/v1/entries/{id}")).status, 200);
    assert!(s.list("/api/v1/entries.json").is_empty());
    let again = s.post_json("/api/v1/entries", &e);
    assert_eq!(again.list()[0]["_id"], id);
    assert_eq!(ids(&s.list("/api/v1/entries.json")), vec![id.to_string()]);
}

#[test]
fn header_names_are_capitalised() {
    let s = TestServer::start();
    let body = serde_json::to_vec(&sgv("caps", now_ms(), 100)).unwrap();
    let head = format!(
        "POST /api/v1/entries HTTP/1.1\nHost: 127.0.0.1\napi-secret: {}\nContent-Type: application/json\nContent-Length: {}\nConnection: close\n",
        secret_sha1(),
        body.len()
    );
    let r = s.raw(&head, &body);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.head.contains("\r\nX-Sync-Inserted: 1"), "{}", r.head);
    assert!(r.head.contains("\r\nX-Sync-Updated: 0"), "{}", r.head);
    let head = format!(
        "GET /api/v1/entries.json HTTP/1.1\nHost: 127.0.0.1\napi-secret: {}\nConnection: close\n",
        secret_sha1()
    );
    let r = s.raw(&head, b"");
    assert!(r.head.contains("\r\nLast-Modified: "), "{}", r.head);
}

/// No gzip, so that a reply held whole has its Content-Length.
const IDENTITY: &[(&str, &str)] = &[("Accept-Encoding", "identity")];

/// A list longer than one chunk (1000 documents) streams: it is sent chunked, not held whole,
/// and its bytes (and Last-Modified) are exactly those of the same documents listed in pieces.
#[test]
fn long_lists_stream_the_same_bytes_in_every_format() {
    let s = TestServer::start();
    let newest = now_ms() - 10 * MIN;
    let batch: Vec<Value> = (0..2300)
        .map(|i| sgv("export", newest - i * MIN, 40 + i % 300))
        .collect();
    s.post_ok("/api/v1/entries", &Value::Array(batch));
    // The same list in pieces of 1000, each one chunk, held whole as before.
    let piece = |ext: &str, before: i64| {
        let r = s.get_auth_with(
            &format!(
                "/api/v1/entries.{ext}?count=1000&find[date][$gte]=0&find[date][$lt]={before}"
            ),
            IDENTITY,
        );
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.header("content-length").is_some(), "one chunk is sized");
        r
    };
    for (ext, open, sep, close) in [
        ("json", "[", ",", "]"),
        ("csv", "", "\r\n", ""),
        ("tsv", "", "\r\n", ""),
        ("txt", "", "\r\n", ""),
    ] {
        let whole = s.get_auth_with(
            &format!("/api/v1/entries.{ext}?count=1000000&find[date][$gte]=0"),
            IDENTITY,
        );
        assert_eq!(whole.status, 200, "{}", whole.text);
        assert_eq!(
            whole.header("transfer-encoding"),
            Some("chunked"),
            "{ext}: streamed"
        );
        assert!(whole.header("content-length").is_none(), "{ext}");
        let mut parts = vec![];
        let mut before = newest + 1;
        let mut first_modified = None;
        for _ in 0..3 {
            let r = piece(ext, before);
            first_modified.get_or_insert(r.header("last-modified").map(str::to_string));
            let text = &r.text[open.len()..r.text.len() - close.len()];
            parts.push(text.to_string());
            before -= 1000 * MIN;
        }
        let expected = format!("{open}{}{close}", parts.join(sep));
        assert_eq!(whole.text.len(), expected.len(), "{ext}");
        assert!(whole.text == expected, "{ext}: bytes differ");
        assert_eq!(
            whole.header("last-modified").map(str::to_string),
            first_modified.flatten(),
            "{ext}"
        );
        assert_eq!(
            whole.header("content-type"),
            piece(ext, before).header("content-type"),
            "{ext}"
        );
    }
    // Other collections' lists stream too.
    let notes: Vec<Value> = (0..1500)
        .map(|i| json!({"eventType": "Note", "notes": format!("n{i}"), "created_at": iso(newest - i * MIN)}))
        .collect();
    s.post_ok("/api/v1/treatments", &Value::Array(notes));
    let r = s.get_auth_with(
        "/api/v1/treatments.json?count=5000&find[created_at][$gte]=2000",
        IDENTITY,
    );
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.list().len(), 1500);
    assert!(r.header("last-modified").is_some());
}
