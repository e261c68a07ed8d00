//! The permission rule of every route, in one table. The guard middleware refuses a request
//! to a registered route that has no rule here, so a route cannot be added without deciding
//! who may use it; the permission matrix test walks this table.
//!
//! Permissions are Nightscout's: each v1 router first demands `api:<collection>:read`, then
//! each write route its own `create`/`update`/`delete` (lib/api/*/index.js).

pub use crate::auth::request::Scheme;

#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub method: &'static str,
    /// The route's pattern as registered (the first pattern of a resource), under /api/v1 for
    /// the v1 routes, which /api/v2 serves as well.
    pub path: &'static str,
    pub scheme: Scheme,
    /// Every one of these is required.
    pub perms: &'static [&'static str],
}

const fn open(method: &'static str, path: &'static str) -> Rule {
    Rule {
        method,
        path,
        scheme: Scheme::Open,
        perms: &[],
    }
}

const fn v3(method: &'static str, path: &'static str, perms: &'static [&'static str]) -> Rule {
    Rule {
        method,
        path,
        scheme: Scheme::V3,
        perms,
    }
}

const fn ns(method: &'static str, path: &'static str, perms: &'static [&'static str]) -> Rule {
    Rule {
        method,
        path,
        scheme: Scheme::Nightscout,
        perms,
    }
}

pub const RULES: &[Rule] = &[
    // The viewer (src/web.rs): its page and its files.
    open("GET", "/"),
    open("GET", "/static/{asset:.*}"),
    open("GET", "/clock"),
    open("GET", "/clock/{face}"),
    // The profile editor, food database and admin pages; their data needs the API's permissions.
    open("GET", "/profile"),
    open("GET", "/food"),
    open("GET", "/admin"),
    open("GET", "/report"),
    open("GET", "/api/versions"),
    // API documentation where Nightscout serves it (src/api/docs.rs)
    open("GET", "/swagger.json"),
    open("GET", "/api-docs"),
    open("GET", "/api3-docs"),
    // The WebSocket authorizes inside its protocol (docs/websocket.md).
    open("GET", "/ws"),
    // Socket.IO authorizes inside its protocol, per namespace (docs/websocket.md).
    open("GET", "/socket.io"),
    open("POST", "/socket.io"),
    ns("GET", "/api/v1/notifications/ack", &["notifications:*:ack"]),
    // status and service routes
    ns("GET", "/api/v1/status", &["api:status:read"]),
    ns("GET", "/api/v1/verifyauth", &[]),
    ns("GET", "/api/v1/adminnotifies", &[]),
    // Loop's setup check (lib/api/experiments)
    ns(
        "GET",
        "/api/v1/experiments/test",
        &["authorization:debug:test"],
    ),
    // The backup settings and files, for the admin page (docs/data-care.md).
    ns("GET", "/api/v1/backups", &["admin:api:backups:read"]),
    // report numbers (docs/api-stats.md)
    ns("GET", "/api/v2/stats", &["api:entries:read"]),
    ns("GET", "/api/v2/stats/loop", &["api:devicestatus:read"]),
    ns("GET", "/api/v2/stats/{by}", &["api:entries:read"]),
    // entries
    ns("GET", "/api/v1/entries", &["api:entries:read"]),
    ns(
        "POST",
        "/api/v1/entries",
        &["api:entries:read", "api:entries:create"],
    ),
    ns(
        "DELETE",
        "/api/v1/entries",
        &["api:entries:read", "api:entries:delete"],
    ),
    ns("GET", "/api/v1/entries/current", &["api:entries:read"]),
    ns(
        "POST",
        "/api/v1/entries/preview",
        &["api:entries:read", "api:entries:create"],
    ),
    ns("GET", "/api/v1/entries/{spec}", &["api:entries:read"]),
    // lib/api/entries serves it, behind the entries router's read permission.
    ns(
        "GET",
        "/api/v1/count/{storage}/where",
        &["api:entries:read"],
    ),
    ns(
        "DELETE",
        "/api/v1/entries/{spec}",
        &["api:entries:read", "api:entries:delete"],
    ),
    // treatments
    ns("GET", "/api/v1/treatments", &["api:treatments:read"]),
    ns(
        "POST",
        "/api/v1/treatments",
        &["api:treatments:read", "api:treatments:create"],
    ),
    ns(
        "PUT",
        "/api/v1/treatments",
        &["api:treatments:read", "api:treatments:update"],
    ),
    ns(
        "DELETE",
        "/api/v1/treatments",
        &["api:treatments:read", "api:treatments:delete"],
    ),
    ns(
        "DELETE",
        "/api/v1/treatments/{id}",
        &["api:treatments:read", "api:treatments:delete"],
    ),
    // devicestatus
    ns("GET", "/api/v1/devicestatus", &["api:devicestatus:read"]),
    ns(
        "POST",
        "/api/v1/devicestatus",
        &["api:devicestatus:read", "api:devicestatus:create"],
    ),
    ns(
        "DELETE",
        "/api/v1/devicestatus",
        &["api:devicestatus:read", "api:devicestatus:delete"],
    ),
    ns(
        "DELETE",
        "/api/v1/devicestatus/{id}",
        &["api:devicestatus:read", "api:devicestatus:delete"],
    ),
    // profile
    ns("GET", "/api/v1/profile", &["api:profile:read"]),
    ns(
        "POST",
        "/api/v1/profile",
        &["api:profile:read", "api:profile:create"],
    ),
    ns(
        "PUT",
        "/api/v1/profile",
        &["api:profile:read", "api:profile:update"],
    ),
    ns("GET", "/api/v1/profile/current", &["api:profile:read"]),
    ns("GET", "/api/v1/profiles", &["api:profile:read"]),
    ns(
        "DELETE",
        "/api/v1/profile/{id}",
        &["api:profile:read", "api:profile:delete"],
    ),
    // food
    ns("GET", "/api/v1/food", &["api:food:read"]),
    ns(
        "POST",
        "/api/v1/food",
        &["api:food:read", "api:food:create"],
    ),
    ns("PUT", "/api/v1/food", &["api:food:read", "api:food:update"]),
    ns("GET", "/api/v1/food/quickpicks", &["api:food:read"]),
    ns("GET", "/api/v1/food/regular", &["api:food:read"]),
    ns(
        "DELETE",
        "/api/v1/food/{id}",
        &["api:food:read", "api:food:delete"],
    ),
    // activity
    ns("GET", "/api/v1/activity", &["api:activity:read"]),
    ns(
        "POST",
        "/api/v1/activity",
        &["api:activity:read", "api:activity:create"],
    ),
    ns(
        "PUT",
        "/api/v1/activity",
        &["api:activity:read", "api:activity:update"],
    ),
    ns(
        "DELETE",
        "/api/v1/activity",
        &["api:activity:read", "api:activity:delete"],
    ),
    ns(
        "DELETE",
        "/api/v1/activity/{id}",
        &["api:activity:read", "api:activity:delete"],
    ),
    // current state (lib/api2/properties.js, lib/server/pebble.js: `api:pebble,entries:read`
    // demands both)
    ns(
        "GET",
        "/api/v2/properties",
        &["api:entries:read", "api:treatments:read"],
    ),
    ns("GET", "/pebble", &["api:pebble:read", "api:entries:read"]),
    // authorization (lib/authorization/endpoints.js)
    open("GET", "/api/v2/authorization/request/{token}"),
    ns(
        "GET",
        "/api/v2/authorization/permissions",
        &["admin:api:permissions:read"],
    ),
    ns(
        "GET",
        "/api/v2/authorization/permissions/trie",
        &["admin:api:permissions:read"],
    ),
    ns(
        "GET",
        "/api/v2/authorization/subjects",
        &["admin:api:subjects:read"],
    ),
    ns(
        "POST",
        "/api/v2/authorization/subjects",
        &["admin:api:subjects:create"],
    ),
    ns(
        "PUT",
        "/api/v2/authorization/subjects",
        &["admin:api:subjects:update"],
    ),
    ns(
        "DELETE",
        "/api/v2/authorization/subjects/{id}",
        &["admin:api:subjects:delete"],
    ),
    ns(
        "GET",
        "/api/v2/authorization/roles",
        &["admin:api:roles:list"],
    ),
    ns(
        "POST",
        "/api/v2/authorization/roles",
        &["admin:api:roles:create"],
    ),
    ns(
        "PUT",
        "/api/v2/authorization/roles",
        &["admin:api:roles:update"],
    ),
    ns(
        "DELETE",
        "/api/v2/authorization/roles/{id}",
        &["admin:api:roles:delete"],
    ),
    // The permission to check is the path's; the handler demands it.
    ns("GET", "/api/v2/authorization/debug/check/{permission}", &[]),
    // API v3 (lib/api3): `{collection}` in a permission is the collection of the path.
    open("GET", "/api/v3/version"),
    open("GET", "/api/v3/swagger.json"),
    v3("GET", "/api/v3/status", &[]),
    v3("GET", "/api/v3/lastModified", &[]),
    v3("GET", "/api/v3/{collection}", &["api:{collection}:read"]),
    v3("POST", "/api/v3/{collection}", &["api:{collection}:create"]),
    v3(
        "GET",
        "/api/v3/{collection}/history",
        &["api:{collection}:read"],
    ),
    v3(
        "GET",
        "/api/v3/{collection}/history/{lastModified}",
        &["api:{collection}:read"],
    ),
    v3(
        "GET",
        "/api/v3/{collection}/{identifier}",
        &["api:{collection}:read"],
    ),
    // Create or update is decided by whether the document exists; the handler demands it.
    v3("PUT", "/api/v3/{collection}/{identifier}", &[]),
    v3(
        "PATCH",
        "/api/v3/{collection}/{identifier}",
        &["api:{collection}:update"],
    ),
    v3(
        "DELETE",
        "/api/v3/{collection}/{identifier}",
        &["api:{collection}:delete"],
    ),
    // State spans are derived from treatments (docs/state-spans.md); v3 is where the
    // requirements name them, v4 where Nocturne serves them.
    v3("GET", "/api/v3/state-spans", &["api:treatments:read"]),
    v3("GET", "/api/v4/state-spans", &["api:treatments:read"]),
    v3("GET", "/api/v4/overrides", &["api:treatments:read"]),
    // What changes targets or insulin (REQ-OVRD-004): overrides, targets, scaled switches.
    v3("GET", "/api/v4/adjustments", &["api:treatments:read"]),
    // API v4 (docs/api-v4.md): derived from profiles and treatments, so both are read;
    // authorized as API v3 is (Bearer JWT).
    v3(
        "GET",
        "/api/v4/profile/effective",
        &["api:profile:read", "api:treatments:read"],
    ),
    v3(
        "GET",
        "/api/v4/profile/timeline",
        &["api:profile:read", "api:treatments:read"],
    ),
    // The bridges' status (docs/bridges.md): admins, or a subject given api:bridges:read.
    v3("GET", "/api/v4/bridges", &["api:bridges:read"]),
    // The sync's integrity digest of a collection (docs/sync.md, "Integrity").
    v3(
        "GET",
        "/api/v4/sync/digest/{collection}",
        &["api:{collection}:read"],
    ),
    // The sync service (docs/sync.md, "Status and conflicts API"): as API v1 authorizes, so
    // the viewer and /admin (signed in with the secret or a token) can use it.
    ns("GET", "/api/v4/sync/status", &["api:sync:read"]),
    ns("GET", "/api/v4/sync/runs", &["api:sync:read"]),
    ns("GET", "/api/v4/sync/conflicts", &["api:sync:read"]),
    ns("POST", "/api/v4/sync/conflicts/{id}", &["api:sync:admin"]),
    ns("POST", "/api/v4/sync/run", &["api:sync:admin"]),
];

/// A rule's permissions for a concrete path (`{collection}` filled in from the path's segment
/// where the rule's pattern has it: `/api/v3/<col>`, `/api/v4/sync/digest/<col>`).
pub(crate) fn perms_for(rule: &Rule, path: &str) -> Vec<String> {
    let at = rule
        .path
        .split('/')
        .position(|s| s == "{collection}")
        .unwrap_or(3);
    let collection = path.split('/').nth(at).unwrap_or("");
    rule.perms
        .iter()
        .map(|p| p.replace("{collection}", collection))
        .collect()
}

/// The rule for a request's method and matched pattern. /api/v2 serves the v1 routes too.
pub(crate) fn rule_for(method: &str, pattern: &str) -> Option<&'static Rule> {
    let find = |p: &str| RULES.iter().find(|r| r.method == method && r.path == p);
    find(pattern).or_else(|| {
        pattern
            .strip_prefix("/api/v2/")
            .and_then(|rest| find(&format!("/api/v1/{rest}")))
    })
}

/// Whether any method of this pattern has a rule (then another method is just not allowed).
pub(crate) fn any_rule_for(pattern: &str) -> bool {
    let v1 = pattern
        .strip_prefix("/api/v2/")
        .map(|rest| format!("/api/v1/{rest}"));
    RULES
        .iter()
        .any(|r| r.path == pattern || v1.as_deref() == Some(r.path))
}

/// Every permission string the routes use (`/api/v2/authorization/permissions`).
pub(crate) fn all_permissions() -> Vec<&'static str> {
    let mut all: Vec<&str> = RULES.iter().flat_map(|r| r.perms.iter().copied()).collect();
    all.sort_unstable();
    all.dedup();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_and_v2_alias() {
        assert_eq!(
            rule_for("GET", "/api/v1/entries").map(|r| r.perms),
            Some(&["api:entries:read"][..])
        );
        assert!(rule_for("GET", "/api/v2/entries/{spec}").is_some());
        assert!(rule_for("PATCH", "/api/v1/entries").is_none());
        assert!(rule_for("GET", "/api/v2/authorization/subjects").is_some());
    }

    #[test]
    fn every_write_also_needs_read_as_in_nightscout() {
        for r in RULES
            .iter()
            .filter(|r| r.path.starts_with("/api/v1/") && r.method != "GET")
        {
            assert!(
                r.perms.iter().any(|p| p.ends_with(":read")),
                "{} {}",
                r.method,
                r.path
            );
        }
    }

    #[test]
    fn the_collection_of_a_permission_is_the_paths_own_segment() {
        let v3 = rule_for("GET", "/api/v3/{collection}").unwrap();
        assert_eq!(perms_for(v3, "/api/v3/food"), ["api:food:read"]);
        let digest = rule_for("GET", "/api/v4/sync/digest/{collection}").unwrap();
        assert_eq!(
            perms_for(digest, "/api/v4/sync/digest/treatments"),
            ["api:treatments:read"]
        );
    }

    #[test]
    fn no_duplicate_rules() {
        for (i, a) in RULES.iter().enumerate() {
            for b in &RULES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "{} {}",
                    a.method,
                    a.path
                );
            }
        }
    }
}
