//! The HTTP/1.1 plumbing of the fake vendors: a listener on 127.0.0.1 that hands each request
//! (one per connection, `Connection: close`) to a handler on a thread of its own, so one
//! request that never gets an answer holds up no other.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    /// The body as JSON (null when there is none or it is not JSON).
    pub body: Value,
    /// The body as text (a form's fields).
    pub raw: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter, its name in any case.
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            k.eq_ignore_ascii_case(name).then(|| v.to_string())
        })
    }
}

/// Serves on a new port of 127.0.0.1; returns the port.
pub fn listen<F>(handler: F) -> u16
where
    F: Fn(Request, &mut TcpStream) + Send + Sync + Clone + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let handler = handler.clone();
            std::thread::spawn(move || {
                if let Some(r) = read(&stream) {
                    handler(r, &mut stream);
                }
            });
        }
    });
    port
}

fn read(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let method = words.next()?.to_string();
    let target = words.next()?.to_string();
    let mut headers = vec![];
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    Some(Request {
        method,
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// One response; `extra` is header lines, each ending in `\r\n`.
pub fn reply(stream: &mut TcpStream, status: u16, extra: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra}\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}

/// What tests ask every fake: where it listens and what it was asked.
pub trait Fake {
    fn port(&self) -> u16;
    /// The paths of the requests so far, in order.
    fn paths(&self) -> Vec<String>;

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// How many requests went to paths ending with `suffix`.
    fn count(&self, suffix: &str) -> usize {
        self.paths().iter().filter(|p| p.ends_with(suffix)).count()
    }
}

/// A JSON response without extra headers.
pub fn reply_json(stream: &mut TcpStream, status: u16, body: &Value) {
    reply(stream, status, "", &body.to_string());
}
