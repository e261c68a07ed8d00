//! Authorization with each credential form, and before it.

use super::*;

#[tokio::test]
async fn authorize_with_the_api_secret_gives_full_access_and_a_snapshot() {
    let s = Server::start().await;
    let mut ws = s.connect().await;
    let before = now_ms();
    let (auth, snapshot) = ws.authorize(json!({ "secret": secret_sha1() })).await;
    assert_eq!(auth["ok"], true, "{auth}");
    assert_eq!(auth["read"], true, "{auth}");
    assert_eq!(auth["write"], true, "{auth}");
    assert_eq!(auth["write_treatment"], true, "{auth}");
    assert_eq!(auth["update_treatment"], true, "{auth}");
    assert_eq!(auth["delete_treatment"], true, "{auth}");
    let snapshot = snapshot.unwrap();
    for list in [
        "sgvs",
        "mbgs",
        "cals",
        "treatments",
        "devicestatus",
        "profiles",
    ] {
        assert_eq!(snapshot[list], json!([]), "{list} of an empty site");
    }
    let last = snapshot["lastUpdated"].as_i64().expect("lastUpdated");
    assert!(last >= before && last <= now_ms() + 1, "lastUpdated {last}");
    // The secret's SHA-512 is accepted as well, as in Nightscout.
    let mut ws = s.connect().await;
    let sha512 = {
        use sha2::Digest;
        let d = sha2::Sha512::digest(SECRET.as_bytes());
        d.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    let (auth, _) = ws.authorize(json!({ "secret": sha512 })).await;
    assert_eq!(auth["ok"], true, "sha512: {auth}");
}

#[tokio::test]
async fn authorize_with_an_access_token() {
    let s = Server::start().await;
    let token = s.create_subject("Follower", &["readable"]).await;
    let mut ws = s.connect().await;
    let (auth, snapshot) = ws.authorize(json!({ "token": token })).await;
    assert_eq!(auth["ok"], true, "{auth}");
    assert_eq!(auth["read"], true, "{auth}");
    assert_eq!(auth["write"], false, "a readable subject: {auth}");
    assert_eq!(auth["write_treatment"], false, "{auth}");
    assert_eq!(auth["update_treatment"], false, "{auth}");
    assert_eq!(auth["delete_treatment"], false, "{auth}");
    assert!(snapshot.is_some());
}

#[tokio::test]
async fn authorize_with_a_jwt() {
    let s = Server::start().await;
    let token = s.create_subject("Carer", &["readable", "careportal"]).await;
    let jwt = s.jwt_for(&token).await;
    assert_eq!(jwt.split('.').count(), 3, "{jwt}");
    let mut ws = s.connect().await;
    let (auth, snapshot) = ws.authorize(json!({ "jwt": jwt })).await;
    assert_eq!(auth["ok"], true, "{auth}");
    assert_eq!(auth["read"], true, "{auth}");
    assert_eq!(auth["write"], false, "{auth}");
    assert_eq!(auth["write_treatment"], true, "careportal: {auth}");
    // Nightscout's careportal role adds treatments; changing them needs more.
    assert_eq!(auth["update_treatment"], false, "careportal: {auth}");
    assert_eq!(auth["delete_treatment"], false, "careportal: {auth}");
    assert!(snapshot.is_some());
    // A JWT is also accepted where a token is (Nightscout's socket takes either).
    let mut ws = s.connect().await;
    let (auth, _) = ws.authorize(json!({ "token": jwt })).await;
    assert_eq!(auth["write_treatment"], true, "{auth}");
}

#[tokio::test]
async fn bad_credentials_are_refused_and_the_socket_closed_with_1008() {
    let s = Server::start().await;
    let token = s.create_subject("Real", &["readable"]).await;
    let jwt = s.jwt_for(&token).await;
    let (head, sig) = jwt.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let forged = format!("{head}.{flipped}{}", &sig[1..]);
    let cases = [
        (
            "wrong secret",
            json!({ "secret": nightlite::auth::sha1_hex("nope-nope-nope") }),
        ),
        ("plain secret", json!({ "secret": SECRET })),
        ("unknown token", json!({ "token": "real-0123456789abcdef" })),
        ("garbage jwt", json!({ "jwt": "not.a.jwt" })),
        ("forged jwt", json!({ "jwt": forged })),
        ("no credentials", json!({})),
    ];
    for (what, creds) in cases {
        let mut ws = s.connect().await;
        let (auth, snapshot) = ws.authorize(creds).await;
        assert_refused(&auth);
        assert!(snapshot.is_none(), "{what}");
        let code = ws.close_code().await;
        assert_eq!(code, Some(1008), "{what}");
    }
    // The real credentials still work afterwards.
    let mut ws = s.connect().await;
    let (auth, _) = ws.authorize(json!({ "token": token })).await;
    assert_eq!(auth["ok"], true, "{auth}");
}

#[tokio::test]
async fn messages_before_authorize_get_an_error() {
    let s = Server::start().await;
    let id = s
        .post_one("/api/v1/entries", &json!([sgv(now_ms(), 111)]))
        .await;
    let mut ws = s.connect().await;
    for cmd in [
        json!({ "type": "subscribe", "collections": ["entries"] }),
        json!({ "type": "ack", "level": 2, "group": "default" }),
        json!({ "type": "ping" }),
    ] {
        ws.send(cmd.clone()).await;
        let reply = ws.json().await;
        assert_eq!(reply["type"], "error", "{cmd} → {reply}");
        assert_eq!(reply["status"], 401, "{cmd} → {reply}");
    }
    ws.ws.send(Message::text("not json")).await.unwrap();
    let reply = ws.json().await;
    assert_eq!(reply["type"], "error", "{reply}");
    // Nothing leaks to an unauthorized client: a write sends it no delta.
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 112)]))
        .await;
    let got = ws.collect(Duration::from_millis(400)).await;
    assert!(got.is_empty(), "an unauthorized client got {got:#?}");
    // The connection is still usable.
    let (auth, snapshot) = ws.authorize(json!({ "secret": secret_sha1() })).await;
    assert_eq!(auth["ok"], true, "{auth}");
    let snapshot = snapshot.unwrap();
    assert!(
        items(&snapshot, "sgvs")
            .iter()
            .any(|i| i["_id"] == id.as_str()),
        "{snapshot}"
    );
}

#[tokio::test]
async fn default_roles_apply_to_an_authorize_without_credentials() {
    let s = Server::with(&[("AUTH_DEFAULT_ROLES", "readable")]).await;
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 140)]))
        .await;
    let mut ws = s.connect().await;
    let (auth, snapshot) = ws.authorize(json!({})).await;
    assert_eq!(auth["ok"], true, "{auth}");
    assert_eq!(auth["read"], true, "{auth}");
    assert_eq!(auth["write"], false, "{auth}");
    let snapshot = snapshot.unwrap();
    assert_eq!(items(&snapshot, "sgvs").len(), 1, "{snapshot}");
    // A wrong secret is still refused, though the defaults would have let it read.
    let mut ws = s.connect().await;
    let (auth, _) = ws.authorize(json!({ "secret": "wrong" })).await;
    assert_refused(&auth);
    assert_eq!(ws.close_code().await, Some(1008));
}
