//! One Engine.IO session and the Socket.IO namespaces it joined. Transports (polling requests,
//! a WebSocket) only move engine packets in and out; this task owns the protocol: heartbeats,
//! Nightscout's events (lib/server/websocket.js, lib/api3/storageSocket.js, alarmSocket.js),
//! and the data pushed from the change bus and the alarms.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use tokio::sync::{broadcast, mpsc, Notify};

use super::packet::{self, Eio, Kind, Packet};
use crate::auth::{Access, Credentials};
use crate::dates::now_ms;
use crate::documents::{self, Action, Caller};
use crate::live::{alarms, ddata};
use crate::store::changes::{ChangeSet, Op};
use crate::store::prepare::prepare;
use crate::store::upsert::{Merge, Written};
use crate::store::{self, Collection};
use crate::State;

/// Outgoing packets a client may leave unread before its session is closed.
const MAX_QUEUE: usize = 1024;
/// Incoming packets, and their bytes, waiting for the session's task: a client that sends
/// faster than they are handled has its session closed (docs/security.md).
pub const MAX_INCOMING: usize = 1024;
const MAX_INCOMING_BYTES: usize = 2 * MAX_PAYLOAD;
/// The largest polling POST body and WebSocket message, as engine.io's default
/// maxHttpBufferSize (1e6 bytes); announced to clients as `maxPayload`.
pub const MAX_PAYLOAD: usize = 1_000_000;

enum Incoming {
    Packet(String),
    ConnectMainV3,
}

struct Inner {
    queue: VecDeque<String>,
    upgraded: bool,
    closed: bool,
}

pub struct Session {
    pub sid: String,
    pub eio: Eio,
    inner: Mutex<Inner>,
    output: Notify,
    incoming: mpsc::Sender<Incoming>,
    /// Bytes of the packets in `incoming`.
    incoming_bytes: AtomicUsize,
}

impl Session {
    fn ping_interval(eio: Eio) -> Duration {
        let _ = eio;
        Duration::from_millis(25_000)
    }

    fn ping_timeout(eio: Eio) -> Duration {
        match eio {
            Eio::V3 => Duration::from_millis(5_000),
            Eio::V4 => Duration::from_millis(20_000),
        }
    }

    /// A new session, registered with the engine, its task running.
    pub fn start(
        state: State,
        eio: Eio,
        websocket: bool,
        ip: Option<std::net::IpAddr>,
        slot: crate::connlimits::Slot,
    ) -> Arc<Session> {
        let mut raw = [0u8; 15];
        let _ = getrandom::getrandom(&mut raw);
        let sid = crate::auth::jwt::b64url_encode(&raw);
        let (tx, rx) = mpsc::channel(MAX_INCOMING);
        let s = Arc::new(Session {
            sid,
            eio,
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                upgraded: websocket,
                closed: false,
            }),
            output: Notify::new(),
            incoming: tx,
            incoming_bytes: AtomicUsize::new(0),
        });
        state.socketio.insert(s.clone());
        actix_web::rt::spawn(Task::new(s.clone(), state, ip, slot).run(rx));
        s
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Engine.IO's OPEN packet.
    pub fn open_packet(&self) -> String {
        format!(
            "{}{}",
            packet::OPEN,
            json!({
                "sid": self.sid,
                "upgrades": if self.upgraded() { json!([]) } else { json!(["websocket"]) },
                "pingInterval": Self::ping_interval(self.eio).as_millis() as u64,
                "pingTimeout": Self::ping_timeout(self.eio).as_millis() as u64,
                "maxPayload": MAX_PAYLOAD,
            })
        )
    }

    /// socket.io 2.x clients are connected to `/` by the server, unasked.
    pub fn connect_main_v3(&self) {
        let _ = self.incoming.try_send(Incoming::ConnectMainV3);
        self.push("40".into());
    }

    fn push(&self, engine_packet: String) {
        let mut inner = self.lock();
        if inner.closed {
            return;
        }
        if inner.queue.len() >= MAX_QUEUE {
            // The client does not read: give up on it rather than hold memory for it.
            inner.closed = true;
            drop(inner);
            self.output.notify_waiters();
            return;
        }
        inner.queue.push_back(engine_packet);
        drop(inner);
        self.output.notify_one();
    }

    pub fn take(&self) -> Vec<String> {
        self.lock().queue.drain(..).collect()
    }

    /// Queues a packet from the client for the session's task; false (and the session
    /// closed) when the client has more waiting than MAX_INCOMING packets or bytes.
    pub fn receive(&self, engine_packet: String) -> bool {
        let len = engine_packet.len();
        let queued = self.incoming_bytes.fetch_add(len, Ordering::AcqRel) + len;
        if queued > MAX_INCOMING_BYTES
            || self
                .incoming
                .try_send(Incoming::Packet(engine_packet))
                .is_err()
        {
            self.incoming_bytes.fetch_sub(len, Ordering::AcqRel);
            tracing::debug!(sid = %self.sid, "Socket.IO client sent too much: session closed");
            self.close();
            return false;
        }
        true
    }

    pub fn upgraded(&self) -> bool {
        self.lock().upgraded
    }

    /// Ends a pending long-poll with a noop (during the upgrade probe).
    pub fn release_poll(&self) {
        self.push(packet::NOOP.to_string());
    }

    /// The WebSocket took over: a waiting poll returns (with a noop) and no new one is served.
    pub fn mark_upgraded(&self) {
        self.lock().upgraded = true;
        self.output.notify_waiters();
    }

    pub fn close(&self) {
        self.lock().closed = true;
        self.output.notify_waiters();
        self.output.notify_one();
        // A full queue ends the task just as well: it sees `closed` on its next tick.
        let _ = self
            .incoming
            .try_send(Incoming::Packet(packet::CLOSE.to_string()));
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub async fn wait_output(&self) {
        self.output.notified().await;
    }

    /// A long-poll: what is queued, or what arrives within the ping interval.
    pub async fn poll(&self) -> Vec<String> {
        let deadline = Instant::now() + Self::ping_interval(self.eio);
        loop {
            {
                let mut inner = self.lock();
                if inner.upgraded {
                    return vec![packet::NOOP.to_string()];
                }
                if inner.closed {
                    return vec![packet::CLOSE.to_string()];
                }
                if !inner.queue.is_empty() {
                    return inner.queue.drain(..).collect();
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return vec![packet::NOOP.to_string()];
            }
            tokio::select! {
                _ = self.output.notified() => {}
                _ = actix_web::rt::time::sleep(left) => {}
            }
        }
    }
}

/// What a `/storage` socket needs to receive a collection's events.
fn storage_permission(c: Collection) -> String {
    if c == Collection::Settings {
        "api:settings:admin".to_string()
    } else {
        format!("api:{}:read", c.table())
    }
}

/// Per-namespace state of a session.
#[derive(Default)]
struct Namespaces {
    main: bool,
    /// Set by `authorize` on `/`.
    main_access: Option<Access>,
    data_room: bool,
    storage: bool,
    storage_rooms: HashSet<Collection>,
    alarm: bool,
    /// What the `/alarm` socket may do: the default roles from its connect, then those of
    /// its last good `subscribe`. Alarms are sent only to sockets that may read them.
    alarm_access: Option<Access>,
    /// The credentials each namespace was granted with (None: the default roles), so that
    /// a change of subjects or roles re-checks them (`Task::recheck`).
    main_creds: Option<Credentials>,
    storage_creds: Option<Credentials>,
    alarm_creds: Option<Credentials>,
}

struct Task {
    s: Arc<Session>,
    state: State,
    ip: Option<std::net::IpAddr>,
    ns: Namespaces,
    awaiting_pong: Option<Instant>,
    last_heard: Instant,
    /// Taken right after subscribing to the bus, for shared snapshots (`live::snapshots`).
    ticket: u64,
    /// Held until a namespace authorizes with a token or the secret (`Live::unauthenticated`).
    unauthenticated: Option<crate::connlimits::Slot>,
}

impl Task {
    fn new(
        s: Arc<Session>,
        state: State,
        ip: Option<std::net::IpAddr>,
        slot: crate::connlimits::Slot,
    ) -> Task {
        Task {
            s,
            state,
            ip,
            unauthenticated: Some(slot),
            ns: Namespaces::default(),
            awaiting_pong: None,
            last_heard: Instant::now(),
            ticket: 0,
        }
    }

    fn send(&self, p: &Packet) {
        self.s.push(format!("{}{}", packet::MESSAGE, p.encode()));
    }

    fn emit(&self, nsp: &str, event: &str, args: Vec<Value>) {
        let mut data = vec![Value::String(event.to_string())];
        data.extend(args);
        self.send(&Packet::new(
            Kind::Event,
            nsp,
            None,
            Some(Value::Array(data)),
        ));
    }

    fn ack(&self, nsp: &str, id: Option<u64>, args: Vec<Value>) {
        if let Some(id) = id {
            self.send(&Packet::new(
                Kind::Ack,
                nsp,
                Some(id),
                Some(Value::Array(args)),
            ));
        }
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Incoming>) {
        let mut bus = self.state.store.subscribe();
        self.ticket = self.state.live.snapshots.ticket();
        let mut events = self.state.live.events.subscribe();
        let clients_tx = self.state.socketio.clients();
        let mut clients = clients_tx.subscribe();
        let mut stopping = self.state.live.stopping();
        let mut auth_changes = self.state.auth.changes();
        let interval = Session::ping_interval(self.s.eio);
        let timeout = Session::ping_timeout(self.s.eio);
        let mut tick = actix_web::rt::time::interval(Duration::from_secs(1));
        let mut next_ping = Instant::now() + interval;
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Incoming::Packet(p)) => {
                        let len = p.len();
                        // Saturating: close() queues a CLOSE it did not count.
                        let _ = self.s.incoming_bytes.fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| Some(b.saturating_sub(len)));
                        self.last_heard = Instant::now();
                        if !self.engine_packet(&p).await { break }
                    }
                    Some(Incoming::ConnectMainV3) => self.join_main(&clients_tx),
                    None => break,
                },
                set = bus.recv() => match set {
                    Ok(set) if !set.overflow => self.changes(&set),
                    // Fell behind, or too much changed at once to send: Socket.IO clients
                    // reconnect and reload on disconnect.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                ev = events.recv() => {
                    if let Ok(n) = ev {
                        if self.ns.alarm && self.ns.alarm_access.as_ref().is_some_and(|a| a.can(n.needs)) {
                            self.emit("/alarm", n.event, vec![n.payload.clone()]);
                        }
                    }
                }
                changed = clients.changed() => {
                    if changed.is_ok() && self.ns.main {
                        let n = *clients.borrow_and_update();
                        self.emit("/", "clients", vec![n.into()]);
                    }
                }
                _ = stopping.changed() => break,
                Ok(()) = auth_changes.changed() => self.recheck().await,
                _ = tick.tick() => {
                    if self.s.is_closed() { break }
                    let now = Instant::now();
                    match self.s.eio {
                        // v4: the server pings and expects a pong within the timeout.
                        Eio::V4 => {
                            if self.awaiting_pong.is_some_and(|since| now.duration_since(since) > timeout) {
                                break;
                            }
                            if now >= next_ping {
                                self.s.push(packet::PING.to_string());
                                self.awaiting_pong.get_or_insert(now);
                                next_ping = now + interval;
                            }
                        }
                        // v3: the client pings; silence longer than interval + timeout ends it.
                        Eio::V3 => {
                            if now.duration_since(self.last_heard) > interval + timeout {
                                break;
                            }
                        }
                    }
                }
            }
        }
        self.s.close();
        self.state.socketio.remove(&self.s.sid);
        if self.ns.main {
            clients_tx.send_modify(|n| *n = n.saturating_sub(1));
        }
    }

    /// Handles one engine packet; false ends the session.
    async fn engine_packet(&mut self, p: &str) -> bool {
        let mut chars = p.chars();
        match chars.next() {
            Some(packet::PING) => {
                self.s.push(format!("{}{}", packet::PONG, chars.as_str()));
                true
            }
            Some(packet::PONG) => {
                self.awaiting_pong = None;
                true
            }
            Some(packet::CLOSE) => false,
            Some(packet::MESSAGE) => {
                match Packet::decode(chars.as_str()) {
                    Ok(pkt) => self.socket_packet(pkt).await,
                    Err(e) => {
                        tracing::debug!(error = e, "refused a Socket.IO packet");
                        let err = match self.s.eio {
                            Eio::V4 => json!({ "message": e }),
                            Eio::V3 => json!(e),
                        };
                        self.send(&Packet::new(Kind::Error, "/", None, Some(err)));
                    }
                }
                true
            }
            _ => true,
        }
    }

    /// Subjects or roles changed: each namespace gets what its credentials allow now, at
    /// once (docs/security.md#alarms-and-live-sessions). Credentials that no longer resolve
    /// leave `/` as a failed `authorize` does; `/storage` and `/alarm` keep only what remains.
    async fn recheck(&mut self) {
        let state = self.state.clone();
        let auth = &state.auth;
        if let Some(creds) = &self.ns.main_creds.clone() {
            let access = auth.recheck(creds).await;
            if access.failed {
                self.send(&Packet::new(Kind::Disconnect, "/", None, None));
                self.leave_main();
                self.ns.main_access = None;
                self.ns.main_creds = None;
            } else {
                self.ns.data_room &= access.can("api:*:read");
                self.ns.main_access = Some(access);
            }
        }
        if let Some(creds) = &self.ns.storage_creds {
            let access = auth.recheck(creds).await;
            self.ns
                .storage_rooms
                .retain(|c| access.subject.is_some() && access.can(&storage_permission(*c)));
        }
        if self.ns.alarm_access.is_some() {
            let creds = self.ns.alarm_creds.clone().unwrap_or_default();
            self.ns.alarm_access = Some(auth.recheck(&creds).await);
        }
    }

    fn leave_main(&mut self) {
        if self.ns.main {
            self.ns.main = false;
            self.ns.data_room = false;
            self.state
                .socketio
                .clients()
                .send_modify(|n| *n = n.saturating_sub(1));
        }
    }

    fn join_main(&mut self, clients: &tokio::sync::watch::Sender<usize>) {
        if !self.ns.main {
            self.ns.main = true;
            clients.send_modify(|n| *n += 1);
        }
    }

    async fn socket_packet(&mut self, p: Packet) {
        match p.kind {
            Kind::Connect => self.connect(&p.nsp),
            Kind::Disconnect => match p.nsp.as_str() {
                "/" => self.leave_main(),
                "/storage" => self.ns.storage = false,
                "/alarm" => self.ns.alarm = false,
                _ => {}
            },
            Kind::Event => {
                let Some((name, args)) = p.event() else {
                    return;
                };
                let (name, args) = (name.to_string(), args.to_vec());
                match p.nsp.as_str() {
                    "/" if self.ns.main => self.main_event(&name, &args, p.id).await,
                    "/storage" if self.ns.storage && name == "subscribe" => {
                        self.storage_subscribe(args.first(), p.id).await
                    }
                    "/alarm" if self.ns.alarm => self.alarm_event(&name, &args, p.id).await,
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn connect(&mut self, nsp: &str) {
        let known = matches!(nsp, "/" | "/storage" | "/alarm");
        if !known {
            let err = match self.s.eio {
                Eio::V4 => json!({ "message": "Invalid namespace" }),
                Eio::V3 => json!("Invalid namespace"),
            };
            self.send(&Packet::new(Kind::Error, nsp, None, Some(err)));
            return;
        }
        match nsp {
            "/" => {
                let clients = self.state.socketio.clients();
                self.join_main(&clients);
            }
            "/storage" => self.ns.storage = true,
            _ => {
                self.ns.alarm = true;
                // As Nightscout since its fix (alarmSocket.js' AlarmReceivers): a socket that
                // never subscribes gets alarms only when the default roles may read them.
                if self.ns.alarm_access.is_none() {
                    self.ns.alarm_access = Some(self.state.auth.defaults());
                }
            }
        }
        let data = match self.s.eio {
            Eio::V4 => Some(json!({ "sid": format!("{}{}", self.s.sid, nsp.len()) })),
            Eio::V3 => None,
        };
        self.send(&Packet::new(Kind::Connect, nsp, None, data));
    }

    fn creds(msg: Option<&Value>) -> Credentials {
        let text = |k: &str| {
            msg.and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Credentials {
            secret: text("secret"),
            bearer: text("jwtToken"),
            token: text("token").or_else(|| text("accessToken")),
        }
    }

    fn can_read(&self, c: Collection) -> bool {
        self.ns
            .main_access
            .as_ref()
            .is_some_and(|a| a.can(&format!("api:{}:read", c.table())))
    }

    async fn main_event(&mut self, name: &str, args: &[Value], id: Option<u64>) {
        match name {
            "authorize" => {
                let msg = args.first();
                let creds = Self::creds(msg);
                let access = self.state.auth.resolve(&creds, self.ip).await;
                if access.failed {
                    // Nightscout disconnects a client whose credentials fail.
                    self.send(&Packet::new(Kind::Disconnect, "/", None, None));
                    self.ns.main_access = None;
                    self.ns.main_creds = None;
                    return;
                }
                self.ns.main_creds = Some(creds);
                if !access.defaults {
                    self.unauthenticated = None;
                }
                let authorization = json!({
                    "read": access.can("api:*:read"),
                    "write": access.can("api:*:create,update,delete"),
                    "write_treatment": access.can("api:treatments:create,update,delete"),
                });
                self.emit("/", "connected", vec![]);
                let read = access.can("api:*:read");
                self.ns.main_access = Some(access);
                if read {
                    self.ns.data_room = true;
                    let hours = msg
                        .and_then(|m| m.get("history"))
                        .and_then(Value::as_f64)
                        .filter(|h| *h > 0.0)
                        .unwrap_or(48.0)
                        .min(48.0);
                    // Shared with other clients asking for the same (live::snapshots: `run`
                    // subscribed to the bus, then took the ticket, before reading any packet).
                    let readable = ddata::readable(|c| self.can_read(c));
                    let shared = &self.state.live.snapshots;
                    match shared
                        .get(&self.state.store, readable, hours, self.ticket)
                        .await
                    {
                        Ok(snap) => self.s.push(format!(
                            "{}{}",
                            packet::MESSAGE,
                            Packet::encode_event_text("/", "dataUpdate", snap.json())
                        )),
                        Err(e) => tracing::error!(error = %e, "Socket.IO snapshot failed"),
                    }
                }
                self.ack("/", id, vec![authorization]);
            }
            "loadRetro" => {
                self.ack("/", id, vec![json!({ "result": "success" })]);
                let readable =
                    ddata::readable(|c| c == Collection::DeviceStatus && self.can_read(c));
                if let Ok(data) = ddata::snapshot(&self.state.store, readable, 3.0).await {
                    let ds = data.get("devicestatus").cloned().unwrap_or(json!([]));
                    self.emit("/", "retroUpdate", vec![json!({ "devicestatus": ds })]);
                }
            }
            "dbAdd" | "dbUpdate" | "dbUpdateUnset" | "dbRemove" => {
                let result = self.db(name, args.first()).await;
                self.ack("/", id, vec![result]);
            }
            _ => {}
        }
    }

    /// Nightscout's checkConditions: collection, authorization, permission, `_id`.
    fn check_db(&self, action: &str, data: &Map<String, Value>) -> Result<Collection, Value> {
        let coll = data
            .get("collection")
            .and_then(Value::as_str)
            .and_then(Collection::from_name)
            .filter(|c| *c != Collection::Settings)
            .ok_or_else(|| json!({ "result": "Wrong collection" }))?;
        let Some(access) = &self.ns.main_access else {
            return Err(json!({ "result": "Not authorized" }));
        };
        let allowed = if coll == Collection::Treatments {
            access.can("api:treatments:create,update,delete")
        } else {
            access.can("api:*:create,update,delete")
        };
        if !allowed {
            return Err(json!({ "result": "Not permitted" }));
        }
        if action != "dbAdd" && !data.get("_id").is_some_and(Value::is_string) {
            return Err(json!({ "result": "Missing _id" }));
        }
        Ok(coll)
    }

    /// dbAdd / dbUpdate / dbUpdateUnset / dbRemove through the document operations the REST
    /// API uses (dbAdd deduplicates as a v1 POST does; dbRemove is a soft delete).
    async fn db(&self, action: &str, msg: Option<&Value>) -> Value {
        let Some(data) = msg.and_then(Value::as_object) else {
            return json!({ "result": "Wrong collection" });
        };
        let coll = match self.check_db(action, data) {
            Ok(c) => c,
            Err(refusal) => return refusal,
        };
        let Some(access) = &self.ns.main_access else {
            return json!({ "result": "Not authorized" });
        };
        let caller = Caller::new(access);
        let id = data
            .get("_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let payload = data.get("data").cloned().unwrap_or(Value::Null);
        let store = &self.state.store;
        match action {
            "dbAdd" => {
                let items = match payload {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                let now = now_ms();
                let mut docs = vec![];
                for mut item in items {
                    if let Some(obj) = item.as_object_mut() {
                        if coll == Collection::Treatments && !obj.contains_key("eventType") {
                            obj.insert("eventType".into(), "<none>".into());
                        }
                    }
                    match prepare(coll, item, "data", now) {
                        Ok(d) => docs.extend(d),
                        Err(e) => return json!({ "result": e.client_message() }),
                    }
                }
                let written = documents::upsert(
                    store,
                    &caller,
                    coll,
                    docs,
                    Merge::Replace,
                    Action::Create,
                    Vec::new(),
                )
                .await;
                match written {
                    Ok(written) => Value::Array(written.iter().map(Written::to_v1).collect()),
                    Err(e) => {
                        tracing::error!(error = %e, "dbAdd failed");
                        json!([])
                    }
                }
            }
            "dbUpdate" | "dbUpdateUnset" => {
                let fields = payload.as_object().cloned().unwrap_or_default();
                let (set, unset) = if action == "dbUpdate" {
                    (fields, vec![])
                } else {
                    (Map::new(), fields.keys().cloned().collect::<Vec<_>>())
                };
                match documents::merge_fields(store, &caller, coll, id, set, unset).await {
                    Ok(_) => json!({ "result": "success" }),
                    Err(e) => json!({ "result": e.client_message() }),
                }
            }
            _ => match documents::delete_id(store, &caller, coll, &id).await {
                Ok(_) => json!({ "result": "success" }),
                Err(e) => json!({ "result": e.client_message() }),
            },
        }
    }

    /// `/storage` subscribe: an access token, and the collections wanted (default all).
    async fn storage_subscribe(&mut self, msg: Option<&Value>, id: Option<u64>) {
        const BAD: &str = "Missing or bad accessToken";
        let token = msg
            .and_then(|m| m.get("accessToken"))
            .and_then(Value::as_str);
        let creds = Credentials {
            token: token.map(str::to_string),
            ..Default::default()
        };
        let access = match token {
            Some(_) => self.state.auth.resolve(&creds, self.ip).await,
            None => {
                self.ack(
                    "/storage",
                    id,
                    vec![json!({ "success": false, "message": BAD })],
                );
                return;
            }
        };
        if access.subject.is_none() {
            self.ack(
                "/storage",
                id,
                vec![json!({ "success": false, "message": BAD })],
            );
            return;
        }
        let enabled = Collection::V3;
        let wanted: Vec<Collection> = match msg
            .and_then(|m| m.get("collections"))
            .and_then(Value::as_array)
        {
            Some(list) => list
                .iter()
                .filter_map(Value::as_str)
                .filter_map(Collection::from_name)
                .filter(|c| enabled.contains(c))
                .collect(),
            None => enabled.to_vec(),
        };
        let mut subscribed = vec![];
        self.ns.storage_creds = Some(creds);
        self.unauthenticated = None;
        for c in wanted {
            if access.can(&storage_permission(c)) {
                self.ns.storage_rooms.insert(c);
                subscribed.push(c.table());
            }
        }
        let reply = if subscribed.is_empty() {
            json!({ "success": false, "message": "Unauthorized to receive any collection" })
        } else {
            json!({ "success": true, "collections": subscribed })
        };
        self.ack("/storage", id, vec![reply]);
    }

    async fn alarm_event(&mut self, name: &str, args: &[Value], id: Option<u64>) {
        match name {
            "subscribe" => {
                let creds = Self::creds(args.first());
                let access = self.state.auth.resolve(&creds, self.ip).await;
                let reply = if access.failed || (creds.token.is_some() && access.subject.is_none())
                {
                    json!({ "success": false, "message": "Missing or bad accessToken" })
                } else {
                    let reply = json!({
                        "success": true,
                        "message": "Subscribed for alarms",
                        "read": access.can(alarms::READ_ALARMS),
                        "ack": access.can(alarms::ACK),
                    });
                    if !access.defaults {
                        self.unauthenticated = None;
                    }
                    self.ns.alarm_access = Some(access);
                    self.ns.alarm_creds = Some(creds);
                    reply
                };
                self.ack("/alarm", id, vec![reply]);
            }
            "ack"
                if self
                    .ns
                    .alarm_access
                    .as_ref()
                    .is_some_and(|a| a.can(alarms::ACK)) =>
            {
                let level = args.first().and_then(Value::as_u64).unwrap_or(1).min(2) as u8;
                let group = args
                    .get(1)
                    .and_then(Value::as_str)
                    .unwrap_or("default")
                    .to_string();
                let silence = args.get(2).and_then(Value::as_i64);
                self.state.live.ack(level, &group, silence);
            }
            _ => {}
        }
    }

    /// A commit: the main namespace's dataUpdate delta, `/storage` create/update/delete.
    fn changes(&self, set: &Arc<ChangeSet>) {
        if self.ns.main && self.ns.data_room {
            if let Some(delta) = ddata::delta(set, |c| self.can_read(c), now_ms()) {
                self.emit("/", "dataUpdate", vec![delta]);
            }
        }
        if self.ns.storage {
            for c in set
                .changes
                .iter()
                .filter(|c| self.ns.storage_rooms.contains(&c.collection))
            {
                let col = c.collection.table();
                match (c.op, &c.doc) {
                    (Op::Delete, _) | (_, None) => self.emit(
                        "/storage",
                        "delete",
                        vec![json!({ "colName": col, "identifier": c.identifier.clone().unwrap_or_else(|| c.id.clone()) })],
                    ),
                    (op, Some(d)) => {
                        let event = if op == Op::Insert { "create" } else { "update" };
                        let doc = Value::Object(store::v3::view(c.collection, d));
                        self.emit("/storage", event, vec![json!({ "colName": col, "doc": doc })]);
                    }
                }
            }
        }
    }
}
