//! Connection caps and timeouts (docs/security.md#connections-and-timeouts).

use super::fanout::{fill_socket_buffers, read_what_is_left, stalled_client, wait_for_sgv};
use super::*;

/// A POST that sends its head and the first byte of a 1 MB body, then nothing.
async fn slow_post(port: u16) -> TcpStream {
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST /api/v1/entries HTTP/1.1\r\nHost: 127.0.0.1\r\napi-secret: {}\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n[",
        secret_sha1()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp
}

/// What the server sends on `tcp` within `within`: its first bytes, "" when it closed, None
/// when it sent nothing and kept the connection open.
async fn answer(tcp: &mut TcpStream, within: Duration) -> Option<String> {
    let mut buf = vec![0u8; 64];
    match tokio::time::timeout(within, tcp.read(&mut buf)).await {
        Err(_) => None,
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&buf[..n]).to_string()),
        Ok(Err(_)) => Some(String::new()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_hold_only_their_maximum_while_a_normal_client_is_served() {
    let s = Server::with(&[
        ("NIGHTLITE_MAX_CONNECTIONS", "16"),
        ("NIGHTLITE_MAX_UNAUTHENTICATED_SOCKETS", "3"),
        ("NIGHTLITE_BODY_TIMEOUT_SECS", "2"),
    ])
    .await;
    let mut admin = s.admin_client().await;

    // Sockets that never authorize: three are let in, the fourth (either protocol) is not.
    let mut idle_sockets = vec![];
    for _ in 0..3 {
        idle_sockets.push(s.connect().await);
    }
    let tcp = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
    match tokio_tungstenite::client_async(format!("ws://127.0.0.1:{}/ws", s.port), tcp).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 503);
        }
        other => panic!("a fourth unauthenticated socket: {:?}", other.map(|r| r.1)),
    }
    let r = s.raw("/socket.io/?EIO=4&transport=polling", None).await;
    assert_eq!(r.status, 503, "{}", r.text);

    // Uploads that trickle: they hold a connection each, until the body timeout.
    let mut slow = vec![];
    for _ in 0..4 {
        slow.push(slow_post(s.port).await);
    }

    // A normal client is served meanwhile, and the authorized socket gets its delta.
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 142)]))
        .await;
    wait_for_sgv(&mut admin, 142, SOON).await.unwrap();
    assert_eq!(s.get_auth("/api/v1/entries?count=1").await.status, 200);

    // The slow uploads are answered (or closed) once their body is overdue.
    for tcp in &mut slow {
        let got = answer(tcp, Duration::from_secs(20)).await;
        assert!(
            got.as_deref()
                .is_some_and(|a| a.is_empty() || a.starts_with("HTTP/1.1 4")),
            "a slow upload still holds its connection: {got:?}"
        );
    }
    drop(slow);

    // The connection cap: beyond 16 open connections, new ones are answered 503 and closed.
    let mut held = vec![];
    let mut refused = 0;
    for _ in 0..20 {
        let mut tcp = TcpStream::connect(("127.0.0.1", s.port)).await.unwrap();
        match answer(&mut tcp, Duration::from_millis(300)).await {
            Some(a) if a.starts_with("HTTP/1.1 503") => refused += 1,
            _ => held.push(tcp),
        }
    }
    assert!(
        refused > 0,
        "no connection was refused ({} held)",
        held.len()
    );
    assert!(held.len() <= 16, "{} connections held", held.len());
    drop(held);
    drop(idle_sockets);
    // Freed: served again.
    let deadline = Instant::now() + SOON;
    while s.get_auth("/api/v1/entries?count=1").await.status != 200 {
        assert!(
            Instant::now() < deadline,
            "not served after the connections closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_that_stops_reading_is_dropped_after_the_write_timeout() {
    let s = Server::with(&[("NIGHTLITE_WRITE_TIMEOUT_SECS", "1")]).await;
    let mut stalled = stalled_client(s.port).await;
    // Enough to fill the socket buffers, far too little to fill the session's queue.
    fill_socket_buffers(&s, now_ms()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (frames, _, end) = read_what_is_left(&mut stalled, |_| false).await;
    assert!(
        !end.starts_with("nothing more"),
        "still open after {frames} messages"
    );
}
