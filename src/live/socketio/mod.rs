//! Socket.IO as Nightscout serves it (socket.io 4 with allowEIO3, at /socket.io/, transports
//! polling and websocket), implemented here: Engine.IO v3/v4 sessions over long-polling and
//! WebSocket (with the polling → websocket upgrade), Socket.IO packets, and Nightscout's three
//! namespaces: `/` (authorize, dataUpdate, db* writes), `/storage` and `/alarm`.

pub mod packet;
mod session;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use super::wsproto::{self, Decoder, Message};
use crate::qs;
use crate::State;
use packet::Eio;
use session::Session;

/// Sessions by id, and the number of main-namespace clients (Nightscout's `clients` event).
#[derive(Default)]
pub struct Engine {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    clients: Mutex<Option<watch::Sender<usize>>>,
}

impl Engine {
    fn get(&self, sid: &str) -> Option<Arc<Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sid)
            .cloned()
    }

    fn insert(&self, s: Arc<Session>) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(s.sid.clone(), s);
    }

    fn remove(&self, sid: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(sid);
    }

    /// The watch channel of the clients count (made on first use).
    fn clients(&self) -> watch::Sender<usize> {
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| watch::channel(0).0)
            .clone()
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/socket.io", web::get().to(get))
        .route("/socket.io", web::post().to(post));
}

fn eio_of(req: &HttpRequest) -> Option<Eio> {
    match qs::first_value(req.query_string(), "EIO").as_deref() {
        Some("4") => Some(Eio::V4),
        Some("3") => Some(Eio::V3),
        _ => None,
    }
}

/// Engine.IO's error reply: `{"code":n,"message":"..."}` with 400.
fn engine_error(code: u8, message: &str) -> HttpResponse {
    HttpResponse::BadRequest().json(serde_json::json!({ "code": code, "message": message }))
}

fn text(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=UTF-8")
        .body(body)
}

async fn get(req: HttpRequest, payload: web::Payload, state: State) -> HttpResponse {
    let Some(eio) = eio_of(&req) else {
        return engine_error(5, "Unsupported protocol version");
    };
    let q = req.query_string();
    let transport = qs::first_value(q, "transport").unwrap_or_default();
    let sid = qs::first_value(q, "sid");
    let ip = crate::auth::request::client_ip(&req, &state.auth.trust_proxy);
    match transport.as_str() {
        "websocket" => websocket(req, payload, state, eio, sid, ip),
        "polling" => match sid {
            None => {
                let Some(slot) = state.live.unauthenticated.take() else {
                    return crate::live::too_many_sockets();
                };
                let s = Session::start(state.clone(), eio, false, ip, slot);
                let open = s.open_packet();
                if eio == Eio::V3 {
                    // socket.io 2.x connects the main namespace without being asked.
                    s.connect_main_v3();
                }
                let mut packets = vec![open];
                packets.extend(s.take());
                text(packet::encode_payload(eio, &packets))
            }
            Some(sid) => match state.socketio.get(&sid) {
                Some(s) if !s.upgraded() => text(packet::encode_payload(eio, &s.poll().await)),
                Some(_) => engine_error(3, "Bad request"),
                None => engine_error(1, "Session ID unknown"),
            },
        },
        _ => engine_error(0, "Transport unknown"),
    }
}

/// A refused body up to this size is read to its end and dropped (chunk by chunk, nothing
/// kept) before the 413, so a client that writes its whole body before reading gets the answer
/// instead of a broken pipe; a larger one is answered at once and the connection closed.
const DRAIN_MAX: usize = 4 * session::MAX_PAYLOAD;

/// Reads a polling POST's body, at most `MAX_PAYLOAD` bytes; None when it is larger.
async fn read_payload(payload: &mut web::Payload) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.ok()?;
        if body.len() + chunk.len() > session::MAX_PAYLOAD {
            drain(payload, DRAIN_MAX.saturating_sub(body.len() + chunk.len())).await;
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// Reads and drops at most `max` more bytes of a body.
async fn drain(payload: &mut web::Payload, max: usize) {
    let mut left = max;
    while let Some(Ok(chunk)) = payload.next().await {
        if chunk.len() > left {
            return;
        }
        left -= chunk.len();
    }
}

/// A polling POST: its packets go to the session. A body over engine.io's maxHttpBufferSize
/// (1e6 bytes), or more packets than the session queues, closes the session with a 413/400,
/// as engine.io closes a transport that exceeds it.
async fn post(req: HttpRequest, mut payload: web::Payload, state: State) -> HttpResponse {
    let Some(eio) = eio_of(&req) else {
        return engine_error(5, "Unsupported protocol version");
    };
    let Some(s) =
        qs::first_value(req.query_string(), "sid").and_then(|sid| state.socketio.get(&sid))
    else {
        return engine_error(1, "Session ID unknown");
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = match declared {
        Some(n) if n > DRAIN_MAX as u64 => None,
        Some(n) if n > session::MAX_PAYLOAD as u64 => {
            drain(&mut payload, DRAIN_MAX).await;
            None
        }
        _ => read_payload(&mut payload).await,
    };
    let Some(body) = body else {
        s.close();
        return HttpResponse::PayloadTooLarge().json(serde_json::json!({
            "code": 3,
            "message": format!("payload over {} bytes: session closed", session::MAX_PAYLOAD),
        }));
    };
    let Ok(body) = std::str::from_utf8(&body) else {
        return engine_error(3, "Bad request");
    };
    match packet::decode_payload_max(eio, body, session::MAX_INCOMING) {
        Ok(packets) => {
            for p in packets {
                if !s.receive(p) {
                    return engine_error(3, "too many packets waiting: session closed");
                }
            }
            HttpResponse::Ok().content_type("text/html").body("ok")
        }
        Err(e) if e == packet::TOO_MANY => {
            s.close();
            engine_error(3, "too many packets in one payload: session closed")
        }
        Err(_) => engine_error(3, "Bad request"),
    }
}

fn websocket(
    req: HttpRequest,
    payload: web::Payload,
    state: State,
    eio: Eio,
    sid: Option<String>,
    ip: Option<std::net::IpAddr>,
) -> HttpResponse {
    let h = req.headers();
    let Some(key) = h
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
    else {
        return engine_error(3, "Bad request");
    };
    let session = match &sid {
        Some(sid) => match state.socketio.get(sid) {
            Some(s) if !s.upgraded() => s,
            _ => return engine_error(1, "Session ID unknown"),
        },
        None => match state.live.unauthenticated.take() {
            Some(slot) => Session::start(state.clone(), eio, true, ip, slot),
            None => return crate::live::too_many_sockets(),
        },
    };
    let deflate = wsproto::negotiate_deflate(
        h.get(header::SEC_WEBSOCKET_EXTENSIONS)
            .and_then(|v| v.to_str().ok()),
    );
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    actix_web::rt::spawn(pump(session, payload, tx, deflate.is_some(), sid.is_some()));
    let mut res = HttpResponse::build(StatusCode::SWITCHING_PROTOCOLS);
    res.upgrade("websocket")
        .insert_header((header::SEC_WEBSOCKET_ACCEPT, wsproto::accept_key(key)));
    if let Some(ext) = deflate {
        res.insert_header((header::SEC_WEBSOCKET_EXTENSIONS, ext));
    }
    res.streaming(crate::live::body::FrameBody::new(rx))
}

/// Moves engine packets between a WebSocket and its session. When the session started on
/// polling, the client first probes (`2probe` → `3probe`) and then sends `5` (upgrade).
async fn pump(
    session: Arc<Session>,
    mut payload: web::Payload,
    tx: mpsc::Sender<Bytes>,
    deflate: bool,
    upgrading: bool,
) {
    let send = |text: &str| {
        tx.try_send(Bytes::from(wsproto::text_frame(text, deflate)))
            .is_ok()
    };
    let mut decoder = Decoder::new(deflate);
    let mut live = !upgrading;
    if live {
        if !send(&session.open_packet()) {
            return;
        }
        if session.eio == Eio::V3 {
            session.connect_main_v3();
        }
    }
    let mut idle = actix_web::rt::time::interval(Duration::from_secs(1));
    loop {
        if live {
            for p in session.take() {
                if !send(&p) {
                    session.close();
                    return;
                }
            }
        }
        if session.is_closed() {
            let _ = tx.try_send(Bytes::from(wsproto::close_frame(1000)));
            return;
        }
        tokio::select! {
            chunk = payload.next() => {
                let Some(Ok(bytes)) = chunk else { break };
                if decoder.push(&bytes).is_err() { break }
                loop {
                    match decoder.next_message() {
                        Ok(Some(Message::Text(t))) => {
                            if !live && t == "2probe" {
                                send("3probe");
                                // Like engine.io: end the pending poll so the client can pause
                                // polling and send the upgrade.
                                session.release_poll();
                            } else if !live && t.len() == 1 && t.starts_with(packet::UPGRADE) {
                                live = true;
                                session.mark_upgraded();
                            } else if !session.receive(t) {
                                // Sent faster than handled: the session is closed.
                                let _ = tx.try_send(Bytes::from(wsproto::close_frame(1008)));
                                return;
                            }
                        }
                        Ok(Some(Message::Ping(p))) => { let _ = tx.try_send(Bytes::from(wsproto::control_frame(0xA, &p))); }
                        Ok(Some(Message::Close(_))) | Err(_) => {
                            if live { session.close(); }
                            return;
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => break,
                    }
                }
            }
            _ = session.wait_output(), if live => {}
            _ = idle.tick() => {}
        }
    }
    if live {
        session.close();
    }
}
