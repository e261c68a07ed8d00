//! The one test harness, shared by every test binary (`mod support;`, or `#[path]` from
//! tests/it/main.rs): a nightlite in this process or as the real binary, each on an ephemeral
//! port of 127.0.0.1 with its own temporary data directory and settings over the test
//! defaults ([`Setup`]), and clients for HTTP ([`Http`]), `/ws` ([`Ws`]) and Socket.IO
//! ([`Sio`]). docs/testing.md says how to use it.
// Each test binary uses a part of it.
#![allow(dead_code, unused_imports)]

mod http;
mod live;
mod rng;
mod server;

pub use http::{parse_head, Http, Resp};
pub use live::{Ev, Pred, Sio, Ws, SOON};
pub use rng::Rng;
pub use server::{command, Process, Setup, TestServer};

use std::net::TcpListener;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The API secret of every server a [`Setup`] starts, unless its settings name another.
pub const SECRET: &str = "test-secret-0123";

/// The hash clients send for [`SECRET`] (`api-secret` header, `secret` fields).
pub fn secret_sha1() -> String {
    nightlite::auth::sha1_hex(SECRET)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-1 hex computed here, independently of the server's helper (for tests of its hashing).
pub fn sha1hex(s: &str) -> String {
    use sha1::Digest;
    hex(&sha1::Sha1::digest(s.as_bytes()))
}

/// SHA-512 hex, the other digest Nightscout accepts for the API secret.
pub fn sha512hex(s: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha512::digest(s.as_bytes()))
}

pub fn now_ms() -> i64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    i64::try_from(d.as_millis()).unwrap()
}

pub fn iso(ms: i64) -> String {
    nightlite::dates::to_iso(ms)
}

pub fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A port of 127.0.0.1 that was free a moment ago (for the binary, which binds it itself).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An sgv entry of `device` at `date` (epoch ms).
pub fn sgv(device: &str, date: i64, value: i64) -> Value {
    serde_json::json!({
        "type": "sgv",
        "sgv": value,
        "date": date,
        "dateString": iso(date),
        "device": device,
        "direction": "Flat"
    })
}

/// The `_id`s of a list of documents.
pub fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["_id"].as_str().expect("_id").to_string())
        .collect()
}

/// One numeric field of each document, as i64.
pub fn ints(items: &[Value], field: &str) -> Vec<i64> {
    items
        .iter()
        .map(|i| {
            i[field]
                .as_i64()
                .unwrap_or_else(|| panic!("{field} in {i}"))
        })
        .collect()
}

/// Percent-encodes a query value (everything but unreserved characters).
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `bytes` gzip-compressed, for `Content-Encoding: gzip` bodies.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}
