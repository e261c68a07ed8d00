//! WebSocket clients for the load phases: each one a blocking thread on a plain `/ws`
//! connection (docs/websocket.md) that authorizes with the API secret, takes its snapshot and
//! then reads every `dataUpdate` delta until told to stop. No permessage-deflate is offered, so
//! the server writes every delta uncompressed (its most memory-hungry case). Clients answer
//! ping frames and send a JSON ping every 20 s, so the server's 70-s idle timeout never fires;
//! a client told to resync (close 4000) or cut off reconnects, and is counted.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Res;

/// What the clients saw, summed over all of them.
#[derive(Default)]
pub struct Counters {
    /// Clients holding an authorized connection with its snapshot.
    pub connected: AtomicU64,
    pub messages: AtomicU64,
    /// Text messages that were `dataUpdate` deltas.
    pub deltas: AtomicU64,
    pub bytes: AtomicU64,
    /// `resync` messages or close 4000 (fell behind the change stream).
    pub resyncs: AtomicU64,
    /// Connections lost otherwise (close frames, EOF, errors) while running.
    pub drops: AtomicU64,
    /// Reconnections after a resync or a drop.
    pub reconnects: AtomicU64,
    pub first_problem: std::sync::Mutex<Option<String>>,
}

impl Counters {
    fn problem(&self, p: String) {
        if let Ok(mut f) = self.first_problem.lock() {
            if f.is_none() {
                *f = Some(p);
            }
        }
    }
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Summary {
    pub clients: usize,
    pub messages: u64,
    pub deltas: u64,
    pub bytes: u64,
    pub resyncs: u64,
    pub drops: u64,
    pub reconnects: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_problem: Option<String>,
}

pub struct Fleet {
    stop: Arc<AtomicBool>,
    pub counters: Arc<Counters>,
    handles: Vec<JoinHandle<()>>,
    clients: usize,
}

/// One frame read from the server (servers do not mask).
enum Frame {
    Text(Vec<u8>),
    Ping(Vec<u8>),
    Close(Option<u16>),
    Other,
}

struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    filled: usize,
    /// A partial text message (continuation frames).
    partial: Vec<u8>,
}

fn mask_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let key = [0x5a, 0x17, 0xc3, 0x9e];
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

impl Client {
    fn connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut c = Client {
            stream,
            buf: vec![0; 16 * 1024],
            filled: 0,
            partial: vec![],
        };
        write!(
            c.stream,
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )?;
        let end = loop {
            if let Some(p) = self::find(&c.buf[..c.filled], b"\r\n\r\n") {
                break p + 4;
            }
            c.fill()?;
        };
        let head = String::from_utf8_lossy(&c.buf[..end]).into_owned();
        if !head.starts_with("HTTP/1.1 101") {
            return Err(io::Error::other(format!(
                "no WebSocket upgrade: {}",
                head.lines().next().unwrap_or("")
            )));
        }
        c.consume(end);
        Ok(c)
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.filled == self.buf.len() {
            let len = self.buf.len();
            self.buf.resize(len * 2, 0);
        }
        let n = self.stream.read(&mut self.buf[self.filled..])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by the server",
            ));
        }
        self.filled += n;
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.filled, 0);
        self.filled -= n;
    }

    fn send_text(&mut self, text: &str) -> io::Result<()> {
        self.stream.write_all(&mask_frame(0x1, text.as_bytes()))
    }

    /// The next frame; a read timeout surfaces as `WouldBlock`/`TimedOut`.
    fn frame(&mut self) -> io::Result<Frame> {
        loop {
            if let Some((fin, opcode, start, len)) = parse_header(&self.buf[..self.filled])? {
                if self.filled >= start + len {
                    let payload = self.buf[start..start + len].to_vec();
                    self.consume(start + len);
                    return Ok(match opcode {
                        0x1 | 0x0 => {
                            self.partial.extend_from_slice(&payload);
                            if !fin {
                                continue;
                            }
                            Frame::Text(std::mem::take(&mut self.partial))
                        }
                        0x8 => {
                            Frame::Close(payload.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])))
                        }
                        0x9 => Frame::Ping(payload),
                        _ => Frame::Other,
                    });
                }
            }
            self.fill()?;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// (fin, opcode, payload start, payload length) once the header is complete.
fn parse_header(b: &[u8]) -> io::Result<Option<(bool, u8, usize, usize)>> {
    if b.len() < 2 {
        return Ok(None);
    }
    let fin = b[0] & 0x80 != 0;
    if b[0] & 0x40 != 0 {
        return Err(io::Error::other(
            "compressed frame, but deflate was not offered",
        ));
    }
    let opcode = b[0] & 0x0F;
    let masked = b[1] & 0x80 != 0;
    let (len, at) = match b[1] & 0x7F {
        126 => {
            if b.len() < 4 {
                return Ok(None);
            }
            (usize::from(u16::from_be_bytes([b[2], b[3]])), 4)
        }
        127 => {
            if b.len() < 10 {
                return Ok(None);
            }
            let mut n = [0u8; 8];
            n.copy_from_slice(&b[2..10]);
            (
                usize::try_from(u64::from_be_bytes(n))
                    .map_err(|_| io::Error::other("frame too large"))?,
                10,
            )
        }
        n => (usize::from(n), 2),
    };
    if masked {
        return Err(io::Error::other("the server masked a frame"));
    }
    if len > 64 * 1024 * 1024 {
        return Err(io::Error::other("frame over 64 MiB"));
    }
    Ok(Some((fin, opcode, at, len)))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Connects, authorizes with the secret and reads `auth` and the snapshot.
fn session(addr: SocketAddr, secret: &str, history_h: u32) -> io::Result<Client> {
    let mut c = Client::connect(addr)?;
    c.send_text(&format!(
        r#"{{"type":"authorize","secret":"{secret}","history":{history_h}}}"#
    ))?;
    let mut got_auth = false;
    loop {
        match c.frame()? {
            Frame::Text(t) => {
                let s = String::from_utf8_lossy(&t);
                if s.contains(r#""type":"auth""#) {
                    if !s.contains(r#""ok":true"#) {
                        return Err(io::Error::other(format!("refused: {s}")));
                    }
                    got_auth = true;
                } else if got_auth && s.contains(r#""type":"dataUpdate""#) {
                    return Ok(c);
                }
            }
            Frame::Ping(p) => c.stream.write_all(&mask_frame(0xA, &p))?,
            Frame::Close(code) => {
                return Err(io::Error::other(format!(
                    "closed during authorization ({code:?})"
                )))
            }
            Frame::Other => {}
        }
    }
}

fn client_thread(
    addr: SocketAddr,
    secret: String,
    history_h: u32,
    stop: Arc<AtomicBool>,
    n: Arc<Counters>,
) {
    let mut first = true;
    while !stop.load(Ordering::Relaxed) {
        if !first {
            n.reconnects.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(200));
        }
        first = false;
        let mut c = match session(addr, &secret, history_h) {
            Ok(c) => c,
            Err(e) => {
                n.drops.fetch_add(1, Ordering::Relaxed);
                n.problem(format!("connect/authorize: {e}"));
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        let _ = c.stream.set_read_timeout(Some(Duration::from_millis(500)));
        n.connected.fetch_add(1, Ordering::Relaxed);
        let mut last_ping = Instant::now();
        let lost = loop {
            if stop.load(Ordering::Relaxed) {
                let _ = c.stream.write_all(&mask_frame(0x8, &1000u16.to_be_bytes()));
                break None;
            }
            if last_ping.elapsed() > Duration::from_secs(20) {
                last_ping = Instant::now();
                if let Err(e) = c.send_text(r#"{"type":"ping"}"#) {
                    break Some(format!("sending ping: {e}"));
                }
            }
            match c.frame() {
                Ok(Frame::Text(t)) => {
                    n.messages.fetch_add(1, Ordering::Relaxed);
                    n.bytes.fetch_add(t.len() as u64, Ordering::Relaxed);
                    // The server appends "type" after the lists; look at both ends.
                    let head = &t[..t.len().min(64)];
                    let tail = &t[t.len().saturating_sub(64)..];
                    if find(head, br#""type":"dataUpdate""#).is_some()
                        || find(tail, br#""type":"dataUpdate""#).is_some()
                    {
                        n.deltas.fetch_add(1, Ordering::Relaxed);
                    } else if find(head, br#""type":"resync""#).is_some()
                        || find(tail, br#""type":"resync""#).is_some()
                    {
                        n.resyncs.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(Frame::Ping(p)) => {
                    if let Err(e) = c.stream.write_all(&mask_frame(0xA, &p)) {
                        break Some(format!("answering a ping: {e}"));
                    }
                }
                Ok(Frame::Close(code)) => {
                    if code == Some(4000) {
                        // Counted with its resync message.
                        break Some(String::new());
                    }
                    break Some(format!("server closed with {code:?}"));
                }
                Ok(Frame::Other) => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) => break Some(format!("reading: {e}")),
            }
        };
        n.connected.fetch_sub(1, Ordering::Relaxed);
        match lost {
            None => break,
            Some(p) if p.is_empty() => {}
            Some(p) => {
                n.drops.fetch_add(1, Ordering::Relaxed);
                n.problem(p);
            }
        }
    }
}

impl Fleet {
    /// Starts `clients` clients and waits (up to 60 s) until all hold their snapshot.
    pub fn start(addr: SocketAddr, clients: usize, secret: &str, history_h: u32) -> Res<Fleet> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let mut handles = vec![];
        for i in 0..clients {
            let (stop, n, secret) = (stop.clone(), counters.clone(), secret.to_string());
            handles.push(
                std::thread::Builder::new()
                    .name(format!("ws-{i}"))
                    .stack_size(256 * 1024)
                    .spawn(move || client_thread(addr, secret, history_h, stop, n))?,
            );
        }
        let fleet = Fleet {
            stop,
            counters,
            handles,
            clients,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while fleet.counters.connected.load(Ordering::Relaxed) < clients as u64 {
            if Instant::now() > deadline {
                let problem = fleet
                    .counters
                    .first_problem
                    .lock()
                    .ok()
                    .and_then(|p| p.clone())
                    .unwrap_or_default();
                let connected = fleet.counters.connected.load(Ordering::Relaxed);
                fleet.stop();
                return Err(format!(
                    "only {connected} of {clients} WebSocket clients connected in 60 s ({problem})"
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(fleet)
    }

    pub fn connected(&self) -> u64 {
        self.counters.connected.load(Ordering::Relaxed)
    }

    pub fn summary(&self) -> Summary {
        let n = &self.counters;
        Summary {
            clients: self.clients,
            messages: n.messages.load(Ordering::Relaxed),
            deltas: n.deltas.load(Ordering::Relaxed),
            bytes: n.bytes.load(Ordering::Relaxed),
            resyncs: n.resyncs.load(Ordering::Relaxed),
            drops: n.drops.load(Ordering::Relaxed),
            reconnects: n.reconnects.load(Ordering::Relaxed),
            first_problem: n.first_problem.lock().ok().and_then(|p| p.clone()),
        }
    }

    /// Closes every client (close frame 1000) and returns what they saw.
    pub fn stop(mut self) -> Summary {
        self.stop.store(true, Ordering::Relaxed);
        for h in std::mem::take(&mut self.handles) {
            let _ = h.join();
        }
        self.summary()
    }
}

impl Drop for Fleet {
    /// A fleet dropped on an error path stops its clients (without waiting for them).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
