//! permessage-deflate, with the client written by hand.

use super::raw::*;
use super::*;

#[tokio::test]
async fn permessage_deflate_compresses_large_messages() {
    let s = Server::start().await;
    let t = now_ms();
    let batch: Vec<Value> = (0..40).map(|i| sgv(t - i * 5 * MIN, 100 + i)).collect();
    s.post("/api/v1/entries", &Value::Array(batch)).await;

    let mut raw = Raw::upgrade(s.port, Some("permessage-deflate; client_max_window_bits")).await;
    assert!(raw.head.starts_with("HTTP/1.1 101"), "{}", raw.head);
    assert_eq!(
        raw.header("sec-websocket-accept"),
        Some(ACCEPT),
        "{}",
        raw.head
    );
    let ext = raw.header("sec-websocket-extensions").unwrap_or("");
    assert!(ext.starts_with("permessage-deflate"), "{}", raw.head);
    assert!(
        raw.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
        "{}",
        raw.head
    );

    let authorize = json!({ "type": "authorize", "secret": secret_sha1() }).to_string();
    raw.send_frame(0x81, authorize.as_bytes()).await;
    let auth = raw.frame().await;
    assert!(!auth.rsv1(), "short messages go uncompressed: {auth:?}");
    assert_eq!(Raw::text(&auth)["ok"], true);
    let snap = raw.frame().await;
    assert!(
        snap.rsv1(),
        "the snapshot is compressed (RSV1): {:x}",
        snap.first
    );
    let snapshot = Raw::text(&snap);
    assert_eq!(snapshot["type"], "dataUpdate");
    let sgvs = items(&snapshot, "sgvs");
    assert_eq!(sgvs.len(), 40, "{snapshot}");
    let plain_len = snapshot.to_string().len();
    assert!(
        snap.payload.len() * 3 < plain_len,
        "compressed {} of {plain_len} bytes",
        snap.payload.len()
    );

    // A compressed message from the client is understood too.
    let ping = deflate(json!({ "type": "ping" }).to_string().as_bytes());
    raw.send_frame(0xC1, &ping).await;
    let pong = raw.frame().await;
    assert_eq!(Raw::text(&pong)["type"], "pong", "{pong:?}");

    // A large delta is compressed as well.
    let batch: Vec<Value> = (0..20).map(|i| sgv(now_ms() - i * MIN, 200 + i)).collect();
    s.post("/api/v1/entries", &Value::Array(batch)).await;
    // A (small, uncompressed) alarm for these high readings may come first.
    let mut delta = raw.frame().await;
    for _ in 0..5 {
        if Raw::text(&delta)["type"] == "dataUpdate" {
            break;
        }
        delta = raw.frame().await;
    }
    assert!(delta.rsv1(), "{:x}", delta.first);
    let delta = Raw::text(&delta);
    assert_eq!(delta["delta"], true, "{delta}");
    assert_eq!(items(&delta, "sgvs").len(), 20, "{delta}");
}

#[tokio::test]
async fn the_upgrade_answer_spells_sec_websocket_accept_as_the_rfc() {
    let s = Server::start().await;
    let raw = Raw::upgrade(s.port, Some("permessage-deflate")).await;
    assert_eq!(
        raw.header_exact("Sec-WebSocket-Accept"),
        Some(ACCEPT),
        "{}",
        raw.head
    );
    assert!(
        raw.header_exact("Sec-WebSocket-Extensions").is_some(),
        "{}",
        raw.head
    );
}

#[tokio::test]
async fn without_the_offer_nothing_is_compressed() {
    let s = Server::start().await;
    let t = now_ms();
    let batch: Vec<Value> = (0..40).map(|i| sgv(t - i * 5 * MIN, 100 + i)).collect();
    s.post("/api/v1/entries", &Value::Array(batch)).await;
    let mut raw = Raw::upgrade(s.port, None).await;
    assert!(raw.head.starts_with("HTTP/1.1 101"), "{}", raw.head);
    assert_eq!(raw.header("sec-websocket-extensions"), None, "{}", raw.head);
    let authorize = json!({ "type": "authorize", "secret": secret_sha1() }).to_string();
    raw.send_frame(0x81, authorize.as_bytes()).await;
    let _auth = raw.frame().await;
    let snap = raw.frame().await;
    assert!(!snap.rsv1(), "{:x}", snap.first);
    assert_eq!(items(&Raw::text(&snap), "sgvs").len(), 40);
}

#[tokio::test]
async fn a_plain_get_of_ws_is_refused() {
    let s = Server::start().await;
    let r = s.get("/ws").await;
    assert_eq!(r.status, 400, "{}", r.text);
}
