//! The permission matrix: every rule of `nightlite::api::routes::RULES` × a set of identities,
//! each request's outcome checked against what Nightscout would decide from the rule's
//! permissions and the identity's roles (plus AUTH_DEFAULT_ROLES): API v1/v2 refuse with 401;
//! API v3 reads only a Bearer JWT (401 without one) and refuses a missing permission with 403.
//! The table drives the walk, so a rule without a route (or a new path parameter, or a write
//! without a sample body) fails here instead of drifting.

use std::sync::atomic::{AtomicU64, Ordering};

use nightlite::api::routes::{Rule, Scheme, RULES};
use nightlite::auth::permissions::any_implies;
use nightlite::auth::roles::builtin_permissions;
use serde_json::{json, Value};

use crate::support::{iso, now_ms, secret_sha1, Resp, TestServer};

/// What `{permission}` of `/debug/check/{permission}` is filled with.
const CHECKED_PERMISSION: &str = "api:entries:read";

/// Subjects created through the API, each used with `?token=<accessToken>` (v1/v2) or its
/// JWT (v3).
const TOKEN_SUBJECTS: &[(&str, &[&str])] = &[
    ("denied token", &["denied"]),
    ("status-only token", &["status-only"]),
    ("readable token", &["readable"]),
    ("careportal token", &["careportal"]),
    ("readable+careportal token", &["readable", "careportal"]),
    ("devicestatus-upload token", &["devicestatus-upload"]),
    ("activity token", &["activity"]),
];

#[derive(Clone)]
enum Cred {
    None,
    /// `?token=<accessToken>` (API v1/v2); its JWT as `Authorization: Bearer` on API v3,
    /// which reads nothing else.
    Token {
        token: String,
        jwt: String,
    },
    /// `api-secret: <sha1 hex of API_SECRET>`.
    Secret,
    /// `Authorization: Bearer <JWT>`.
    Bearer(String),
}

struct Identity {
    label: String,
    /// Every permission the identity holds, as Nightscout would compute it.
    grants: Vec<String>,
    cred: Cred,
}

fn permissions_of(roles: &[&str]) -> Vec<String> {
    roles
        .iter()
        .flat_map(|r| builtin_permissions(r).iter().map(|p| (*p).to_string()))
        .collect()
}

/// A subject's permissions: its roles' plus the default roles' (Nightscout's
/// resolveAccessToken adds the default shiros).
fn subject_grants(roles: &[&str], defaults: &[&str]) -> Vec<String> {
    let mut g = permissions_of(roles);
    g.extend(permissions_of(defaults));
    g
}

fn identities(s: &TestServer, defaults: &[&str]) -> Vec<Identity> {
    let mut out = vec![Identity {
        label: format!("no credentials (AUTH_DEFAULT_ROLES={})", defaults.join(" ")),
        grants: permissions_of(defaults),
        cred: Cred::None,
    }];
    for (label, roles) in TOKEN_SUBJECTS {
        let (_, token) = s.create_subject(&format!("matrix {label}"), roles);
        let jwt = s.jwt_for(&token);
        out.push(Identity {
            label: (*label).to_string(),
            grants: subject_grants(roles, defaults),
            cred: Cred::Token { token, jwt },
        });
    }
    out.push(Identity {
        label: "admin API secret (sha1 header)".into(),
        grants: vec!["*".into()],
        cred: Cred::Secret,
    });
    let (_, admin_token) = s.create_subject("matrix admin", &["admin"]);
    out.push(Identity {
        label: "admin subject via Bearer JWT".into(),
        grants: subject_grants(&["admin"], defaults),
        cred: Cred::Bearer(s.jwt_for(&admin_token)),
    });
    out
}

static SEQ: AtomicU64 = AtomicU64::new(1);

fn seq() -> u64 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// A fresh 24-hex ObjectId that names nothing stored.
fn fresh_id() -> String {
    format!("7e57{:020x}", ((now_ms() as u64) << 16) | seq())
}

/// The collections API v3 serves (Nightscout's lib/api3 enabledCollections).
const V3_COLLECTIONS: &[&str] = &[
    "devicestatus",
    "entries",
    "food",
    "profile",
    "settings",
    "treatments",
];

/// One request of the matrix: a rule applied to a path (parameters still to fill).
struct Case {
    rule: &'static Rule,
    path: &'static str,
    /// `{collection}` of an API v3 path.
    collection: Option<&'static str>,
}

impl Case {
    /// The path with its parameters filled in, fresh ids each time so that one identity's
    /// write does not change what the next one is asked to do. `{token}` gets a real access
    /// token: the route is open, but a made-up token is answered 401 by the handler
    /// (checked separately).
    fn path(&self, token: &str) -> String {
        fill(self.path, token, self.collection)
    }
}

/// The rule's cases: one per collection for API v3 `{collection}` routes.
fn cases(rule: &'static Rule) -> Vec<Case> {
    let collections: Vec<Option<&'static str>> = if rule.path.contains("{collection}") {
        V3_COLLECTIONS.iter().copied().map(Some).collect()
    } else {
        vec![None]
    };
    collections
        .into_iter()
        .map(|collection| Case {
            rule,
            path: rule.path,
            collection,
        })
        .collect()
}

fn fill(path: &str, token: &str, collection: Option<&str>) -> String {
    let filled = path
        .replace("{spec}", "sgv")
        .replace("{storage}", "treatments")
        .replace("{id}", &fresh_id())
        .replace("{identifier}", &fresh_id())
        .replace("{lastModified}", "1000000000000")
        .replace("{collection}", collection.unwrap_or("entries"))
        .replace("{token}", token)
        .replace("{permission}", CHECKED_PERMISSION)
        .replace("{asset:.*}", "0/app.js")
        .replace("{face}", "color")
        .replace("{by}", "days");
    assert!(
        !filled.contains('{'),
        "{path}: a new path parameter; teach matrix::fill a sample value for it"
    );
    filled
}

/// A small valid body for a write route.
fn body_for(case: &Case) -> Option<Value> {
    let rule = case.rule;
    if !matches!(rule.method, "POST" | "PUT" | "PATCH") {
        return None;
    }
    let n = seq();
    let now = now_ms();
    let date = now - n as i64 * 1000;
    if rule.scheme == Scheme::V3 {
        let mut doc = match case.collection {
            Some("entries") => json!({ "type": "sgv", "sgv": 100, "device": "matrix" }),
            Some("treatments") => json!({ "eventType": "Note", "notes": format!("matrix {n}") }),
            Some("devicestatus") => json!({ "device": format!("matrix {n}") }),
            Some("profile") => json!({
                "defaultProfile": "Default", "store": { "Default": { "units": "mg/dl" } }
            }),
            Some("food") => json!({ "type": "food", "name": format!("pear {n}"), "carbs": 12 }),
            Some("settings") => json!({ "key": format!("matrix-{n}"), "value": n }),
            other => panic!(
                "{} {}: no v3 sample body for {other:?}",
                rule.method, rule.path
            ),
        };
        if rule.method == "PATCH" {
            return Some(json!({ "notes": "patched" }));
        }
        doc["date"] = json!(date);
        doc["utcOffset"] = json!(0);
        doc["app"] = json!("matrix");
        return Some(doc);
    }
    let mut doc = match rule.path {
        "/api/v1/entries" | "/api/v1/entries/preview" => json!({
            "type": "sgv", "sgv": 100 + (n % 50), "date": date,
            "dateString": iso(date), "device": "matrix", "direction": "Flat"
        }),
        "/api/v1/treatments" => json!({
            "eventType": "Note", "notes": format!("matrix {n}"), "created_at": iso(now)
        }),
        "/api/v1/devicestatus" => {
            json!({ "device": format!("matrix {n}"), "created_at": iso(now) })
        }
        "/api/v1/profile" => json!({
            "defaultProfile": "Default",
            "store": { "Default": { "units": "mg/dl", "dia": 3 } },
            "startDate": iso(now),
            "created_at": iso(now)
        }),
        "/api/v1/food" => json!({
            "type": "food", "name": format!("apple {n}"), "category": "fruit", "carbs": 10
        }),
        "/api/v1/activity" => json!({ "created_at": iso(now), "steps": n }),
        "/api/v2/authorization/subjects" => {
            json!({ "name": format!("matrix written {n}"), "roles": ["denied"] })
        }
        "/api/v2/authorization/roles" => {
            json!({ "name": format!("matrix-role-{n}"), "permissions": ["api:food:read"] })
        }
        // Socket.IO authorizes inside its protocol; a POST without a session is refused with
        // Engine.IO's own 400 whoever asks.
        "/socket.io" => json!("2:40"),
        "/api/v4/sync/conflicts/{id}" => json!({ "keep": "local" }),
        "/api/v4/sync/run" => json!({}),
        other => panic!(
            "{} {other}: no sample body; teach matrix::body_for one",
            rule.method
        ),
    };
    if rule.method == "PUT" {
        doc["_id"] = json!(fresh_id());
    }
    Some(doc)
}

fn send(s: &TestServer, case: &Case, path: &str, cred: &Cred) -> Resp {
    let v3 = case.rule.scheme == Scheme::V3;
    let mut path = path.to_string();
    let auth;
    let sha = secret_sha1();
    let mut headers: Vec<(&str, &str)> = vec![];
    match cred {
        Cred::None => {}
        Cred::Token { jwt, .. } if v3 => {
            auth = format!("Bearer {jwt}");
            headers.push(("Authorization", &auth));
        }
        Cred::Token { token, .. } => {
            let sep = if path.contains('?') { '&' } else { '?' };
            path = format!("{path}{sep}token={token}");
        }
        Cred::Secret => headers.push(("api-secret", &sha)),
        Cred::Bearer(jwt) => {
            auth = format!("Bearer {jwt}");
            headers.push(("Authorization", &auth));
        }
    }
    if v3 && case.rule.path.ends_with("/history") {
        // History without a {lastModified} path parameter reads the header.
        headers.push(("Last-Modified", "Thu, 01 Jan 2015 00:00:00 GMT"));
    }
    let bytes = body_for(case).map(|b| serde_json::to_vec(&b).unwrap());
    if bytes.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    s.request(case.rule.method, &path, &headers, bytes.as_deref())
}

/// The permissions a request demands, as Nightscout decides them: the rule's, with
/// `{collection}` filled in, plus what handlers demand themselves (the debug route's path
/// permission; API v3 PUT of a new identifier is a create; v3 search and history of
/// `settings` need `admin`).
fn required(case: &Case) -> Vec<String> {
    let rule = case.rule;
    let coll = case.collection.unwrap_or("");
    let mut perms: Vec<String> = rule
        .perms
        .iter()
        .map(|p| p.replace("{collection}", coll))
        .collect();
    if rule.path.contains("{permission}") {
        perms.push(CHECKED_PERMISSION.to_string());
    }
    if rule.scheme == Scheme::V3 {
        if rule.method == "PUT" && rule.path.ends_with("{identifier}") {
            perms.push(format!("api:{coll}:create"));
        }
        let is_search = rule.path == "/api/v3/{collection}"
            || rule.path.starts_with("/api/v3/{collection}/history");
        if coll == "settings" && rule.method == "GET" && is_search {
            perms = vec!["api:settings:admin".to_string()];
        }
    }
    perms
}

/// `None` when allowed, else the status Nightscout refuses with: 401 on API v1/v2; on v3,
/// 401 without a Bearer JWT and 403 for a missing permission.
fn expected_refusal(case: &Case, who: &Identity) -> Option<u16> {
    let rule = case.rule;
    if rule.scheme == Scheme::Open {
        return None;
    }
    if rule.scheme == Scheme::V3 && !matches!(who.cred, Cred::Token { .. } | Cred::Bearer(_)) {
        return Some(401);
    }
    let allowed = required(case).iter().all(|p| any_implies(&who.grants, p));
    match (allowed, rule.scheme) {
        (true, _) => None,
        (false, Scheme::V3) => Some(403),
        (false, _) => Some(401),
    }
}

/// Checks one response; returns a line describing what is wrong, if anything.
fn judge(case: &Case, path: &str, who: &Identity, r: &Resp) -> Option<String> {
    let rule = case.rule;
    let what = format!(
        "{} {path} as {} (needs {:?}): {} {}",
        rule.method,
        who.label,
        required(case),
        r.status,
        r.text.chars().take(160).collect::<String>()
    );
    let refusal = expected_refusal(case, who);
    // API v3 answers a fresh identifier 404 once the permission check passed.
    let v3_missing = rule.scheme == Scheme::V3
        && rule.path.ends_with("{identifier}")
        && matches!(rule.method, "GET" | "PATCH" | "DELETE")
        && refusal.is_none()
        && r.status == 404;
    let default_404 = r.status == 404 && r.text.contains("\"Not found\"");
    if r.status == 405 || (default_404 && !v3_missing) {
        return Some(format!("route not registered: {what}"));
    }
    match refusal {
        None => {
            if matches!(r.status, 401 | 403) {
                return Some(format!("expected allowed, got refused: {what}"));
            }
            // An open route decides nothing about credentials; what it answers a plain
            // request is its own business (`/ws` wants an Upgrade).
            // The sync's routes (docs/sync.md) answer 404 on a server without SYNC_URL.
            let no_sync = rule.path.starts_with("/api/v4/sync/")
                && r.status == 404
                && r.text.contains("sync is not configured");
            if r.status >= 400 && !v3_missing && !no_sync && rule.scheme != Scheme::Open {
                return Some(format!("allowed but failed (sample body?): {what}"));
            }
        }
        Some(code) => {
            if r.status != code {
                return Some(format!("expected {code}: {what}"));
            }
            let body: Value = serde_json::from_str(&r.text).unwrap_or(Value::Null);
            let shape_ok = if rule.scheme == Scheme::V3 {
                body["status"] == code && body["message"].is_string()
            } else {
                body["status"] == 401 && body["message"] == "Unauthorized"
            };
            if !shape_ok {
                return Some(format!("refusal not in Nightscout's shape: {what}"));
            }
        }
    }
    None
}

/// v1 rules also checked under /api/v2, and suffixed forms of registered resources.
const ALIASES: &[(&str, &str, &str)] = &[
    // (method, rule path, path to send)
    ("GET", "/api/v1/entries", "/api/v2/entries"),
    ("GET", "/api/v1/entries", "/api/v1/entries.json"),
    ("POST", "/api/v1/treatments", "/api/v2/treatments"),
    ("GET", "/api/v1/treatments", "/api/v1/treatments.json"),
    ("GET", "/api/v1/status", "/api/v2/status.json"),
    ("GET", "/api/v1/status", "/api/v1/status.json"),
    ("GET", "/api/v1/entries/{spec}", "/api/v2/entries/sgv.json"),
    (
        "DELETE",
        "/api/v1/devicestatus/{id}",
        "/api/v2/devicestatus/{id}",
    ),
    ("GET", "/api/v1/profile", "/api/v1/profile.json"),
    (
        "GET",
        "/api/v1/food/quickpicks",
        "/api/v2/food/quickpicks.json",
    ),
];

/// Rules whose cells are known to be wrong, each with an ignored test of its own below; the
/// matrix skips them so it keeps guarding everything else.
const KNOWN_BUGS: &[(&str, &str)] = &[];

fn walk(defaults: &[&str], v3: bool) {
    let s = TestServer::with(&[("AUTH_DEFAULT_ROLES", &defaults.join(" "))]);
    let who_all = identities(&s, defaults);
    let (_, path_token) = s.create_subject("matrix path token", &["readable"]);
    let mut failures = vec![];
    let mut checked = 0;
    let rules = RULES
        .iter()
        .filter(|r| v3 == (r.scheme == Scheme::V3 || r.path.starts_with("/api/v3/")))
        .filter(|r| !KNOWN_BUGS.contains(&(r.method, r.path)));
    for rule in rules {
        for case in cases(rule) {
            for who in &who_all {
                let path = case.path(&path_token);
                let r = send(&s, &case, &path, &who.cred);
                checked += 1;
                failures.extend(judge(&case, &path, who, &r));
            }
        }
    }
    if !v3 {
        for (method, rule_path, sent) in ALIASES {
            let rule = RULES
                .iter()
                .find(|r| r.method == *method && r.path == *rule_path)
                .unwrap_or_else(|| {
                    panic!("ALIASES names a rule that is gone: {method} {rule_path}")
                });
            let case = Case {
                rule,
                path: sent,
                collection: None,
            };
            for who in &who_all {
                let path = case.path(&path_token);
                let r = send(&s, &case, &path, &who.cred);
                checked += 1;
                failures.extend(judge(&case, &path, who, &r));
            }
        }
    }
    assert!(checked > 0, "no rules walked");
    assert!(
        failures.is_empty(),
        "{} of {checked} cells wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn matrix_v1_v2_with_denied_defaults() {
    walk(&["denied"], false);
}

#[test]
fn matrix_v1_v2_with_readable_defaults() {
    walk(&["readable"], false);
}

#[test]
fn matrix_v1_v2_with_status_only_defaults() {
    walk(&["status-only"], false);
}

#[test]
fn matrix_v3_with_denied_defaults() {
    walk(&["denied"], true);
}

/// API v3 wants a Bearer JWT even when the default roles could read.
#[test]
fn matrix_v3_with_readable_defaults() {
    walk(&["readable"], true);
}

/// The table has `GET /api/v3/swagger.json` as an open route and the router registers
/// `/swagger.json` under /api/v3, but the v3 suffix middleware (extension_to_accept) strips
/// `.json` first, so the request is routed to `/api/v3/{collection}` with collection
/// "swagger": 401 without a JWT, 404 "Bad operation or collection" with one.
#[test]
fn v3_swagger_json_is_open() {
    let s = TestServer::start();
    let r = s.get("/api/v3/swagger.json");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json().is_object(), "{}", r.text);
}

/// The open `request/{token}` route answers a token that names no subject with 401, whoever
/// asks (the matrix fills `{token}` with a real one).
#[test]
fn request_with_made_up_token_is_401_for_everyone() {
    let s = TestServer::start();
    let (_, admin) = s.create_subject("made up admin", &["admin"]);
    let jwt = s.jwt_for(&admin);
    for cred in [Cred::None, Cred::Secret, Cred::Bearer(jwt)] {
        let path = "/api/v2/authorization/request/madeup-0123456789abcdef";
        let rule = RULES
            .iter()
            .find(|r| r.path == "/api/v2/authorization/request/{token}")
            .expect("request rule");
        let case = Case {
            rule,
            path,
            collection: None,
        };
        let r = send(&s, &case, path, &cred);
        assert_eq!(r.status, 401, "{}", r.text);
    }
}

/// A method the table has no rule for, on a path it does know, never reaches a handler.
#[test]
fn unruled_methods_on_known_paths_are_refused_even_for_admin() {
    let s = TestServer::start();
    let mut failures = vec![];
    let mut paths: Vec<&str> = RULES.iter().map(|r| r.path).collect();
    paths.sort_unstable();
    paths.dedup();
    for path in paths {
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if RULES.iter().any(|r| r.method == method && r.path == path) {
                continue;
            }
            let filled = fill(path, "unused-0123456789abcdef", Some("entries"));
            let sha = secret_sha1();
            let mut headers = vec![("api-secret", sha.as_str())];
            let body = matches!(method, "POST" | "PUT" | "PATCH").then_some(&b"{}"[..]);
            if body.is_some() {
                headers.push(("Content-Type", "application/json"));
            }
            let r = s.request(method, &filled, &headers, body);
            if r.status < 400 {
                failures.push(format!("{method} {filled}: {} {}", r.status, r.text));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
