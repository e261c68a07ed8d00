//! Clients of the live paths: a WebSocket client of `GET /ws` (tokio-tungstenite) and a
//! Socket.IO client (Engine.IO 4 over a WebSocket), for async (`#[tokio::test]`) tests.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long a message that should come may take (generous: the machine is shared).
pub const SOON: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub enum Ev {
    Json(Value),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>),
    /// The connection ended (without or after a close frame) or failed.
    End(String),
}

/// A named test on a received message.
pub type Pred = dyn Fn(&Value) -> bool;

pub struct Ws {
    pub ws: WebSocketStream<TcpStream>,
}

impl Ws {
    pub async fn connect(port: u16) -> Ws {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        Ws::over(tcp, port).await
    }

    pub async fn over(tcp: TcpStream, port: u16) -> Ws {
        let (ws, resp) = tokio_tungstenite::client_async(format!("ws://127.0.0.1:{port}/ws"), tcp)
            .await
            .unwrap();
        assert_eq!(resp.status(), 101);
        Ws { ws }
    }

    pub async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    /// The next event, or None when nothing came within `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Ev> {
        let msg = match tokio::time::timeout(within, self.ws.next()).await {
            Err(_) => return None,
            Ok(None) => return Some(Ev::End("stream ended".into())),
            Ok(Some(Err(e))) => return Some(Ev::End(e.to_string())),
            Ok(Some(Ok(m))) => m,
        };
        Some(match msg {
            Message::Text(t) => Ev::Json(
                serde_json::from_str(t.as_str())
                    .unwrap_or_else(|e| panic!("server sent non-JSON text ({e}): {t}")),
            ),
            Message::Binary(b) => panic!("server sent a binary message: {b:?}"),
            Message::Ping(p) => Ev::Ping(p.to_vec()),
            Message::Pong(p) => Ev::Pong(p.to_vec()),
            Message::Close(f) => Ev::Close(f.map(|f| u16::from(f.code))),
            Message::Frame(_) => panic!("raw frame"),
        })
    }

    /// The next JSON message (heartbeats skipped); panics on a timeout or the end.
    pub async fn json(&mut self) -> Value {
        let deadline = Instant::now() + SOON;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                None => panic!("no message within {SOON:?}"),
                Some(Ev::Json(v)) => return v,
                Some(Ev::Ping(_) | Ev::Pong(_)) => {}
                Some(other) => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// The first JSON message for which `pred` holds, within `within`; others are skipped.
    pub async fn until(
        &mut self,
        within: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        let mut seen = vec![];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                None => panic!("no {what} within {within:?}; got {seen:#?}"),
                Some(Ev::Json(v)) if pred(&v) => return v,
                Some(Ev::Json(v)) => seen.push(v),
                Some(Ev::Ping(_) | Ev::Pong(_)) => {}
                Some(other) => panic!("waiting for {what}: {other:?} after {seen:#?}"),
            }
        }
    }

    pub async fn until_type(&mut self, kind: &str) -> Value {
        self.until(SOON, kind, |v| v["type"] == kind).await
    }

    /// Messages matching each of `preds`, in whatever order they arrive (a delta and the
    /// alarm it raises come from different tasks, so either may be first).
    pub async fn until_each(&mut self, within: Duration, preds: &[(&str, &Pred)]) -> Vec<Value> {
        let deadline = Instant::now() + within;
        let mut found: Vec<Option<Value>> = vec![None; preds.len()];
        let mut seen = vec![];
        while found.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                None => {
                    let missing: Vec<&str> = preds
                        .iter()
                        .zip(&found)
                        .filter(|(_, f)| f.is_none())
                        .map(|((n, _), _)| *n)
                        .collect();
                    panic!("no {missing:?} within {within:?}; got {seen:#?}")
                }
                Some(Ev::Json(v)) => {
                    let slot = preds
                        .iter()
                        .zip(found.iter_mut())
                        .find(|((_, p), f)| f.is_none() && p(&v));
                    match slot {
                        Some((_, f)) => *f = Some(v),
                        None => seen.push(v),
                    }
                }
                Some(Ev::Ping(_) | Ev::Pong(_)) => {}
                Some(other) => panic!(
                    "waiting for {preds_n:?}: {other:?} after {seen:#?}",
                    preds_n = preds.iter().map(|p| p.0).collect::<Vec<_>>()
                ),
            }
        }
        found.into_iter().flatten().collect()
    }

    /// Every JSON message that arrives within `within`.
    pub async fn collect(&mut self, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        let mut out = vec![];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                None => return out,
                Some(Ev::Json(v)) => out.push(v),
                Some(Ev::Ping(_) | Ev::Pong(_)) => {}
                Some(other) => panic!("{other:?} after {out:#?}"),
            }
        }
    }

    /// Reads on to the close frame; returns its code (messages before it are skipped).
    pub async fn close_code(&mut self) -> Option<u16> {
        let deadline = Instant::now() + SOON;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                None => panic!("not closed within {SOON:?}"),
                Some(Ev::Close(code)) => return code,
                Some(Ev::End(e)) => panic!("the connection ended without a close frame: {e}"),
                Some(_) => {}
            }
        }
    }

    /// Sends an authorize with `creds` (plus `type`); returns the `auth` reply and, when it
    /// says ok, the full `dataUpdate` that follows it.
    pub async fn authorize(&mut self, mut creds: Value) -> (Value, Option<Value>) {
        creds["type"] = json!("authorize");
        self.send(creds).await;
        let auth = self.json().await;
        assert_eq!(auth["type"], "auth", "{auth}");
        if auth["ok"] != true {
            return (auth, None);
        }
        let snapshot = self.json().await;
        assert_eq!(snapshot["type"], "dataUpdate", "{snapshot}");
        assert_eq!(snapshot["delta"], false, "{snapshot}");
        (auth, Some(snapshot))
    }
}

/// A Socket.IO client, as far as the alarm and live-session tests need it.
pub struct Sio {
    pub ws: WebSocketStream<TcpStream>,
    next_id: u64,
}

/// The start of a Socket.IO packet of `kind` in `nsp`, as a message engine packet.
pub fn sio_prefix(kind: u8, nsp: &str) -> String {
    if nsp == "/" {
        format!("4{kind}")
    } else {
        format!("4{kind}{nsp},")
    }
}

impl Sio {
    pub async fn connect(port: u16) -> Sio {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let (ws, resp) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
        assert_eq!(resp.status(), 101);
        let mut sio = Sio { ws, next_id: 1 };
        let open = sio.packet(SOON).await.expect("an open packet");
        assert!(open.starts_with("0{"), "{open}");
        sio
    }

    pub async fn send(&mut self, text: String) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    /// The next engine packet (pings answered), None after `within` or at the end.
    pub async fn packet(&mut self, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) if t.as_str() == "2" => {
                    self.send("3".into()).await;
                }
                Ok(Some(Ok(Message::Text(t)))) => return Some(t.to_string()),
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) | Err(_) => return None,
            }
        }
    }

    /// Connects to a namespace and waits for the server's CONNECT.
    pub async fn join(&mut self, nsp: &str) {
        let prefix = sio_prefix(0, nsp);
        self.send(prefix.clone()).await;
        while let Some(p) = self.packet(SOON).await {
            if p.strip_prefix(&prefix)
                .is_some_and(|rest| nsp != "/" || !rest.starts_with('/'))
            {
                return;
            }
        }
        panic!("no CONNECT for {nsp}");
    }

    /// Emits an event without waiting for anything.
    pub async fn emit(&mut self, nsp: &str, args: &Value) {
        self.send(format!("{}{args}", sio_prefix(2, nsp))).await;
    }

    /// Emits an event with an ack id and returns the ack's first argument.
    pub async fn call(&mut self, nsp: &str, args: &Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(format!("{}{id}{args}", sio_prefix(2, nsp))).await;
        let prefix = format!("{}{id}", sio_prefix(3, nsp));
        while let Some(p) = self.packet(SOON).await {
            if let Some(rest) = p.strip_prefix(&prefix) {
                let v: Value = serde_json::from_str(rest).unwrap();
                return v[0].clone();
            }
        }
        panic!("no ack for {args}");
    }

    /// The events of `nsp` (name, first argument) that arrive within `within`.
    pub async fn events(&mut self, nsp: &str, within: Duration) -> Vec<(String, Value)> {
        let deadline = Instant::now() + within;
        let prefix = sio_prefix(2, nsp);
        let mut out = vec![];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(p) = self.packet(left).await else {
                return out;
            };
            if let Some(rest) = p.strip_prefix(&prefix).filter(|r| r.starts_with('[')) {
                let v: Value = serde_json::from_str(rest).unwrap();
                out.push((v[0].as_str().unwrap_or("").to_string(), v[1].clone()));
            }
        }
    }

    /// Waits for event `name` on `nsp`.
    pub async fn until_event(&mut self, nsp: &str, name: &str) -> Value {
        let deadline = Instant::now() + SOON;
        let mut seen = vec![];
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            for (n, v) in self.events(nsp, left.min(Duration::from_millis(200))).await {
                if n == name {
                    return v;
                }
                seen.push(n);
            }
        }
        panic!("no {name} on {nsp} within {SOON:?}; got {seen:?}");
    }
}
