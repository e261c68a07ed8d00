//! v1 JSON lists are built from the stored document text (src/store/v1json.rs). Each reply
//! must be byte for byte what the earlier path gave: every stored document parsed, `_id` put
//! first, serialised; Last-Modified from the parsed time field. The expected replies here are
//! computed that way from the database rows themselves.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::support::{now_ms, TestServer};

const MIN: i64 = 60_000;

/// The earlier path's reply for these rows, in this order.
fn old_reply(rows: &[(String, String)]) -> String {
    let docs: Vec<Value> = rows
        .iter()
        .map(|(id, text)| {
            let doc: Map<String, Value> = serde_json::from_str(text).unwrap();
            let mut out = Map::new();
            out.insert("_id".into(), Value::String(id.clone()));
            for (k, v) in doc {
                out.insert(k, v);
            }
            Value::Object(out)
        })
        .collect();
    serde_json::to_string(&docs).unwrap()
}

fn db(dir: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(dir.join("nightlite.sqlite3")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    conn
}

/// Live rows of `table` in the v1 default order (newest first).
fn rows(dir: &Path, table: &str) -> Vec<(String, String)> {
    db(dir)
        .prepare(&format!(
            "SELECT id, doc FROM {table} WHERE is_valid = 1 ORDER BY mills DESC, seq DESC"
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn spliced_lists_are_the_parsed_replies_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::in_dir(dir.path(), &[]);
    let t = now_ms() - 60 * MIN;

    // Through the API, as clients send them (raw text: json! cannot write -1E-400). A number
    // no double holds (1e400) is refused now; the stored texts below still carry one.
    let entries = format!(
        r#"[
        {{"type":"sgv","sgv":120,"date":{t},"device":"ünïcødé ✓ 🎉","note":"line\nbreak \"q\" \\ \u0001 \u001F \/ \u00e9 \ud83c\udf89"}},
        {{"type":"sgv","sgv":121,"date":{},"neg":-1E-400,"prec":1.50,"z":-0,"huge":123456789012345678901234567890}},
        {{"zz":1,"type":"sgv","aa":2,"sgv":122,"mm":{{"z":[1,{{"b":[[],{{}}]}},null,true]}},"date":{}}},
        {{"_id":"5f1e2d3c4b5a697887766554","type":"sgv","sgv":123,"date":{}}},
        {{"_id":"3C2F2D6A-7B55-4E39-9E0B-1F7B4C1A2D3E","type":"sgv","sgv":124,"date":{}}},
        {{"type":"sgv","sgv":125,"dateString":"2024-01-01T00:00:00+02:00","date":"{}"}}
    ]"#,
        t - MIN,
        t - 2 * MIN,
        t - 3 * MIN,
        t - 4 * MIN,
        t - 5 * MIN
    );
    let r = s.post_raw("/api/v1/entries", entries.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text);

    // Texts nightlite never writes (another tool, a hand edit): they must still come out as
    // the parse path gives them.
    {
        let conn = db(dir.path());
        let odd = [
            r#"{ "type" : "sgv", "sgv" : 130, "date" : DATE }"#,
            r#"{"type":"sgv","sgv":131,"date":DATE,"esc":"\u0041\/"}"#,
            r#"{"type":"sgv","sgv":132,"date":DATE,"d":1,"d":2}"#,
            r#"{"type":"sgv","sgv":133,"date":DATE,"_id":"ffffffffffffffffffffffff"}"#,
            r#"{"type":"sgv","sgv":134,"date":DATE,"x":1E400,"y":1e300}"#,
            r#"{}"#,
        ];
        for (i, text) in odd.iter().enumerate() {
            let mills = t - (10 + i as i64) * MIN;
            conn.execute(
                "INSERT INTO entries (id, doc, mills, srv_created, srv_modified)
                 VALUES (?1, ?2, ?3, ?3, (SELECT coalesce(max(srv_modified), 0) + 1 FROM entries))",
                rusqlite::params![
                    format!("{:024x}", 0xabc0 + i),
                    text.replace("DATE", &mills.to_string()),
                    mills
                ],
            )
            .unwrap();
        }
    }

    let stored = rows(dir.path(), "entries");
    assert_eq!(stored.len(), 12);
    let r = s.get_auth("/api/v1/entries.json?count=100");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.content_type(), "application/json");
    assert_eq!(r.text, old_reply(&stored));
    // Last-Modified: the newest `date` read as a number (the `{}` row has none).
    assert_eq!(
        r.header("last-modified"),
        Some(nightlite::dates::to_http_date(t).as_str())
    );
    let r = s.get_auth("/api/v1/entries/sgv.json?count=3");
    assert_eq!(r.text, old_reply(&stored[..3]));
    // One by `_id`: the route answers a list of one.
    let (id, _) = &stored[3];
    let r = s.get_auth(&format!("/api/v1/entries/{id}.json"));
    assert_eq!(r.text, old_reply(&stored[3..4]));

    // Treatments: a replaced document keeps no field it lost; Last-Modified from created_at.
    let at = |m: i64| nightlite::dates::to_iso(t - m * MIN);
    s.post_ok(
        "/api/v1/treatments",
        &json!([
            {"eventType": "Note", "created_at": at(1), "notes": "a\tb", "gone": true, "identifier": "keep-1"},
            {"eventType": "Meal Bolus", "created_at": at(2), "carbs": 20, "insulin": "1.5"},
            {"eventType": "Temp Basal", "created_at": at(3), "absolute": 0.85, "duration": 30}
        ]),
    );
    let r = s.put_json(
        "/api/v1/treatments",
        &json!({"eventType": "Note", "created_at": at(1), "notes": "replaced", "identifier": "keep-1"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let stored = rows(dir.path(), "treatments");
    assert_eq!(stored.len(), 3);
    assert!(!stored[0].1.contains("gone"), "{}", stored[0].1);
    let r = s.get_auth("/api/v1/treatments.json");
    assert_eq!(r.text, old_reply(&stored));
    assert_eq!(
        r.header("last-modified"),
        Some(nightlite::dates::to_http_date(t - MIN).as_str())
    );
    let since = nightlite::dates::to_http_date(t);
    let r = s.get_auth_with(
        "/api/v1/treatments.json",
        &[("If-Modified-Since", since.as_str())],
    );
    assert_eq!(r.status, 304);

    // Profile: a list, and the current one as a single object.
    s.post_ok(
        "/api/v1/profile",
        &json!({"defaultProfile": "Default", "startDate": at(5), "store": {"Default": {"dia": 5, "basal": [{"time": "00:00", "value": 0.9}]}}, "units": "mg/dl"}),
    );
    let stored = rows(dir.path(), "profile");
    let r = s.get_auth("/api/v1/profile.json");
    assert_eq!(r.text, old_reply(&stored));
    let r = s.get_auth("/api/v1/profile/current");
    let list = old_reply(&stored[..1]);
    assert_eq!(r.text, list[1..list.len() - 1]);
}
