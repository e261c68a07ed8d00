//! Heartbeats and the close handshake.

use super::raw::*;
use super::*;

#[tokio::test]
async fn the_server_sends_heartbeat_pings() {
    let s = Server::start().await;
    let mut ws = s.admin_client().await;
    // The first heartbeat goes out at once, the next after 25 s; wait for one at most 30 s.
    let mut ws2 = s.connect().await;
    let payload = match ws2.next(Duration::from_secs(30)).await {
        Some(Ev::Ping(p)) => p,
        other => panic!("expected a ping frame, got {other:?}"),
    };
    assert!(payload.len() <= 125);
    // tungstenite answered that ping; the connection is still good.
    let (auth, _) = ws2.authorize(json!({ "secret": secret_sha1() })).await;
    assert_eq!(auth["ok"], true);
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.until_type("pong").await["type"], "pong");
}

#[tokio::test]
async fn the_server_answers_pings() {
    let s = Server::start().await;
    let mut ws = s.admin_client().await;
    ws.ws
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let deadline = Instant::now() + SOON;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws.next(left).await {
            Some(Ev::Pong(p)) => {
                assert_eq!(p, b"are you there");
                break;
            }
            None => panic!("no pong"),
            Some(Ev::Ping(_)) => {}
            Some(other) => panic!("{other:?}"),
        }
    }
    let before = now_ms();
    ws.send(json!({ "type": "ping" })).await;
    let pong = ws.until_type("pong").await;
    let now = pong["now"].as_i64().expect("now");
    assert!(now >= before && now <= now_ms() + 1, "{pong}");
}

#[tokio::test]
async fn unknown_messages_get_an_error_and_close_is_answered() {
    let s = Server::start().await;
    let mut ws = s.admin_client().await;
    ws.send(json!({ "type": "frobnicate" })).await;
    let e = ws.until_type("error").await;
    assert!(e["message"].as_str().unwrap().contains("frobnicate"), "{e}");
    ws.ws.send(Message::Close(None)).await.unwrap();
    assert_eq!(ws.close_code().await, Some(1000));
}

#[tokio::test]
async fn an_unmasked_client_frame_is_a_protocol_error() {
    let s = Server::start().await;
    let mut raw = Raw::upgrade(s.port, None).await;
    raw.tcp.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
    let f = raw.frame().await;
    assert_eq!(f.opcode(), 0x8, "a close frame: {f:?}");
    assert_eq!(f.payload[..2], 1002u16.to_be_bytes(), "{f:?}");
}
