//! A real nightlite on an ephemeral port with its own data directory, and a small HTTP client.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub const SECRET: &str = "test-secret-0123";

pub fn secret_sha1() -> String {
    nightlite::auth::sha1_hex(SECRET)
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

/// A response of any status.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    /// Lower-cased names, in the order received.
    pub headers: Vec<(String, String)>,
    pub text: String,
    /// The status line and headers exactly as received ([`TestServer::raw`] only).
    pub head: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {:?}",
                self.status, self.text
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }

    /// The body as a JSON array, asserting the status is 200.
    pub fn list(&self) -> Vec<Value> {
        assert_eq!(self.status, 200, "body: {}", self.text);
        match self.json() {
            Value::Array(items) => items,
            other => panic!("expected a JSON array, got {other}"),
        }
    }
}

pub struct TestServer {
    pub base: String,
    pub port: u16,
    _owned_dir: Option<tempfile::TempDir>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
    agent: ureq::Agent,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::with(&[])
    }

    /// A server with extra settings over the defaults (AUTH_DEFAULT_ROLES=denied, ...).
    pub fn with(vars: &[(&str, &str)]) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut s = TestServer::in_dir(dir.path(), vars);
        s._owned_dir = Some(dir);
        s
    }

    /// A server on a data directory the caller owns, so a later server can reopen it.
    pub fn in_dir(dir: &Path, vars: &[(&str, &str)]) -> TestServer {
        let mut map: HashMap<String, String> = HashMap::new();
        map.insert(
            "NIGHTLITE_DATA_DIR".into(),
            dir.to_str().unwrap().to_string(),
        );
        map.insert("API_SECRET".into(), SECRET.into());
        map.insert("AUTH_DEFAULT_ROLES".into(), "denied".into());
        // Tests send wrong credentials on purpose; keep the brute-force delay short.
        map.insert("AUTH_FAIL_DELAY".into(), "20".into());
        for (k, v) in vars {
            map.insert((*k).to_string(), (*v).to_string());
        }
        let config = nightlite::Config::from_map(&map).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(nightlite::serve(config, listener, async move {
                let _ = rx.await;
            }))
        });
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .max_idle_connections(0)
            .timeout(Duration::from_secs(30))
            .build();
        let mut server = TestServer {
            base: format!("http://127.0.0.1:{port}"),
            port,
            _owned_dir: None,
            shutdown: Some(tx),
            thread: Some(thread),
            agent,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.thread.as_ref().is_some_and(JoinHandle::is_finished) {
                let result = self.thread.take().unwrap().join();
                panic!("server exited during start-up: {result:?}");
            }
            if let Ok(r) = self.agent.get(&self.url("/api/versions")).call() {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "server did not answer in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Any request; `body` is sent as is, with the given headers.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let mut req = self.agent.request(method, &self.url(path));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: transport error: {e}"),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .map(|n| {
                let v = resp.header(&n).unwrap_or("").to_string();
                (n, v)
            })
            .collect();
        let text = resp.into_string().unwrap();
        Resp {
            status,
            headers,
            text,
            head: String::new(),
        }
    }

    /// A request with the API secret added.
    pub fn request_auth(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let secret = secret_sha1();
        let mut all: Vec<(&str, &str)> = vec![("api-secret", secret.as_str())];
        all.extend_from_slice(headers);
        self.request(method, path, &all, body)
    }

    pub fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], None)
    }

    pub fn get_auth(&self, path: &str) -> Resp {
        self.request_auth("GET", path, &[], None)
    }

    pub fn get_auth_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        self.request_auth("GET", path, headers, None)
    }

    /// An authenticated GET that must answer 200 with a JSON array.
    pub fn list(&self, path: &str) -> Vec<Value> {
        self.get_auth(path).list()
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.send_json_auth("POST", path, body)
    }

    pub fn put_json(&self, path: &str, body: &Value) -> Resp {
        self.send_json_auth("PUT", path, body)
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.request_auth("DELETE", path, &[], None)
    }

    fn send_json_auth(&self, method: &str, path: &str, body: &Value) -> Resp {
        let bytes = serde_json::to_vec(body).unwrap();
        self.request_auth(
            method,
            path,
            &[("Content-Type", "application/json")],
            Some(&bytes),
        )
    }

    /// A POST with the secret and a raw body sent as application/json.
    pub fn post_raw(&self, path: &str, body: &[u8]) -> Resp {
        self.request_auth(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            Some(body),
        )
    }

    /// A POST that must succeed; returns the reply's items.
    pub fn post_ok(&self, path: &str, body: &Value) -> Vec<Value> {
        let r = self.post_json(path, body);
        assert_eq!(r.status, 200, "POST {path}: {}", r.text);
        r.list()
    }

    /// Creates a subject with `roles` through `POST /api/v2/authorization/subjects` (admin
    /// secret) and reads its access token back from the listing; returns `(_id, accessToken)`.
    pub fn create_subject(&self, name: &str, roles: &[&str]) -> (String, String) {
        let r = self.post_json(
            "/api/v2/authorization/subjects",
            &serde_json::json!({ "name": name, "roles": roles }),
        );
        assert_eq!(r.status, 200, "creating subject {name}: {}", r.text);
        let id = r.json()["_id"].as_str().expect("_id").to_string();
        let listed = self.list("/api/v2/authorization/subjects");
        let subject = listed
            .iter()
            .find(|s| s["_id"] == id.as_str())
            .unwrap_or_else(|| panic!("subject {id} not listed: {listed:?}"));
        let token = subject["accessToken"].as_str().expect("accessToken");
        (id, token.to_string())
    }

    /// A JWT for an access token from `GET /api/v2/authorization/request/<token>`.
    pub fn jwt_for(&self, access_token: &str) -> String {
        let r = self.get(&format!("/api/v2/authorization/request/{access_token}"));
        assert_eq!(r.status, 200, "request/{access_token}: {}", r.text);
        r.json()["token"].as_str().expect("token").to_string()
    }

    /// One HTTP/1.1 exchange written by hand, for requests a client library would change
    /// (no Accept header at all). The connection is closed after the response.
    pub fn raw(&self, head: &str, body: &[u8]) -> Resp {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut req = head.replace('\n', "\r\n").into_bytes();
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        stream.write_all(&req).unwrap();
        let mut buf = vec![];
        stream.read_to_end(&mut buf).unwrap();
        parse_raw(&buf)
    }
}

fn parse_raw(buf: &[u8]) -> Resp {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut body = buf[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("no status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        text: String::from_utf8(body).unwrap(),
        head,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = vec![];
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&data[..eol]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let result = t.join();
            if !std::thread::panicking() {
                match result {
                    Ok(Ok(())) => {}
                    other => panic!("server did not stop cleanly: {other:?}"),
                }
            }
        }
    }
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
