//! The OpenAPI document against the route table.

use super::*;

/// The OpenAPI document as served (include_str! of this file).
fn swagger_document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/v3/swagger.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("swagger.json is JSON")
}

#[test]
fn swagger_json_is_served_openly() {
    let s = TestServer::start();
    let r = s.get("/api/v3/swagger.json");
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.content_type().starts_with("application/json"),
        "{}",
        r.content_type()
    );
    assert_eq!(r.json(), swagger_document());
}

#[test]
fn swagger_matches_the_route_table() {
    let doc = swagger_document();
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");

    let documented: BTreeSet<String> = paths.keys().map(|k| format!("/api/v3{k}")).collect();
    let rules: Vec<_> = nightlite::api::routes::RULES
        .iter()
        .filter(|r| r.path.starts_with("/api/v3/"))
        .collect();
    let routed: BTreeSet<String> = rules.iter().map(|r| r.path.to_string()).collect();
    assert_eq!(documented, routed, "swagger paths vs route table");

    const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];
    for r in &rules {
        let key = &r.path["/api/v3".len()..];
        let ops = paths[key].as_object().unwrap();
        assert!(
            ops.contains_key(&r.method.to_ascii_lowercase()),
            "{} {} not documented",
            r.method,
            r.path
        );
    }
    for (key, ops) in paths {
        let path = format!("/api/v3{key}");
        for m in ops
            .as_object()
            .unwrap()
            .keys()
            .filter(|m| METHODS.contains(&m.as_str()))
        {
            assert!(
                rules
                    .iter()
                    .any(|r| r.path == path && r.method.eq_ignore_ascii_case(m)),
                "documented {m} {path} has no route rule"
            );
        }
    }
}
