//! Peak memory per request: each phase starts a fresh server, sends one kind of large request
//! and reads the server's peak RSS (VmHWM in /proc/<pid>/status) after it, against the
//! target of 64 MB (docs/PERFORMANCE.md, "Memory per request"; limits in docs/security.md).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use super::server::{self, Server};
use super::{seed, Res};

/// The peak each phase must stay within.
pub const TARGET_KB: u64 = 64 * 1024;

/// One phase: what was sent, the answer, and RSS before and at the peak.
pub struct Phase {
    pub name: String,
    pub request_bytes: usize,
    pub status: String,
    pub reply_bytes: u64,
    pub seconds: f64,
    pub rss_before_kb: u64,
    pub peak_kb: u64,
}

/// The server's default body limit (NIGHTLITE_MAX_BODY_MB=20), which every body fills.
const BODY_BYTES: usize = 20 * 1024 * 1024;

pub fn run(bin: &Path, work: &Path, export_rows: u64) -> Res<Vec<Phase>> {
    let dir = work.join("memory");
    let mut phases = Vec::new();
    let minimal = entries_body(BODY_BYTES);
    let posts = [
        (
            "anonymous 20 MB POST (v1 entries, no credentials)",
            "/api/v1/entries",
            false,
            minimal.clone(),
        ),
        (
            "authorised 20 MB batch (v1 entries, ~458k minimal)",
            "/api/v1/entries",
            true,
            minimal,
        ),
        (
            "authorised batch at the document limit (v1 entries, 50k minimal)",
            "/api/v1/entries",
            true,
            entries_count(nightlite::api::json_weight::MAX_BATCH_DOCS),
        ),
        (
            "20 MB single document (v1 devicestatus)",
            "/api/v1/devicestatus",
            true,
            single_doc(BODY_BYTES),
        ),
        (
            "20 MB of documents at the value limit (50k small numbers each; worst case)",
            "/api/v1/devicestatus",
            true,
            large_docs(BODY_BYTES),
        ),
    ];
    for (name, path, auth, body) in posts {
        let mut head = format!(
            "POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if auth {
            head.push_str(&format!("api-secret: {}\r\n", server::secret_hash()));
        }
        head.push_str("\r\n");
        phases.push(phase(bin, &dir, name, &head, &body, None)?);
    }
    phases.push(socketio_flood(bin, &dir)?);
    let seeded = work.join(format!("memory-seed-{export_rows}"));
    if !seeded.join("bench-seed.json").exists() {
        let info = seed::seed(&seeded, export_rows)?;
        std::fs::write(
            seeded.join("bench-seed.json"),
            serde_json::to_string(&info)?,
        )?;
    }
    let head = format!(
        "GET /api/v1/entries.csv?count={export_rows}&find[date][$gte]=0 HTTP/1.1\r\nHost: bench\r\n\
         api-secret: {}\r\nConnection: close\r\n\r\n",
        server::secret_hash()
    );
    phases.push(phase(
        bin,
        &dir,
        &format!("{export_rows}-row CSV export (v1 entries.csv)"),
        &head,
        &[],
        Some(&seeded),
    )?);
    Ok(phases)
}

/// Starts a server (on a fresh directory, or on `data`), sends the request, and reads the peak.
fn phase(
    bin: &Path,
    dir: &Path,
    name: &str,
    head: &str,
    body: &[u8],
    data: Option<&Path>,
) -> Res<Phase> {
    let fresh = dir.join("data");
    let data = match data {
        Some(d) => d.to_path_buf(),
        None => {
            let _ = std::fs::remove_dir_all(&fresh);
            fresh
        }
    };
    std::fs::create_dir_all(dir)?;
    let s = server::start_nightlite(bin, &data, &dir.join("server.log"))?;
    let rss_before_kb = s.rss_kb().unwrap_or(0);
    let t0 = Instant::now();
    let (status, reply_bytes) = exchange(s.addr, head.as_bytes(), body);
    let seconds = t0.elapsed().as_secs_f64();
    let p = finish(
        &s,
        name,
        head.len() + body.len(),
        status,
        reply_bytes,
        seconds,
        rss_before_kb,
    );
    s.stop()?;
    Ok(p)
}

fn finish(
    s: &Server,
    name: &str,
    request_bytes: usize,
    status: String,
    reply_bytes: u64,
    seconds: f64,
    rss_before_kb: u64,
) -> Phase {
    Phase {
        name: name.to_string(),
        request_bytes,
        status,
        reply_bytes,
        seconds,
        rss_before_kb,
        peak_kb: s.hwm_kb().unwrap_or(0),
    }
}

/// One request on its own connection; the status line's code (or what went wrong) and the
/// size of everything after the head. The body is written from a thread, so a server that
/// answers before reading it all is read, not deadlocked.
fn exchange(addr: SocketAddr, head: &[u8], body: &[u8]) -> (String, u64) {
    let Ok(mut conn) = TcpStream::connect(addr) else {
        return ("connect failed".into(), 0);
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(300)));
    let Ok(mut writer) = conn.try_clone() else {
        return ("clone failed".into(), 0);
    };
    let mut req = head.to_vec();
    req.extend_from_slice(body);
    let sender = std::thread::spawn(move || writer.write_all(&req).is_ok());
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = Vec::new();
    let mut total = 0u64;
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if first.len() < 256 {
                    first.extend_from_slice(&buf[..n.min(256)]);
                }
                total += n as u64;
            }
        }
    }
    let sent_all = sender.join().unwrap_or(false);
    let text = String::from_utf8_lossy(&first);
    let code = text
        .split(' ')
        .nth(1)
        .filter(|_| text.starts_with("HTTP/"))
        .unwrap_or("no answer")
        .to_string();
    let status = if sent_all {
        code
    } else {
        format!("{code} (body not all read)")
    };
    (status, total.saturating_sub(head_len(&first) as u64))
}

fn head_len(first: &[u8]) -> usize {
    first
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| p + 4)
}

/// A v1 entries array of minimal sgv entries, as many as fit in `bytes`.
fn entries_body(bytes: usize) -> Vec<u8> {
    minimal_entries(bytes, usize::MAX)
}

/// `count` minimal entries.
fn entries_count(count: usize) -> Vec<u8> {
    minimal_entries(usize::MAX, count)
}

/// Minimal entries until the body would pass `bytes` or holds `count`.
fn minimal_entries(bytes: usize, count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.min(64 << 20));
    out.push(b'[');
    let start = nightlite::dates::now_ms() - 400 * 86_400_000;
    let mut i = 0i64;
    loop {
        let item = format!(
            r#"{{"type":"sgv","sgv":{},"date":{}}}"#,
            40 + i % 300,
            start + i * 1000
        );
        if out.len().saturating_add(item.len() + 2) > bytes || i as usize >= count {
            break;
        }
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item.as_bytes());
        i += 1;
    }
    out.push(b']');
    out
}

/// One devicestatus of `bytes` (a long note).
fn single_doc(bytes: usize) -> Vec<u8> {
    let head = r#"{"device":"bench","created_at":"2026-01-01T00:00:00Z","note":""#;
    let mut out = head.as_bytes().to_vec();
    out.resize(bytes - 2, b'x');
    out.extend_from_slice(b"\"}");
    out
}

/// Devicestatus documents just under 1 MB each (the per-document limit), each an array of
/// one-digit numbers: the most memory a parsed document of that size takes.
/// Documents as costly to parse as the server accepts: each holds as many values as one
/// document may (src/api/json_weight.rs), all one-digit numbers (some 100 KB of text each).
fn large_docs(bytes: usize) -> Vec<u8> {
    // The object, its four members and the array take the other values of the limit.
    let numbers = nightlite::api::json_weight::MAX_DOC_VALUES - 8;
    let mut doc = br#"{"device":"bench","created_at":"2026-01-01T00:00:00Z","values":[1"#.to_vec();
    for _ in 1..numbers {
        doc.extend_from_slice(b",1");
    }
    doc.extend_from_slice(b"]}");
    let mut out = vec![b'['];
    while out.len() + doc.len() + 2 < bytes {
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(&doc);
    }
    out.push(b']');
    out
}

/// An Engine.IO polling session (no credentials) that posts 20 MB of Socket.IO packets.
fn socketio_flood(bin: &Path, dir: &Path) -> Res<Phase> {
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(dir)?;
    let s = server::start_nightlite(bin, &data, &dir.join("server.log"))?;
    let rss_before_kb = s.rss_kb().unwrap_or(0);
    let t0 = Instant::now();
    let open = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    let sid = sid_of(s.addr, open);
    let (status, reply_bytes, sent) = match sid {
        Some(sid) => {
            // The namespace connect, then packets until the body is 20 MB.
            let mut body = b"40".to_vec();
            while body.len() < BODY_BYTES - 64 {
                body.extend_from_slice(b"\x1e42[\"loadRetro\",{\"loadedMills\":0}]");
            }
            let head = format!(
                "POST /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: bench\r\n\
                 Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let (st, n) = exchange(s.addr, head.as_bytes(), &body);
            // Let the session work through what it queued.
            std::thread::sleep(Duration::from_secs(3));
            (st, n, head.len() + body.len())
        }
        None => ("no session".to_string(), 0, 0),
    };
    let p = finish(
        &s,
        "Socket.IO flood (20 MB of polling packets, no credentials)",
        sent,
        status,
        reply_bytes,
        t0.elapsed().as_secs_f64(),
        rss_before_kb,
    );
    s.stop()?;
    Ok(p)
}

/// The `sid` of a new Engine.IO polling session.
fn sid_of(addr: SocketAddr, open: &[u8]) -> Option<String> {
    let mut conn = TcpStream::connect(addr).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    conn.write_all(open).ok()?;
    let mut text = String::new();
    conn.read_to_string(&mut text).ok()?;
    let at = text.find("\"sid\":\"")? + 7;
    let end = text[at..].find('"')?;
    Some(text[at..at + end].to_string())
}

/// The phases as a Markdown table.
pub fn markdown(phases: &[Phase]) -> String {
    let mb = |kb: u64| kb as f64 / 1024.0;
    let mut out = String::from(
        "| phase | request | answer | reply | time | RSS before | peak RSS | target 64 MB |\n\
         |---|---:|---|---:|---:|---:|---:|---|\n",
    );
    for p in phases {
        out.push_str(&format!(
            "| {} | {:.1} MB | {} | {:.1} MB | {:.1} s | {:.1} MB | {:.1} MB | {} |\n",
            p.name,
            p.request_bytes as f64 / 1048576.0,
            p.status,
            p.reply_bytes as f64 / 1048576.0,
            p.seconds,
            mb(p.rss_before_kb),
            mb(p.peak_kb),
            if p.peak_kb <= TARGET_KB {
                "met"
            } else {
                "**missed**"
            }
        ));
    }
    out
}
