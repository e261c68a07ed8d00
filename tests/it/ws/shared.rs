//! Shared snapshots (src/live/snapshots.rs).

use super::deltas::entries_only_watch_and_a_private_note;
use super::*;

#[tokio::test]
async fn a_shared_snapshot_is_renewed_by_a_new_post() {
    let s = Server::start().await;
    let t = now_ms();
    s.post("/api/v1/entries", &json!([sgv(t - 10 * MIN, 110)]))
        .await;

    // Two clients asking for the same thing with nothing committed in between share one
    // build: the very same message, down to lastUpdated.
    let mut first = s.connect().await;
    let (_, one) = first.authorize(json!({ "secret": secret_sha1() })).await;
    let one = one.unwrap();
    let mut second = s.connect().await;
    let (_, two) = second.authorize(json!({ "secret": secret_sha1() })).await;
    let two = two.unwrap();
    assert_eq!(one, two, "shared snapshot");
    assert_eq!(items(&one, "sgvs").len(), 1, "{one}");

    // A client connected (so subscribed) before the POST, authorizing after it.
    let mut early = s.connect().await;
    s.post("/api/v1/entries", &json!([sgv(t - 5 * MIN, 120)]))
        .await;
    first
        .until(SOON, "the delta of the new sgv", |v| {
            is_delta_with(v, "sgvs", |i| i["mgdl"] == 120)
        })
        .await;

    // A client connecting after the POST gets it in its snapshot, not the stale shared one.
    let mut third = s.connect().await;
    let (_, three) = third.authorize(json!({ "secret": secret_sha1() })).await;
    let three = three.unwrap();
    let mgdls: Vec<&Value> = items(&three, "sgvs").iter().map(|i| &i["mgdl"]).collect();
    assert_eq!(mgdls, [&json!(110), &json!(120)], "{three}");

    // The early client has the new reading, in its snapshot or as a delta.
    let (_, early_snap) = early.authorize(json!({ "secret": secret_sha1() })).await;
    let early_snap = early_snap.unwrap();
    if !items(&early_snap, "sgvs").iter().any(|i| i["mgdl"] == 120) {
        early
            .until(SOON, "the new sgv as a delta", |v| {
                is_delta_with(v, "sgvs", |i| i["mgdl"] == 120)
            })
            .await;
    }
}

#[tokio::test]
async fn shared_snapshots_hold_only_what_each_client_may_read() {
    let s = Server::start().await;
    let (token, _) = entries_only_watch_and_a_private_note(&s).await;

    // A full-access client first, then a reader of entries only, then full access again:
    // each gets the snapshot of what it may read, whatever was built before it.
    let mut admin = s.connect().await;
    let (_, full) = admin.authorize(json!({ "secret": secret_sha1() })).await;
    let full = full.unwrap();
    assert_eq!(items(&full, "treatments").len(), 1, "{full}");

    let mut watch = s.connect().await;
    let (auth, limited) = watch.authorize(json!({ "token": token })).await;
    assert_eq!(auth["ok"], true, "{auth}");
    let limited = limited.unwrap();
    assert_eq!(items(&limited, "sgvs").len(), 1, "{limited}");
    assert_eq!(items(&limited, "treatments"), &[] as &[Value], "{limited}");
    assert!(!limited.to_string().contains("private"), "{limited}");

    let mut admin2 = s.connect().await;
    let (_, full2) = admin2.authorize(json!({ "secret": secret_sha1() })).await;
    let full2 = full2.unwrap();
    assert_eq!(items(&full2, "treatments").len(), 1, "{full2}");
}

#[tokio::test]
async fn shared_deltas_follow_each_clients_permissions() {
    let s = Server::start().await;
    s.create_role("entries-only", &["api:entries:read"]).await;
    let token = s.create_subject("Watch", &["entries-only"]).await;
    // Readers of entries only and full readers, interleaved, so whichever session builds a
    // commit's shared delta first, the others must not get a frame for other permissions.
    let mut watchers = vec![];
    let mut admins = vec![];
    for _ in 0..2 {
        let mut w = s.connect().await;
        let (auth, _) = w.authorize(json!({ "token": token })).await;
        assert_eq!(auth["ok"], true, "{auth}");
        watchers.push(w);
        let mut a = s.connect().await;
        a.authorize(json!({ "secret": secret_sha1() })).await;
        admins.push(a);
    }
    s.post(
        "/api/v1/treatments",
        &json!([{ "eventType": "Note", "notes": "for admins", "created_at": iso(now_ms()) }]),
    )
    .await;
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 140)]))
        .await;
    for a in &mut admins {
        a.until(SOON, "the treatment delta", |v| {
            is_delta_with(v, "treatments", |i| i["notes"] == "for admins")
        })
        .await;
        a.until(SOON, "the sgv delta", |v| {
            is_delta_with(v, "sgvs", |i| i["mgdl"] == 140)
        })
        .await;
    }
    for w in &mut watchers {
        // The treatment was committed first: a leaked delta would come before the sgv's.
        let mut got = vec![
            w.until(SOON, "the sgv delta (or a leak)", |v| {
                is_delta_with(v, "sgvs", |i| i["mgdl"] == 140)
                    || v.get("treatments").is_some()
                    || v.to_string().contains("for admins")
            })
            .await,
        ];
        got.extend(w.collect(Duration::from_millis(300)).await);
        for msg in &got {
            assert!(msg.get("treatments").is_none(), "{msg}");
            assert!(!msg.to_string().contains("for admins"), "{msg}");
        }
    }
}
