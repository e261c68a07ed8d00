//! API v3 history: since a time, ETag, Last-Modified, paging during writes.

use super::*;

#[test]
fn history_since_a_time() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t0 = now_ms() - 1;
    let a = v3.create("treatments", &treatment(now_ms() - 3 * MIN, "Note"));
    let b = v3.create("treatments", &treatment(now_ms() - 2 * MIN, "Note"));
    let c = v3.create("treatments", &treatment(now_ms() - 4 * MIN, "Note"));
    assert_eq!(v3.delete(&format!("/treatments/{a}")).status, 200);

    let r = v3.get(&format!("/treatments/history/{t0}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let items = match result(&r) {
        Value::Array(items) => items,
        other => panic!("{other}"),
    };
    // Ascending srvModified: b, c, then a (deleted last).
    assert_eq!(identifiers(&items), vec![b.clone(), c.clone(), a.clone()]);
    assert_eq!(items[2]["isValid"], false);
    let mods = ints(&items, "srvModified");
    assert!(mods.windows(2).all(|w| w[0] < w[1]), "{mods:?}");
    let max = *mods.last().unwrap();
    assert_eq!(r.header("etag"), Some(format!("W/\"{max}\"").as_str()));
    assert_eq!(r.header("last-modified"), Some(http_date(max).as_str()));

    // After a mark: strictly later.
    let after_b = v3.list(&format!("/treatments/history/{}", mods[0]));
    assert_eq!(identifiers(&after_b), vec![c.clone(), a.clone()]);
    // limit
    let r = v3.get(&format!("/treatments/history/{t0}?limit=2"));
    let limited = match result(&r) {
        Value::Array(items) => items,
        other => panic!("{other}"),
    };
    assert_eq!(identifiers(&limited), vec![b.clone(), c.clone()]);
    assert_eq!(
        r.header("etag"),
        Some(format!("W/\"{}\"", mods[1]).as_str())
    );
    // An ISO mark.
    assert_eq!(
        v3.list(&format!("/treatments/history/{}", enc(&iso_seconds(t0))))
            .len(),
        3
    );
    // fields
    let items = v3.list(&format!("/treatments/history/{t0}?fields=identifier"));
    assert_eq!(items[0], json!({"identifier": b}));

    // Nothing newer: 200 [] without ETag.
    let r = v3.get(&format!("/treatments/history/{}", max));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(result(&r), json!([]));
    assert!(r.header("etag").is_none(), "{:?}", r.headers);

    // A bad mark.
    for bad in ["abc", "1999-01-01T00:00:00Z"] {
        let r = v3.get(&format!("/treatments/history/{}", enc(bad)));
        assert_error(&r, 400, "Bad or missing Last-Modified header/parameter");
    }
}

#[test]
fn history_etag_header_is_spelled_etag() {
    let s = TestServer::start();
    let token = jwt(&s, &["admin"]);
    let v3 = V3::new(&s, &token);
    let t0 = now_ms() - 1;
    v3.create("treatments", &treatment(now_ms() - MIN, "Note"));
    let r = s.raw(
        &format!(
            "GET /api/v3/treatments/history/{t0} HTTP/1.1\nHost: localhost\nAuthorization: Bearer {token}\nConnection: close\n"
        ),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<&str> = r
        .head
        .split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':').map(|(k, _)| k))
        .collect();
    assert!(names.contains(&"ETag"), "raw header names: {names:?}");
    let line = r
        .head
        .split("\r\n")
        .find(|l| l.starts_with("ETag:"))
        .unwrap();
    let value = line["ETag:".len()..].trim();
    assert!(value.starts_with("W/\"") && value.ends_with('"'), "{line}");
    let max: i64 = value[3..value.len() - 1].parse().expect("number in ETag");
    assert!(max > t0, "{line}");
}

#[test]
fn history_with_last_modified_header() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let id = v3.create("treatments", &treatment(now_ms() - MIN, "Note"));
    let modified = ms(&v3.doc("treatments", &id)["srvModified"]);

    // The same second (floored) is included.
    let r = v3.get_with(
        "/treatments/history",
        &[("Last-Modified", &http_date(modified))],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        identifiers(result(&r).as_array().unwrap()),
        vec![id.clone()]
    );
    assert_eq!(r.header("etag"), Some(format!("W/\"{modified}\"").as_str()));
    let r = v3.get_with(
        "/treatments/history",
        &[("Last-Modified", "Sat, 01 Jan 2022 00:00:00 GMT")],
    );
    assert_eq!(identifiers(result(&r).as_array().unwrap()), vec![id]);
    let r = v3.get_with(
        "/treatments/history",
        &[("Last-Modified", &http_date(modified + 2000))],
    );
    assert_eq!(r.status, 200);
    assert_eq!(result(&r), json!([]));
    assert!(r.header("etag").is_none());

    let r = v3.get("/treatments/history");
    assert_error(&r, 400, "Bad or missing Last-Modified header/parameter");
    let r = v3.get_with("/treatments/history", &[("Last-Modified", "yesterday-ish")]);
    assert_error(&r, 400, "Bad or missing Last-Modified header/parameter");
}

/// Four writers (two through v1, two through v3) and a reader paging the history with a small
/// limit at the same time: following the last srvModified, every document is seen exactly once.
#[test]
fn paging_history_during_a_burst_never_skips_or_repeats() {
    const WRITERS: usize = 4;
    const REQUESTS: usize = 40;
    const PER_REQUEST: usize = 3;
    let s = TestServer::start();
    let token = jwt(&s, &["admin"]);
    let v3 = V3::new(&s, &token);
    let t0 = now_ms() - 1;
    let base = now_ms() - 100_000 * MIN;
    let done = AtomicUsize::new(0);

    let seen: Vec<Value> = std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let (s, token, done) = (&s, token.as_str(), &done);
            scope.spawn(move || {
                let v3 = V3::new(s, token);
                for i in 0..REQUESTS {
                    let docs: Vec<Value> = (0..PER_REQUEST)
                        .map(|j| {
                            let n = i64::try_from((w * REQUESTS + i) * PER_REQUEST + j).unwrap();
                            let at = base + n * 1000;
                            json!({"eventType": "Note", "notes": format!("w{w}-{i}-{j}"),
                                   "created_at": iso(at), "date": at, "app": "burst"})
                        })
                        .collect();
                    if w % 2 == 0 {
                        s.post_ok("/api/v1/treatments", &Value::Array(docs));
                    } else if i % 2 == 0 {
                        let r = v3.post("/treatments", &Value::Array(docs));
                        assert_eq!(r.status, 207, "{}", r.text);
                        assert!(
                            r.json()["result"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .all(|x| x["status"] == 201),
                            "{}",
                            r.text
                        );
                    } else {
                        for d in docs {
                            let r = v3.post("/treatments", &d);
                            assert_eq!(r.status, 201, "{}", r.text);
                        }
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let reader = scope.spawn(|| {
            let mut seen = vec![];
            let mut last = t0;
            let mut quiet_after_done = false;
            loop {
                let writers_done = done.load(Ordering::SeqCst) == WRITERS;
                let r = v3.get(&format!("/treatments/history/{last}?limit=7"));
                assert_eq!(r.status, 200, "{}", r.text);
                let page = result(&r).as_array().unwrap().clone();
                assert!(page.len() <= 7);
                if page.is_empty() {
                    if quiet_after_done {
                        break;
                    }
                    quiet_after_done = writers_done;
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    continue;
                }
                let mods = ints(&page, "srvModified");
                assert!(
                    mods[0] > last,
                    "page starts at or before the mark {last}: {mods:?}"
                );
                assert!(
                    mods.windows(2).all(|w| w[0] < w[1]),
                    "not strictly ascending: {mods:?}"
                );
                last = *mods.last().unwrap();
                assert_eq!(r.header("etag"), Some(format!("W/\"{last}\"").as_str()));
                seen.extend(page);
            }
            seen
        });
        reader.join().unwrap()
    });

    let total = WRITERS * REQUESTS * PER_REQUEST;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for d in &seen {
        *counts
            .entry(d["notes"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "seen more than once: {repeated:?}");
    let expected: BTreeSet<String> = (0..WRITERS)
        .flat_map(|w| {
            (0..REQUESTS).flat_map(move |i| (0..PER_REQUEST).map(move |j| format!("w{w}-{i}-{j}")))
        })
        .collect();
    let got: BTreeSet<String> = counts.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    assert!(missing.is_empty(), "skipped: {missing:?}");
    assert_eq!(seen.len(), total);
    assert_eq!(v3.list("/treatments").len(), total);
}
