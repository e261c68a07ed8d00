//! Deltas after v1 and v3 writes, storage events, and what each client may read.

use super::*;

#[tokio::test]
async fn a_v1_post_arrives_as_a_delta_within_a_second() {
    let s = Server::start().await;
    let mut ws = s.admin_client().await;

    let date = now_ms();
    let start = Instant::now();
    let id = s
        .post_one("/api/v1/entries", &json!([sgv(date, 157)]))
        .await;
    let delta = ws
        .until(SOON, "an sgv delta", |v| {
            is_delta_with(v, "sgvs", |i| i["mgdl"] == 157)
        })
        .await;
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "delta after {took:?}");
    let item = &items(&delta, "sgvs")[0];
    assert_eq!(item["_id"], id.as_str(), "{item}");
    assert_eq!(item["mills"], date, "{item}");
    assert_eq!(item["direction"], "Flat", "{item}");
    assert!(delta["lastUpdated"].as_i64().unwrap() >= date, "{delta}");
    assert!(
        delta.get("treatments").is_none(),
        "only what changed: {delta}"
    );

    let start = Instant::now();
    let tid = s
        .post_one(
            "/api/v1/treatments",
            &json!([{ "eventType": "Carb Correction", "carbs": 12, "created_at": iso(now_ms()) }]),
        )
        .await;
    let delta = ws
        .until(SOON, "a treatment delta", |v| {
            is_delta_with(v, "treatments", |i| i["_id"] == tid.as_str())
        })
        .await;
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "delta after {took:?}");
    let item = &items(&delta, "treatments")[0];
    assert_eq!(item["carbs"], 12, "{item}");
    assert_eq!(item["eventType"], "Carb Correction", "{item}");
    assert!(item["mills"].is_i64(), "{item}");
}

#[tokio::test]
async fn a_v3_post_arrives_as_a_delta_within_a_second() {
    let s = Server::start().await;
    let token = s.create_subject("Uploader", &["admin"]).await;
    let bearer = format!("Bearer {}", s.jwt_for(&token).await);
    let mut ws = s.admin_client().await;

    let date = now_ms();
    let start = Instant::now();
    let r = s
        .http(
            "POST",
            "/api/v3/treatments",
            &[("Authorization", &bearer)],
            Some(&json!({
                "date": date, "utcOffset": 0, "app": "ws-tests", "device": "phone",
                "eventType": "Meal Bolus", "insulin": 2.25, "carbs": 30
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let identifier = r.json()["identifier"].as_str().unwrap().to_string();
    let delta = ws
        .until(SOON, "a treatment delta", |v| {
            is_delta_with(v, "treatments", |i| i["insulin"] == 2.25)
        })
        .await;
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "delta after {took:?}");
    let item = &items(&delta, "treatments")[0];
    assert_eq!(item["mills"], date, "{item}");
    assert_eq!(item["identifier"], identifier.as_str(), "{item}");
    assert!(item["_id"].is_string(), "{item}");

    let start = Instant::now();
    let r = s
        .http(
            "POST",
            "/api/v3/entries",
            &[("Authorization", &bearer)],
            Some(&json!({ "date": date, "app": "ws-tests", "device": "cgm", "type": "sgv", "sgv": 188, "direction": "FortyFiveUp" })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let delta = ws
        .until(SOON, "an sgv delta", |v| {
            is_delta_with(v, "sgvs", |i| i["mgdl"] == 188)
        })
        .await;
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "delta after {took:?}");
    assert_eq!(items(&delta, "sgvs")[0]["direction"], "FortyFiveUp");
}

#[tokio::test]
async fn a_v1_delete_arrives_as_a_remove() {
    let s = Server::start().await;
    let t = now_ms() - 3 * MIN;
    let tid = s
        .post_one(
            "/api/v1/treatments",
            &json!([{ "eventType": "Note", "notes": "oops", "created_at": iso(t) }]),
        )
        .await;
    let eid = s.post_one("/api/v1/entries", &json!([sgv(t, 99)])).await;
    let mut ws = s.admin_client().await;

    let r = s.delete(&format!("/api/v1/treatments/{tid}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let delta = ws
        .until(SOON, "a treatment removal", |v| {
            is_delta_with(v, "treatments", |i| i["_id"] == tid.as_str())
        })
        .await;
    let removed = &items(&delta, "treatments")[0];
    assert_eq!(
        removed,
        &json!({ "_id": tid, "mills": t, "action": "remove" }),
        "{delta}"
    );

    let r = s.delete(&format!("/api/v1/entries/{eid}")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let delta = ws
        .until(SOON, "an entry removal", |v| {
            is_delta_with(v, "sgvs", |i| i["_id"] == eid.as_str())
        })
        .await;
    let removed = &items(&delta, "sgvs")[0];
    assert_eq!(removed["action"], "remove", "{delta}");
    assert_eq!(removed["mills"], t, "{delta}");

    // A new client's snapshot no longer holds either.
    let mut ws = s.connect().await;
    let (_, snapshot) = ws.authorize(json!({ "secret": secret_sha1() })).await;
    let snapshot = snapshot.unwrap();
    assert_eq!(
        items(&snapshot, "treatments"),
        &[] as &[Value],
        "{snapshot}"
    );
    assert_eq!(items(&snapshot, "sgvs"), &[] as &[Value], "{snapshot}");
}

#[tokio::test]
async fn a_subscribed_client_gets_storage_events() {
    let s = Server::start().await;
    let token = s.create_subject("Sync", &["admin"]).await;
    let bearer = format!("Bearer {}", s.jwt_for(&token).await);
    let mut ws = s.admin_client().await;
    ws.send(json!({ "type": "subscribe", "collections": ["treatments", "bogus"] }))
        .await;
    let reply = ws.until_type("subscribed").await;
    assert_eq!(reply["collections"], json!(["treatments"]), "{reply}");

    let before = now_ms();
    let date = now_ms() - MIN;
    let r = s
        .http(
            "POST",
            "/api/v3/treatments",
            &[("Authorization", &bearer)],
            Some(&json!({ "date": date, "app": "ws-tests", "device": "phone", "eventType": "Note", "notes": "one" })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let identifier = r.json()["identifier"].as_str().unwrap().to_string();
    let created = ws.until_type("create").await;
    assert_eq!(created["collection"], "treatments", "{created}");
    let doc = &created["doc"];
    assert_eq!(doc["identifier"], identifier.as_str(), "{created}");
    assert_eq!(doc["notes"], "one", "{created}");
    assert_eq!(doc["date"], date, "{created}");
    let m1 = doc["srvModified"].as_i64().expect("srvModified");
    assert!(m1 >= before, "srvModified {m1} before {before}");

    let r = s
        .http(
            "PATCH",
            &format!("/api/v3/treatments/{identifier}"),
            &[("Authorization", &bearer)],
            Some(&json!({ "notes": "two" })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let updated = ws.until_type("update").await;
    assert_eq!(updated["collection"], "treatments", "{updated}");
    assert_eq!(
        updated["doc"]["identifier"],
        identifier.as_str(),
        "{updated}"
    );
    assert_eq!(updated["doc"]["notes"], "two", "{updated}");
    let m2 = updated["doc"]["srvModified"].as_i64().expect("srvModified");
    assert!(m2 > m1, "srvModified {m1} → {m2}");

    let r = s
        .http(
            "DELETE",
            &format!("/api/v3/treatments/{identifier}"),
            &[("Authorization", &bearer)],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let deleted = ws.until_type("delete").await;
    assert_eq!(deleted["collection"], "treatments", "{deleted}");
    assert_eq!(
        deleted["doc"]["identifier"],
        identifier.as_str(),
        "{deleted}"
    );
    let m3 = deleted["doc"]["srvModified"].as_i64().expect("srvModified");
    assert!(m3 > m2, "srvModified {m2} → {m3}");

    // Entries were not subscribed to: a delta, but no storage event.
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 120)]))
        .await;
    ws.until(SOON, "an sgv delta", |v| {
        is_delta_with(v, "sgvs", |i| i["mgdl"] == 120)
    })
    .await;
    let more = ws.collect(Duration::from_millis(300)).await;
    assert!(
        more.iter().all(|v| v["collection"] != "entries"),
        "{more:#?}"
    );
}

/// A subject "Watch" that may read entries only (its token), and, two minutes ago (`t`), an
/// sgv of 130 and a Note treatment whose text is "private".
pub(super) async fn entries_only_watch_and_a_private_note(s: &Server) -> (String, i64) {
    s.create_role("entries-only", &["api:entries:read"]).await;
    let token = s.create_subject("Watch", &["entries-only"]).await;
    let t = now_ms() - 2 * MIN;
    s.post("/api/v1/entries", &json!([sgv(t, 130)])).await;
    s.post(
        "/api/v1/treatments",
        &json!([{ "eventType": "Note", "notes": "private", "created_at": iso(t) }]),
    )
    .await;
    (token, t)
}

#[tokio::test]
async fn a_client_sees_only_the_collections_it_may_read() {
    let s = Server::start().await;
    let (token, t) = entries_only_watch_and_a_private_note(&s).await;
    s.post(
        "/api/v1/devicestatus",
        &json!([{ "device": "rig", "created_at": iso(t), "uploaderBattery": 50 }]),
    )
    .await;

    let mut ws = s.connect().await;
    let (auth, snapshot) = ws.authorize(json!({ "token": token })).await;
    assert_eq!(auth["ok"], true, "{auth}");
    assert_eq!(auth["write"], false, "{auth}");
    assert_eq!(auth["write_treatment"], false, "{auth}");
    let snapshot = snapshot.unwrap();
    assert_eq!(items(&snapshot, "sgvs").len(), 1, "{snapshot}");
    assert_eq!(
        items(&snapshot, "treatments"),
        &[] as &[Value],
        "{snapshot}"
    );
    assert_eq!(
        items(&snapshot, "devicestatus"),
        &[] as &[Value],
        "{snapshot}"
    );
    assert!(!snapshot.to_string().contains("private"), "{snapshot}");

    ws.send(
        json!({ "type": "subscribe", "collections": ["treatments", "entries", "devicestatus"] }),
    )
    .await;
    let reply = ws.until_type("subscribed").await;
    assert_eq!(reply["collections"], json!(["entries"]), "{reply}");

    s.post(
        "/api/v1/treatments",
        &json!([{ "eventType": "Note", "notes": "secret note", "created_at": iso(now_ms()) }]),
    )
    .await;
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 131)]))
        .await;
    let mut got = vec![
        ws.until(SOON, "an sgv delta", |v| {
            is_delta_with(v, "sgvs", |i| i["mgdl"] == 131)
        })
        .await,
    ];
    got.extend(ws.collect(Duration::from_millis(400)).await);
    for msg in &got {
        assert!(msg.get("treatments").is_none(), "{msg}");
        assert_ne!(msg["collection"], "treatments", "{msg}");
        assert!(!msg.to_string().contains("secret note"), "{msg}");
    }
    assert!(
        got.iter()
            .any(|m| m["type"] == "create" && m["collection"] == "entries"),
        "the entries storage event: {got:#?}"
    );
}
