//! TLS and data care against the real server: HTTPS with a certificate made here, its reload
//! when the files are replaced, the HTTPS redirect, BASE_PATH, backups during writes (in
//! process and through the `nightlite` binary, also on SIGUSR1), restore refusing a damaged
//! file or a running server, retention, and a nearly full disk (injected through
//! NIGHTLITE_TEST_DISK_FREE_BYTES, read by debug builds only).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use rustls::pki_types::CertificateDer;
use serde_json::{json, Value};

const SECRET: &str = "care-test-secret-0123";
const DAY: i64 = 86_400_000;

fn now_ms() -> i64 {
    nightlite::dates::now_ms()
}

fn secret_hash() -> String {
    nightlite::auth::sha1_hex(SECRET)
}

fn sgv(date: i64, value: i64) -> Value {
    json!({"type": "sgv", "sgv": value, "date": date,
           "dateString": nightlite::dates::to_iso(date), "device": "care-test"})
}

// ------------------------------------------------------------------------------------------
// A server in this process on an ephemeral port.

struct Server {
    port: u16,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    agent: ureq::Agent,
}

struct Resp {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("status {}: not JSON ({e}): {}", self.status, self.body))
    }
}

impl Server {
    fn start(data: &Path, vars: &[(&str, &str)]) -> Server {
        let mut map: HashMap<String, String> = HashMap::new();
        map.insert("NIGHTLITE_DATA_DIR".into(), data.display().to_string());
        map.insert("API_SECRET".into(), SECRET.into());
        map.insert("AUTH_DEFAULT_ROLES".into(), "denied".into());
        for (k, v) in vars {
            map.insert((*k).to_string(), (*v).to_string());
        }
        let config = nightlite::Config::from_map(&map).unwrap();
        let tls = config.tls.is_some();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(nightlite::serve(config, listener, async move {
                let _ = rx.await;
            }))
        });
        let mut s = Server {
            port,
            shutdown: Some(tx),
            thread: Some(thread),
            agent: ureq::AgentBuilder::new()
                .redirects(0)
                .timeout(Duration::from_secs(20))
                .build(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if s.thread.as_ref().is_some_and(JoinHandle::is_finished) {
                let r = s.thread.take().unwrap().join();
                panic!("server exited during start-up: {r:?}");
            }
            // Any TCP answer will do for a TLS server; its tests speak TLS themselves.
            let up = if tls {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
            } else {
                // Any HTTP answer (BASE_PATH servers answer 404 here).
                matches!(
                    s.agent
                        .get(&format!("http://127.0.0.1:{port}/api/versions"))
                        .call(),
                    Ok(_) | Err(ureq::Error::Status(..))
                )
            };
            if up {
                return s;
            }
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Resp {
        let mut req = self
            .agent
            .request(method, &format!("http://127.0.0.1:{}{path}", self.port))
            .set("api-secret", &secret_hash());
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req.send_json(b.clone()),
            None => req.call(),
        };
        let r = match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: {e}"),
        };
        let status = r.status();
        let headers = r
            .headers_names()
            .into_iter()
            .map(|n| {
                let v = r.header(&n).unwrap_or("").to_string();
                (n.to_ascii_lowercase(), v)
            })
            .collect();
        Resp {
            status,
            headers,
            body: r.into_string().unwrap(),
        }
    }

    fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], None)
    }

    fn post(&self, path: &str, body: &Value) -> Resp {
        self.request("POST", path, &[], Some(body))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let r = t.join();
            if !std::thread::panicking() {
                assert!(
                    matches!(r, Ok(Ok(()))),
                    "server did not stop cleanly: {r:?}"
                );
            }
        }
    }
}

/// The `nightlite` binary with this data directory and nothing else from the environment.
fn nightlite(data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nightlite"))
        .args(args)
        .env_clear()
        .env("NIGHTLITE_DATA_DIR", data)
        .env("NIGHTLITE_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
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

// ------------------------------------------------------------------------------------------
// TLS: a raw rustls client, so the test sees the certificate and ALPN the server chose.

struct Pair {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn make_pair() -> Pair {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    Pair {
        cert_pem: ck.cert.pem(),
        key_pem: ck.signing_key.serialize_pem(),
        der: ck.cert.der().clone(),
    }
}

/// Writes the pair as a renewal tool does: new files renamed over the old names.
fn install_pair(dir: &Path, p: &Pair) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(dir.join("cert.tmp"), &p.cert_pem).unwrap();
    std::fs::write(dir.join("key.tmp"), &p.key_pem).unwrap();
    std::fs::rename(dir.join("key.tmp"), &key).unwrap();
    std::fs::rename(dir.join("cert.tmp"), &cert).unwrap();
    (cert, key)
}

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A verified connection trusting only `roots`, offering h2 and http/1.1.
fn tls_connect(port: u16, roots: &[&CertificateDer<'static>]) -> std::io::Result<Tls> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add((*r).clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// One HTTP/1.1 request on a kept-alive TLS connection; the body must have a Content-Length.
fn tls_get(s: &mut Tls, path: &str) -> Resp {
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\napi-secret: {}\r\n\r\n",
        secret_hash()
    )
    .unwrap();
    s.flush().unwrap();
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers["content-length"].parse().unwrap();
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    Resp {
        status,
        headers,
        body: String::from_utf8(body).unwrap(),
    }
}

fn served_cert(s: &Tls) -> CertificateDer<'static> {
    s.conn.peer_certificates().unwrap()[0].clone()
}

#[test]
fn https_is_served_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pair = make_pair();
    let (cert, key) = install_pair(dir.path(), &pair);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let s = Server::start(
        &dir.path().join("data"),
        &[("TLS_CERT", &cert), ("TLS_KEY", &key)],
    );
    let mut conn = tls_connect(s.port, &[&pair.der]).unwrap();
    assert_eq!(conn.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let r = tls_get(&mut conn, "/api/v1/status.json");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "ok");
    assert_eq!(r.headers["strict-transport-security"], "max-age=31536000");
    // Two requests on one connection: keep-alive works through TLS.
    assert_eq!(tls_get(&mut conn, "/api/versions").status, 200);

    // A client that does not trust this certificate is refused at the handshake.
    let stranger = make_pair();
    assert!(tls_connect(s.port, &[&stranger.der]).is_err());

    // `nightlite healthcheck` speaks TLS to it.
    let out = Command::new(env!("CARGO_BIN_EXE_nightlite"))
        .arg("healthcheck")
        .env_clear()
        .env("PORT", s.port.to_string())
        .env("HOSTNAME", "127.0.0.1")
        .env("TLS_CERT", &cert)
        .env("TLS_KEY", &key)
        .output()
        .unwrap();
    assert!(out.status.success(), "healthcheck: {}", stderr(&out));
}

#[test]
fn a_replaced_certificate_is_served_without_a_restart_or_dropped_connections() {
    let dir = tempfile::tempdir().unwrap();
    let first = make_pair();
    let (cert, key) = install_pair(dir.path(), &first);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let s = Server::start(
        &dir.path().join("data"),
        &[("TLS_CERT", &cert), ("TLS_KEY", &key)],
    );
    let mut old = tls_connect(s.port, &[&first.der]).unwrap();
    assert_eq!(tls_get(&mut old, "/api/versions").status, 200);

    // A broken file first: the old certificate stays in use.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    let second = make_pair();
    std::thread::sleep(Duration::from_millis(200));
    install_pair(dir.path(), &second);

    let roots = [&first.der, &second.der];
    let deadline = Instant::now() + nightlite::tls::RELOAD_EVERY + Duration::from_secs(5);
    loop {
        // The open connection keeps working meanwhile (and stays within its keep-alive).
        assert_eq!(tls_get(&mut old, "/api/versions").status, 200);
        let fresh = tls_connect(s.port, &roots).unwrap();
        if served_cert(&fresh) == second.der {
            break;
        }
        assert_eq!(served_cert(&fresh), first.der);
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served in time"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(served_cert(&old), first.der);
    assert_eq!(tls_get(&mut old, "/api/versions").status, 200);
}

#[test]
fn plain_http_is_redirected_to_https_as_nightscout_does() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[]);
    // From loopback without a proxy header: served (see src/https.rs).
    assert_eq!(s.get("/api/v1/status.json").status, 200);
    // A proxy says the client came over plain HTTP: 307 to the same URL on https.
    let r = s.request(
        "GET",
        "/api/v1/entries.json?count=2",
        &[("X-Forwarded-Proto", "http"), ("Host", "ns.example.org")],
        None,
    );
    assert_eq!(r.status, 307, "{}", r.body);
    assert_eq!(
        r.headers["location"],
        "https://ns.example.org/api/v1/entries.json?count=2"
    );
    // Writes are redirected too (307 keeps the method and body).
    let r = s.request(
        "POST",
        "/api/v1/entries",
        &[("X-Forwarded-Proto", "http")],
        Some(&sgv(now_ms(), 100)),
    );
    assert_eq!(r.status, 307);
    assert_eq!(s.get("/api/v1/entries.json").json(), json!([]));
    // The proxy terminated TLS: served, with HSTS.
    let r = s.request(
        "GET",
        "/api/v1/status.json",
        &[("X-Forwarded-Proto", "https")],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["strict-transport-security"], "max-age=31536000");
    assert_eq!(r.json()["settings"]["insecureUseHttp"], false);
    drop(s);

    let s = Server::start(dir.path(), &[("INSECURE_USE_HTTP", "true")]);
    let r = s.request(
        "GET",
        "/api/v1/status.json",
        &[("X-Forwarded-Proto", "http")],
        None,
    );
    assert_eq!(r.status, 200);
    assert!(!r.headers.contains_key("strict-transport-security"));
}

#[test]
fn base_path_serves_under_the_prefix_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[("BASE_PATH", "/nightscout/")]);
    let r = s.get("/nightscout/api/v1/status.json");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.get("/api/v1/status.json").status, 404);
    assert_eq!(s.get("/nightscoutx/api/v1/status.json").status, 404);
    let posted = s.post("/nightscout/api/v1/entries", &sgv(now_ms(), 120));
    assert_eq!(posted.status, 200, "{}", posted.body);
    let got = s.get("/nightscout/api/v1/entries.json").json();
    assert_eq!(got[0]["sgv"], 120);
    // Redirects keep the prefix, since they carry the URL as the client sent it.
    let r = s.request(
        "GET",
        "/nightscout/api/v1/entries.json",
        &[("X-Forwarded-Proto", "http"), ("Host", "h.example")],
        None,
    );
    assert_eq!(
        r.headers["location"],
        "https://h.example/nightscout/api/v1/entries.json"
    );
}

#[test]
fn the_viewer_works_under_base_path() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[("BASE_PATH", "/nightscout")]);
    // The bare prefix sends the browser to the folder, so relative addresses stay inside it.
    let r = s.get("/nightscout?token=abc");
    assert_eq!(r.status, 308, "{}", r.body);
    assert_eq!(r.headers["location"], "/nightscout/?token=abc");
    let page = s.get("/nightscout/");
    assert_eq!(page.status, 200, "{}", page.body);
    let start = page
        .body
        .find("src=\"static/")
        .expect("a relative script address");
    let script = &page.body[start + 5..];
    let script = &script[..script.find('"').unwrap()];
    // Resolved against /nightscout/, as the browser does.
    let js = s.get(&format!("/nightscout/{script}"));
    assert_eq!(js.status, 200, "{script}: {}", js.body);
    assert!(js.body.contains("import"), "{}", js.body);
    assert!(
        !page.body.contains("=\"/static/"),
        "no address from the host's root"
    );
    assert_eq!(s.get("/static/x/app.js").status, 404);
}

#[test]
fn a_second_server_on_the_same_data_stops_before_announcing_itself() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Server::start(dir.path(), &[]);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_nightlite"))
        .arg("serve")
        .env("NIGHTLITE_DATA_DIR", dir.path())
        .env("API_SECRET", SECRET)
        .env("PORT", port.to_string())
        .env("HOSTNAME", "127.0.0.1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("another nightlite server is using the data directory"),
        "{stderr}"
    );
    // The banner would tell the user it is serving, and where, when it is not.
    assert!(!stdout.contains("serving at"), "{stdout}");
}

// ------------------------------------------------------------------------------------------
// Backup and restore.

#[test]
fn backup_during_writes_holds_every_acknowledged_document() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Arc::new(Server::start(&data, &[]));
    let acked: Arc<Mutex<Vec<i64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let base = now_ms() - DAY;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (s, acked, stop) = (s.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) && i < 5000 {
                    let date = base + i * 1000 + w;
                    let r = s.post("/api/v1/entries", &json!([sgv(date, 100 + i % 50)]));
                    assert_eq!(r.status, 200, "{}", r.body);
                    acked.lock().unwrap().push(date);
                    i += 2;
                }
            })
        })
        .collect();
    let wait_for = |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while acked.lock().unwrap().len() < n {
            assert!(Instant::now() < deadline, "writers too slow");
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    // In this process, as the server's scheduled backups do.
    wait_for(50);
    let before: Vec<i64> = acked.lock().unwrap().clone();
    let config = nightlite::Config::from_map(&HashMap::from([(
        "NIGHTLITE_DATA_DIR".to_string(),
        data.display().to_string(),
    )]))
    .unwrap();
    let (file, bytes) = nightlite::care::backup_now(&config, None).unwrap();
    assert!(bytes > 0);
    assert!(file.starts_with(data.join("backups")));
    let copied = entry_dates(&file);
    let missing: Vec<_> = before.iter().filter(|d| !copied.contains(d)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the backup: {missing:?}"
    );

    // Through the command line, in another process, while the writes go on.
    wait_for(before.len() + 50);
    let before: Vec<i64> = acked.lock().unwrap().clone();
    let dest = dir.path().join("cli.sqlite3");
    let out = nightlite(&data, &["backup", "--to", dest.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let copied = entry_dates(&dest);
    let missing: Vec<_> = before.iter().filter(|d| !copied.contains(d)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not in the backup: {missing:?}"
    );
    // A missing folder (an unmounted drive) is refused, not created.
    let unmounted = dir.path().join("usb");
    let out = nightlite(
        &data,
        &[
            "backup",
            "--to",
            unmounted.join("x.sqlite3").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no such folder"), "{}", stderr(&out));
    assert!(!unmounted.exists());
    // An existing file is not overwritten.
    let out = nightlite(&data, &["backup", "--to", dest.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));

    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
}

#[test]
fn restore_refuses_damaged_files_and_a_running_server_then_replaces_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let t = now_ms();
    let s = Server::start(&data, &[]);
    for i in 0..200 {
        assert_eq!(
            s.post("/api/v1/entries", &sgv(t - i * 60_000, 110)).status,
            200
        );
    }
    let good = dir.path().join("good.sqlite3");
    let out = nightlite(&data, &["backup", "--to", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Damaged: every page after the first (which holds the schema) has its header overwritten.
    let mut bytes = std::fs::read(&good).unwrap();
    let page = 4096;
    assert!(
        bytes.len() > 4 * page,
        "backup too small to damage: {}",
        bytes.len()
    );
    for start in (page..bytes.len()).step_by(page) {
        bytes[start..start + 64].fill(0xA5);
    }
    let damaged = dir.path().join("damaged.sqlite3");
    std::fs::write(&damaged, &bytes).unwrap();
    let not_db = dir.path().join("notes.txt");
    std::fs::write(&not_db, "not a database, just some words ".repeat(200)).unwrap();

    // A running server holds the data directory.
    let out = nightlite(&data, &["restore", good.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("server is running"),
        "{}",
        stderr(&out)
    );

    s.post("/api/v1/entries", &sgv(t + 60_000, 222));
    drop(s);

    let out = nightlite(&data, &["restore", damaged.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("damaged"), "{}", stderr(&out));
    let out = nightlite(&data, &["restore", not_db.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a SQLite database"),
        "{}",
        stderr(&out)
    );
    // Refusals changed nothing.
    let db = data.join("nightlite.sqlite3");
    assert_eq!(entry_dates(&db).len(), 201);

    let out = nightlite(&data, &["restore", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("200 entries"), "{}", stderr(&out));
    assert_eq!(entry_dates(&data.join("nightlite.sqlite3.bak")).len(), 201);

    let s = Server::start(&data, &[]);
    let entries = s.get("/api/v1/entries.json?count=1000").json();
    assert_eq!(entries.as_array().unwrap().len(), 200);
    assert!(entries.as_array().unwrap().iter().all(|e| e["sgv"] == 110));
}

/// The binary run in `cwd` with only these variables.
fn nightlite_in(cwd: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nightlite"));
    c.args(args)
        .env_clear()
        .env("NIGHTLITE_LOG", "warn")
        .current_dir(cwd)
        .stdin(Stdio::null());
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// A backup file of a database holding one entry.
fn one_entry_backup(dir: &Path) -> PathBuf {
    let data = dir.join("source-data");
    let s = Server::start(&data, &[]);
    assert_eq!(s.post("/api/v1/entries", &sgv(now_ms(), 123)).status, 200);
    drop(s);
    let file = dir.join("one.sqlite3");
    let out = nightlite(&data, &["backup", "--to", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    file
}

#[test]
fn offline_commands_refuse_a_data_directory_without_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let file = one_entry_backup(dir.path());
    let cwd = dir.path().join("elsewhere");
    std::fs::create_dir(&cwd).unwrap();
    let named = dir.path().join("typo-data");
    let named_str = named.display().to_string();
    let file_str = file.display().to_string();
    let commands: [&[&str]; 5] = [
        &["token", "list"],
        &["token", "create", "--name", "x", "--role", "readable"],
        &["token", "revoke", "x"],
        &["backup"],
        &["restore", &file_str],
    ];
    for args in commands {
        // In the wrong folder, with the default ./nightlite-data.
        let out = nightlite_in(&cwd, &[("API_SECRET", SECRET)], args);
        assert!(!out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("no nightlite database in ./nightlite-data"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(std::fs::read_dir(&cwd).unwrap().count(), 0, "{args:?}");
    }
    // A named data directory without a database: the token commands and backup refuse it.
    for args in &commands[..4] {
        let vars = [
            ("API_SECRET", SECRET),
            ("NIGHTLITE_DATA_DIR", named_str.as_str()),
        ];
        let out = nightlite_in(&cwd, &vars, args);
        assert!(!out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("no nightlite database"),
            "{}",
            stderr(&out)
        );
        assert!(!named.exists(), "{args:?} created {}", named.display());
    }
    // Restore may create one there: recovery onto a new machine.
    let out = nightlite_in(
        &cwd,
        &[("NIGHTLITE_DATA_DIR", &named_str)],
        &["restore", &file_str],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("1 entries"), "{}", stderr(&out));
    assert_eq!(entry_dates(&named.join("nightlite.sqlite3")).len(), 1);
}

/// Settings that are accepted but wrong stop `serve` with exit status 2 and the setting's name,
/// before it creates anything.
#[test]
fn values_accepted_but_wrong_stop_start_up_with_the_settings_name() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let data_str = data.display().to_string();
    // mmol/l thresholds under the default mg/dl units rise in order, so only their size
    // tells them apart (every reading would be urgent high).
    let mmol = [
        ("BG_HIGH", "14"),
        ("BG_TARGET_TOP", "10"),
        ("BG_TARGET_BOTTOM", "4"),
        ("BG_LOW", "3"),
    ];
    let cases: [(&str, &[(&str, &str)]); 3] = [
        ("AUTH_DEFAULT_ROLES", &[("AUTH_DEFAULT_ROLES", "readible")]),
        ("BG_HIGH", &mmol),
        ("NIGHTLITE_LOG", &[("NIGHTLITE_LOG", "verbose")]),
    ];
    for (name, vars) in cases {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nightlite"))
            .arg("serve")
            .env_clear()
            .envs([
                ("NIGHTLITE_DATA_DIR", data_str.as_str()),
                ("API_SECRET", SECRET),
                ("PORT", &port),
                ("HOSTNAME", "127.0.0.1"),
            ])
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let running = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        assert!(!running, "{vars:?}: the server started");
        assert_eq!(out.status.code(), Some(2), "{vars:?}");
        assert!(
            stderr(&out).starts_with(&format!("nightlite: {name}:")),
            "{vars:?}: {}",
            stderr(&out)
        );
        assert!(!data.exists(), "{vars:?} created the data directory");
    }
}

/// Nightscout settings move over unchanged: a name nightlite does not read, in the TOML file
/// or the environment, is named once in a warning and does not stop it.
#[test]
fn names_nightlite_does_not_read_are_warned_about_once_and_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("nightlite.toml");
    std::fs::write(
        &toml,
        "PORT = 1\nSHOW_PLUGINS = \"careportal basal\"\nPUSHOVER_API_TOKEN = \"x\"\n",
    )
    .unwrap();
    let data = dir.path().display().to_string();
    let vars = [
        ("NIGHTLITE_DATA_DIR", data.as_str()),
        ("HOSTNAME", "127.0.0.1"),
        ("MONGODB_URI", "mongodb://localhost/ns"),
        ("SHOW_PLUGINS", "careportal"),
        ("PATH", "/usr/bin:/bin"),
        ("HOME", "/nonexistent"),
    ];
    let out = nightlite_in(
        dir.path(),
        &vars,
        &["--config", toml.to_str().unwrap(), "healthcheck"],
    );
    let err = stderr(&out);
    // 1: nobody answers on port 1; 2 would be a refused setting.
    assert_eq!(out.status.code(), Some(1), "{err}");
    for (name, place) in [
        ("SHOW_PLUGINS", toml.display().to_string()),
        ("PUSHOVER_API_TOKEN", toml.display().to_string()),
        ("MONGODB_URI", "the environment".to_string()),
    ] {
        let lines: Vec<&str> = err.lines().filter(|l| l.contains(name)).collect();
        assert_eq!(lines.len(), 1, "{name}: {err}");
        assert!(
            lines[0].contains(&place) && lines[0].contains("ignored"),
            "{err}"
        );
    }
    assert!(!err.contains("PATH") && !err.contains("HOME"), "{err}");
    assert!(!err.contains("mongodb://"), "values are not logged: {err}");
}

/// The `nightlite` binary serving `data` on a free port; returns once it answers.
fn spawn_server(data: &Path) -> (std::process::Child, String, ureq::Agent) {
    let data = data.display().to_string();
    spawn_with(
        &[("NIGHTLITE_DATA_DIR", &data), ("API_SECRET", SECRET)],
        &[],
        Stdio::null(),
    )
}

/// `nightlite <args> serve` on a free port of 127.0.0.1 (unless `vars` set HOSTNAME) with only
/// these variables; returns once it answers, which is after its banner.
fn spawn_with(
    vars: &[(&str, &str)],
    args: &[&str],
    stdout: Stdio,
) -> (std::process::Child, String, ureq::Agent) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nightlite"))
        .args(args)
        .arg("serve")
        .env_clear()
        .env("PORT", port.to_string())
        .env("HOSTNAME", "127.0.0.1")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while agent.get(&format!("{url}/api/versions")).call().is_err() {
        assert!(child.try_wait().unwrap().is_none(), "server exited");
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, url, agent)
}

/// What `serve` prints on stdout once it is ready (it is stopped afterwards).
fn banner_of(dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> String {
    let file = dir.join("banner.txt");
    let out = std::fs::File::create(&file).unwrap();
    let (mut child, _, _) = spawn_with(vars, args, Stdio::from(out));
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_to_string(&file).unwrap()
}

/// Listening on every interface, the banner gives the addresses phones can use, not only
/// 127.0.0.1, and says that they are redirected to https unless INSECURE_USE_HTTP is on.
#[test]
fn the_banner_lists_lan_addresses_and_the_https_redirect() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let vars = [
        ("NIGHTLITE_DATA_DIR", data.as_str()),
        ("API_SECRET", SECRET),
        ("HOSTNAME", "0.0.0.0"),
    ];
    let banner = banner_of(dir.path(), &vars, &[]);
    let port = banner
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("{banner}"));
    let lan: Vec<std::net::IpAddr> = banner
        .lines()
        .filter(|l| l.contains("from phones and other machines"))
        .filter_map(|l| l.split("http://").nth(1)?.split(':').next()?.parse().ok())
        .collect();
    // The address this machine would reach the network from (no packet is sent).
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    if let Some(primary) = udp
        .connect("192.0.2.1:9")
        .ok()
        .and_then(|()| udp.local_addr().ok())
    {
        let reachable = match primary.ip() {
            std::net::IpAddr::V4(v4) => !(v4.is_loopback() || v4.is_link_local()),
            std::net::IpAddr::V6(_) => false,
        };
        if reachable {
            assert_eq!(lan.first(), Some(&primary.ip()), "{banner}");
        }
    }
    assert!(
        banner.contains("from phones and other machines") && lan.iter().all(|ip| !ip.is_loopback()),
        "{banner}"
    );
    assert!(
        lan.is_empty() || banner.contains(&format!("http://{}:{port}/", lan[0])),
        "{banner}"
    );
    assert!(
        banner.contains("redirected to https://") && banner.contains("INSECURE_USE_HTTP=true"),
        "{banner}"
    );

    let insecure = [vars[0], vars[1], vars[2], ("INSECURE_USE_HTTP", "true")];
    let banner = banner_of(dir.path(), &insecure, &[]);
    assert!(
        banner.contains("from phones and other machines"),
        "{banner}"
    );
    assert!(!banner.contains("redirected"), "{banner}");

    // On loopback only, nobody else can connect: no addresses, no redirect note.
    let local = [vars[0], vars[1], ("HOSTNAME", "127.0.0.1")];
    let banner = banner_of(dir.path(), &local, &[]);
    assert!(!banner.contains("other machines"), "{banner}");
}

/// With API_SECRET in the TOML file, the banner says so, and not that the secret is in
/// `<data dir>/api_secret` (which holds an old one here); neither secret is printed.
#[test]
fn the_banner_says_where_the_secret_in_force_comes_from() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let old = "an-old-unused-secret-7";
    std::fs::write(data.join("api_secret"), format!("{old}\n")).unwrap();
    let toml = dir.path().join("nightlite.toml");
    std::fs::write(&toml, format!("API_SECRET = \"{SECRET}\"\n")).unwrap();
    let data_str = data.display().to_string();
    let banner = banner_of(
        dir.path(),
        &[("NIGHTLITE_DATA_DIR", &data_str)],
        &["--config", toml.to_str().unwrap()],
    );
    let line = banner
        .lines()
        .find(|l| l.starts_with("admin API secret"))
        .unwrap_or_else(|| panic!("{banner}"));
    assert!(
        line.contains(&format!("API_SECRET in {}", toml.display())),
        "{banner}"
    );
    assert!(
        banner.contains(&format!(
            "{} is not used",
            data.join("api_secret").display()
        )),
        "{banner}"
    );
    assert!(
        !banner.contains(SECRET) && !banner.contains(old),
        "{banner}"
    );

    // From the environment, it says that.
    std::fs::remove_file(data.join("api_secret")).unwrap();
    let banner = banner_of(
        dir.path(),
        &[("NIGHTLITE_DATA_DIR", &data_str), ("API_SECRET", SECRET)],
        &[],
    );
    assert!(
        banner.contains("admin API secret: from API_SECRET in the environment"),
        "{banner}"
    );
    assert!(!banner.contains(SECRET), "{banner}");
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The data directory, database, WAL and backups are the owner's only, whatever the umask of
/// the shell that started nightlite (0022 here, which made them 0644 / 0755).
#[test]
fn the_database_its_wal_and_backups_are_private_to_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, url, agent) = spawn_server(&data);
    let r = agent
        .post(&format!("{url}/api/v1/entries"))
        .set("api-secret", &secret_hash())
        .send_json(sgv(now_ms(), 140))
        .unwrap();
    assert_eq!(r.status(), 200);
    let to = dir.path().join("copy.sqlite3");
    let out = nightlite(&data, &["backup", "--to", to.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = nightlite(&data, &["backup"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let in_dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());

    assert_eq!(mode(&data), 0o700, "data directory");
    assert_eq!(mode(&data.join("backups")), 0o700, "backups directory");
    for f in [
        data.join("nightlite.sqlite3"),
        data.join("nightlite.sqlite3-wal"),
        data.join("nightlite.sqlite3-shm"),
        to,
        in_dir,
    ] {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn sigusr1_makes_a_backup_of_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, url, agent) = spawn_server(&data);
    let date = now_ms();
    let r = agent
        .post(&format!("{url}/api/v1/entries"))
        .set("api-secret", &secret_hash())
        .send_json(sgv(date, 140))
        .unwrap();
    assert_eq!(r.status(), 200);

    let killed = Command::new("kill")
        .args(["-USR1", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let backups = data.join("backups");
    let deadline = Instant::now() + Duration::from_secs(20);
    let file = loop {
        let found = std::fs::read_dir(&backups).ok().and_then(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "sqlite3"))
        });
        if let Some(f) = found {
            break f;
        }
        assert!(Instant::now() < deadline, "no backup after SIGUSR1");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(entry_dates(&file).contains(&date));
    // The signal did not stop the server.
    assert!(child.try_wait().unwrap().is_none());
    assert!(agent.get(&format!("{url}/api/versions")).call().is_ok());
    let _ = child.kill();
    let _ = child.wait();
}

// ------------------------------------------------------------------------------------------
// Retention and a full disk.

#[test]
fn retention_removes_old_device_statuses_and_keeps_newer_ones() {
    let dir = tempfile::tempdir().unwrap();
    let now = now_ms();
    let status = |days_ago: i64, tag: &str| {
        json!({"device": "loop://phone", "created_at": nightlite::dates::to_iso(now - days_ago * DAY),
               "tag": tag})
    };
    {
        let s = Server::start(dir.path(), &[("DEVICESTATUS_RETENTION_DAYS", "0")]);
        for (days, tag) in [
            (100, "old"),
            (31, "older than 30"),
            (29, "recent"),
            (0, "now"),
        ] {
            let r = s.post("/api/v1/devicestatus", &status(days, tag));
            assert_eq!(r.status, 200, "{}", r.body);
        }
        let r = s.post(
            "/api/v1/treatments",
            &json!({"eventType": "Note", "created_at": nightlite::dates::to_iso(now - 100 * DAY)}),
        );
        assert_eq!(r.status, 200);
    }
    let s = Server::start(dir.path(), &[("DEVICESTATUS_RETENTION_DAYS", "30")]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let tags = loop {
        let list = s
            .get("/api/v1/devicestatus.json?count=100&find[created_at][$gte]=2000-01-01")
            .json();
        let tags: HashSet<String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["tag"].as_str().unwrap().to_string())
            .collect();
        if tags.len() == 2 {
            break tags;
        }
        assert!(Instant::now() < deadline, "retention did not run: {tags:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(tags, HashSet::from(["recent".into(), "now".into()]));
    // Treatments have no retention by default.
    let t = s.get("/api/v1/treatments.json?find[created_at][$gte]=2000-01-01");
    assert_eq!(t.json().as_array().unwrap().len(), 1);
}

#[test]
fn a_nearly_full_disk_refuses_writes_and_keeps_reads_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let t = now_ms();
    {
        let s = Server::start(dir.path(), &[]);
        let r = s.post(
            "/api/v1/entries",
            &json!([sgv(t, 100), sgv(t - 300_000, 101)]),
        );
        assert_eq!(r.status, 200);
    }
    let s = Server::start(dir.path(), &[("NIGHTLITE_TEST_DISK_FREE_BYTES", "1000")]);
    let r = s.post("/api/v1/entries", &sgv(t + 300_000, 102));
    assert_eq!(r.status, 507, "{}", r.body);
    let body = r.json();
    assert_eq!(body["status"], 507);
    assert!(
        body["message"].as_str().unwrap().contains("nearly full"),
        "{body}"
    );
    let r = s.post(
        "/api/v1/treatments",
        &json!({"eventType": "Note", "created_at": nightlite::dates::to_iso(t)}),
    );
    assert_eq!(r.status, 507);

    let list = s.get("/api/v1/entries.json").json();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let status = s.get("/api/v1/status.json").json();
    assert_eq!(status["diskFree"], 1000);
    assert!(status["dbsize"].as_u64().unwrap() > 0);

    let id = list[0]["_id"].as_str().unwrap();
    let r = s.request("DELETE", &format!("/api/v1/entries/{id}"), &[], None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        s.get("/api/v1/entries.json")
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn restore_refuses_a_database_missing_tables_or_columns_and_replaces_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let t = now_ms();
    {
        let s = Server::start(&data, &[]);
        assert_eq!(s.post("/api/v1/entries", &sgv(t, 120)).status, 200);
    }
    let good = dir.path().join("good.sqlite3");
    let out = nightlite(&data, &["backup", "--to", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    for (name, damage, why) in [
        (
            "no-subjects",
            "DROP TABLE auth_subjects",
            "no 'auth_subjects' table",
        ),
        (
            "gutted-entries",
            "DROP TABLE entries; CREATE TABLE entries (id TEXT PRIMARY KEY, doc TEXT)",
            "'entries' table lacks the column(s)",
        ),
    ] {
        let file = dir.path().join(format!("{name}.sqlite3"));
        std::fs::copy(&good, &file).unwrap();
        Connection::open(&file)
            .unwrap()
            .execute_batch(damage)
            .unwrap();
        let out = nightlite(&data, &["restore", file.to_str().unwrap()]);
        assert!(!out.status.success(), "{name} was restored");
        assert!(
            stderr(&out).contains("not a nightlite database"),
            "{}",
            stderr(&out)
        );
        assert!(stderr(&out).contains(why), "{}", stderr(&out));
        assert!(
            !data.join("nightlite.sqlite3.bak").exists(),
            "{name}: nothing replaced"
        );
        assert_eq!(
            entry_dates(&data.join("nightlite.sqlite3")),
            HashSet::from([t])
        );
    }
}

/// A JWT of a new admin subject, for API v3.
fn v3_admin_jwt(s: &Server) -> String {
    let r = s.post(
        "/api/v2/authorization/subjects",
        &json!({"name": "v3 admin", "roles": ["admin"]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let subjects = s.get("/api/v2/authorization/subjects").json();
    let token = subjects
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "v3 admin")
        .and_then(|x| x["accessToken"].as_str())
        .unwrap()
        .to_string();
    let r = s.get(&format!("/api/v2/authorization/request/{token}"));
    r.json()["token"].as_str().unwrap().to_string()
}

#[test]
fn a_disk_that_fills_during_concurrent_writes_answers_each_write_as_it_is_stored() {
    let Some(disk) = SmallDisk::mount("3m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); \
             store::writer's unit test covers the logic with max_page_count"
        );
        return;
    };
    let data = disk.path().join("data");
    // The reserve check would refuse every write on a 3 MB disk: let SQLite meet the full disk.
    let s = Arc::new(Server::start(
        &data,
        &[("NIGHTLITE_TEST_DISK_FREE_BYTES", "1000000000000")],
    ));
    let jwt = v3_admin_jwt(&s);
    let answers: Arc<Mutex<Vec<(i64, u16, String)>>> = Arc::default();
    let base = now_ms() - DAY;
    // Three v1 uploaders, one document a request; a v3 uploader, batches of two (each item in
    // a savepoint of its own within the request's write).
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (s, answers, jwt) = (s.clone(), answers.clone(), jwt.clone());
            std::thread::spawn(move || {
                let mut refused = 0;
                let mut i = 0;
                // Until the disk has been full for a while (or a bound, should it never fill).
                while refused < 40 && i < 4000 {
                    let dates = [base + i * 1000 + w, base + (i + 4) * 1000 + w];
                    let docs: Vec<Value> = dates
                        .iter()
                        .map(|d| {
                            let mut doc = sgv(*d, 100);
                            doc["note"] = json!("x".repeat(6000));
                            doc["app"] = json!("fill");
                            doc["utcOffset"] = json!(0);
                            doc
                        })
                        .collect();
                    if w < 3 {
                        let r = s.post("/api/v1/entries", &json!([docs[0]]));
                        refused += usize::from(r.status != 200);
                        answers.lock().unwrap().push((dates[0], r.status, r.body));
                        i += 4;
                        continue;
                    }
                    let bearer = format!("Bearer {jwt}");
                    let r = s.request(
                        "POST",
                        "/api/v3/entries",
                        &[("Authorization", &bearer)],
                        Some(&json!(docs)),
                    );
                    let mut got = answers.lock().unwrap();
                    if r.status == 207 {
                        let items = r.json()["result"].as_array().unwrap().clone();
                        for (d, item) in dates.iter().zip(items) {
                            // A created item is a 200 for the check below.
                            let st = match item["status"].as_u64().unwrap() {
                                201 => 200,
                                other => u16::try_from(other).unwrap(),
                            };
                            refused += usize::from(st != 200);
                            got.push((*d, st, item.to_string()));
                        }
                    } else {
                        refused += 1;
                        for d in dates {
                            got.push((d, r.status, r.body.clone()));
                        }
                    }
                    i += 8;
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let answers = std::mem::take(&mut *answers.lock().unwrap());
    let mut counts: HashMap<u16, usize> = HashMap::new();
    for a in &answers {
        *counts.entry(a.1).or_default() += 1;
    }
    eprintln!("answers by status: {counts:?}");
    assert!(
        answers.iter().any(|a| a.1 != 200),
        "the disk never filled ({} writes)",
        answers.len()
    );
    let s = Arc::into_inner(s).expect("writers are done");
    drop(s);
    let stored = entry_dates(&data.join("nightlite.sqlite3"));
    for (date, status, body) in &answers {
        match status {
            200 => assert!(stored.contains(date), "answered 200 but not stored: {date}"),
            507 => assert!(
                !stored.contains(date),
                "answered 507 but stored: {date}: {body}"
            ),
            other => panic!(
                "{other} for {date} (stored: {}): {body}",
                stored.contains(date)
            ),
        }
    }
    assert!(answers.iter().any(|a| a.1 == 200));
}

/// Deleting through the API only marks documents; `nightlite compact` is what gives the disk
/// its space back.
#[test]
fn compact_removes_documents_deleted_through_the_api_and_shrinks_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let t = now_ms() - DAY;
    let db = data.join("nightlite.sqlite3");
    let wal = data.join("nightlite.sqlite3-wal");
    let on_disk = || {
        std::fs::metadata(&db).map_or(0, |m| m.len())
            + std::fs::metadata(&wal).map_or(0, |m| m.len())
    };
    let s = Server::start(&data, &[]);
    for chunk in 0..6 {
        let batch: Vec<Value> = (0..100)
            .map(|i| {
                let n = chunk * 100 + i;
                let mut e = sgv(t + n * 1000, if n < 500 { 100 } else { 200 });
                e["pad"] = json!("x".repeat(4000));
                e
            })
            .collect();
        assert_eq!(s.post("/api/v1/entries", &json!(batch)).status, 200);
    }
    let r = s.request(
        "DELETE",
        "/api/v1/entries?find[sgv][$lt]=150&find[date][$gte]=0",
        &[],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let size_before = on_disk();
    // A running server holds the data directory.
    let out = nightlite(&data, &["compact", "--older-than-days", "0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("server is running"),
        "{}",
        stderr(&out)
    );
    drop(s);
    let stopped = on_disk();
    assert!(stopped > 2_000_000, "{stopped}");

    let out = nightlite(&data, &["compact", "--older-than-days", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("removed 500 entries"),
        "{}",
        stderr(&out)
    );
    let after = on_disk();
    assert!(
        after * 3 < stopped,
        "{size_before} (running) / {stopped} (stopped) → {after} bytes"
    );
    let c = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let deleted: i64 = c
        .query_row("SELECT count(*) FROM entries WHERE is_valid = 0", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(deleted, 0);
    drop(c);
    let live = entry_dates(&db);
    assert_eq!(live.len(), 100);
    assert!(live.iter().all(|d| *d >= t + 500_000));
    let s = Server::start(&data, &[]);
    assert_eq!(
        s.get("/api/v1/entries.json?count=1000")
            .json()
            .as_array()
            .unwrap()
            .len(),
        100
    );
}

/// A small tmpfs mounted for one test, unmounted when dropped; None where mounting is not
/// allowed (not root, or a container without the privilege).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .output()
            .ok()?;
        out.status.success().then_some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
