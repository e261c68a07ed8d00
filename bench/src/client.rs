//! A minimal keep-alive HTTP/1.1 client over `std::net::TcpStream`, and the load runner that
//! drives a server with N blocking connections. Kept this small on purpose: on a 2-core machine
//! the client shares the CPU with the server, so every microsecond it spends is one the server
//! does not get. Requests are framed by the caller (bytes), responses are parsed only as far as
//! needed (status, framing, `X-Sync-Inserted`) and their bodies are skipped unless asked for.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::Res;

pub struct Response {
    pub status: u16,
    /// `X-Sync-Inserted` of a nightlite batch reply.
    pub inserted: Option<u64>,
    pub body: Vec<u8>,
}

enum Framing {
    Length(usize),
    Chunked,
    /// 204, 304: no body.
    Empty,
    /// Neither length nor chunked: the body runs to the end of the connection.
    ToClose,
}

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    filled: usize,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        // Requests are written with one write_all; no Nagle delay between head and body.
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Conn {
            stream,
            buf: vec![0; 64 * 1024],
            filled: 0,
        })
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

    /// Sends one framed request and reads its response. The body is copied out when
    /// `keep_body` is set or the status is not 2xx (for error messages).
    pub fn exchange(&mut self, req: &[u8], keep_body: bool) -> io::Result<Response> {
        self.stream.write_all(req)?;
        let head_end = loop {
            if let Some(p) = find(&self.buf[..self.filled], b"\r\n\r\n") {
                break p + 4;
            }
            self.fill()?;
        };
        let (status, framing, inserted) = parse_head(&self.buf[..head_end])?;
        let keep = keep_body || !(200..300).contains(&status);
        let mut body = Vec::new();
        match framing {
            Framing::Empty => {
                self.consume(head_end);
            }
            Framing::Length(n) => {
                while self.filled < head_end + n {
                    self.fill()?;
                }
                if keep {
                    body.extend_from_slice(&self.buf[head_end..head_end + n]);
                }
                self.consume(head_end + n);
            }
            Framing::Chunked => {
                self.consume(head_end);
                loop {
                    let line_end = loop {
                        if let Some(p) = find(&self.buf[..self.filled], b"\r\n") {
                            break p;
                        }
                        self.fill()?;
                    };
                    let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
                    let size_hex = size_text.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size_hex, 16).map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")
                    })?;
                    let need = line_end + 2 + size + 2;
                    while self.filled < need {
                        self.fill()?;
                    }
                    if keep {
                        body.extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                    }
                    self.consume(need);
                    if size == 0 {
                        break;
                    }
                }
            }
            Framing::ToClose => {
                self.consume(head_end);
                loop {
                    match self.fill() {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                        Err(e) => return Err(e),
                    }
                }
                if keep {
                    body.extend_from_slice(&self.buf[..self.filled]);
                }
                self.filled = 0;
            }
        }
        Ok(Response {
            status,
            inserted,
            body,
        })
    }
}

fn parse_head(head: &[u8]) -> io::Result<(u16, Framing, Option<u64>)> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let text = std::str::from_utf8(head).map_err(|_| bad("response head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut framing = if status == 204 || status == 304 || status < 200 {
        Framing::Empty
    } else {
        Framing::ToClose
    };
    let mut inserted = None;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            if !matches!(framing, Framing::Empty) {
                framing = Framing::Length(v.parse().map_err(|_| bad("bad content-length"))?);
            }
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            if v.eq_ignore_ascii_case("chunked") {
                framing = Framing::Chunked;
            }
        } else if k.eq_ignore_ascii_case("x-sync-inserted") {
            inserted = v.parse().ok();
        }
    }
    Ok((status, framing, inserted))
}

/// A GET request, framed.
pub fn get(host: &str, path: &str, secret_hash: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\napi-secret: {secret_hash}\r\nAccept: application/json\r\n\r\n"
    )
    .into_bytes()
}

/// A POST of a JSON body, framed into `out`.
pub fn post_into(out: &mut Vec<u8>, host: &str, path: &str, secret_hash: &str, body: &[u8]) {
    out.extend_from_slice(
        format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\napi-secret: {secret_hash}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(body);
}

/// Any request, framed into `out`: extra headers as given, a body with its Content-Length.
pub fn request_into(
    out: &mut Vec<u8>,
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    head.push_str("\r\n");
    out.extend_from_slice(head.as_bytes());
    if let Some(b) = body {
        out.extend_from_slice(b);
    }
}

/// One request on a new connection, for set-up steps: the status and the body parsed as JSON
/// (Null when it is not JSON).
pub fn call_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Res<(u16, serde_json::Value)> {
    let mut req = vec![];
    request_into(&mut req, method, &addr.to_string(), path, headers, body);
    let mut c = Conn::connect(addr)?;
    let r = c
        .exchange(&req, true)
        .map_err(|e| format!("{method} {path}: {e}"))?;
    let v = serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null);
    Ok((r.status, v))
}

/// How a load is run: `conns` threads, each with one keep-alive connection, for `secs` after a
/// `warmup_secs` whose requests are not counted.
#[derive(Clone, Copy)]
pub struct LoadSpec {
    pub conns: usize,
    pub secs: f64,
    pub warmup_secs: f64,
}

#[derive(Default)]
pub struct LoadResult {
    /// Successful (2xx) requests started inside the measured window.
    pub requests: u64,
    /// Documents those requests carried.
    pub docs: u64,
    /// Documents the server reported as inserted (`X-Sync-Inserted`).
    pub inserted: u64,
    /// Transport errors (the connection is reopened).
    pub errors: u64,
    /// Non-2xx answers.
    pub bad_status: u64,
    pub first_problem: Option<String>,
    /// Latency of each counted request, microseconds.
    pub lat_us: Vec<u32>,
    pub secs: f64,
}

/// Builds request number `seq` of thread `thread` into the buffer; returns how many documents
/// it carries (1 for a GET).
pub type Builder<'a> = dyn Fn(usize, u64, &mut Vec<u8>) -> u64 + Sync + 'a;

/// Runs `spec.conns` client threads against `addr` until the window ends.
pub fn run(addr: SocketAddr, spec: LoadSpec, build: &Builder<'_>) -> Res<LoadResult> {
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(spec.warmup_secs);
    let end = measure_from + Duration::from_secs_f64(spec.secs);
    let results: Vec<Res<LoadResult>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..spec.conns)
            .map(|t| s.spawn(move || client_thread(addr, t, measure_from, end, build)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a client thread panicked".into()))
            })
            .collect()
    });
    let mut total = LoadResult {
        secs: spec.secs,
        ..LoadResult::default()
    };
    for r in results {
        let r = r?;
        total.requests += r.requests;
        total.docs += r.docs;
        total.inserted += r.inserted;
        total.errors += r.errors;
        total.bad_status += r.bad_status;
        if total.first_problem.is_none() {
            total.first_problem = r.first_problem;
        }
        total.lat_us.extend(r.lat_us);
    }
    Ok(total)
}

fn client_thread(
    addr: SocketAddr,
    thread: usize,
    measure_from: Instant,
    end: Instant,
    build: &Builder<'_>,
) -> Res<LoadResult> {
    let mut out = LoadResult::default();
    let mut conn = Conn::connect(addr)?;
    let mut req = Vec::with_capacity(64 * 1024);
    let mut seq = 0u64;
    loop {
        if Instant::now() >= end {
            break;
        }
        req.clear();
        let docs = build(thread, seq, &mut req);
        seq += 1;
        let t0 = Instant::now();
        let result = conn.exchange(&req, false);
        let us = u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX);
        let counted = t0 >= measure_from;
        match result {
            Ok(resp) if (200..300).contains(&resp.status) => {
                if counted {
                    out.requests += 1;
                    out.docs += docs;
                    out.inserted += resp.inserted.unwrap_or(0);
                    out.lat_us.push(us);
                }
            }
            Ok(resp) => {
                out.bad_status += 1;
                if out.first_problem.is_none() {
                    out.first_problem = Some(format!(
                        "status {}: {}",
                        resp.status,
                        String::from_utf8_lossy(&resp.body[..resp.body.len().min(300)])
                    ));
                }
            }
            Err(e) => {
                out.errors += 1;
                if out.first_problem.is_none() {
                    out.first_problem = Some(format!("transport: {e}"));
                }
                if out.errors > 1000 {
                    return Err(format!("too many transport errors; last: {e}").into());
                }
                std::thread::sleep(Duration::from_millis(10));
                conn = Conn::connect(addr)?;
            }
        }
    }
    Ok(out)
}
