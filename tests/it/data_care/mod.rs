//! TLS and data care against the real server: HTTPS with a certificate made here, its reload
//! when the files are replaced, the HTTPS redirect, BASE_PATH, backups during writes (in
//! process and through the `nightlite` binary, also on SIGUSR1), restore refusing a damaged
//! file or a running server, the binary's offline commands and start-up checks, retention, and a
//! nearly full disk (injected through NIGHTLITE_TEST_DISK_FREE_BYTES, read by debug builds
//! only).

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

use crate::support::{
    command, free_port, now_ms, parse_head, secret_sha1, Process, Resp, Setup, TestServer, SECRET,
};

mod backup;
mod binary;
mod retention;
mod tls;

const DAY: i64 = 86_400_000;

fn sgv(date: i64, value: i64) -> Value {
    json!({"type": "sgv", "sgv": value, "date": date,
           "dateString": nightlite::dates::to_iso(date), "device": "care-test"})
}

/// The `nightlite` binary with this data directory and nothing else from the environment.
pub(crate) fn nightlite(data: &Path, args: &[&str]) -> Output {
    command()
        .args(args)
        .env("NIGHTLITE_DATA_DIR", data)
        .env("NIGHTLITE_LOG", "warn")
        .output()
        .unwrap()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Dates of the live entries in a database file.
fn entry_dates(db: &Path) -> HashSet<i64> {
    let c = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let ok: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    let mut s = c
        .prepare("SELECT json_extract(doc, '$.date') FROM entries WHERE is_valid = 1")
        .unwrap();
    s.query_map([], |r| r.get::<_, i64>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}
