//! Alarms: thresholds, acknowledgements over /ws and HTTP, stale data, announcements.

use super::*;

/// A commit too large to send as a delta (a bulk upload of more than 10,000 rows) is not held
/// in memory as documents: followers are told to reload, and the alarms still see the newest
/// reading.
#[tokio::test]
async fn a_commit_too_large_for_a_delta_makes_followers_reload() {
    let s = Server::start().await;
    let mut ws = s.admin_client().await;
    let now = now_ms();
    let batch: Vec<Value> = (0..10_001)
        .map(|i| sgv(now - 60_000 - i * 1000, 120))
        .collect();
    s.post("/api/v1/entries", &Value::Array(batch)).await;
    let resync = ws.until(SOON, "resync", |v| v["type"] == "resync").await;
    assert!(
        resync["message"].as_str().unwrap().contains("reconnect"),
        "{resync}"
    );
    assert_eq!(ws.close_code().await, Some(4000));
    // A new follower gets the current state, and the alarm task reloaded the newest reading.
    let mut ws = s.admin_client().await;
    s.post("/api/v1/entries", &json!([sgv(now, 45)])).await;
    let low = ws
        .until(SOON, "urgent_alarm", |v| is_alarm(v, "urgent_alarm"))
        .await;
    assert_eq!(low["notify"]["title"], "Urgent LOW", "{low}");
}

#[tokio::test]
async fn alarms_follow_the_thresholds_and_a_websocket_ack_silences_them() {
    let s = Server::start().await;
    let mut ws = s.admin_client().await;

    s.post("/api/v1/entries", &json!([sgv(now_ms(), 300)]))
        .await;
    let urgent = ws
        .until(SOON, "urgent_alarm", |v| is_alarm(v, "urgent_alarm"))
        .await;
    let n = &urgent["notify"];
    assert_eq!(n["level"], 2, "{urgent}");
    assert_eq!(n["title"], "Urgent HIGH", "{urgent}");
    assert_eq!(n["message"], "BG Now: 300 mg/dl", "{urgent}");
    assert_eq!(n["group"], "default", "{urgent}");

    s.post("/api/v1/entries", &json!([sgv(now_ms(), 200)]))
        .await;
    let warn = ws.until(SOON, "alarm", |v| is_alarm(v, "alarm")).await;
    assert_eq!(warn["notify"]["level"], 1, "{warn}");
    assert_eq!(warn["notify"]["title"], "Warning HIGH", "{warn}");

    s.post("/api/v1/entries", &json!([sgv(now_ms(), 100)]))
        .await;
    let clear = ws
        .until(SOON, "clear_alarm", |v| is_alarm(v, "clear_alarm"))
        .await;
    assert_eq!(clear["notify"]["clear"], true, "{clear}");
    assert_eq!(clear["notify"]["group"], "default", "{clear}");

    s.post("/api/v1/entries", &json!([sgv(now_ms(), 50)])).await;
    let low = ws
        .until(SOON, "urgent_alarm", |v| is_alarm(v, "urgent_alarm"))
        .await;
    assert_eq!(low["notify"]["title"], "Urgent LOW", "{low}");

    ws.send(json!({ "type": "ack", "level": 2, "group": "default", "silenceTime": 60000 }))
        .await;
    let clear = ws
        .until(SOON, "clear_alarm", |v| is_alarm(v, "clear_alarm"))
        .await;
    assert_eq!(clear["notify"]["group"], "default", "{clear}");

    // Snoozed: a new 300 raises nothing (the delta comes, the alarm does not).
    no_alarm_for(&s, &mut ws, 300, "snoozed").await;
}

#[tokio::test]
async fn the_http_ack_silences_alarms_and_needs_credentials() {
    let s = Server::start().await;
    let mut ws = s.admin_client().await;
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 300)]))
        .await;
    ws.until(SOON, "urgent_alarm", |v| is_alarm(v, "urgent_alarm"))
        .await;

    let path = "/api/v1/notifications/ack?level=2&group=default&time=60000";
    let r = s.get(path).await;
    assert_eq!(r.status, 401, "without credentials: {}", r.text);
    let r = s.get_auth(path).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.text, "OK");
    let clear = ws
        .until(SOON, "clear_alarm", |v| is_alarm(v, "clear_alarm"))
        .await;
    assert_eq!(clear["notify"]["group"], "default", "{clear}");

    no_alarm_for(&s, &mut ws, 301, "acked over HTTP").await;
}

#[tokio::test]
async fn switched_off_alarms_do_not_sound() {
    let s = Server::with(&[("ALARM_URGENT_HIGH", "off")]).await;
    let mut ws = s.admin_client().await;
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 300)]))
        .await;
    let alarm = ws
        .until(SOON, "an alarm", |v| {
            v["type"] == "alarm" || v["type"] == "urgent_alarm"
        })
        .await;
    assert_eq!(alarm["type"], "alarm", "urgent high is off: {alarm}");
    assert_eq!(alarm["notify"]["title"], "Warning HIGH", "{alarm}");
}

#[tokio::test]
async fn an_announcement_treatment_is_announced() {
    let s = Server::start().await;
    let mut ws = s.admin_client().await;
    s.post(
        "/api/v1/treatments",
        &json!([{ "eventType": "Announcement", "notes": "Pump site changed", "enteredBy": "Mum", "created_at": iso(now_ms()) }]),
    )
    .await;
    let a = ws.until_type("announcement").await;
    let n = &a["notify"];
    assert_eq!(n["title"], "Announcement from Mum", "{a}");
    assert_eq!(n["message"], "Pump site changed", "{a}");
    assert_eq!(n["isAnnouncement"], true, "{a}");
    assert_eq!(n["group"], "announcement", "{a}");
    // Other treatments announce nothing.
    s.post(
        "/api/v1/treatments",
        &json!([{ "eventType": "Note", "notes": "just a note", "created_at": iso(now_ms()) }]),
    )
    .await;
    let got = ws.collect(Duration::from_millis(500)).await;
    assert!(got.iter().all(|v| v["type"] != "announcement"), "{got:#?}");
}

#[tokio::test]
async fn stale_data_raises_alarm_then_urgent_alarm() {
    let s = Server::with(&[
        ("ALARM_TIMEAGO_WARN_MINS", "0.02"),
        ("ALARM_TIMEAGO_URGENT_MINS", "0.05"),
    ])
    .await;
    let mut ws = s.admin_client().await;
    let date = now_ms() - 10;
    s.post("/api/v1/entries", &json!([sgv(date, 120)])).await;
    let start = Instant::now();
    let first = ws
        .until(Duration::from_secs(6), "a stale alarm", |v| {
            v["type"] == "alarm" || v["type"] == "urgent_alarm"
        })
        .await;
    assert_eq!(first["type"], "alarm", "warn comes first: {first}");
    let n = &first["notify"];
    assert_eq!(n["title"], "Stale data, check rig?", "{first}");
    assert_eq!(n["level"], 1, "{first}");
    let at = n["timestamp"].as_i64().unwrap();
    assert!(
        at - date >= 1_200,
        "warned {} ms after the reading",
        at - date
    );
    let urgent = ws
        .until(Duration::from_secs(8), "an urgent stale alarm", |v| {
            v["type"] == "urgent_alarm"
        })
        .await;
    let n = &urgent["notify"];
    assert_eq!(n["title"], "Stale data, check rig?", "{urgent}");
    assert_eq!(n["level"], 2, "{urgent}");
    let at = n["timestamp"].as_i64().unwrap();
    assert!(
        at - date >= 3_000,
        "urgent {} ms after the reading",
        at - date
    );
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );

    // Fresh data clears it.
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 121)]))
        .await;
    ws.until(SOON, "clear_alarm", |v| v["type"] == "clear_alarm")
        .await;
}

/// A page opened while an alarm sounds gets it right after its snapshot, not at the engine's
/// next evaluation (30 s later with the default stale-data minutes).
#[tokio::test]
async fn a_new_client_gets_the_alarm_sounding_now() {
    let s = Server::start().await;
    let mut first = s.admin_client().await;
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 300)]))
        .await;
    first
        .until(SOON, "urgent_alarm", |v| is_alarm(v, "urgent_alarm"))
        .await;
    let mut second = s.admin_client().await;
    let got = second
        .until(Duration::from_secs(2), "the sounding alarm", |v| {
            is_alarm(v, "urgent_alarm")
        })
        .await;
    assert_eq!(got["notify"]["title"], "Urgent HIGH", "{got}");
    // Once cleared, a new client gets none.
    s.post("/api/v1/entries", &json!([sgv(now_ms(), 100)]))
        .await;
    first
        .until(SOON, "clear_alarm", |v| is_alarm(v, "clear_alarm"))
        .await;
    let mut third = s.admin_client().await;
    let later = third.collect(Duration::from_millis(700)).await;
    assert!(
        later.iter().all(|v| v["type"] != "urgent_alarm"),
        "{later:#?}"
    );
}

/// A site being backfilled (new readings arriving, all older than now: a bridge catching up)
/// raises no stale-data alarm; the readings are arriving.
#[tokio::test]
async fn backfilled_readings_raise_no_stale_alarm() {
    let s = Server::with(&[
        ("ALARM_TIMEAGO_WARN_MINS", "0.02"),
        ("ALARM_TIMEAGO_URGENT_MINS", "0.05"),
    ])
    .await;
    let mut ws = s.admin_client().await;
    let hour_ago = now_ms() - 3_600_000;
    let mut got = vec![];
    for i in 0..6 {
        s.post(
            "/api/v1/entries",
            &json!([sgv(hour_ago + i * 300_000, 120)]),
        )
        .await;
        got.extend(ws.collect(Duration::from_millis(600)).await);
    }
    assert!(
        got.iter()
            .all(|v| v["type"] != "urgent_alarm" && v["type"] != "alarm"),
        "stale alarm while backfilling: {got:#?}"
    );
}

/// The bolus wizard preview's notifications (boluswizardpreview.js checkNotifications): above
/// the profile's high target with more than BWP_URGENT (1 U) to bolus it sounds urgent, above
/// the threshold plugin's warning high; once enough insulin is on board (estimate under
/// BWP_SNOOZE) it snoozes the high alarm, clearing it.
#[tokio::test]
async fn the_bolus_wizard_preview_warns_and_snoozes_the_high_alarm() {
    let s = Server::start().await;
    let mut ws = s.admin_client().await;
    let now = now_ms();
    let flat = |v: f64| json!([{ "time": "00:00", "value": v }]);
    s.post(
        "/api/v1/profile",
        &json!({ "defaultProfile": "D", "startDate": iso(now - 24 * HOUR), "store": { "D": {
            "dia": 3, "sens": flat(50.0), "carbratio": flat(10.0), "carbs_hr": 20,
            "target_low": flat(90.0), "target_high": flat(120.0), "basal": flat(1.0),
            "units": "mg/dl" } } }),
    )
    .await;
    // Long past its action: IOB 0.
    s.post(
        "/api/v1/treatments",
        &json!([{ "eventType": "Correction Bolus", "insulin": 0.1, "created_at": iso(now - 5 * HOUR) }]),
    )
    .await;
    s.post(
        "/api/v1/entries",
        &json!([sgv(now - 5 * MIN, 195), sgv(now, 200)]),
    )
    .await;
    // (200 - 120) / 50 = 1.6 U > 1: urgent, above the simple warning high of 200 > 180.
    let urgent = ws
        .until(SOON, "urgent_alarm", |v| is_alarm(v, "urgent_alarm"))
        .await;
    let n = &urgent["notify"];
    assert_eq!(n["title"], "Urgent, Check BG, time to bolus?", "{urgent}");
    assert_eq!(n["plugin"], "bwp", "{urgent}");
    assert_eq!(
        n["message"], "BG NOW: 200 mg/dl\nDelta: +5\nBWP: 1.60 U\nIOB: 0 U",
        "{urgent}"
    );

    // 5 U on board: 200 - 250 < 90, estimate negative: the high is snoozed and cleared.
    s.post(
        "/api/v1/treatments",
        &json!([{ "eventType": "Correction Bolus", "insulin": 5, "created_at": iso(now_ms()) }]),
    )
    .await;
    let clear = ws
        .until(SOON, "clear_alarm", |v| is_alarm(v, "clear_alarm"))
        .await;
    assert_eq!(clear["notify"]["group"], "default", "{clear}");
    no_alarm_for(&s, &mut ws, 205, "snoozed by the preview").await;
}

/// Posts a reading of `mgdl` now and asserts that it reaches `ws` without an alarm.
async fn no_alarm_for(s: &Server, ws: &mut Ws, mgdl: i64, why: &str) {
    s.post("/api/v1/entries", &json!([sgv(now_ms(), mgdl)]))
        .await;
    let mut got = vec![
        ws.until(SOON, "the delta", |v| {
            is_delta_with(v, "sgvs", |i| i["mgdl"] == mgdl)
        })
        .await,
    ];
    got.extend(ws.collect(Duration::from_millis(700)).await);
    assert!(
        got.iter()
            .all(|v| v["type"] != "urgent_alarm" && v["type"] != "alarm"),
        "{why}, yet: {got:#?}"
    );
}
