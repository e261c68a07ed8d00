//! Many clients, and one that does not read.

use super::*;

/// Reads until a delta holds an sgv of `mgdl`; returns how long that took.
pub(super) async fn wait_for_sgv(
    ws: &mut Ws,
    mgdl: i64,
    within: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let deadline = start + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match ws.next(left).await {
            None => return Err(format!("no delta with {mgdl} within {within:?}")),
            Some(Ev::Json(v)) if is_delta_with(&v, "sgvs", |i| i["mgdl"] == mgdl) => {
                return Ok(start.elapsed())
            }
            Some(Ev::Json(_) | Ev::Ping(_) | Ev::Pong(_)) => {}
            Some(other) => return Err(format!("{other:?}")),
        }
    }
}

/// A client with a small receive buffer that stops reading after its snapshot.
pub(super) async fn stalled_client(port: u16) -> Ws {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let tcp = sock
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    let mut ws = Ws::over(tcp, port).await;
    let (auth, _) = ws.authorize(json!({ "secret": secret_sha1() })).await;
    assert_eq!(auth["ok"], true, "{auth}");
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_get_the_delta_while_one_does_not_read() {
    const CLIENTS: usize = 200;
    let s = Server::start().await;
    s.post("/api/v1/entries", &json!([sgv(now_ms() - MIN, 90)]))
        .await;

    let stalled = stalled_client(s.port).await;
    let mut clients = vec![];
    let started = Instant::now();
    for first in (0..CLIENTS - 1).step_by(50) {
        let batch: Vec<_> = (first..(first + 50).min(CLIENTS - 1))
            .map(|_| {
                let port = s.port;
                tokio::spawn(async move {
                    let mut ws = Ws::connect(port).await;
                    let (auth, snapshot) = ws.authorize(json!({ "secret": secret_sha1() })).await;
                    assert_eq!(auth["ok"], true, "{auth}");
                    assert_eq!(items(&snapshot.unwrap(), "sgvs").len(), 1);
                    ws
                })
            })
            .collect();
        for h in batch {
            clients.push(h.await.unwrap());
        }
    }
    assert_eq!(clients.len(), CLIENTS - 1);
    eprintln!(
        "{} clients connected and authorized in {:?}",
        CLIENTS,
        started.elapsed()
    );

    // Every reader gets the delta; the stalled client holds nobody up.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let first = wait_for_sgv(&mut ws, 250, Duration::from_secs(10)).await;
                (ws, first)
            })
        })
        .collect();
    let posted = Instant::now();
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 250)]))
        .await;
    let mut clients = vec![];
    let mut slowest = Duration::ZERO;
    for h in readers {
        let (ws, took) = h.await.unwrap();
        let took = took.unwrap_or_else(|e| panic!("a reading client: {e}"));
        slowest = slowest.max(took);
        clients.push(ws);
    }
    eprintln!(
        "the delta reached all {} readers within {slowest:?} of the POST ({:?} in all)",
        CLIENTS - 1,
        posted.elapsed()
    );
    assert!(slowest < Duration::from_secs(10), "{slowest:?}");

    // A burst of writes: every reader sees the last of them in order.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let last = wait_for_sgv(&mut ws, 399, Duration::from_secs(10)).await;
                (ws, last)
            })
        })
        .collect();
    for v in 380..400 {
        s.post("/api/v1/entries", &json!([sgv(now_ms(), v)])).await;
    }
    for h in readers {
        let (_ws, last) = h.await.unwrap();
        last.unwrap_or_else(|e| panic!("a reading client after the burst: {e}"));
    }

    // The server still answers HTTP.
    let r = s.get_auth("/api/v1/entries.json?count=1").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()[0]["sgv"], 399, "{}", r.text);
    drop(stalled);
}

/// Posts 12 notes of 512 KB (dated before `t`): their deltas are more than the kernel
/// holds for a connection here (tcp_wmem's 4 MB), so a client that does not read blocks the
/// server's writes to it.
pub(super) async fn fill_socket_buffers(s: &Server, t: i64) {
    let big = "x".repeat(512 * 1024);
    for round in 0..12 {
        s.post(
            "/api/v1/treatments",
            &json!([{ "eventType": "Note", "notes": big, "created_at": iso(t - round * MIN) }]),
        )
        .await;
    }
}

/// Reads what a stalled client was sent: the messages, whether one matched `pred`, and how
/// it ended ("nothing more (still open)" when the server kept the connection).
pub(super) async fn read_what_is_left(
    ws: &mut Ws,
    pred: impl Fn(&Value) -> bool,
) -> (usize, bool, String) {
    let mut matched = false;
    let mut frames = 0;
    let end = loop {
        match ws.next(Duration::from_secs(5)).await {
            None => break "nothing more (still open)".to_string(),
            Some(Ev::Json(v)) => {
                frames += 1;
                matched |= pred(&v);
            }
            Some(Ev::Ping(_) | Ev::Pong(_)) => {}
            Some(Ev::Close(code)) => break format!("close {code:?}"),
            Some(Ev::End(e)) => break format!("end: {e}"),
        }
    };
    (frames, matched, end)
}

/// A client that stops reading is dropped once its queue is full; the others carry on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_dropped() {
    let s = Server::start().await;
    let mut stalled = stalled_client(s.port).await;
    let mut reader = s.admin_client().await;
    let reading = tokio::spawn(async move {
        let r = wait_for_sgv(&mut reader, 39, Duration::from_secs(60)).await;
        (reader, r)
    });

    // Large deltas fill the socket buffers, then small ones the queue (256 frames; each
    // reading of 40 brings a delta and an urgent alarm).
    let t = now_ms();
    let started = Instant::now();
    fill_socket_buffers(&s, t).await;
    for i in 0..200 {
        s.post("/api/v1/entries", &json!([sgv(t + i + 1, 40 + (i % 2))]))
            .await;
    }
    s.post("/api/v1/entries", &json!([sgv(t + 1000, 39)])).await;
    let (_reader, r) = reading.await.unwrap();
    r.unwrap_or_else(|e| panic!("the reading client: {e}"));
    eprintln!(
        "writes for the slow-client test took {:?}",
        started.elapsed()
    );

    // The stalled client now reads what was buffered for it: the stream ends before the last
    // write reaches it.
    let (frames, saw_last, end) = read_what_is_left(&mut stalled, |v| {
        is_delta_with(v, "sgvs", |i| i["mgdl"] == 39)
    })
    .await;
    eprintln!("the stalled client read {frames} messages, then {end}");
    assert!(
        !saw_last,
        "the stalled client was not dropped ({frames} messages, {end})"
    );
    assert!(!end.starts_with("nothing more"), "{end}");

    // A new client is served.
    let mut ws = s.admin_client().await;
    ws.send(json!({ "type": "ping" })).await;
    assert_eq!(ws.until_type("pong").await["type"], "pong");
}
