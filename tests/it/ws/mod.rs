//! The live layer through `GET /ws` (docs/websocket.md), with a real WebSocket client
//! (tokio-tungstenite) against a real nightlite on an ephemeral port: authorization with each
//! credential form, the first full `dataUpdate`, deltas after v1 and v3 writes, storage events,
//! alarms, permessage-deflate (a hand-written client: tungstenite does not speak it), 200
//! concurrent clients with one that never reads, heartbeats, and the Socket.IO sessions that
//! share the live state.

use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{
    iso, now_ms, secret_sha1, Ev, Http, Resp, Setup, Sio, TestServer, Ws, SECRET, SOON,
};

mod alarms;
mod auth;
mod connections;
mod deflate;
mod deltas;
mod fanout;
mod protocol;
mod raw;
mod regressions;
mod shared;
mod snapshot;
mod socketio;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn sgv(date: i64, value: i64) -> Value {
    crate::support::sgv("ws-test-cgm", date, value)
}

/// A server of [`crate::support`] for async tests: its HTTP calls run off the async threads.
struct Server {
    port: u16,
    http: Http,
    _server: TestServer,
}

impl Server {
    async fn start() -> Server {
        Server::with(&[]).await
    }

    /// A server with settings over the test defaults (AUTH_DEFAULT_ROLES=denied, ...).
    async fn with(vars: &[(&str, &str)]) -> Server {
        let setup = vars.iter().fold(Setup::new(), |s, (k, v)| s.env(k, v));
        let server = tokio::task::spawn_blocking(move || setup.start())
            .await
            .unwrap();
        Server {
            port: server.port,
            http: server.http(),
            _server: server,
        }
    }

    /// Any request; `body` is sent as JSON.
    async fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Resp {
        let http = self.http.clone();
        let (method, path) = (method.to_string(), path.to_string());
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        let body = body.cloned();
        tokio::task::spawn_blocking(move || {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            http.request_json(&method, &path, &headers, body.as_ref())
        })
        .await
        .unwrap()
    }

    async fn get(&self, path: &str) -> Resp {
        self.http("GET", path, &[], None).await
    }

    async fn get_auth(&self, path: &str) -> Resp {
        self.http("GET", path, &[("api-secret", &secret_sha1())], None)
            .await
    }

    /// A POST with the API secret that must answer 200; returns the reply.
    async fn post(&self, path: &str, body: &Value) -> Value {
        let r = self
            .http("POST", path, &[("api-secret", &secret_sha1())], Some(body))
            .await;
        assert_eq!(r.status, 200, "POST {path}: {}", r.text);
        r.json()
    }

    async fn delete(&self, path: &str) -> Resp {
        self.http("DELETE", path, &[("api-secret", &secret_sha1())], None)
            .await
    }

    /// A request with a raw body (None: a GET); returns the status and the body.
    async fn raw(&self, path: &str, body: Option<Vec<u8>>) -> Resp {
        let http = self.http.clone();
        let path = path.to_string();
        tokio::task::spawn_blocking(move || match body {
            Some(b) => http.request(
                "POST",
                &path,
                &[("Content-Type", "text/plain;charset=UTF-8")],
                Some(&b),
            ),
            None => http.get(&path),
        })
        .await
        .unwrap()
    }

    /// The `_id` of the first item of a v1 POST reply.
    async fn post_one(&self, path: &str, body: &Value) -> String {
        let reply = self.post(path, body).await;
        reply[0]["_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no _id in {reply}"))
            .to_string()
    }

    async fn create_role(&self, name: &str, permissions: &[&str]) {
        self.post(
            "/api/v2/authorization/roles",
            &json!({ "name": name, "permissions": permissions }),
        )
        .await;
    }

    /// A new subject with `roles`; returns its access token.
    async fn create_subject(&self, name: &str, roles: &[&str]) -> String {
        let created = self
            .post(
                "/api/v2/authorization/subjects",
                &json!({ "name": name, "roles": roles }),
            )
            .await;
        let id = created["_id"].as_str().expect("_id").to_string();
        let listed = self.get_auth("/api/v2/authorization/subjects").await.json();
        let subject = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["_id"] == id.as_str())
            .unwrap_or_else(|| panic!("subject {id} not listed: {listed}"))
            .clone();
        subject["accessToken"]
            .as_str()
            .expect("accessToken")
            .to_string()
    }

    /// A JWT for an access token (`/api/v2/authorization/request/<token>`).
    async fn jwt_for(&self, token: &str) -> String {
        let r = self
            .get(&format!("/api/v2/authorization/request/{token}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["token"].as_str().expect("token").to_string()
    }

    async fn connect(&self) -> Ws {
        Ws::connect(self.port).await
    }

    /// A client authorized with the API secret, its snapshot read.
    async fn admin_client(&self) -> Ws {
        let mut ws = self.connect().await;
        let (auth, _) = ws.authorize(json!({ "secret": secret_sha1() })).await;
        assert_eq!(auth["ok"], true, "{auth}");
        ws
    }
}

/// The items of one list of a dataUpdate (empty when absent).
fn items<'a>(msg: &'a Value, list: &str) -> &'a [Value] {
    msg[list].as_array().map_or(&[], Vec::as_slice)
}

fn is_delta_with(v: &Value, list: &str, pred: impl Fn(&Value) -> bool) -> bool {
    v["type"] == "dataUpdate" && v["delta"] == true && items(v, list).iter().any(pred)
}

fn assert_refused(auth: &Value) {
    assert_eq!(auth["ok"], false, "{auth}");
    assert_eq!(auth["status"], 401, "{auth}");
}

fn is_alarm(v: &Value, kind: &str) -> bool {
    v["type"] == kind
}
