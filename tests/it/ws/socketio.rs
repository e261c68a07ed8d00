//! Socket.IO sessions beside /ws: alarm sockets, subject changes ending or narrowing live
//! sessions, polling limits.

use super::*;

/// A `/alarm` socket subscribed with `creds`; returns it and the subscribe reply.
async fn alarm_socket(port: u16, creds: Option<Value>) -> (Sio, Value) {
    let mut sio = Sio::connect(port).await;
    sio.join("/alarm").await;
    let reply = match creds {
        Some(c) => sio.call("/alarm", &json!(["subscribe", c])).await,
        None => Value::Null,
    };
    (sio, reply)
}

fn alarm_names(events: &[(String, Value)]) -> Vec<&str> {
    events
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.contains("alarm") || *n == "announcement")
        .collect()
}

#[tokio::test]
async fn alarm_sockets_that_may_not_read_get_no_alarms() {
    let s = Server::start().await; // AUTH_DEFAULT_ROLES=denied
    let denied = s.create_subject("Nobody", &["denied"]).await;
    let (mut admin, reply) = alarm_socket(s.port, Some(json!({ "secret": secret_sha1() }))).await;
    assert_eq!(reply["success"], true, "{reply}");
    let (mut anonymous, _) = alarm_socket(s.port, None).await;
    let (mut nobody, reply) = alarm_socket(s.port, Some(json!({ "accessToken": denied }))).await;
    assert_eq!(reply["read"], false, "{reply}");

    s.post("/api/v1/entries", &json!([sgv(now_ms(), 45)])).await;
    let n = admin.until_event("/alarm", "urgent_alarm").await;
    assert_eq!(n["message"], "BG Now: 45 mg/dl", "{n}");
    s.post(
        "/api/v1/treatments",
        &json!([{ "eventType": "Announcement", "notes": "private", "created_at": iso(now_ms()) }]),
    )
    .await;
    admin.until_event("/alarm", "announcement").await;
    for (who, sio) in [("anonymous", &mut anonymous), ("denied", &mut nobody)] {
        let got = sio.events("/alarm", Duration::from_millis(500)).await;
        assert!(alarm_names(&got).is_empty(), "{who} got {got:?}");
    }
}

#[tokio::test]
async fn anonymous_alarm_sockets_get_alarms_when_the_default_roles_may_read() {
    let s = Server::with(&[("AUTH_DEFAULT_ROLES", "readable")]).await;
    let (mut anonymous, _) = alarm_socket(s.port, None).await;
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 45)])).await;
    let n = anonymous.until_event("/alarm", "urgent_alarm").await;
    assert_eq!(n["title"], "Urgent LOW", "{n}");
}

#[tokio::test]
async fn acknowledging_alarms_needs_the_ack_permission() {
    let s = Server::start().await;
    let reader = s.create_subject("Reader", &["readable"]).await;
    let denied = s.create_subject("Nobody", &["denied"]).await;
    s.create_role("snoozer", &["*:*:read", "notifications:*:ack"])
        .await;
    let snoozer = s.create_subject("Snoozer", &["snoozer"]).await;
    let mut admin = s.admin_client().await;
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 300)]))
        .await;
    admin
        .until(SOON, "urgent_alarm", |v| is_alarm(v, "urgent_alarm"))
        .await;

    // Over Socket.IO: tokens without the permission are ignored, by subscribe's word.
    for token in [&reader, &denied] {
        let (mut sio, reply) = alarm_socket(s.port, Some(json!({ "accessToken": token }))).await;
        assert_eq!(reply["ack"], false, "{reply}");
        sio.emit("/alarm", &json!(["ack", 2, "default", 315_360_000_000_i64]))
            .await;
    }
    // Over /ws: a reader is told no.
    let mut ws = s.connect().await;
    let (auth, _) = ws.authorize(json!({ "token": reader })).await;
    assert_eq!(auth["ok"], true, "{auth}");
    ws.send(json!({ "type": "ack", "level": 2, "group": "default", "silenceTime": 315_360_000_000_i64 }))
        .await;
    let refused = ws.until_type("error").await;
    assert_eq!(refused["status"], 401, "{refused}");

    // Nothing was silenced: the next reading alarms again, and no clear_alarm came before it.
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 301)]))
        .await;
    let got = admin
        .until(SOON, "urgent_alarm", |v| {
            is_alarm(v, "urgent_alarm") || is_alarm(v, "clear_alarm")
        })
        .await;
    assert_eq!(got["type"], "urgent_alarm", "an ack got through: {got}");

    // A subject given the permission may.
    let (mut sio, reply) = alarm_socket(s.port, Some(json!({ "accessToken": snoozer }))).await;
    assert_eq!(reply["ack"], true, "{reply}");
    sio.emit("/alarm", &json!(["ack", 2, "default", 60_000]))
        .await;
    admin
        .until(SOON, "clear_alarm", |v| is_alarm(v, "clear_alarm"))
        .await;
}

impl Server {
    /// The `_id` of the subject named `name`.
    async fn subject_id(&self, name: &str) -> String {
        let listed = self.get_auth("/api/v2/authorization/subjects").await.json();
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no subject {name}: {listed}"))["_id"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// A client of every live path with `token`: /ws (subscribed to treatments), and one
/// Socket.IO session in `/` (authorized), `/alarm` and `/storage` (subscribed).
async fn live_clients(s: &Server, token: &str) -> (Ws, Sio) {
    let mut ws = s.connect().await;
    let (auth, _) = ws.authorize(json!({ "token": token })).await;
    assert_eq!(auth["ok"], true, "{auth}");
    ws.send(json!({ "type": "subscribe", "collections": ["treatments"] }))
        .await;
    assert_eq!(
        ws.until_type("subscribed").await["collections"],
        json!(["treatments"])
    );
    let mut sio = Sio::connect(s.port).await;
    sio.join("/").await;
    let auth = sio
        .call("/", &json!(["authorize", { "token": token, "history": 1 }]))
        .await;
    assert_eq!(auth["read"], true, "{auth}");
    sio.join("/alarm").await;
    let sub = sio
        .call("/alarm", &json!(["subscribe", { "accessToken": token }]))
        .await;
    assert_eq!(sub["read"], true, "{sub}");
    sio.join("/storage").await;
    let sub = sio
        .call("/storage", &json!(["subscribe", { "accessToken": token }]))
        .await;
    assert_eq!(sub["success"], true, "{sub}");
    (ws, sio)
}

/// Writes a reading of 45 and an announcement; checks an admin client saw both (so every
/// session has had them), then returns what `sio` got on any namespace.
async fn after_a_low_and_an_announcement(s: &Server, admin: &mut Ws, sio: &mut Sio) -> Vec<String> {
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 45)])).await;
    s.post(
        "/api/v1/treatments",
        &json!([{ "eventType": "Announcement", "notes": "n", "created_at": iso(now_ms()) }]),
    )
    .await;
    admin
        .until(SOON, "urgent_alarm", |v| is_alarm(v, "urgent_alarm"))
        .await;
    admin.until_type("announcement").await;
    let mut got = vec![];
    while let Some(p) = sio.packet(Duration::from_millis(500)).await {
        got.push(p);
    }
    got
}

#[tokio::test]
async fn deleting_a_subject_ends_its_live_sessions_at_once() {
    let s = Server::start().await;
    let token = s.create_subject("Follower", &["readable"]).await;
    let mut admin = s.admin_client().await;
    let (mut ws, mut sio) = live_clients(&s, &token).await;
    // Before: the sessions get what the subject may read.
    let before = after_a_low_and_an_announcement(&s, &mut admin, &mut sio).await;
    for what in ["urgent_alarm", "dataUpdate", "\"colName\":\"treatments\""] {
        assert!(
            before.iter().any(|p| p.contains(what)),
            "no {what} in {before:#?}"
        );
    }

    let id = s.subject_id("Follower").await;
    let r = s
        .delete(&format!("/api/v2/authorization/subjects/{id}"))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let told = ws.until_type("auth").await;
    assert_eq!(told["ok"], false, "{told}");
    assert_eq!(ws.close_code().await, Some(1008));
    let after = after_a_low_and_an_announcement(&s, &mut admin, &mut sio).await;
    for what in ["alarm", "announcement", "dataUpdate", "\"create\""] {
        assert!(
            !after.iter().any(|p| p.contains(what)),
            "{what} after the delete: {after:#?}"
        );
    }
}

#[tokio::test]
async fn changing_a_subjects_roles_downgrades_its_sessions_at_once() {
    let s = Server::start().await;
    s.create_role("entries-only", &["api:entries:read"]).await;
    let token = s.create_subject("Watch", &["readable"]).await;
    let mut admin = s.admin_client().await;
    let (mut ws, mut sio) = live_clients(&s, &token).await;
    let id = s.subject_id("Watch").await;
    let r = s
        .http(
            "PUT",
            "/api/v2/authorization/subjects",
            &[("api-secret", &secret_sha1())],
            Some(&json!({ "_id": id, "name": "Watch", "roles": ["entries-only"] })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let after = after_a_low_and_an_announcement(&s, &mut admin, &mut sio).await;
    assert!(
        after.iter().any(|p| p.contains("urgent_alarm")),
        "BG alarms still come: {after:#?}"
    );
    for what in ["announcement", "\"colName\":\"treatments\""] {
        assert!(
            !after.iter().any(|p| p.contains(what)),
            "{what} after the downgrade: {after:#?}"
        );
    }
    // /ws: still open and reading entries, no longer treatments.
    let got = ws.collect(Duration::from_millis(300)).await;
    assert!(got.iter().any(|v| is_alarm(v, "urgent_alarm")), "{got:#?}");
    assert!(
        !got.iter()
            .any(|v| v["type"] == "create" || v["type"] == "announcement"),
        "treatments after the downgrade: {got:#?}"
    );
}

impl Server {
    /// A new Engine.IO 4 polling session; returns its sid.
    async fn polling_session(&self) -> String {
        let open = self.raw("/socket.io/?EIO=4&transport=polling", None).await;
        assert_eq!(open.status, 200, "{}", open.text);
        let json: Value = serde_json::from_str(open.text.trim_start_matches('0')).unwrap();
        json["sid"].as_str().unwrap().to_string()
    }
}

/// A poll of a closed session is answered "Session ID unknown" or a CLOSE packet.
async fn assert_session_closed(s: &Server, path: &str) {
    let poll = s.raw(path, None).await;
    assert!(
        poll.status == 400 || poll.text == "1",
        "the session lives on: {} {}",
        poll.status,
        poll.text
    );
}

#[tokio::test]
async fn a_socketio_post_over_the_payload_limit_closes_the_session() {
    let s = Server::start().await;
    let sid = s.polling_session().await;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let mut big = b"42[\"x\",\"".to_vec();
    big.resize(2_000_000, b'a');
    big.extend_from_slice(b"\"]");
    let r = s.raw(&path, Some(big)).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert!(r.text.contains("session closed"), "{}", r.text);
    assert_session_closed(&s, &path).await;
    // Within the limit is fine.
    let sid = s.polling_session().await;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let r = s.raw(&path, Some(b"40".to_vec())).await;
    assert_eq!((r.status, r.text.as_str()), (200, "ok"));
}

#[tokio::test]
async fn a_socketio_post_of_too_many_packets_closes_the_session() {
    let s = Server::start().await;
    let sid = s.polling_session().await;
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let flood = vec!["6"; 5000].join("\u{1e}");
    let r = s.raw(&path, Some(flood.into_bytes())).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("session closed"), "{}", r.text);
    assert_session_closed(&s, &path).await;
}
