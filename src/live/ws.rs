//! `GET /ws`: nightlite's plain WebSocket protocol (docs/websocket.md). JSON text messages;
//! a client authorizes, gets a full `dataUpdate`, then deltas, storage events for the
//! collections it subscribed to, and alarms. Each client has a bounded outgoing queue: a client
//! that does not keep up is dropped (and told to resync when the bus outran it), so no client
//! slows the writer or the others.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::{header, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, mpsc};

use super::wsproto::{self, Decoder, Message};
use super::{alarms, ddata};
use crate::auth::{Access, Credentials};
use crate::dates::now_ms;
use crate::error::{Error, Result};
use crate::store::changes::{ChangeSet, Op};
use crate::store::{self, Collection};
use crate::State;

/// Frames waiting for a slow client; beyond this it is dropped.
const OUT_QUEUE: usize = 256;
const HEARTBEAT: Duration = Duration::from_secs(25);
/// No frame from the client for this long: it is gone.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(70);
const DEFAULT_HISTORY_H: f64 = 24.0;
const MAX_HISTORY_H: f64 = 48.0;
/// Close codes: 1008 policy violation (refused credentials), 4000 resync needed.
const CLOSE_POLICY: u16 = 1008;
const CLOSE_RESYNC: u16 = 4000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/ws", web::get().to(upgrade));
}

async fn upgrade(req: HttpRequest, payload: web::Payload, state: State) -> Result<HttpResponse> {
    let h = req.headers();
    let has = |name: header::HeaderName, token: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case(token)))
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err(Error::bad_request(
            "this endpoint speaks WebSocket only (Upgrade: websocket)",
        ));
    }
    if h.get(header::SEC_WEBSOCKET_VERSION)
        .and_then(|v| v.to_str().ok())
        != Some("13")
    {
        return Err(Error::bad_request(
            "unsupported WebSocket version (13 required)",
        ));
    }
    let key = h
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Error::bad_request("Sec-WebSocket-Key missing"))?;
    let deflate = wsproto::negotiate_deflate(
        h.get(header::SEC_WEBSOCKET_EXTENSIONS)
            .and_then(|v| v.to_str().ok()),
    );
    let Some(slot) = state.live.unauthenticated.take() else {
        return Ok(super::too_many_sockets());
    };
    let (tx, rx) = mpsc::channel::<Bytes>(OUT_QUEUE);
    let ip = crate::auth::request::client_ip(&req, &state.auth.trust_proxy);
    let session = Session {
        state: state.clone(),
        out: tx,
        deflate: deflate.is_some(),
        access: None,
        creds: None,
        unauthenticated: Some(slot),
        subscribed: HashSet::new(),
        ip,
        ticket: 0,
    };
    actix_web::rt::spawn(session.run(payload));
    let mut res = HttpResponse::build(StatusCode::SWITCHING_PROTOCOLS);
    res.upgrade("websocket")
        .insert_header((header::SEC_WEBSOCKET_ACCEPT, wsproto::accept_key(key)));
    if let Some(ext) = deflate {
        res.insert_header((header::SEC_WEBSOCKET_EXTENSIONS, ext));
    }
    Ok(res.streaming(super::body::FrameBody::new(rx)))
}

/// The close code for a protocol error: too large (1009) or malformed (1002).
fn close_code(e: &wsproto::ProtoError) -> u16 {
    if *e == wsproto::ProtoError::TooLarge {
        1009
    } else {
        1002
    }
}

struct Session {
    state: State,
    out: mpsc::Sender<Bytes>,
    deflate: bool,
    access: Option<Access>,
    /// The credentials `access` came from, re-checked when subjects or roles change.
    creds: Option<Credentials>,
    /// Held until the client authorizes with a token or the secret (`Live::unauthenticated`).
    unauthenticated: Option<crate::connlimits::Slot>,
    subscribed: HashSet<Collection>,
    ip: Option<std::net::IpAddr>,
    /// Taken right after subscribing to the bus, for shared snapshots (`live::snapshots`).
    ticket: u64,
}

/// Why a session ends.
enum End {
    Gone,
    Close(u16),
}

impl Session {
    /// Queues a frame; a full queue means the client does not keep up.
    fn frame(&self, bytes: Vec<u8>) -> std::result::Result<(), End> {
        self.frame_bytes(Bytes::from(bytes))
    }

    fn frame_bytes(&self, bytes: Bytes) -> std::result::Result<(), End> {
        self.out.try_send(bytes).map_err(|_| End::Gone)
    }

    fn send(&self, v: &Value) -> std::result::Result<(), End> {
        self.frame(wsproto::text_frame(&v.to_string(), self.deflate))
    }

    fn can_read(&self, c: Collection) -> bool {
        self.access
            .as_ref()
            .is_some_and(|a| a.can(&format!("api:{}:read", c.table())))
    }

    async fn run(mut self, mut payload: web::Payload) {
        // Subscribe before anything is read, so no change between the snapshot and the
        // first delta is missed (a client may see a document twice; items carry `_id`).
        let mut bus = self.state.store.subscribe();
        self.ticket = self.state.live.snapshots.ticket();
        let mut events = self.state.live.events.subscribe();
        let mut stopping = self.state.live.stopping();
        let mut auth_changes = self.state.auth.changes();
        let mut decoder = Decoder::new(self.deflate);
        let mut heartbeat = actix_web::rt::time::interval(HEARTBEAT);
        let mut last_seen = Instant::now();
        let end = loop {
            tokio::select! {
                chunk = payload.next() => {
                    let Some(Ok(bytes)) = chunk else { break End::Gone };
                    last_seen = Instant::now();
                    if let Err(e) = decoder.push(&bytes) {
                        break End::Close(close_code(&e));
                    }
                    match self.drain(&mut decoder).await {
                        Ok(()) => {}
                        Err(end) => break end,
                    }
                }
                set = bus.recv() => match set {
                    Ok(set) if !set.overflow => if let Err(end) = self.changes(&set) { break end },
                    // Too much changed at once to send, or fell behind: the client reloads.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = self.send(&json!({ "type": "resync", "message": "too far behind; reconnect" }));
                        break End::Close(CLOSE_RESYNC);
                    }
                    Err(broadcast::error::RecvError::Closed) => break End::Close(1001),
                },
                ev = events.recv() => match ev {
                    Ok(n) if self.access.as_ref().is_some_and(|a| a.can(n.needs)) => {
                        let mut msg = Map::new();
                        msg.insert("type".into(), n.event.into());
                        msg.insert("notify".into(), n.payload.clone());
                        if let Err(end) = self.send(&Value::Object(msg)) { break end }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break End::Close(1001),
                },
                _ = stopping.changed() => break End::Close(1001),
                Ok(()) = auth_changes.changed() => if let Err(end) = self.recheck().await { break end },
                _ = heartbeat.tick() => {
                    if last_seen.elapsed() > CLIENT_TIMEOUT {
                        break End::Gone;
                    }
                    if let Err(end) = self.frame(wsproto::control_frame(0x9, b"nl")) { break end }
                }
            }
        };
        if let End::Close(code) = end {
            let _ = self.frame(wsproto::close_frame(code));
        }
    }

    /// Subjects or roles changed: the session keeps only what its credentials allow now, at
    /// once; one that may no longer read is told so and closed (1008), as at `authorize`.
    async fn recheck(&mut self) -> std::result::Result<(), End> {
        let Some(creds) = &self.creds else {
            return Ok(());
        };
        let access = self.state.auth.recheck(creds).await;
        if !access.can("api:entries:read") {
            self.access = None;
            self.subscribed.clear();
            self.send(
                &json!({ "type": "auth", "ok": false, "status": 401, "message": "Unauthorized" }),
            )?;
            return Err(End::Close(CLOSE_POLICY));
        }
        self.subscribed
            .retain(|c| access.can(&format!("api:{}:read", c.table())));
        self.access = Some(access);
        Ok(())
    }

    /// Handles every whole message received so far.
    async fn drain(&mut self, decoder: &mut Decoder) -> std::result::Result<(), End> {
        loop {
            let msg = match decoder.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(()),
                Err(e) => return Err(End::Close(close_code(&e))),
            };
            match msg {
                Message::Text(t) => self.command(&t).await?,
                Message::Binary(_) => self
                    .send(&json!({ "type": "error", "message": "binary messages are not used" }))?,
                Message::Ping(p) => self.frame(wsproto::control_frame(0xA, &p))?,
                Message::Pong(_) => {}
                Message::Close(_) => return Err(End::Close(1000)),
            }
        }
    }

    async fn command(&mut self, text: &str) -> std::result::Result<(), End> {
        let Ok(Value::Object(cmd)) = serde_json::from_str::<Value>(text) else {
            return self.send(
                &json!({ "type": "error", "message": "messages are JSON objects with a type" }),
            );
        };
        let kind = cmd.get("type").and_then(Value::as_str).unwrap_or("");
        let text_of = |k: &str| cmd.get(k).and_then(Value::as_str).map(str::to_string);
        match kind {
            "authorize" => {
                let creds = Credentials {
                    secret: text_of("secret"),
                    bearer: text_of("jwt"),
                    token: text_of("token"),
                };
                let access = self.state.auth.resolve(&creds, self.ip).await;
                let read = access.can("api:entries:read");
                if !read {
                    self.send(&json!({ "type": "auth", "ok": false, "status": 401, "message": "Unauthorized" }))?;
                    return Err(End::Close(CLOSE_POLICY));
                }
                let write = access.can("api:entries:create");
                let write_treatment = access.can("api:treatments:create");
                // The viewer offers Edit and Delete only to callers the REST API would let.
                let update_treatment = access.can("api:treatments:update");
                let delete_treatment = access.can("api:treatments:delete");
                if !access.defaults {
                    self.unauthenticated = None;
                }
                self.access = Some(access);
                self.creds = Some(creds);
                self.send(&json!({
                    "type": "auth", "ok": true,
                    "read": read, "write": write, "write_treatment": write_treatment,
                    "update_treatment": update_treatment, "delete_treatment": delete_treatment,
                }))?;
                let hours = cmd
                    .get("history")
                    .and_then(Value::as_f64)
                    .filter(|h| h.is_finite() && *h > 0.0)
                    .unwrap_or(DEFAULT_HISTORY_H)
                    .min(MAX_HISTORY_H);
                self.snapshot(hours).await?;
                // An alarm already sounding shows on a freshly opened page at once, not at
                // the engine's next evaluation.
                match self.state.live.current_alarm() {
                    Some(n) if self.access.as_ref().is_some_and(|a| a.can(n.needs)) => {
                        let mut msg = Map::new();
                        msg.insert("type".into(), n.event.into());
                        msg.insert("notify".into(), n.payload.clone());
                        self.send(&Value::Object(msg))
                    }
                    _ => Ok(()),
                }
            }
            _ if self.access.is_none() => {
                self.send(&json!({ "type": "error", "status": 401, "message": "authorize first" }))
            }
            "subscribe" => {
                let asked: Vec<String> = cmd
                    .get("collections")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut granted = vec![];
                for name in asked {
                    match Collection::from_name(&name) {
                        Some(c) if self.can_read(c) => {
                            self.subscribed.insert(c);
                            granted.push(name);
                        }
                        _ => {}
                    }
                }
                self.send(&json!({ "type": "subscribed", "collections": granted }))
            }
            // Silencing is for everyone, so it needs Nightscout's ack permission, not just read.
            "ack" if !self.access.as_ref().is_some_and(|a| a.can(alarms::ACK)) => self.send(
                &json!({ "type": "error", "status": 401, "message": format!("acknowledging alarms needs {}", alarms::ACK) }),
            ),
            "ack" => {
                let level = cmd.get("level").and_then(Value::as_u64).unwrap_or(1).min(2) as u8;
                let group = text_of("group").unwrap_or_else(|| "default".into());
                let silence = cmd.get("silenceTime").and_then(Value::as_i64);
                self.state.live.ack(level, &group, silence);
                Ok(())
            }
            "ping" => self.send(&json!({ "type": "pong", "now": now_ms() })),
            other => self.send(
                &json!({ "type": "error", "message": format!("unknown message type '{other}'") }),
            ),
        }
    }

    /// The full `dataUpdate` for the last `hours`, shared with the clients that ask for the
    /// same at about the same time (see `live::snapshots`: `run` subscribed to the bus, then
    /// took the ticket, before any command was read).
    async fn snapshot(&self, hours: f64) -> std::result::Result<(), End> {
        let readable = ddata::readable(|c| self.can_read(c));
        let shared = &self.state.live.snapshots;
        match shared
            .get(&self.state.store, readable, hours, self.ticket)
            .await
        {
            Ok(snap) => self.frame_bytes(snap.ws_frame(self.deflate)),
            Err(e) => {
                tracing::error!(error = %e, "snapshot for a WebSocket client failed");
                self.send(
                    &json!({ "type": "error", "status": 500, "message": "could not load data" }),
                )
            }
        }
    }

    /// A commit's changes: a dataUpdate delta, and storage events for subscribed collections.
    fn changes(&self, set: &Arc<ChangeSet>) -> std::result::Result<(), End> {
        if self.access.is_none() {
            return Ok(());
        }
        // Sessions that may read the same collections send the same frame: built once.
        let readable = super::snapshots::readable_bits(|c| self.can_read(c));
        let frame = self
            .state
            .live
            .deltas
            .frame(set, readable, self.deflate, || {
                let mut delta = ddata::delta(set, |c| self.can_read(c), now_ms())?;
                if let Some(obj) = delta.as_object_mut() {
                    obj.insert("type".into(), "dataUpdate".into());
                }
                Some(Bytes::from(wsproto::text_frame(
                    &delta.to_string(),
                    self.deflate,
                )))
            });
        if let Some(frame) = frame {
            self.frame_bytes(frame)?;
        }
        for c in set
            .changes
            .iter()
            .filter(|c| self.subscribed.contains(&c.collection))
        {
            let kind = match c.op {
                Op::Insert => "create",
                Op::Update => "update",
                Op::Delete => "delete",
            };
            let doc = match &c.doc {
                Some(d) => Value::Object(store::v3::view(c.collection, d)),
                None => json!({ "identifier": c.identifier, "_id": c.id }),
            };
            self.send(&json!({ "type": kind, "collection": c.collection.table(), "doc": doc }))?;
        }
        Ok(())
    }
}
