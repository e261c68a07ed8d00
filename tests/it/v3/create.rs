//! API v3 create: 201, identifiers, dates, server fields.

use super::*;

#[test]
fn create_answers_201_with_identifier_location_and_last_modified() {
    let s = TestServer::start();
    let name = "Uploader Ursula";
    let v3 = V3::new(&s, &jwt_named(&s, name, &["admin"]));
    let before = now_ms();
    let r = v3.post(
        "/treatments",
        &with(treatment(VECTOR_DATE, "Note"), json!({"notes": "hi"})),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let v = r.json();
    assert_eq!(v["status"], 201, "{v}");
    let id = v["identifier"].as_str().unwrap().to_string();
    assert_eq!(id, ns_identifier("test-device", VECTOR_DATE, Some("Note")));
    let last = ms(&v["lastModified"]);
    assert!(last >= before && last <= now_ms(), "lastModified {last}");
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v3/treatments/{id}").as_str())
    );
    assert_eq!(r.header("last-modified"), Some(http_date(last).as_str()));

    let doc = v3.doc("treatments", &id);
    assert_eq!(doc["identifier"], id.as_str());
    assert_eq!(doc["date"], VECTOR_DATE);
    assert_eq!(
        doc["created_at"], "2017-04-09T06:03:50.000Z",
        "created_at from date"
    );
    assert_eq!(doc["utcOffset"], 0);
    assert_eq!(doc["notes"], "hi");
    assert_eq!(doc["subject"], name, "subject is the JWT's subject");
    assert_eq!(doc["srvModified"], last);
    // srvCreated is the request's time; srvModified the (strictly increasing) write stamp.
    let created = ms(&doc["srvCreated"]);
    assert!(
        created >= before && created <= last,
        "srvCreated {created}, lastModified {last}"
    );
    assert!(
        doc.get("isValid").is_none() || doc["isValid"] == true,
        "{doc}"
    );
}

#[test]
fn identifier_vectors() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    assert_eq!(
        ns_identifier("dexcom", VECTOR_DATE, None),
        VECTOR_IDENTIFIER
    );
    let id = v3.create(
        "entries",
        &json!({"device": "dexcom", "date": VECTOR_DATE, "app": "xdrip", "type": "sgv", "sgv": 100}),
    );
    assert_eq!(id, VECTOR_IDENTIFIER);
    let id = v3.create(
        "treatments",
        &json!({"device": "dexcom", "date": VECTOR_DATE, "app": "aaps", "eventType": "Meal Bolus"}),
    );
    assert_eq!(id, ns_identifier("dexcom", VECTOR_DATE, Some("Meal Bolus")));
    // No device: JavaScript's "undefined".
    let id = v3.create(
        "devicestatus",
        &json!({"date": VECTOR_DATE, "app": "aaps", "uploaderBattery": 50}),
    );
    assert_eq!(id, ns_identifier("undefined", VECTOR_DATE, None));
}

/// Every identifier v3 accepts can be read, updated and deleted through the path its Location
/// names; the ones no path can carry back are refused with 400 before anything is stored.
#[test]
fn identifiers_are_refused_unless_a_path_can_carry_them_back() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t = now_ms();
    for (i, bad) in ["cr\rlf", "lf\nx", "nul\0x", "dot.json", "a.b"]
        .into_iter()
        .enumerate()
    {
        let doc = with(
            treatment(t - i as i64 * MIN, "Note"),
            json!({ "identifier": bad }),
        );
        let r = v3.post("/treatments", &doc);
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text);
        let message = r.json()["message"].as_str().unwrap().to_string();
        assert!(message.starts_with("Bad identifier field"), "{message}");
        // In a batch: that item alone is refused.
        let r = v3.post("/treatments", &json!([doc]));
        assert_eq!(r.status, 207, "{}", r.text);
        assert_eq!(result(&r)[0]["status"], 400, "{}", r.text);
        // As the path of a PUT that would create it (a path's `.x` is an output format).
        if !bad.contains('.') {
            let r = v3.put(&format!("/treatments/{}", enc(bad)), &doc);
            assert_eq!(r.status, 400, "PUT {bad:?}: {}", r.text);
        }
    }
    assert!(v3.list("/treatments").is_empty(), "nothing was stored");

    for (i, good) in [
        "sl/ash",
        "pct%41",
        "a b",
        "q?x",
        "h#x",
        "p+x",
        "ü-ö",
        "xDrip-1234_5~",
    ]
    .into_iter()
    .enumerate()
    {
        let doc = with(
            treatment(t + i as i64 * MIN, "Note"),
            json!({ "identifier": good }),
        );
        let r = v3.post("/treatments", &doc);
        assert_eq!(r.status, 201, "{good:?}: {}", r.text);
        let location = r.header("location").unwrap().to_string();
        assert_eq!(location, format!("/api/v3/treatments/{}", enc(good)));
        let path = location.strip_prefix("/api/v3").unwrap();
        let r = v3.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        assert_eq!(result(&r)["identifier"], good);
        let r = v3.patch(path, &json!({ "notes": "patched" }));
        assert_eq!(r.status, 200, "PATCH {path}: {}", r.text);
        let r = v3.delete(path);
        assert_eq!(r.status, 200, "DELETE {path}: {}", r.text);
        assert_eq!(v3.get(path).status, 410, "{path}");
    }
}

/// `1e400` parses, but no double holds it: strict JSON decoders reject its echo and alarms read
/// infinity. Refused with 400 naming the field, at any depth, on v1 and v3 (and Socket.IO,
/// which goes through the same store functions: store::prepare's unit test).
#[test]
fn non_finite_numbers_are_refused_naming_the_field() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t = now_ms();
    let body = format!(r#"{{"type":"sgv","sgv":1e400,"date":{t}}}"#);
    let r = s.post_raw("/api/v1/entries", body.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.json()["message"],
        "entries[0].sgv: must be a finite number (at most about ±1.8e308)"
    );
    let body = format!(
        r#"[{{"eventType":"Note","created_at":"{}"}},{{"eventType":"Note","a":{{"b":[1,-1e309]}}}}]"#,
        iso(t)
    );
    let r = s.post_raw("/api/v1/treatments", body.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text);
    let message = r.json()["message"].as_str().unwrap().to_string();
    assert!(message.starts_with("treatments[1].a.b[1]: "), "{message}");
    assert!(s.list("/api/v1/entries.json").is_empty());
    assert!(s.list("/api/v1/treatments.json").is_empty());

    let body = format!(
        r#"{{"date":{t},"utcOffset":0,"app":"t","device":"d","eventType":"Note","carbs":1e400}}"#
    );
    let r = v3.send("POST", "/treatments", &[], Some(body.as_bytes()));
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.text.contains("carbs: must be a finite number"),
        "{}",
        r.text
    );
    let id = v3.create("treatments", &treatment(t, "Note"));
    let r = v3.send(
        "PATCH",
        &format!("/treatments/{id}"),
        &[],
        Some(br#"{"x":{"y":[-1e999]}}"#),
    );
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.text.contains("x.y[0]: must be a finite number"),
        "{}",
        r.text
    );
    assert!(v3.doc("treatments", &id).get("x").is_none());
}

#[test]
fn client_identifier_is_kept() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let r = v3.post(
        "/treatments",
        &with(
            treatment(now_ms(), "Note"),
            json!({"identifier": "client-ident-1"}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["identifier"], "client-ident-1");
    assert_eq!(
        r.header("location"),
        Some("/api/v3/treatments/client-ident-1")
    );
    assert_eq!(
        v3.doc("treatments", "client-ident-1")["identifier"],
        "client-ident-1"
    );
}

#[test]
fn dates_in_seconds_and_iso_are_understood() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    // Seconds.
    let id = v3.create(
        "treatments",
        &json!({"date": VECTOR_DATE / 1000, "app": "a", "device": "s", "eventType": "Note"}),
    );
    let doc = v3.doc("treatments", &id);
    assert_eq!(doc["date"], VECTOR_DATE, "{doc}");
    assert_eq!(doc["created_at"], "2017-04-09T06:03:50.000Z");
    assert_eq!(id, ns_identifier("s", VECTOR_DATE, Some("Note")));
    // ISO with an offset: utcOffset follows it.
    let id = v3.create(
        "treatments",
        &json!({"date": "2017-04-09T08:03:50+02:00", "app": "a", "device": "iso", "eventType": "Iso"}),
    );
    let doc = v3.doc("treatments", &id);
    assert_eq!(doc["date"], VECTOR_DATE, "{doc}");
    assert_eq!(doc["utcOffset"], 120, "{doc}");
    assert_eq!(doc["created_at"], "2017-04-09T06:03:50.000Z");
    // created_at alone dates the document.
    let id = v3.create(
        "treatments",
        &json!({"created_at": "2017-04-09T06:03:50.000Z", "app": "a", "device": "c", "eventType": "CreatedAt"}),
    );
    assert_eq!(v3.doc("treatments", &id)["date"], VECTOR_DATE);
}

#[test]
fn server_fields_are_never_taken_from_the_client() {
    let s = TestServer::start();
    let v3 = V3::new(&s, &jwt_named(&s, "Honest Harry", &["admin"]));
    let before = now_ms();
    let id = v3.create(
        "treatments",
        &with(
            treatment(now_ms() - MIN, "Note"),
            json!({"srvModified": 1, "srvCreated": 2, "subject": "Mallory",
                   "modifiedBy": "Mallory", "isValid": false}),
        ),
    );
    let doc = v3.doc("treatments", &id);
    assert!(ms(&doc["srvModified"]) >= before, "{doc}");
    assert!(ms(&doc["srvCreated"]) >= before, "{doc}");
    assert_eq!(doc["subject"], "Honest Harry", "{doc}");
    assert!(doc.get("modifiedBy").is_none(), "{doc}");
    assert!(
        doc.get("isValid").is_none() || doc["isValid"] == true,
        "{doc}"
    );
    assert_eq!(identifiers(&v3.list("/treatments")), vec![id.clone()]);
    // The history shows it as live too.
    let h = v3.list(&format!("/treatments/history/{}", before - 1));
    assert_eq!(h.len(), 1);
    assert!(
        h[0].get("isValid").is_none() || h[0]["isValid"] == true,
        "{}",
        h[0]
    );
}
