//! What real clients do against Nightscout 15.0.7 and expect to work the same here
//! (docs/compatibility.md).

use serde_json::{json, Value};

use crate::harness::{now_ms, TestServer};

/// Loop's setup: `GET /api/v1/experiments/test` with the secret must answer 200.
#[test]
fn loop_setup_experiments_test() {
    let s = TestServer::start();
    let r = s.get_auth("/api/v1/experiments/test");
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({ "status": "ok" }));
    let r = s.get("/api/v1/experiments/test");
    assert_eq!(r.status, 401, "{}", r.text);
}
