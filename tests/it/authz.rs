//! Authorization as Nightscout does it: the five credential forms, access-token format,
//! JWTs (expiry, forgery, restart), revocation, AUTH_DEFAULT_ROLES, the subjects and roles
//! API, verifyauth and status `authorized`, and the brute-force delay.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{now_ms, secret_sha1, sgv, sha1hex, sha512hex, Resp, TestServer, SECRET};

const ENTRIES: &str = "/api/v1/entries.json";
const TREATMENTS: &str = "/api/v1/treatments.json";

#[track_caller]
fn assert_401(r: &Resp) {
    assert_eq!(r.status, 401, "expected 401: {}", r.text);
    let v = r.json();
    assert_eq!(v["status"], 401, "{v}");
    assert_eq!(v["message"], "Unauthorized", "{v}");
}

#[track_caller]
fn assert_200(r: &Resp) {
    assert_eq!(r.status, 200, "expected 200: {}", r.text);
}

fn get_with(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> Resp {
    s.request("GET", path, headers, None)
}

fn bearer(s: &TestServer, path: &str, jwt: &str) -> Resp {
    get_with(s, path, &[("Authorization", &format!("Bearer {jwt}"))])
}

/// A JSON POST with only the given headers (no secret added).
fn post_plain(s: &TestServer, path: &str, headers: &[(&str, &str)], body: &Value) -> Resp {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    s.request("POST", path, &all, Some(&serde_json::to_vec(body).unwrap()))
}

fn note(text: &str) -> Value {
    json!({ "eventType": "Note", "notes": text, "created_at": crate::support::iso(now_ms()) })
}

/// The stored treatment whose `notes` is `text`, read back with the admin secret.
fn stored_note(s: &TestServer, text: &str) -> Value {
    s.list(&format!(
        "{TREATMENTS}?find[notes]={}",
        crate::support::enc(text)
    ))
    .into_iter()
    .find(|t| t["notes"] == text)
    .unwrap_or_else(|| panic!("treatment {text:?} not stored"))
}

fn decode_jwt_payload(jwt: &str) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {jwt}");
    let bytes = nightlite::auth::jwt::b64url_decode(parts[1]).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

/// The per-install JWT key as the server uses it: the hex text's bytes.
fn jwt_key(dir: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(dir.join("jwt_key")).expect("jwt_key in the data dir");
    text.trim().as_bytes().to_vec()
}

fn now_s() -> i64 {
    now_ms() / 1000
}

// ---------------------------------------------------------------------------------------
// 1. The API secret: api-secret header (SHA-1 any case, SHA-512), ?secret=, body secret.
// ---------------------------------------------------------------------------------------

#[test]
fn api_secret_header_sha1_any_case_and_sha512() {
    let s = TestServer::start();
    let sha1 = sha1hex(SECRET);
    assert_eq!(
        sha1, "19f5f1942fe7583dcf47993a3fe2e719400e64ac",
        "sha1sum by hand"
    );
    let mixed: String = sha1
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    for presented in [sha1.clone(), sha1.to_uppercase(), mixed, sha512hex(SECRET)] {
        assert_200(&get_with(&s, ENTRIES, &[("api-secret", &presented)]));
        assert_200(&s.get(&format!("{ENTRIES}?secret={presented}")));
    }
    // The plain secret is not a credential (Nightscout compares digests only).
    assert_401(&get_with(&s, ENTRIES, &[("api-secret", SECRET)]));
    assert_401(&get_with(
        &s,
        ENTRIES,
        &[("api-secret", &sha1hex("wrong-secret-4567"))],
    ));
}

#[test]
fn body_secret_in_an_object_is_accepted_and_not_stored() {
    let s = TestServer::start();
    let mut body = note("object body secret");
    body["secret"] = json!(secret_sha1());
    let r = post_plain(&s, "/api/v1/treatments", &[], &body);
    assert_200(&r);
    assert!(!r.text.contains(&secret_sha1()), "echoed: {}", r.text);
    let stored = stored_note(&s, "object body secret");
    assert!(stored.get("secret").is_none(), "secret stored: {stored}");

    // A wrong body secret is refused and nothing is stored.
    let mut body = note("wrong body secret");
    body["secret"] = json!(sha1hex("wrong-secret-4567"));
    assert_401(&post_plain(&s, "/api/v1/treatments", &[], &body));
    assert_eq!(s.list(TREATMENTS).len(), 1);
}

#[test]
fn body_secret_in_an_array_first_item_is_accepted_and_not_stored() {
    let s = TestServer::start();
    let now = now_ms();
    let mut first = sgv("array-secret", now - 60_000, 110);
    first["secret"] = json!(secret_sha1());
    let body = json!([first, sgv("array-secret", now, 111)]);
    let r = post_plain(&s, "/api/v1/entries", &[], &body);
    assert_200(&r);
    assert!(!r.text.contains(&secret_sha1()), "echoed: {}", r.text);
    let stored = s.list("/api/v1/entries.json?find[device]=array-secret");
    assert_eq!(stored.len(), 2, "{stored:?}");
    for e in &stored {
        assert!(e.get("secret").is_none(), "secret stored: {e}");
    }
}

/// Nightscout takes `secret` out of every body that carries no query/header secret, before
/// any permission is decided, so it is never stored, even when the default roles alone
/// would allow the write.
#[test]
fn body_credentials_are_not_stored_when_defaults_allow_the_write() {
    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable careportal")]);
    let mut body = note("defaults allow, body secret");
    body["secret"] = json!(secret_sha1());
    assert_200(&post_plain(&s, "/api/v1/treatments", &[], &body));
    let stored = stored_note(&s, "defaults allow, body secret");
    assert!(stored.get("secret").is_none(), "secret stored: {stored}");

    let (_, token) = s.create_subject("Body Token", &["readable", "careportal"]);
    let mut body = note("defaults allow, body token");
    body["token"] = json!(token);
    assert_200(&post_plain(&s, "/api/v1/treatments", &[], &body));
    let stored = stored_note(&s, "defaults allow, body token");
    assert!(stored.get("token").is_none(), "token stored: {stored}");
}

/// Nightscout resolves a body `secret` whenever the query and headers carry none, so a wrong
/// one is a failed credential (401) even where the default roles alone would allow the write;
/// a wrong `api-secret` header is refused the same way here already.
#[test]
fn wrong_body_secret_is_refused_even_when_defaults_allow_the_write() {
    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable careportal")]);
    let wrong = sha1hex("wrong-secret-4567");
    assert_401(&post_plain(
        &s,
        "/api/v1/treatments",
        &[("api-secret", &wrong)],
        &note("wrong header secret"),
    ));
    let mut body = note("wrong body secret, defaults allow");
    body["secret"] = json!(wrong);
    assert_401(&post_plain(&s, "/api/v1/treatments", &[], &body));
    assert!(s.list(TREATMENTS).is_empty());
}

/// tconnectsync appends `?api_secret=<plain secret>`: it is not a credential and does not
/// get in the way of the real one.
#[test]
fn tconnectsync_api_secret_query_is_ignored() {
    let s = TestServer::start();
    let q = format!("{ENTRIES}?api_secret={SECRET}");
    assert_401(&s.get(&q));
    assert_200(&get_with(&s, &q, &[("api-secret", &secret_sha1())]));
}

/// `api-secret: null` (sent by some uploader) counts as no credential, as in Nightscout.
#[test]
fn api_secret_null_is_no_credential() {
    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable")]);
    assert_200(&get_with(&s, ENTRIES, &[("api-secret", "null")]));
}

// ---------------------------------------------------------------------------------------
// 2./3. Access tokens: ?token=, body token, api-secret: <sha1 of token>.
// ---------------------------------------------------------------------------------------

#[test]
fn query_token_grants_its_roles() {
    let s = TestServer::start();
    let (_, token) = s.create_subject("Nightguard", &["readable"]);
    assert_200(&s.get(&format!("{ENTRIES}?token={token}")));
    // Any case, as the server lower-cases it.
    assert_200(&s.get(&format!("{ENTRIES}?token={}", token.to_uppercase())));
    // readable cannot write.
    let body = sgv("token-write", now_ms(), 100);
    assert_401(&post_plain(
        &s,
        &format!("/api/v1/entries?token={token}"),
        &[],
        &body,
    ));
    assert_401(&s.get(ENTRIES));
}

#[test]
fn query_token_naming_no_subject_is_ignored_and_defaults_apply() {
    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable")]);
    assert_200(&s.get(&format!("{ENTRIES}?token=nobody-0123456789abcdef")));
    let s = TestServer::start();
    assert_401(&s.get(&format!("{ENTRIES}?token=nobody-0123456789abcdef")));
}

#[test]
fn body_token_is_accepted_and_not_stored() {
    let s = TestServer::start();
    let (_, token) = s.create_subject("LoopFollow", &["readable", "careportal"]);
    let mut body = note("object body token");
    body["token"] = json!(token);
    let r = post_plain(&s, "/api/v1/treatments", &[], &body);
    assert_200(&r);
    let stored = stored_note(&s, "object body token");
    assert!(stored.get("token").is_none(), "token stored: {stored}");

    let mut first = note("array body token");
    first["token"] = json!(token);
    let r = post_plain(&s, "/api/v1/treatments", &[], &json!([first]));
    assert_200(&r);
    let stored = stored_note(&s, "array body token");
    assert!(stored.get("token").is_none(), "token stored: {stored}");

    // A token whose roles do not allow the write is refused.
    let (_, reader) = s.create_subject("Reader Only", &["readable"]);
    let mut body = note("reader body token");
    body["token"] = json!(reader);
    assert_401(&post_plain(&s, "/api/v1/treatments", &[], &body));
}

/// nightscout-librelink-up sends `api-secret: <sha1 hex of the access token>`.
#[test]
fn api_secret_header_with_sha1_of_an_access_token() {
    let s = TestServer::start();
    let (_, token) = s.create_subject("LibreLinkUp", &["readable", "careportal"]);
    let digest = sha1hex(&token);
    assert_200(&get_with(&s, ENTRIES, &[("api-secret", &digest)]));
    assert_200(&get_with(
        &s,
        ENTRIES,
        &[("api-secret", &digest.to_uppercase())],
    ));
    // The access token itself in api-secret works as well (Nightscout's doesAccessTokenExist).
    assert_200(&get_with(&s, ENTRIES, &[("api-secret", &token)]));
    // The subject's roles apply: careportal writes treatments, nothing writes entries.
    let body = note("librelink token sha1");
    assert_200(&post_plain(
        &s,
        "/api/v1/treatments",
        &[("api-secret", &digest)],
        &body,
    ));
    let body = sgv("librelink", now_ms(), 100);
    assert_401(&post_plain(
        &s,
        "/api/v1/entries",
        &[("api-secret", &digest)],
        &body,
    ));
    assert_401(&get_with(
        &s,
        ENTRIES,
        &[("api-secret", &sha1hex("librelinkup-0000000000000000"))],
    ));
}

// ---------------------------------------------------------------------------------------
// 4. JWT: Authorization: Bearer, request/<token>, expiry, forgery, restart.
// ---------------------------------------------------------------------------------------

#[test]
fn bearer_jwt_from_request_endpoint() {
    let s = TestServer::start();
    let (_, token) = s.create_subject("AndroidAPS", &["readable", "careportal"]);
    let jwt = s.jwt_for(&token);
    assert_200(&bearer(&s, ENTRIES, &jwt));
    let body = note("aaps bearer");
    let auth = format!("Bearer {jwt}");
    assert_200(&post_plain(
        &s,
        "/api/v1/treatments",
        &[("Authorization", &auth)],
        &body,
    ));
    // Also accepted as ?token= (Nightscout's extractJWTfromRequest authorizes either).
    assert_200(&s.get(&format!("{ENTRIES}?token={jwt}")));
    // v1 compares the scheme name exactly, as Nightscout does.
    assert_401(&get_with(
        &s,
        ENTRIES,
        &[("Authorization", &format!("bearer {jwt}"))],
    ));
}

/// AndroidAPS first sends an empty `Authorization: Bearer ` and expects 401, then fetches a
/// JWT.
#[test]
fn empty_bearer_is_401_where_defaults_do_not_allow() {
    let s = TestServer::start();
    let r = s.raw(
        "GET /api/v1/entries.json HTTP/1.1\nHost: localhost\nAuthorization: Bearer \nConnection: close\n",
        b"",
    );
    assert_401(&r);
    let r = s.raw(
        "GET /api/v1/status.json HTTP/1.1\nHost: localhost\nAuthorization: Bearer \nConnection: close\n",
        b"",
    );
    assert_401(&r);
    // With readable defaults the same request reads.
    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable")]);
    let r = s.raw(
        "GET /api/v1/entries.json HTTP/1.1\nHost: localhost\nAuthorization: Bearer \nConnection: close\n",
        b"",
    );
    assert_200(&r);
}

#[test]
fn request_endpoint_returns_jwt_and_claims() {
    let s = TestServer::start();
    let (_, token) = s.create_subject("Follower Phone", &["readable"]);
    let before = now_s();
    let r = s.get(&format!("/api/v2/authorization/request/{token}"));
    assert_200(&r);
    let v = r.json();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["token", "sub", "permissionGroups", "iat", "exp"],
        "{v}"
    );
    assert_eq!(v["sub"], "Follower Phone");
    // The subject's roles, then the default roles (denied here), each as its permissions.
    assert_eq!(v["permissionGroups"], json!([["*:*:read"], []]));
    let (iat, exp) = (v["iat"].as_i64().unwrap(), v["exp"].as_i64().unwrap());
    assert_eq!(exp - iat, 28800);
    assert!((before - 5..=now_s() + 5).contains(&iat), "iat {iat}");
    let jwt = v["token"].as_str().unwrap();
    let payload = decode_jwt_payload(jwt);
    assert_eq!(payload["accessToken"], token.as_str(), "{payload}");
    assert_eq!(payload["iat"], iat);
    assert_eq!(payload["exp"], exp);
    // A JWT can be exchanged for a fresh one, as in Nightscout's authorize.
    let again = s.get(&format!("/api/v2/authorization/request/{jwt}"));
    assert_200(&again);
    assert_eq!(again.json()["sub"], "Follower Phone");
}

#[test]
fn request_endpoint_with_unknown_token_is_401() {
    let s = TestServer::start();
    s.create_subject("Someone", &["readable"]);
    for t in ["nobody-0123456789abcdef", "short", "nobody-0123456789"] {
        assert_401(&s.get(&format!("/api/v2/authorization/request/{t}")));
    }
}

#[test]
fn forged_foreign_and_expired_jwts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::in_dir(dir.path(), &[]);
    let (_, reader) = s.create_subject("Reader", &["readable"]);
    let (_, admin) = s.create_subject("Admin", &["admin"]);
    let jwt = s.jwt_for(&reader);
    assert_200(&bearer(&s, ENTRIES, &jwt));

    // A signature with one character changed.
    let (head, sig) = jwt.rsplit_once('.').unwrap();
    let mut sig: Vec<char> = sig.chars().collect();
    sig[10] = if sig[10] == 'Q' { 'R' } else { 'Q' };
    let bad_sig = format!("{head}.{}", sig.into_iter().collect::<String>());
    assert_401(&bearer(&s, ENTRIES, &bad_sig));

    // The reader's signature over a payload naming the admin's token.
    let parts: Vec<&str> = jwt.split('.').collect();
    let now = now_s();
    let escalated = json!({ "accessToken": admin, "iat": now, "exp": now + 28800 });
    let escalated = nightlite::auth::jwt::b64url_encode(escalated.to_string().as_bytes());
    let swapped = format!("{}.{escalated}.{}", parts[0], parts[2]);
    assert_401(&bearer(&s, "/api/v2/authorization/subjects", &swapped));
    assert_401(&bearer(&s, ENTRIES, &swapped));

    // alg none.
    let none = nightlite::auth::jwt::b64url_encode(br#"{"alg":"none","typ":"JWT"}"#);
    assert_401(&bearer(&s, ENTRIES, &format!("{none}.{}.", parts[1])));

    // Signed with another key.
    let other =
        nightlite::auth::jwt::sign(b"another-install-key-0123456789abcdef", &reader, now).unwrap();
    assert_401(&bearer(&s, ENTRIES, &other));

    // Signed with this install's key: fresh works, 9 hours old (expired 1 h ago) does not.
    let key = jwt_key(dir.path());
    let fresh = nightlite::auth::jwt::sign(&key, &reader, now).unwrap();
    assert_200(&bearer(&s, ENTRIES, &fresh));
    let expired = nightlite::auth::jwt::sign(&key, &reader, now - 9 * 3600).unwrap();
    assert_401(&bearer(&s, ENTRIES, &expired));
    assert_401(&s.get(&format!("/api/v2/authorization/request/{expired}")));
    // Nor is an expired JWT a ?token=.
    assert_401(&s.get(&format!("{ENTRIES}?token={expired}")));
}

#[test]
fn jwts_survive_a_restart_on_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let (token, jwt) = {
        let s = TestServer::in_dir(dir.path(), &[]);
        let (_, token) = s.create_subject("Restart", &["readable"]);
        let jwt = s.jwt_for(&token);
        assert_200(&bearer(&s, ENTRIES, &jwt));
        (token, jwt)
    };
    let key_before = jwt_key(dir.path());
    let s = TestServer::in_dir(dir.path(), &[]);
    assert_eq!(jwt_key(dir.path()), key_before, "the key was replaced");
    assert_200(&bearer(&s, ENTRIES, &jwt));
    assert_200(&s.get(&format!("{ENTRIES}?token={token}")));
}

// ---------------------------------------------------------------------------------------
// Token format, revocation.
// ---------------------------------------------------------------------------------------

#[test]
fn access_token_format_matches_a_vector_computed_by_hand() {
    let s = TestServer::start();
    let secret_digest = sha1hex(SECRET);
    assert_eq!(secret_digest, "19f5f1942fe7583dcf47993a3fe2e719400e64ac");
    // (name, abbrev by hand: lower-cased, only [a-z0-9_] kept, at most 10)
    let cases = [
        ("Loop Follow! Phone", "loopfollow"),
        ("My_Ph.1", "my_ph1"),
        ("AB-cd 9", "abcd9"),
        ("Ünïcode Watch", "ncodewatch"),
        ("x", "x"),
    ];
    for (name, abbrev) in cases {
        let r = s.post_json(
            "/api/v2/authorization/subjects",
            &json!({ "name": name, "roles": ["readable"] }),
        );
        assert_200(&r);
        let id = r.json()["_id"].as_str().unwrap().to_string();
        let listed = s.list("/api/v2/authorization/subjects");
        let subject = listed.iter().find(|x| x["_id"] == id.as_str()).unwrap();
        let expected = format!(
            "{abbrev}-{}",
            &sha1hex(&format!("{secret_digest}{id}"))[..16]
        );
        assert_eq!(subject["accessToken"], expected.as_str(), "{name}");
        assert_eq!(subject["name"], name);
        assert_eq!(subject["roles"], json!(["readable"]));
        // The POST reply carries the same token.
        assert_eq!(r.json()["accessToken"], expected.as_str());
        assert_200(&s.get(&format!("{ENTRIES}?token={expected}")));
    }
}

#[test]
fn deleting_a_subject_revokes_its_token_and_jwt_at_once() {
    let s = TestServer::start();
    let (id, token) = s.create_subject("Revoked", &["readable"]);
    let (_, keep) = s.create_subject("Kept", &["readable"]);
    let jwt = s.jwt_for(&token);
    let token_url = format!("{ENTRIES}?token={token}");
    assert_200(&s.get(&token_url));
    assert_200(&bearer(&s, ENTRIES, &jwt));

    let r = s.delete(&format!("/api/v2/authorization/subjects/{id}"));
    assert_200(&r);
    assert_401(&s.get(&token_url));
    assert_401(&bearer(&s, ENTRIES, &jwt));
    assert_401(&get_with(&s, ENTRIES, &[("api-secret", &sha1hex(&token))]));
    assert_401(&s.get(&format!("/api/v2/authorization/request/{token}")));
    assert_401(&s.get(&format!("/api/v2/authorization/request/{jwt}")));
    let listed = s.list("/api/v2/authorization/subjects");
    assert!(listed.iter().all(|x| x["_id"] != id.as_str()), "{listed:?}");
    // Others are untouched.
    assert_200(&s.get(&format!("{ENTRIES}?token={keep}")));
}

// ---------------------------------------------------------------------------------------
// 5. No credentials: AUTH_DEFAULT_ROLES.
// ---------------------------------------------------------------------------------------

fn post_note(s: &TestServer, text: &str) -> Resp {
    post_plain(s, "/api/v1/treatments", &[], &note(text))
}

fn post_entry(s: &TestServer) -> Resp {
    post_plain(s, "/api/v1/entries", &[], &sgv("anon", now_ms(), 100))
}

#[test]
fn no_credentials_get_the_default_roles() {
    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable")]);
    assert_200(&s.get(ENTRIES));
    assert_200(&s.get("/api/v1/status.json"));
    assert_401(&post_note(&s, "readable anon"));
    assert_401(&s.get("/api/v2/authorization/subjects"));

    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", "denied")]);
    assert_401(&s.get(ENTRIES));
    assert_401(&s.get("/api/v1/status.json"));
    assert_401(&s.get("/api/v1/profile.json"));

    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", "status-only")]);
    assert_200(&s.get("/api/v1/status.json"));
    assert_401(&s.get(ENTRIES));
    assert_401(&s.get(TREATMENTS));
}

#[test]
fn default_role_lists_split_on_space_comma_and_colon() {
    for list in [
        "readable careportal",
        "readable,careportal",
        "readable:careportal",
    ] {
        let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", list)]);
        assert_200(&s.get(ENTRIES));
        assert_200(&post_note(&s, list));
        assert_401(&post_entry(&s));
        assert_eq!(s.list(TREATMENTS).len(), 1, "{list}");
    }
}

// ---------------------------------------------------------------------------------------
// status.json authorized, verifyauth.
// ---------------------------------------------------------------------------------------

#[test]
fn status_with_token_reports_authorized() {
    let s = TestServer::start();
    let (_, token) = s.create_subject("Loop Follow", &["status-only"]);
    let r = s.get(&format!("/api/v1/status.json?token={token}"));
    assert_200(&r);
    let a = &r.json()["authorized"];
    let keys: Vec<&String> = a.as_object().expect("authorized object").keys().collect();
    assert_eq!(
        keys,
        ["token", "sub", "permissionGroups", "iat", "exp"],
        "{a}"
    );
    assert_eq!(a["sub"], "Loop Follow");
    assert_eq!(a["permissionGroups"], json!([["api:status:read"], []]));
    assert_eq!(
        a["exp"].as_i64().unwrap() - a["iat"].as_i64().unwrap(),
        28800
    );
    let jwt = a["token"].as_str().unwrap();
    assert_eq!(decode_jwt_payload(jwt)["accessToken"], token.as_str());
    // The JWT is a credential.
    assert_200(&bearer(&s, "/api/v1/status.json", jwt));
    assert_401(&bearer(&s, ENTRIES, jwt));

    let r = s.get_auth("/api/v1/status.json");
    assert_200(&r);
    assert!(r.json()["authorized"].is_null(), "{}", r.text);
}

fn verifyauth(s: &TestServer, path_query: &str, headers: &[(&str, &str)]) -> Value {
    let r = get_with(s, &format!("/api/v1/verifyauth{path_query}"), headers);
    assert_200(&r);
    let v = r.json();
    assert_eq!(v["status"], 200, "{v}");
    v["message"].clone()
}

#[test]
fn verifyauth_reports_role_default_and_admin() {
    let s = TestServer::start();
    let (_, token) = s.create_subject("Checker", &["readable"]);
    let m = verifyauth(&s, &format!("?token={token}"), &[]);
    assert_eq!(m["rolefound"], "FOUND", "{m}");
    assert_eq!(m["permissions"], "ROLE", "{m}");
    assert_eq!(m["message"], "OK", "{m}");
    assert_eq!(m["canRead"], true, "{m}");
    assert_eq!(m["canWrite"], false, "{m}");
    assert_eq!(m["isAdmin"], false, "{m}");

    let m = verifyauth(&s, "", &[]);
    assert_eq!(m["rolefound"], "NOTFOUND", "{m}");
    assert_eq!(m["permissions"], "DEFAULT", "{m}");
    assert_eq!(m["message"], "UNAUTHORIZED", "{m}");
    assert_eq!(m["canRead"], false, "{m}");

    let m = verifyauth(&s, "", &[("api-secret", &secret_sha1())]);
    assert_eq!(m["rolefound"], "NOTFOUND", "{m}");
    assert_eq!(m["permissions"], "ROLE", "{m}");
    assert_eq!(m["message"], "OK", "{m}");
    assert_eq!(
        (&m["canRead"], &m["canWrite"], &m["isAdmin"]),
        (&json!(true), &json!(true), &json!(true))
    );

    let m = verifyauth(&s, "", &[("api-secret", &sha1hex("wrong-secret-4567"))]);
    assert_eq!(m["message"], "UNAUTHORIZED", "{m}");
    assert_eq!(m["canRead"], false, "{m}");

    // Readable defaults: can read, but only by default.
    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable")]);
    let m = verifyauth(&s, "", &[]);
    assert_eq!(m["canRead"], true, "{m}");
    assert_eq!(m["permissions"], "DEFAULT", "{m}");
    assert_eq!(m["message"], "UNAUTHORIZED", "{m}");
}

// ---------------------------------------------------------------------------------------
// Subjects and roles API.
// ---------------------------------------------------------------------------------------

#[test]
fn listing_subjects_needs_admin() {
    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable")]);
    let (_, reader) = s.create_subject("Reader", &["readable"]);
    let (_, admin) = s.create_subject("Second Admin", &["admin"]);
    assert_401(&s.get("/api/v2/authorization/subjects"));
    assert_401(&s.get(&format!("/api/v2/authorization/subjects?token={reader}")));
    let r = s.get(&format!("/api/v2/authorization/subjects?token={admin}"));
    assert_200(&r);
    assert!(r.text.contains(&reader), "{}", r.text);
    assert_401(&s.get(&format!("/api/v2/authorization/roles?token={reader}")));
    assert_401(&post_plain(
        &s,
        &format!("/api/v2/authorization/subjects?token={reader}"),
        &[],
        &json!({ "name": "Sneaky", "roles": ["admin"] }),
    ));
    assert_eq!(s.list("/api/v2/authorization/subjects").len(), 2);
}

#[test]
fn builtin_roles_are_listed() {
    let s = TestServer::start();
    let roles = s.list("/api/v2/authorization/roles");
    for name in nightlite::auth::roles::BUILTIN {
        let role = roles
            .iter()
            .find(|r| r["name"] == *name)
            .unwrap_or_else(|| panic!("role {name} missing: {roles:?}"));
        let expected = nightlite::auth::roles::builtin_permissions(name);
        assert_eq!(role["permissions"], json!(expected), "{name}");
    }
    assert_eq!(roles.len(), 7, "{roles:?}");
    let by_hand = [
        ("admin", json!(["*"])),
        ("denied", json!([])),
        ("status-only", json!(["api:status:read"])),
        ("readable", json!(["*:*:read"])),
        ("careportal", json!(["api:treatments:create"])),
        ("devicestatus-upload", json!(["api:devicestatus:create"])),
        ("activity", json!(["api:activity:create"])),
    ];
    for (name, perms) in by_hand {
        let role = roles.iter().find(|r| r["name"] == name).unwrap();
        assert_eq!(role["permissions"], perms, "{name}");
    }
}

#[test]
fn custom_role_grants_its_permissions_and_follows_changes() {
    let s = TestServer::start();
    let r = s.post_json(
        "/api/v2/authorization/roles",
        &json!({ "name": "entries-only", "permissions": ["api:entries:read"] }),
    );
    assert_200(&r);
    let role_id = r.json()["_id"].as_str().unwrap().to_string();
    assert!(crate::support::is_object_id(&role_id), "{role_id}");
    let (_, token) = s.create_subject("Entries Reader", &["entries-only"]);
    let entries = format!("{ENTRIES}?token={token}");
    let treatments = format!("{TREATMENTS}?token={token}");
    assert_200(&s.get(&entries));
    assert_401(&s.get(&treatments));

    let r = s.put_json(
        "/api/v2/authorization/roles",
        &json!({ "_id": role_id, "name": "entries-only", "permissions": ["api:treatments:read"] }),
    );
    assert_200(&r);
    assert_401(&s.get(&entries));
    assert_200(&s.get(&treatments));
    let roles = s.list("/api/v2/authorization/roles");
    let role = roles.iter().find(|r| r["name"] == "entries-only").unwrap();
    assert_eq!(role["permissions"], json!(["api:treatments:read"]));
    assert_eq!(roles.len(), 8);

    assert_200(&s.delete(&format!("/api/v2/authorization/roles/{role_id}")));
    assert_401(&s.get(&entries));
    assert_401(&s.get(&treatments));
    let roles = s.list("/api/v2/authorization/roles");
    assert!(
        roles.iter().all(|r| r["name"] != "entries-only"),
        "{roles:?}"
    );
}

#[test]
fn changing_a_subjects_roles_takes_effect_at_once() {
    let s = TestServer::start();
    let (id, token) = s.create_subject("Promoted", &["readable"]);
    let url = format!("/api/v2/authorization/subjects?token={token}");
    assert_401(&s.get(&url));
    let r = s.put_json(
        "/api/v2/authorization/subjects",
        &json!({ "_id": id, "name": "Promoted", "roles": ["admin"] }),
    );
    assert_200(&r);
    assert_eq!(
        r.json()["accessToken"],
        token.as_str(),
        "same name and id, same token"
    );
    assert_200(&s.get(&url));
}

#[test]
fn permission_introspection_routes() {
    let s = TestServer::start();
    let perms = s.list("/api/v2/authorization/permissions");
    for p in [
        "api:entries:read",
        "api:treatments:create",
        "admin:api:subjects:read",
    ] {
        assert!(perms.iter().any(|x| x == p), "{p} missing: {perms:?}");
    }
    let trie = s.get_auth("/api/v2/authorization/permissions/trie");
    assert_200(&trie);
    assert!(
        trie.json()["data"]["api"]["entries"]["read"].is_object(),
        "{}",
        trie.text
    );
    let (_, reader) = s.create_subject("Debugger", &["readable"]);
    let check = |perm: &str| {
        s.get(&format!(
            "/api/v2/authorization/debug/check/{perm}?token={reader}"
        ))
    };
    let r = check("api:entries:read");
    assert_200(&r);
    assert_eq!(r.json(), json!({ "check": true }));
    assert_401(&check("api:entries:create"));
}

// ---------------------------------------------------------------------------------------
// Brute-force delay (AUTH_FAIL_DELAY=300). Timing margins are generous: a delayed request
// must take at least 250 ms after the failure, an undelayed one less than 200 ms.
// ---------------------------------------------------------------------------------------

const DELAY: &str = "300";
const DELAYED_MS: u128 = 250;
const FAST_MS: u128 = 200;

fn wrong() -> String {
    sha1hex("wrong-secret-4567")
}

fn from(ip: &str, secret: &str, s: &TestServer) -> Resp {
    get_with(
        s,
        ENTRIES,
        &[("X-Forwarded-For", ip), ("api-secret", secret)],
    )
}

#[test]
fn a_failure_delays_the_next_request_and_success_clears_it() {
    let s = TestServer::with(&[("AUTH_FAIL_DELAY", DELAY)]);
    assert_401(&get_with(&s, ENTRIES, &[("api-secret", &wrong())]));
    let failed_at = Instant::now();
    assert_200(&s.get_auth(ENTRIES));
    let waited = failed_at.elapsed().as_millis();
    assert!(waited >= DELAYED_MS, "not delayed: {waited} ms");

    let t = Instant::now();
    assert_200(&s.get_auth(ENTRIES));
    let took = t.elapsed().as_millis();
    assert!(
        took < FAST_MS,
        "success did not clear the penalty: {took} ms"
    );
}

#[test]
fn no_credential_attempt_adds_no_penalty() {
    let s = TestServer::with(&[("AUTH_FAIL_DELAY", DELAY)]);
    // Anonymous, AAPS's empty Bearer, a ?token= naming no subject, tconnectsync's api_secret.
    assert_401(&s.get(ENTRIES));
    assert_401(&s.raw(
        "GET /api/v1/entries.json HTTP/1.1\nHost: localhost\nAuthorization: Bearer \nConnection: close\n",
        b"",
    ));
    assert_401(&s.get(&format!("{ENTRIES}?token=nobody-0123456789abcdef")));
    assert_401(&s.get(&format!("{ENTRIES}?api_secret={SECRET}")));
    let t = Instant::now();
    assert_200(&s.get_auth(ENTRIES));
    let took = t.elapsed().as_millis();
    assert!(
        took < FAST_MS,
        "penalised without a failed credential: {took} ms"
    );
}

#[test]
fn a_bad_jwt_is_a_failed_credential() {
    let s = TestServer::with(&[("AUTH_FAIL_DELAY", DELAY)]);
    assert_401(&bearer(&s, ENTRIES, "not.a.jwt"));
    let failed_at = Instant::now();
    assert_200(&s.get_auth(ENTRIES));
    let waited = failed_at.elapsed().as_millis();
    assert!(waited >= DELAYED_MS, "not delayed: {waited} ms");
}

#[test]
fn the_penalty_is_per_client_address() {
    let s = TestServer::with(&[("AUTH_FAIL_DELAY", DELAY), ("TRUST_PROXY", "true")]);
    let right = secret_sha1();
    assert_401(&from("10.1.1.1", &wrong(), &s));
    let failed_at = Instant::now();
    let t = Instant::now();
    assert_200(&from("10.2.2.2", &right, &s));
    let other = t.elapsed().as_millis();
    assert!(other < FAST_MS, "another client was delayed: {other} ms");
    assert_200(&from("10.1.1.1", &right, &s));
    let waited = failed_at.elapsed().as_millis();
    assert!(
        waited >= DELAYED_MS,
        "the failing client was not delayed: {waited} ms"
    );
}

/// Behind nginx (`proxy_add_x_forwarded_for` appends), only the right-most entry was written
/// by the proxy: a client that rotates the left part still pays its penalty.
#[test]
fn the_client_cannot_choose_its_address_behind_a_proxy() {
    let s = TestServer::with(&[("AUTH_FAIL_DELAY", DELAY), ("TRUST_PROXY", "true")]);
    assert_401(&from("1.1.1.1, 10.1.1.1", &wrong(), &s));
    let failed_at = Instant::now();
    assert_200(&from("9.9.9.9, 10.1.1.1", &secret_sha1(), &s));
    let waited = failed_at.elapsed().as_millis();
    assert!(waited >= DELAYED_MS, "escaped the penalty: {waited} ms");
    // Nor can it take on a victim's address by naming it on the left.
    let t = Instant::now();
    assert_200(&from("10.1.1.1, 10.3.3.3", &secret_sha1(), &s));
    let other = t.elapsed().as_millis();
    assert!(other < FAST_MS, "another client was delayed: {other} ms");
}

/// A bad token at the JWT exchange is a failed credential like any other.
#[test]
fn a_bad_token_at_the_jwt_exchange_is_penalised() {
    let s = TestServer::with(&[("AUTH_FAIL_DELAY", DELAY)]);
    assert_401(&s.get("/api/v2/authorization/request/nobody-0123456789abcdef"));
    let failed_at = Instant::now();
    assert_200(&s.get_auth(ENTRIES));
    let waited = failed_at.elapsed().as_millis();
    assert!(waited >= DELAYED_MS, "not delayed: {waited} ms");
}

#[test]
fn forwarded_for_is_ignored_without_trust_proxy() {
    let s = TestServer::with(&[("AUTH_FAIL_DELAY", DELAY)]);
    assert_401(&from("10.1.1.1", &wrong(), &s));
    let failed_at = Instant::now();
    // A spoofed X-Forwarded-For does not escape the peer's penalty.
    assert_200(&from("10.2.2.2", &secret_sha1(), &s));
    let waited = failed_at.elapsed().as_millis();
    assert!(waited >= DELAYED_MS, "escaped the penalty: {waited} ms");
}

/// The wait is an async sleep: while several requests of a penalised client wait, another
/// client is served at once (the server has few workers; a blocking sleep would hold them).
#[test]
fn waiting_clients_do_not_block_others() {
    let s = TestServer::with(&[("AUTH_FAIL_DELAY", DELAY), ("TRUST_PROXY", "true")]);
    let right = secret_sha1();
    assert_401(&from("10.1.1.1", &wrong(), &s));
    let failed_at = Instant::now();
    std::thread::scope(|scope| {
        let waiting: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| from("10.1.1.1", &right, &s).status))
            .collect();
        std::thread::sleep(Duration::from_millis(40));
        let t = Instant::now();
        assert_200(&from("10.2.2.2", &right, &s));
        let other = t.elapsed().as_millis();
        assert!(
            other < FAST_MS,
            "blocked behind waiting requests: {other} ms"
        );
        for w in waiting {
            assert_eq!(w.join().unwrap(), 200);
        }
    });
    let waited = failed_at.elapsed().as_millis();
    assert!(
        waited >= DELAYED_MS,
        "the failing client was not delayed: {waited} ms"
    );
}

/// A write without credentials is refused before its body is read: here the body the
/// headers announce (10 MB) never comes, and the 401 does not wait for it.
#[test]
fn write_without_credentials_is_refused_before_its_body_is_read() {
    let s = TestServer::start();
    let head = "POST /api/v1/entries HTTP/1.1\nHost: localhost\nContent-Type: application/json\n\
                Content-Length: 10000000\nConnection: close\n";
    let r = s.raw(head, &[b'['; 1024]);
    assert_401(&r);
}

/// Credentials are looked for only in bodies of at most 8 KB (Nightscout's body secret is a
/// form convenience): a larger body's `secret` is no credential, and still never stored.
#[test]
fn body_secret_is_read_only_from_small_bodies() {
    let s = TestServer::start();
    let mut body = note("small body secret");
    body["filler"] = json!("x".repeat(7 * 1024));
    body["secret"] = json!(secret_sha1());
    assert_200(&post_plain(&s, "/api/v1/treatments", &[], &body));
    let mut body = note("large body secret");
    body["filler"] = json!("x".repeat(9 * 1024));
    body["secret"] = json!(secret_sha1());
    assert_401(&post_plain(&s, "/api/v1/treatments", &[], &body));
    assert_eq!(s.list(TREATMENTS).len(), 1);

    // Where the defaults allow the write, the large body is stored whole, without its secret.
    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", "readable careportal")]);
    assert_200(&post_plain(&s, "/api/v1/treatments", &[], &body));
    let stored = stored_note(&s, "large body secret");
    assert!(stored.get("secret").is_none(), "secret stored: {stored}");
    assert_eq!(stored["filler"].as_str().map(str::len), Some(9 * 1024));
}

/// A small gzip body's credentials are read after decoding, and taken out before storing.
#[test]
fn body_secret_in_a_small_gzip_body_is_accepted_and_not_stored() {
    let s = TestServer::start();
    let mut body = note("gzip body secret");
    body["secret"] = json!(secret_sha1());
    let gz = crate::support::gzip(&serde_json::to_vec(&body).unwrap());
    let r = s.request(
        "POST",
        "/api/v1/treatments",
        &[
            ("Content-Type", "application/json"),
            ("Content-Encoding", "gzip"),
        ],
        Some(&gz),
    );
    assert_200(&r);
    let stored = stored_note(&s, "gzip body secret");
    assert!(stored.get("secret").is_none(), "secret stored: {stored}");
}
