//! API v3 read of one document, and output formats.

use super::*;

#[test]
fn read_one_404_410_304_and_fields() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let id = v3.create(
        "treatments",
        &with(
            treatment(now_ms() - MIN, "Meal Bolus"),
            json!({"carbs": 30, "insulin": 2}),
        ),
    );
    let path = format!("/treatments/{id}");
    let r = v3.get(&path);
    assert_eq!(r.status, 200, "{}", r.text);
    let doc = result(&r);
    let modified = ms(&doc["srvModified"]);
    let last = r
        .header("last-modified")
        .expect("Last-Modified")
        .to_string();
    assert_eq!(last, http_date(modified));

    // If-Modified-Since: the same second or later → 304; earlier → 200.
    let r = v3.get_with(&path, &[("If-Modified-Since", &last)]);
    assert_eq!(r.status, 304, "{}", r.text);
    assert!(r.text.is_empty());
    let later = http_date(modified + 3_600_000);
    assert_eq!(
        v3.get_with(&path, &[("If-Modified-Since", &later)]).status,
        304
    );
    let earlier = http_date(modified - 3_600_000);
    assert_eq!(
        v3.get_with(&path, &[("If-Modified-Since", &earlier)])
            .status,
        200
    );

    // fields
    let v = result(&v3.get(&format!("{path}?fields=carbs,insulin")));
    assert_eq!(v, json!({"carbs": 30, "insulin": 2}));
    let v = result(&v3.get(&format!("{path}?fields=_all")));
    assert_eq!(v, doc);

    assert_eq!(v3.get("/treatments/no-such-identifier").status, 404);
    assert_eq!(v3.get("/treatments/5f1e2d3c4b5a697887766554").status, 404);

    let r = v3.delete(&path);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(v3.get(&path).status, 410);
}

#[test]
fn output_formats_by_suffix_and_accept() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let id = v3.create(
        "treatments",
        &with(
            treatment(now_ms() - MIN, "Note"),
            json!({"notes": "a, \"quoted\" <note>"}),
        ),
    );

    let r = v3.get(&format!("/treatments/{id}.json"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.content_type().starts_with("application/json"),
        "{}",
        r.content_type()
    );
    assert_eq!(result(&r)["identifier"], id.as_str());

    let r = v3.get(&format!("/treatments/{id}.csv"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.content_type().starts_with("text/csv"),
        "{}",
        r.content_type()
    );
    let lines: Vec<&str> = r.text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.text);
    let header: Vec<&str> = lines[0].split(',').collect();
    assert!(
        header.contains(&"identifier") && header.contains(&"notes"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains(&id), "{}", r.text);
    assert!(
        lines[1].contains("\"a, \"\"quoted\"\" <note>\""),
        "{}",
        r.text
    );

    let r = v3.get(&format!("/treatments/{id}.xml"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.content_type().contains("xml"), "{}", r.content_type());
    assert!(r.text.starts_with("<?xml"), "{}", r.text);
    assert!(
        r.text.contains(&format!("<identifier>{id}</identifier>")),
        "{}",
        r.text
    );
    assert!(r.text.contains("&lt;note&gt;"), "{}", r.text);

    // Search too.
    let r = v3.get("/treatments.csv");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.text.lines().next().unwrap().contains("identifier"),
        "{}",
        r.text
    );
    assert_eq!(r.text.lines().count(), 2);
    let r = v3.get("/treatments.xml");
    assert!(r.text.starts_with("<?xml"), "{}", r.text);

    // Unknown suffix: 406.
    assert_eq!(v3.get(&format!("/treatments/{id}.txt")).status, 406);
    assert_eq!(v3.get("/treatments.txt").status, 406);

    // Accept without a suffix.
    let r = v3.get_with(&format!("/treatments/{id}"), &[("Accept", "text/csv")]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.content_type().starts_with("text/csv"),
        "{}",
        r.content_type()
    );
    assert!(r.text.lines().next().unwrap().contains("identifier"));
    let r = v3.get_with("/treatments", &[("Accept", "application/xml")]);
    assert!(r.text.starts_with("<?xml"), "{}", r.text);
    let r = v3.get_with("/treatments", &[("Accept", "image/png")]);
    assert_eq!(r.status, 406, "{}", r.text);
}
