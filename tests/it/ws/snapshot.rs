//! The first full `dataUpdate`.

use super::*;

#[tokio::test]
async fn the_snapshot_holds_what_was_posted() {
    let s = Server::start().await;
    let t = now_ms();
    let sgv_id = s
        .post_one("/api/v1/entries", &json!([sgv(t - 5 * MIN, 123)]))
        .await;
    s.post(
        "/api/v1/entries",
        &json!([
            { "type": "mbg", "mbg": 131, "date": t - 20 * MIN, "dateString": iso(t - 20 * MIN), "device": "meter" },
            { "type": "cal", "slope": 850, "intercept": 31000, "scale": 1, "date": t - 30 * MIN, "dateString": iso(t - 30 * MIN) }
        ]),
    )
    .await;
    let treatment_id = s
        .post_one(
            "/api/v1/treatments",
            &json!([{ "eventType": "Correction Bolus", "insulin": 1.5, "created_at": iso(t - 10 * MIN) }]),
        )
        .await;
    s.post(
        "/api/v1/devicestatus",
        &json!([{ "device": "rig", "created_at": iso(t - 5 * MIN), "uploaderBattery": 77 }]),
    )
    .await;
    s.post(
        "/api/v1/profile",
        &json!({
            "defaultProfile": "Day",
            "startDate": iso(t - HOUR),
            "created_at": iso(t - HOUR),
            "units": "mg/dl",
            "store": { "Day": { "dia": 5, "basal": [{ "time": "00:00", "value": 0.8, "timeAsSeconds": 0 }] } }
        }),
    )
    .await;

    let mut ws = s.connect().await;
    let (_, snapshot) = ws.authorize(json!({ "secret": secret_sha1() })).await;
    let snapshot = snapshot.unwrap();
    let sgvs = items(&snapshot, "sgvs");
    assert_eq!(sgvs.len(), 1, "{snapshot}");
    let g = &sgvs[0];
    assert_eq!(g["_id"], sgv_id.as_str(), "{g}");
    assert_eq!(g["mgdl"], 123, "sgv as mgdl: {g}");
    assert_eq!(g["mills"], t - 5 * MIN, "{g}");
    assert_eq!(g["device"], "ws-test-cgm", "{g}");
    assert_eq!(g["direction"], "Flat", "{g}");
    assert!(
        g.get("sgv").is_none(),
        "ddata items carry mgdl, not sgv: {g}"
    );

    let mbgs = items(&snapshot, "mbgs");
    assert_eq!(mbgs.len(), 1, "{snapshot}");
    assert_eq!(mbgs[0]["mgdl"], 131, "{}", mbgs[0]);
    assert_eq!(mbgs[0]["mills"], t - 20 * MIN);
    let cals = items(&snapshot, "cals");
    assert_eq!(cals.len(), 1, "{snapshot}");
    assert_eq!(cals[0]["slope"], 850, "{}", cals[0]);

    let treatments = items(&snapshot, "treatments");
    assert_eq!(treatments.len(), 1, "{snapshot}");
    assert_eq!(treatments[0]["_id"], treatment_id.as_str());
    assert_eq!(treatments[0]["eventType"], "Correction Bolus");
    assert_eq!(treatments[0]["insulin"], 1.5);
    assert_eq!(treatments[0]["mills"], t - 10 * MIN);

    let ds = items(&snapshot, "devicestatus");
    assert_eq!(ds.len(), 1, "{snapshot}");
    assert_eq!(ds[0]["uploaderBattery"], 77, "{}", ds[0]);
    assert_eq!(ds[0]["mills"], t - 5 * MIN, "{}", ds[0]);

    let profiles = items(&snapshot, "profiles");
    assert_eq!(profiles.len(), 1, "{snapshot}");
    assert_eq!(profiles[0]["defaultProfile"], "Day", "{}", profiles[0]);
    assert_eq!(profiles[0]["store"]["Day"]["dia"], 5, "{}", profiles[0]);
}

#[tokio::test]
async fn history_limits_the_snapshot() {
    let s = Server::start().await;
    let t = now_ms();
    s.post(
        "/api/v1/entries",
        &json!([
            sgv(t - HOUR, 101),
            sgv(t - 30 * HOUR, 102),
            sgv(t - 60 * HOUR, 103)
        ]),
    )
    .await;
    s.post(
        "/api/v1/treatments",
        &json!([
            { "eventType": "Note", "notes": "recent", "created_at": iso(t - HOUR) },
            { "eventType": "Note", "notes": "old", "created_at": iso(t - 30 * HOUR) }
        ]),
    )
    .await;
    let values = |snapshot: &Value| -> Vec<i64> {
        let mut v: Vec<i64> = items(snapshot, "sgvs")
            .iter()
            .map(|i| i["mgdl"].as_i64().unwrap())
            .collect();
        v.sort_unstable();
        v
    };
    let notes = |snapshot: &Value| -> Vec<String> {
        items(snapshot, "treatments")
            .iter()
            .map(|i| i["notes"].as_str().unwrap().to_string())
            .collect()
    };
    let cases = [
        (json!({}), vec![101], vec!["recent"]),
        (json!({ "history": 24 }), vec![101], vec!["recent"]),
        (json!({ "history": 2 }), vec![101], vec!["recent"]),
        (json!({ "history": 0.5 }), vec![], vec![]),
        (
            json!({ "history": 48 }),
            vec![101, 102],
            vec!["old", "recent"],
        ),
        // At most 48 hours, however many are asked for.
        (
            json!({ "history": 1000 }),
            vec![101, 102],
            vec!["old", "recent"],
        ),
    ];
    for (mut creds, want_sgvs, want_notes) in cases {
        creds["secret"] = json!(secret_sha1());
        let mut ws = s.connect().await;
        let (_, snapshot) = ws.authorize(creds.clone()).await;
        let snapshot = snapshot.unwrap();
        assert_eq!(values(&snapshot), want_sgvs, "{creds}: {snapshot}");
        assert_eq!(notes(&snapshot), want_notes, "{creds}: {snapshot}");
    }
}
