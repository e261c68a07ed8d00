//! API v3 soft and permanent delete.

use super::*;

#[test]
fn soft_delete_permanent_delete_and_revive() {
    let s = TestServer::start();
    let v3 = V3::new(&s, &jwt_named(&s, "Deleter", &["admin"]));
    let t0 = now_ms() - 1;
    let body = with(
        treatment(now_ms() - MIN, "Note"),
        json!({"notes": "doomed"}),
    );
    let id = v3.create("treatments", &body);
    let keep = v3.create("treatments", &treatment(now_ms() - 2 * MIN, "Note"));
    let path = format!("/treatments/{id}");
    let before = v3.doc("treatments", &id);

    let r = v3.delete(&path);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(v3.get(&path).status, 410);
    assert_eq!(identifiers(&v3.list("/treatments")), vec![keep.clone()]);
    let h = v3.list(&format!("/treatments/history/{t0}"));
    let deleted = h
        .iter()
        .find(|d| d["identifier"] == id.as_str())
        .expect("in history");
    assert_eq!(deleted["isValid"], false, "{deleted}");
    assert!(
        ms(&deleted["srvModified"]) > ms(&before["srvModified"]),
        "{deleted}"
    );
    assert_eq!(
        h.last().unwrap()["identifier"],
        id.as_str(),
        "the delete is the newest change"
    );
    // Deleting again is allowed and bumps srvModified again (sync clients see it).
    assert_eq!(v3.delete(&path).status, 200);

    // A re-POST revives it.
    let r = v3.post("/treatments", &with(body, json!({"notes": "back"})));
    assert!(r.status == 200 || r.status == 201, "{}", r.text);
    assert_eq!(r.json()["identifier"], id.as_str());
    let doc = v3.doc("treatments", &id);
    assert_eq!(doc["notes"], "back");
    assert!(
        doc.get("isValid").is_none() || doc["isValid"] == true,
        "{doc}"
    );
    assert_eq!(v3.list("/treatments").len(), 2);

    // Permanent: gone from everything.
    let r = v3.delete(&format!("{path}?permanent=true"));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(v3.get(&path).status, 404);
    let h = v3.list(&format!("/treatments/history/{t0}"));
    assert!(h.iter().all(|d| d["identifier"] != id.as_str()), "{h:?}");
    assert_eq!(v3.delete(&path).status, 404);
    assert_eq!(v3.delete("/treatments/never-was").status, 404);
}
