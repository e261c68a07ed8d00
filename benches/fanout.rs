//! WebSocket fan-out benchmark: 200 clients on /ws; for each of a number of v1 POSTs, the time
//! from sending the POST to the 200th client holding the delta, and the server's RSS idle and
//! with the clients connected. Run with `cargo bench --bench fanout` (it builds and starts the
//! release server binary); results go to stdout and bench-results/fanout-<unix>.json.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

const CLIENTS: usize = 200;

const ROUNDS: usize = 30;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(18_999)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// One raw HTTP/1.1 POST (no client library: measure the server, not a client's overhead).
fn post(port: u16, path: &str, body: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    Ok(std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_nightlite");
    let dir = std::env::temp_dir().join(format!("nightlite-fanout-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let port = free_port();
    let mut child = match Command::new(bin)
        .env("API_SECRET", "fanout-bench-secret")
        // Clients read without credentials and the bench posts without them.
        .env("AUTH_DEFAULT_ROLES", "readable careportal admin")
        // Its clients authorize by the default roles, which count as unauthenticated.
        .env("NIGHTLITE_MAX_UNAUTHENTICATED_SOCKETS", "1000")
        .env("PORT", port.to_string())
        .env("HOSTNAME", "127.0.0.1")
        .env("NIGHTLITE_DATA_DIR", &dir)
        .env("NIGHTLITE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start {bin}: {e}");
            return;
        }
    };
    let pid = child.id();
    for _ in 0..100 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let rss_idle = rss_kib(pid);
    eprintln!("server {pid} up on {port}, RSS {rss_idle} KiB");

    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("no runtime: {e}");
            let _ = child.kill();
            return;
        }
    };
    let (per_round, rss_clients) = rt.block_on(async move {
        let ready = Arc::new(Barrier::new(CLIENTS + 1));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
        for _ in 0..CLIENTS {
            let ready = ready.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let url = format!("ws://127.0.0.1:{port}/ws");
                let Ok((mut ws, _)) = tokio_tungstenite::connect_async(url).await else {
                    ready.wait().await;
                    return;
                };
                let _ = ws
                    .send(Message::Text(r#"{"type":"authorize","history":1}"#.into()))
                    .await;
                // auth, then the snapshot
                let _ = ws.next().await;
                let _ = ws.next().await;
                ready.wait().await;
                while let Some(Ok(msg)) = ws.next().await {
                    if let Message::Text(t) = msg {
                        const MARK: &str = "\"device\":\"fanout-";
                        if let Some(i) = t.find(MARK) {
                            let rest = &t[i + MARK.len()..];
                            let round: usize = rest
                                .split('"')
                                .next()
                                .and_then(|n| n.parse().ok())
                                .unwrap_or(usize::MAX);
                            let _ = tx.send((round, Instant::now()));
                        }
                    }
                }
            });
        }
        ready.wait().await;
        eprintln!("{CLIENTS} clients connected and authorized");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rss_clients = rss_kib(pid);
        let mut per_round = vec![];
        for round in 0..ROUNDS {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            let body = format!(
                r#"[{{"type":"sgv","sgv":{},"date":{now_ms},"device":"fanout-{round}"}}]"#,
                100 + round
            );
            let sent = Instant::now();
            let status = tokio::task::spawn_blocking(move || post(port, "/api/v1/entries", &body))
                .await
                .ok()
                .and_then(Result::ok);
            if status != Some(200) {
                eprintln!("round {round}: POST answered {status:?}");
                continue;
            }
            let mut got = 0;
            let mut last = sent;
            let deadline = sent + Duration::from_secs(10);
            while got < CLIENTS {
                match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                    Ok(Some((r, at))) if r == round => {
                        got += 1;
                        last = at;
                    }
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
            per_round.push((got, last.duration_since(sent).as_secs_f64() * 1000.0));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (per_round, rss_clients)
    });
    let rss_after = rss_kib(pid);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let complete = per_round.iter().filter(|(got, _)| *got == CLIENTS).count();
    let mut ms: Vec<f64> = per_round.iter().map(|(_, ms)| *ms).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let report = serde_json::json!({
        "clients": CLIENTS,
        "rounds": ROUNDS,
        "rounds_reaching_every_client": complete,
        "commit_to_last_client_ms": {
            "p50": percentile(&ms, 0.5),
            "p90": percentile(&ms, 0.9),
            "max": ms.last().copied().unwrap_or(0.0),
        },
        "rss_kib": { "idle": rss_idle, "with_clients": rss_clients, "after_rounds": rss_after },
        "machine": { "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()) },
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    println!(
        "| {CLIENTS} WebSocket clients | POST → 200th client p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms ({complete}/{ROUNDS} rounds complete) | RSS idle {} KiB, with clients {} KiB, after {} KiB |",
        percentile(&ms, 0.5),
        percentile(&ms, 0.9),
        ms.last().copied().unwrap_or(0.0),
        rss_idle,
        rss_clients,
        rss_after
    );
    let _ = std::fs::create_dir_all("bench-results");
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let _ = std::fs::write(
        format!("bench-results/fanout-{stamp}.json"),
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    );
}
