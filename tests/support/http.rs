//! A small blocking HTTP client of one server, and the responses it returns.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// A response of any status.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    /// Lower-cased names, in the order received.
    pub headers: Vec<(String, String)>,
    pub text: String,
    /// The status line and headers exactly as received ([`Http::raw`] only).
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

/// The HTTP client of one server: `base` is `http://127.0.0.1:<port>`; the `*_auth` methods
/// and the JSON writers send the hash of the server's API secret. Cheap to clone (for
/// `spawn_blocking` in async tests).
#[derive(Clone)]
pub struct Http {
    pub base: String,
    pub port: u16,
    agent: ureq::Agent,
    secret_hash: String,
}

impl Http {
    /// A client of 127.0.0.1:`port` that sends `secret_hash` as `api-secret`; no redirects
    /// are followed and no connection is kept idle.
    pub fn new(port: u16, secret_hash: String) -> Http {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .max_idle_connections(0)
            .timeout(Duration::from_secs(30))
            .build();
        Http {
            base: format!("http://127.0.0.1:{port}"),
            port,
            agent,
            secret_hash,
        }
    }

    /// The hash of the server's API secret.
    pub fn secret_hash(&self) -> &str {
        &self.secret_hash
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Whether the server gives any HTTP answer to `GET /api/versions` (a server under
    /// BASE_PATH answers 404 there).
    pub fn answers(&self) -> bool {
        matches!(
            self.agent.get(&self.url("/api/versions")).call(),
            Ok(_) | Err(ureq::Error::Status(..))
        )
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
                (n.to_ascii_lowercase(), v)
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
        let mut all: Vec<(&str, &str)> = vec![("api-secret", self.secret_hash.as_str())];
        all.extend_from_slice(headers);
        self.request(method, path, &all, body)
    }

    /// A request with `body` (if any) sent as JSON.
    pub fn request_json(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Resp {
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        let mut all = headers.to_vec();
        if bytes.is_some() {
            all.push(("Content-Type", "application/json"));
        }
        self.request(method, path, &all, bytes.as_deref())
    }

    /// A request with the API secret added and `body` (if any) sent as JSON.
    pub fn request_auth_json(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Resp {
        let mut all: Vec<(&str, &str)> = vec![("api-secret", self.secret_hash.as_str())];
        all.extend_from_slice(headers);
        self.request_json(method, path, &all, body)
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
        self.request_auth_json("POST", path, &[], Some(body))
    }

    pub fn put_json(&self, path: &str, body: &Value) -> Resp {
        self.request_auth_json("PUT", path, &[], Some(body))
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.request_auth("DELETE", path, &[], None)
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

/// A response read off the wire: status line, headers, and the body (de-chunked).
pub fn parse_raw(buf: &[u8]) -> Resp {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers");
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut body = buf[split + 4..].to_vec();
    let (status, headers) = parse_head(&head);
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

/// The status and the (lower-cased) headers of a response head.
pub fn parse_head(head: &str) -> (u16, Vec<(String, String)>) {
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("no status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers)
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
