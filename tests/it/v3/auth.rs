//! API v3 authorization: Bearer JWTs and permissions.

use super::*;

#[test]
fn bearer_jwt_is_required() {
    let s = TestServer::start();
    // No credentials, or API v1's credentials: 401.
    let r = s.get("/api/v3/treatments");
    assert_error(&r, 401, "Missing or bad access token or JWT");
    let r = s.get_auth("/api/v3/treatments");
    assert_eq!(
        r.status, 401,
        "the API secret is not a v3 credential: {}",
        r.text
    );
    let r = s.get("/api/v3/status");
    assert_eq!(r.status, 401, "{}", r.text);

    let good = jwt(&s, &["admin"]);
    assert_eq!(V3::new(&s, &good).get("/treatments").status, 200);
    // The scheme is compared case-insensitively (security.js).
    let r = s.request(
        "GET",
        "/api/v3/treatments",
        &[("Authorization", &format!("bearer {good}"))],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);

    // Garbage, a forged signature, a tampered payload.
    let r = V3::new(&s, "not-a-jwt").get("/treatments");
    assert_error(&r, 401, "Bad access token or JWT");
    let (head, sig) = good.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { "B" } else { "A" };
    let forged = format!("{head}.{flipped}{}", &sig[1..]);
    let r = V3::new(&s, &forged).get("/treatments");
    assert_error(&r, 401, "Bad access token or JWT");
    let parts: Vec<&str> = good.split('.').collect();
    let payload = nightlite::auth::jwt::b64url_decode(parts[1]).unwrap();
    let mut claims: Value = serde_json::from_slice(&payload).unwrap();
    claims["accessToken"] = json!("admin-0123456789abcdef");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        nightlite::auth::jwt::b64url_encode(claims.to_string().as_bytes()),
        parts[2]
    );
    let r = V3::new(&s, &tampered).get("/treatments");
    assert_error(&r, 401, "Bad access token or JWT");
}

#[test]
fn missing_permission_is_403_naming_it() {
    let s = TestServer::start();
    let admin = V3::admin(&s);
    let id = admin.create("treatments", &treatment(now_ms() - MIN, "Note"));

    // careportal may create treatments but not read them.
    let uploader = V3::new(&s, &jwt(&s, &["careportal"]));
    let r = uploader.get("/treatments");
    assert_error(&r, 403, "Missing permission api:treatments:read");
    let r = uploader.get(&format!("/treatments/{id}"));
    assert_error(&r, 403, "Missing permission api:treatments:read");
    let r = uploader.get("/treatments/history/1700000000000");
    assert_error(&r, 403, "Missing permission api:treatments:read");
    let r = uploader.post(
        "/entries",
        &json!({"type": "sgv", "sgv": 1, "date": now_ms(), "app": "x"}),
    );
    assert_error(&r, 403, "Missing permission api:entries:create");
    let r = uploader.patch(&format!("/treatments/{id}"), &json!({"notes": "x"}));
    assert_error(&r, 403, "Missing permission api:treatments:update");
    let r = uploader.delete(&format!("/treatments/{id}"));
    assert_error(&r, 403, "Missing permission api:treatments:delete");
    // Creating is allowed; a dedup needs update as well.
    let dup = treatment(now_ms() - 2 * MIN, "Note");
    let r = uploader.post("/treatments", &dup);
    assert_eq!(r.status, 201, "{}", r.text);
    let r = uploader.post("/treatments", &dup);
    assert_eq!(r.status, 403, "a dedup is an update: {}", r.text);
    // In a batch, per item.
    let fresh = treatment(now_ms() - 3 * MIN, "Note");
    let r = uploader.post("/treatments", &json!([fresh, dup]));
    assert_eq!(r.status, 207, "{}", r.text);
    let res = r.json()["result"].clone();
    assert_eq!(res[0]["status"], 201, "{res}");
    assert_eq!(res[1]["status"], 403, "{res}");
    assert_eq!(
        res[1]["message"], "Missing permission api:treatments:update",
        "{res}"
    );

    // A readable subject may not write.
    let reader = V3::new(&s, &jwt(&s, &["readable"]));
    assert_eq!(reader.get("/treatments").status, 200);
    let r = reader.post("/treatments", &treatment(now_ms(), "Note"));
    assert_error(&r, 403, "Missing permission api:treatments:create");
    let r = reader.put(&format!("/treatments/{id}"), &treatment(now_ms(), "Note"));
    assert_eq!(r.status, 403, "{}", r.text);
    // Permission is checked before the body: a reader learns nothing from validation.
    for body in [&b"not json"[..], b"{}", b"{\"date\": \"never\"}"] {
        for path in [
            format!("/treatments/{id}"),
            "/treatments/brand-new".to_string(),
        ] {
            let r = reader.send("PUT", &path, &[], Some(body));
            assert_error(&r, 403, "Missing permission api:treatments:update");
        }
    }

    // PUT needs update for an existing document, create for a new one.
    let r = uploader.put(&format!("/treatments/{id}"), &treatment(now_ms(), "Note"));
    assert_error(&r, 403, "Missing permission api:treatments:update");
    role(&s, "treatments-updater", &["api:treatments:update"]);
    let updater = V3::new(&s, &jwt(&s, &["treatments-updater"]));
    let r = updater.put("/treatments/brand-new", &treatment(now_ms(), "Note"));
    assert_error(&r, 403, "Missing permission api:treatments:create");
    let r = updater.patch(&format!("/treatments/{id}"), &json!({"notes": "ok"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(admin.doc("treatments", &id)["notes"], "ok");
}

/// Nightscout 15 (authorization.resolve): "Tokens have to be well formed JWTs"; an access
/// token is exchanged for a JWT first, never taken as a Bearer value.
#[test]
fn bearer_access_token_is_not_a_jwt() {
    let s = TestServer::start();
    let (_, token) = s.create_subject("Token Tom", &["admin"]);
    let r = V3::new(&s, &token).get("/treatments");
    assert_error(&r, 401, "Bad access token or JWT");
    assert_eq!(
        V3::new(&s, &s.jwt_for(&token)).get("/treatments").status,
        200
    );
}

#[test]
fn settings_listing_needs_settings_admin() {
    let s = TestServer::start();
    let admin = V3::admin(&s);
    let id = admin.create(
        "settings",
        &json!({"date": now_ms(), "app": "aaps", "key": "k", "value": 1}),
    );
    let reader = V3::new(&s, &jwt(&s, &["readable"]));
    let r = reader.get("/settings");
    assert_error(&r, 403, "Missing permission api:settings:admin");
    let r = reader.get("/settings/history/1700000000000");
    assert_error(&r, 403, "Missing permission api:settings:admin");
    // Reading one document needs only read.
    assert_eq!(reader.get(&format!("/settings/{id}")).status, 200);
    let items = admin.list("/settings");
    assert_eq!(identifiers(&items), vec![id]);
}

#[test]
fn unknown_collection_is_404() {
    let s = TestServer::start();
    let admin = V3::admin(&s);
    let r = admin.get("/nosuch");
    assert_eq!(r.status, 404, "{}", r.text);
    let r = admin.post("/activity", &treatment(now_ms(), "Note"));
    assert_eq!(r.status, 404, "activity is not a v3 collection: {}", r.text);
}
