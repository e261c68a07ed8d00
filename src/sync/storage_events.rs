//! The site's own change events as a sync trigger: a small Socket.IO client of Nightscout's
//! `/storage` namespace (lib/api3/storageSocket.js: emit `subscribe` with `accessToken` and
//! `collections`, then hear `create`, `update` and `delete`), over Engine.IO v4 long-polling on
//! the bridges' HTTP client, which both Nightscout (socket.io 4) and nightlite (src/live/
//! socketio) serve, so no WebSocket client is needed. An event only asks for a run (the
//! service debounces it); it never moves a cursor: what changed is read by the run.
//!
//! When the socket cannot be opened or drops, the periodic sync goes on as before: the first
//! failure is logged once, and the socket is opened again after a back-off on the clock.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::connect::clock::Clock;
use crate::connect::errors::SourceError;
use crate::connect::http::{Body, Http};
use crate::connect::schedule;
use crate::store::Collection;

/// Engine.IO v4 separates the packets of a polling payload with this.
const SEPARATOR: char = '\u{1e}';
/// The first try again after a failure comes half this later, doubling up to six times this.
const RETRY_BASE_MS: i64 = 60_000;
const NSP: &str = "/storage";

/// What the listener tells the service.
pub(super) trait Listener: Send + Sync + 'static {
    /// The site announced a change.
    fn heard(&self);
    /// Whether the events are heard now (`listening`), or being (re)connected.
    fn connected(&self, state: &'static str);
}

/// The site, the token the socket subscribes with, and the collections it asks for.
pub(super) struct Site {
    pub base: String,
    pub label: String,
    pub token: crate::config::bridges::Password,
    pub collections: Vec<Collection>,
}

/// Listens until the task is aborted.
pub(super) async fn listen(site: Site, http: Http, clock: Arc<dyn Clock>, to: impl Listener) {
    let mut failures = 0u32;
    let mut logged = false;
    loop {
        to.connected("connecting");
        let mut subscribed = false;
        let e = match session(&site, &http, &to, &mut subscribed).await {
            Ok(()) => SourceError::transient(format!("{} closed the event socket", site.label)),
            Err(e) => e,
        };
        if subscribed {
            // It worked for a while: the back-off starts afresh.
            failures = 0;
        }
        if logged {
            tracing::debug!(site = %site.label, "sync: event socket: {}", e.message);
        } else {
            logged = true;
            tracing::info!(
                site = %site.label,
                "sync: the site's change events are not heard ({}); the periodic sync goes on \
                 and the socket is tried again later",
                e.message
            );
        }
        failures += 1;
        to.connected("retrying");
        let jitter = schedule::jitter(schedule::backoff_jitter_max(failures, RETRY_BASE_MS));
        let wait = schedule::backoff(failures, RETRY_BASE_MS, jitter);
        clock.sleep_until(clock.now_ms() + wait).await;
    }
}

/// One Engine.IO session: open, join `/storage`, subscribe, then hear events until it ends.
async fn session(
    site: &Site,
    http: &Http,
    to: &impl Listener,
    subscribed: &mut bool,
) -> Result<(), SourceError> {
    let host = site.label.as_str();
    let url = format!("{}/socket.io/?EIO=4&transport=polling", site.base);
    let open = get(http, host, &url).await?;
    let handshake = open
        .iter()
        .find_map(|p| p.strip_prefix('0'))
        .and_then(|j| serde_json::from_str::<Value>(j).ok())
        .ok_or_else(|| SourceError::transient(format!("{host} does not serve Socket.IO")))?;
    let sid = handshake["sid"]
        .as_str()
        .ok_or_else(|| SourceError::transient(format!("{host} sent no Socket.IO session")))?;
    let url = format!("{url}&sid={sid}");
    post(http, host, &url, &format!("40{NSP},")).await?;
    let names: Vec<&str> = site.collections.iter().map(|c| c.table()).collect();
    let subscribe =
        json!(["subscribe", {"accessToken": site.token.reveal(), "collections": names}]);
    loop {
        for packet in get(http, host, &url).await? {
            match Packet::read(&packet) {
                Packet::Ping => post(http, host, &url, "3").await?,
                Packet::Joined => post(http, host, &url, &format!("42{NSP},0{subscribe}")).await?,
                Packet::Subscribed(true) => {
                    *subscribed = true;
                    to.connected("listening");
                }
                Packet::Subscribed(false) => {
                    return Err(SourceError::auth(format!(
                        "{host} refused the token for its change events"
                    )));
                }
                Packet::Change if *subscribed => to.heard(),
                Packet::Closed => {
                    return Err(SourceError::transient(format!(
                        "{host} closed the event socket"
                    )));
                }
                Packet::Change | Packet::Other => {}
            }
        }
    }
}

/// The packets of Engine.IO and of Socket.IO's `/storage` the listener acts on.
#[derive(Debug, PartialEq, Eq)]
enum Packet {
    Ping,
    /// `/storage` connected.
    Joined,
    /// The answer to `subscribe`: success or not.
    Subscribed(bool),
    /// `create`, `update` or `delete`.
    Change,
    /// The session or the namespace ended (or the connection was refused).
    Closed,
    Other,
}

impl Packet {
    fn read(p: &str) -> Packet {
        if p == "2" {
            return Packet::Ping;
        }
        if p.starts_with('1') {
            return Packet::Closed;
        }
        // Socket.IO packets are Engine.IO messages (4) of type 0 connect, 1 disconnect,
        // 2 event, 3 ack, 4 connect error; `/storage` names its namespace before a comma.
        let Some(rest) = p.strip_prefix('4') else {
            return Packet::Other;
        };
        let Some((kind, rest)) = rest.split_at_checked(1) else {
            return Packet::Other;
        };
        let Some(body) = rest
            .strip_prefix(NSP)
            .and_then(|r| r.strip_prefix(','))
            .or(if rest == NSP { Some("") } else { None })
        else {
            return Packet::Other;
        };
        // An ack or event id before the JSON.
        let json = body.trim_start_matches(|c: char| c.is_ascii_digit());
        match kind {
            "0" => Packet::Joined,
            "1" | "4" => Packet::Closed,
            "3" => {
                let ok = serde_json::from_str::<Value>(json)
                    .ok()
                    .and_then(|v| v.get(0).cloned())
                    .is_some_and(|r| r["success"] == true);
                Packet::Subscribed(ok)
            }
            "2" => match serde_json::from_str::<Value>(json).ok() {
                Some(v) if matches!(v[0].as_str(), Some("create" | "update" | "delete")) => {
                    Packet::Change
                }
                _ => Packet::Other,
            },
            _ => Packet::Other,
        }
    }
}

async fn get(http: &Http, host: &str, url: &str) -> Result<Vec<String>, SourceError> {
    let r = http.get_with(host, url, &[]).await?;
    if r.status != 200 {
        return Err(SourceError::transient(format!(
            "{host} answered {} to the event socket",
            r.status
        )));
    }
    Ok(r.body.split(SEPARATOR).map(str::to_string).collect())
}

async fn post(http: &Http, host: &str, url: &str, payload: &str) -> Result<(), SourceError> {
    let r = http
        .exchange(host, reqwest::Method::POST, url, &[], Body::Text(payload))
        .await?
        .reply;
    if r.status != 200 {
        return Err(SourceError::transient(format!(
            "{host} answered {} to the event socket",
            r.status
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_storage_namespaces_packets_are_read() {
        let cases = [
            ("2", Packet::Ping),
            ("1", Packet::Closed),
            ("40/storage,{\"sid\":\"x\"}", Packet::Joined),
            ("40/storage,", Packet::Joined),
            (
                "43/storage,0[{\"success\":true,\"collections\":[\"entries\"]}]",
                Packet::Subscribed(true),
            ),
            (
                "43/storage,0[{\"success\":false,\"message\":\"Unauthorized\"}]",
                Packet::Subscribed(false),
            ),
            (
                "42/storage,[\"create\",{\"colName\":\"entries\",\"doc\":{}}]",
                Packet::Change,
            ),
            (
                "42/storage,[\"update\",{\"colName\":\"treatments\"}]",
                Packet::Change,
            ),
            (
                "42/storage,[\"delete\",{\"colName\":\"treatments\",\"identifier\":\"x\"}]",
                Packet::Change,
            ),
            ("42/storage,[\"hello\",{}]", Packet::Other),
            ("42[\"dataUpdate\",{}]", Packet::Other),
            ("41/storage,", Packet::Closed),
            ("44/storage,{\"message\":\"no\"}", Packet::Closed),
            ("40", Packet::Other),
            ("0{\"sid\":\"x\"}", Packet::Other),
            ("", Packet::Other),
        ];
        for (text, want) in cases {
            assert_eq!(Packet::read(text), want, "{text}");
        }
    }
}
