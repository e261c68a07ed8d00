//! Found while writing these tests: message size, sgv without type or as a string, shutdown,
//! deflate offers.

use super::raw::*;
use super::*;

#[tokio::test]
async fn a_message_over_one_mib_is_refused_with_1009() {
    let s = Server::start().await;
    let mut raw = Raw::upgrade(s.port, None).await;
    let authorize = json!({ "type": "authorize", "secret": secret_sha1() }).to_string();
    raw.send_frame(0x81, authorize.as_bytes()).await;
    assert_eq!(Raw::text(&raw.frame().await)["ok"], true);
    let _snapshot = raw.frame().await;
    // The header of a 2 MiB text frame, its mask and the first bytes.
    let mut f = vec![0x81u8, 0x80 | 127];
    f.extend_from_slice(&(2u64 << 20).to_be_bytes());
    f.extend_from_slice(&[1, 2, 3, 4]);
    f.extend_from_slice(b"{\"type\":");
    raw.tcp.write_all(&f).await.unwrap();
    let f = raw.frame().await;
    assert_eq!(f.opcode(), 0x8, "a close frame: {f:?}");
    assert_eq!(
        u16::from_be_bytes([f.payload[0], f.payload[1]]),
        1009,
        "{f:?}"
    );
}

#[tokio::test]
async fn an_sgv_entry_without_type_raises_alarms() {
    let s = Server::start().await;
    let mut ws = s.admin_client().await;
    s.post(
        "/api/v1/entries",
        &json!([{ "sgv": 300, "date": now_ms(), "device": "bridge" }]),
    )
    .await;
    let got = ws
        .until_each(
            Duration::from_secs(15),
            &[
                ("the delta", &|v| {
                    is_delta_with(v, "sgvs", |i| i["mgdl"] == 300)
                }),
                ("urgent_alarm", &|v| v["type"] == "urgent_alarm"),
            ],
        )
        .await;
    assert_eq!(items(&got[0], "sgvs").len(), 1);
}

#[tokio::test]
async fn an_sgv_sent_as_a_string_is_a_number_for_clients_and_alarms() {
    let s = Server::start().await;
    let mut ws = s.admin_client().await;
    s.post(
        "/api/v1/entries",
        &json!([{ "type": "sgv", "sgv": "290", "date": now_ms(), "device": "bridge" }]),
    )
    .await;
    // The alarm comes from the server's alarm task, the delta from the socket's own task:
    // either may arrive first, so wait for both in any order.
    let got = ws
        .until_each(
            Duration::from_secs(15),
            &[
                ("the delta", &|v| {
                    v["type"] == "dataUpdate" && v["delta"] == true
                }),
                ("urgent_alarm", &|v| v["type"] == "urgent_alarm"),
            ],
        )
        .await;
    assert_eq!(items(&got[0], "sgvs")[0]["mgdl"], 290, "{}", got[0]);
}

#[tokio::test]
async fn stopping_the_server_closes_sockets_with_1001() {
    let s = Server::start().await;
    let mut ws = s.admin_client().await;
    let start = Instant::now();
    let stopping = tokio::task::spawn_blocking(move || drop(s));
    let code = ws.close_code().await;
    assert_eq!(code, Some(1001));
    stopping.await.unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "stopping took {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn deflate_offers_the_server_cannot_honour_are_declined() {
    let s = Server::start().await;
    let raw = Raw::upgrade(
        s.port,
        Some("permessage-deflate; server_max_window_bits=10"),
    )
    .await;
    assert!(raw.head.starts_with("HTTP/1.1 101"), "{}", raw.head);
    if let Some(ext) = raw.header("sec-websocket-extensions") {
        let bits = ext
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("server_max_window_bits="))
            .find_map(|v| v.trim().parse::<u8>().ok());
        assert!(
            bits.is_some_and(|b| b <= 10),
            "accepted without honouring server_max_window_bits=10: {ext}"
        );
    }
    let raw = Raw::upgrade(s.port, Some("permessage-deflate; foo=1")).await;
    assert!(raw.head.starts_with("HTTP/1.1 101"), "{}", raw.head);
    assert_eq!(
        raw.header("sec-websocket-extensions"),
        None,
        "an offer with an unknown parameter must be declined"
    );
    // The offer a server can honour after the one it cannot is the one taken.
    let raw = Raw::upgrade(
        s.port,
        Some("permessage-deflate; foo=1, permessage-deflate; client_max_window_bits"),
    )
    .await;
    assert!(
        raw.header("sec-websocket-extensions")
            .is_some_and(|e| e.starts_with("permessage-deflate")),
        "{}",
        raw.head
    );
}
