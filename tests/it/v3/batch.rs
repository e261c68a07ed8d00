//! API v3 207 batches.

use super::*;

#[test]
fn batch_post_answers_207_per_item_in_order() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t = now_ms() - 10 * MIN;
    let existing = v3.create(
        "treatments",
        &with(treatment(t, "Note"), json!({"identifier": "exists"})),
    );
    let items = json!([
        with(treatment(t + 1000, "Note"), json!({"notes": "first"})),
        {"app": "a", "eventType": "Note"},
        with(treatment(t, "Note"), json!({"identifier": existing, "notes": "dup"})),
        42,
        with(treatment(t + 2000, "Note"), json!({"identifier": "client-x", "utcOffset": 5000})),
        with(treatment(t + 3000, "Note"), json!({"identifier": "client-y"})),
    ]);
    let r = v3.post("/treatments", &items);
    assert_eq!(r.status, 207, "{}", r.text);
    let v = r.json();
    assert_eq!(v["status"], 207, "{v}");
    let res = v["result"].as_array().expect("result list");
    assert_eq!(res.len(), 6, "{v}");
    let statuses: Vec<&Value> = res.iter().map(|x| &x["status"]).collect();
    assert_eq!(
        statuses,
        vec![
            &json!(201),
            &json!(400),
            &json!(200),
            &json!(400),
            &json!(400),
            &json!(201)
        ],
        "{v}"
    );
    let first = ns_identifier("test-device", t + 1000, Some("Note"));
    assert_eq!(res[0]["identifier"], first.as_str(), "{v}");
    assert!(res[0]["lastModified"].is_i64(), "{v}");
    assert_eq!(res[1]["message"], "Bad or missing date field", "{v}");
    assert_eq!(res[2]["identifier"], "exists", "{v}");
    assert_eq!(res[2]["isDeduplication"], true, "{v}");
    assert_eq!(res[3]["message"], "Bad or missing request body", "{v}");
    assert_eq!(res[4]["message"], "Bad or missing utcOffset field", "{v}");
    assert_eq!(res[5]["identifier"], "client-y", "{v}");

    // The valid items are stored; the invalid are not.
    let stored = sorted_identifiers(&v3.list("/treatments"));
    let mut want = vec![first.clone(), "exists".to_string(), "client-y".to_string()];
    want.sort();
    assert_eq!(stored, want);
    assert_eq!(v3.doc("treatments", "exists")["notes"], "dup");

    // A retried batch: the stored items are deduplications.
    let r = v3.post("/treatments", &items);
    assert_eq!(r.status, 207, "{}", r.text);
    let res = r.json()["result"].as_array().unwrap().clone();
    for i in [0, 2, 5] {
        assert_eq!(res[i]["status"], 200, "{i}: {}", r.text);
        assert_eq!(res[i]["isDeduplication"], true, "{i}: {}", r.text);
    }
    assert_eq!(res[0]["identifier"], first.as_str());
    assert_eq!(v3.list("/treatments").len(), 3);

    // An array of one is still a batch.
    let r = v3.post("/treatments", &json!([treatment(t + 9000, "Note")]));
    assert_eq!(r.status, 207, "{}", r.text);
    let res = r.json()["result"].clone();
    assert_eq!(res.as_array().unwrap().len(), 1);
    assert_eq!(res[0]["status"], 201);
}

#[test]
fn failed_batch_item_keeps_its_client_identifier() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let r = v3.post(
        "/treatments",
        &json!([with(
            treatment(now_ms(), "Note"),
            json!({"identifier": "bad-one", "utcOffset": 5000})
        )]),
    );
    assert_eq!(r.status, 207, "{}", r.text);
    let res = &r.json()["result"][0];
    assert_eq!(res["status"], 400, "{res}");
    assert_eq!(res["identifier"], "bad-one", "{res}");
}
