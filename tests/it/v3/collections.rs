//! API v3 generic operations on every collection.

use super::*;

#[test]
fn every_collection_supports_the_generic_operations() {
    let s = TestServer::start();
    let v3 = V3::admin(&s);
    let t0 = now_ms() - 1;
    let at = now_ms() - 5 * MIN;
    let docs = [
        (
            "devicestatus",
            json!({"device": "openaps://p", "uploaderBattery": 55}),
        ),
        (
            "entries",
            json!({"type": "sgv", "sgv": 111, "device": "cgm"}),
        ),
        (
            "food",
            json!({"name": "apple", "carbs": 15, "category": "fruit"}),
        ),
        (
            "profile",
            json!({"defaultProfile": "Default", "store": {"Default": {"dia": 5}},
                           "startDate": iso(at)}),
        ),
        ("settings", json!({"key": "aaps-prefs", "value": {"a": 1}})),
        ("treatments", json!({"eventType": "Note", "notes": "n"})),
    ];
    for (col, fields) in docs {
        let body = with(json!({"date": at, "app": "every"}), fields);
        let id = v3.create(col, &body);
        let doc = v3.doc(col, &id);
        assert_eq!(doc["date"], at, "{col}: {doc}");
        assert_eq!(doc["app"], "every", "{col}: {doc}");
        assert_eq!(
            identifiers(&v3.list(&format!("/{col}"))),
            vec![id.clone()],
            "{col}"
        );
        let h = v3.list(&format!("/{col}/history/{t0}"));
        assert_eq!(identifiers(&h), vec![id.clone()], "{col}");
        let again = v3.post(&format!("/{col}"), &body);
        assert_eq!(again.status, 200, "{col}: {}", again.text);
        let r = v3.patch(&format!("/{col}/{id}"), &json!({"extra": 1}));
        assert_eq!(r.status, 200, "{col}: {}", r.text);
        assert_eq!(v3.doc(col, &id)["extra"], 1, "{col}");
        let r = v3.put(
            &format!("/{col}/{id}"),
            &with(body.clone(), json!({"extra": 2})),
        );
        assert_eq!(r.status, 200, "{col}: {}", r.text);
        assert_eq!(v3.doc(col, &id)["extra"], 2, "{col}");
        assert_eq!(v3.delete(&format!("/{col}/{id}")).status, 200, "{col}");
        assert_eq!(v3.get(&format!("/{col}/{id}")).status, 410, "{col}");
        assert!(v3.list(&format!("/{col}")).is_empty(), "{col}");
    }
    let v = result(&v3.get("/lastModified"));
    for col in [
        "devicestatus",
        "entries",
        "food",
        "profile",
        "settings",
        "treatments",
    ] {
        assert!(ms(&v["collections"][col]) > t0, "{col}: {v}");
    }
}
