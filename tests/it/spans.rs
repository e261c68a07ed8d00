//! State spans and overrides (docs/state-spans.md) through the API, from the shapes Loop,
//! AndroidAPS and Trio upload: spans follow every write (v1, v3, deletes) and the stored
//! treatments never change.

use serde_json::{json, Value};

use crate::support::{iso, now_ms, TestServer};

const MIN: i64 = 60_000;

struct Client<'a> {
    s: &'a TestServer,
    auth: String,
}

impl<'a> Client<'a> {
    fn new(s: &'a TestServer, roles: &[&str]) -> Client<'a> {
        let (_, token) = s.create_subject(&format!("spans {}", roles.join(" ")), roles);
        Client {
            s,
            auth: format!("Bearer {}", s.jwt_for(&token)),
        }
    }

    fn get(&self, path: &str) -> crate::support::Resp {
        self.s
            .request("GET", path, &[("Authorization", &self.auth)], None)
    }

    fn list(&self, path: &str) -> Vec<Value> {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        r.json().as_array().unwrap().clone()
    }

    /// An API v3 search: its `result`.
    fn list_v3(&self, path: &str) -> Vec<Value> {
        let r = self.get(path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        r.json()["result"].as_array().unwrap().clone()
    }

    fn v3(&self, method: &str, path: &str, body: &Value) -> crate::support::Resp {
        let bytes = serde_json::to_vec(body).unwrap();
        self.s.request(
            method,
            path,
            &[
                ("Authorization", &self.auth),
                ("Content-Type", "application/json"),
            ],
            Some(&bytes),
        )
    }
}

/// Loop's override (NightscoutKit OverrideTreatment), its UUID as `_id`.
fn loop_override(id: &str, at: i64, duration: Option<f64>) -> Value {
    let mut doc = json!({
        "_id": id, "eventType": "Temporary Override", "created_at": iso(at),
        "timestamp": iso(at), "enteredBy": "Loop", "reason": "🏃 Running",
        "correctionRange": [140, 160], "insulinNeedsScaleFactor": 0.8,
        "remoteAddress": "10.0.0.2"
    });
    match duration {
        Some(d) => doc["duration"] = json!(d),
        None => doc["durationType"] = json!("indefinite"),
    }
    doc
}

const LOOP_ID: &str = "818F1786-FAB4-4866-97CA-A406EF6624BD";

#[test]
fn a_loop_override_is_a_span_that_follows_its_reuploads_and_its_delete() {
    let s = TestServer::start();
    let c = Client::new(&s, &["readable"]);
    let at = now_ms() - 30 * MIN;
    assert_eq!(
        s.post_json(
            "/api/v1/treatments",
            &loop_override(LOOP_ID, at, Some(60.0))
        )
        .status,
        200
    );
    let spans = c.list("/api/v4/state-spans?category=Override");
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span = &spans[0];
    assert_eq!(span["startMills"], at);
    assert_eq!(span["endMills"], at + 60 * MIN);
    assert_eq!(span["source"], "Loop");
    assert_eq!(span["state"], "Custom");
    assert_eq!(span["originalId"], LOOP_ID);
    assert_eq!(span["metadata"]["correctionRange"], json!([140, 160]));
    assert_eq!(c.list("/api/v4/state-spans?active=true").len(), 1);

    // Ended early: Loop uploads the same UUID with a shorter duration.
    s.post_json(
        "/api/v1/treatments",
        &loop_override(LOOP_ID, at, Some(10.0)),
    );
    let spans = c.list("/api/v3/state-spans?category=Override");
    assert_eq!(spans.len(), 1, "one override, shortened: {spans:?}");
    assert_eq!(spans[0]["endMills"], at + 10 * MIN);
    assert!(c.list("/api/v4/state-spans?active=true").is_empty());

    // Deleted by its UUID: the span goes with it.
    assert_eq!(
        s.delete(&format!("/api/v1/treatments/{LOOP_ID}")).status,
        200
    );
    assert!(c.list("/api/v4/state-spans").is_empty());
}

/// An indefinite override comes back from v1 and v3 without a duration, with Loop's fields.
#[test]
fn an_indefinite_override_is_open_and_its_treatment_round_trips_unchanged() {
    let s = TestServer::start();
    let c = Client::new(&s, &["readable"]);
    let at = now_ms() - 5 * MIN;
    s.post_json("/api/v1/treatments", &loop_override(LOOP_ID, at, None));
    let spans = c.list("/api/v4/state-spans");
    assert_eq!(spans[0]["endMills"], Value::Null);
    let stored = s.list("/api/v1/treatments?find[eventType]=Temporary%20Override");
    assert_eq!(stored.len(), 1);
    let t = &stored[0];
    assert!(t.get("duration").is_none(), "{t}");
    assert_eq!(t["durationType"], "indefinite");
    assert_eq!(t["correctionRange"], json!([140, 160]));
    assert_eq!(t["remoteAddress"], "10.0.0.2");
    let overrides = c.list("/api/v4/overrides?status=active");
    assert_eq!(overrides.len(), 1);
    let treatment = &overrides[0]["treatment"];
    for (k, v) in t.as_object().unwrap() {
        assert_eq!(&treatment[k], v, "field {k} as stored");
    }
}

/// AndroidAPS's temporary targets through API v3: a new one supersedes, duration 0 cancels.
#[test]
fn aaps_targets_superseded_cancelled_and_the_one_active() {
    let s = TestServer::start();
    let c = Client::new(&s, &["admin"]);
    let t0 = now_ms() - 90 * MIN;
    let tt = |date: i64, minutes: i64, reason: &str| {
        json!({ "eventType": "Temporary Target", "date": date, "utcOffset": 120,
            "isValid": true, "units": "mg/dl", "targetTop": 140, "targetBottom": 140,
            "duration": minutes, "durationInMilliseconds": minutes * MIN,
            "reason": reason, "app": "AAPS" })
    };
    for body in [
        tt(t0, 60, "Activity"),
        tt(t0 + 20 * MIN, 30, "Eating Soon"),
        tt(t0 + 30 * MIN, 0, "Custom"),
        tt(t0 + 80 * MIN, 60, "Hypo"),
    ] {
        let r = c.v3("POST", "/api/v3/treatments", &body);
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let all = c.list("/api/v4/overrides");
    let by_reason = |reason: &str| {
        all.iter()
            .find(|o| o["metadata"]["reason"] == reason)
            .unwrap_or_else(|| panic!("{reason}: {all:?}"))
    };
    let activity = by_reason("Activity");
    assert_eq!(activity["status"], "superseded");
    assert_eq!(activity["superseded_by"], by_reason("Eating Soon")["id"]);
    assert_eq!(activity["superseded_at"], t0 + 20 * MIN);
    assert_eq!(by_reason("Eating Soon")["status"], "cancelled");
    assert_eq!(by_reason("Eating Soon")["endMills"], t0 + 30 * MIN);
    assert_eq!(all.len(), 3, "a cancel has no span of its own");
    // A status is selected before paging: the page holds `limit` spans of that status.
    let superseded = c.list("/api/v4/overrides?status=superseded&limit=1");
    assert_eq!(superseded.len(), 1, "{superseded:?}");
    assert_eq!(superseded[0]["metadata"]["reason"], "Activity");
    let expired_or_not = c.list("/api/v4/overrides?status=expired");
    assert!(expired_or_not.is_empty(), "{expired_or_not:?}");
    let active = c.list("/api/v4/overrides?status=active");
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["metadata"]["reason"], "Hypo");
    assert_eq!(active[0]["treatment"]["durationInMilliseconds"], 3_600_000);
}

#[test]
fn ranges_categories_and_permissions() {
    let s = TestServer::start();
    let c = Client::new(&s, &["readable"]);
    let t0 = now_ms() - 10 * 60 * MIN;
    let tb = |at: i64| {
        json!({ "eventType": "Temp Basal", "created_at": iso(at), "duration": 30,
            "absolute": 0.5, "rate": 0.5, "enteredBy": "Pump (tconnectsync)" })
    };
    for i in 0..4 {
        s.post_json("/api/v1/treatments", &tb(t0 + i * 60 * MIN));
    }
    // [t0+60, t0+90) and [t0+120, t0+150) overlap this range; the others do not.
    let r = c.list(&format!(
        "/api/v4/state-spans?from={}&to={}&category=TempBasal",
        t0 + 70 * MIN,
        iso(t0 + 125 * MIN)
    ));
    let starts: Vec<i64> = r
        .iter()
        .map(|s| s["startMills"].as_i64().unwrap())
        .collect();
    assert_eq!(starts, vec![t0 + 120 * MIN, t0 + 60 * MIN], "newest first");
    assert_eq!(r[0]["metadata"]["absolute"], 0.5);
    assert_eq!(
        c.list("/api/v4/state-spans?category=TempBasal&limit=1&offset=1")[0]["startMills"],
        t0 + 120 * MIN
    );
    assert!(c.list("/api/v4/state-spans?category=Profile").is_empty());

    let bad = c.get("/api/v4/state-spans?category=Basal");
    assert_eq!(bad.status, 400);
    assert!(bad.text.contains("unknown category"), "{}", bad.text);
    assert_eq!(c.get("/api/v4/state-spans?from=yesterday").status, 400);
    assert_eq!(c.get("/api/v4/overrides?status=maybe").status, 400);
    assert_eq!(s.get("/api/v4/state-spans").status, 401, "v3-style auth");
    let nobody = Client::new(&s, &["denied"]);
    assert_eq!(nobody.get("/api/v3/state-spans").status, 403);
}

/// REQ-OVRD-004: Loop's override, AndroidAPS's temporary target (mmol) and 150 % switch,
/// Trio's Exercise overrides in one shape; a 100 % switch changes nothing and is left out.
#[test]
fn adjustments_put_overrides_targets_exercise_and_scaled_switches_in_one_shape() {
    let s = TestServer::start();
    let c = Client::new(&s, &["admin"]);
    let now = now_ms();
    let trio = |at: i64, minutes: i64| {
        json!({"eventType": "Exercise", "created_at": iso(at), "enteredBy": "Trio",
               "notes": "Exercise preset", "duration": minutes})
    };
    s.post_ok("/api/v1/treatments", &trio(now - 600 * MIN, 43_200));
    s.post_ok("/api/v1/treatments", &trio(now - 300 * MIN, 60));
    s.post_ok(
        "/api/v1/treatments",
        &json!({"eventType": "Profile Switch", "created_at": iso(now - 200 * MIN),
                "profile": "Default", "duration": 0, "enteredBy": "careportal"}),
    );
    s.post_ok(
        "/api/v1/treatments",
        &loop_override(LOOP_ID, now - 30 * MIN, Some(60.0)),
    );
    let tt = json!({"eventType": "Temporary Target", "date": now - 20 * MIN, "utcOffset": 60,
        "isValid": true, "units": "mmol", "targetTop": 8, "targetBottom": 7, "duration": 60,
        "durationInMilliseconds": 3_600_000, "reason": "Activity", "app": "AAPS"});
    assert_eq!(c.v3("POST", "/api/v3/treatments", &tt).status, 201);
    let ps = json!({"eventType": "Profile Switch", "date": now - 10 * MIN, "utcOffset": 60,
        "profile": "Default (150%)", "originalProfileName": "Default", "percentage": 150,
        "timeshift": 0, "duration": 60, "durationInMilliseconds": 3_600_000,
        "originalDuration": 3_600_000, "app": "AAPS"});
    assert_eq!(c.v3("POST", "/api/v3/treatments", &ps).status, 201);

    let active = c.list("/api/v4/adjustments?status=active");
    let kinds: Vec<&str> = active.iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["Profile Switch", "Temporary Target", "Temporary Override"],
        "{active:?}"
    );
    let (switch, target, over) = (&active[0], &active[1], &active[2]);
    assert_eq!(switch["insulinPercent"], 150);
    assert_eq!(
        switch["targetLow"],
        Value::Null,
        "a switch keeps the targets"
    );
    assert_eq!(switch["name"], "Default (150%)");
    assert_eq!(switch["source"], "AAPS");
    assert_eq!(switch["plannedDurationMs"], 3_600_000);
    assert_eq!(target["targetLow"], 126, "7 mmol/L in mg/dL");
    assert_eq!(target["targetHigh"], 144);
    assert_eq!(target["insulinPercent"], Value::Null);
    assert_eq!(target["durationMs"], 3_600_000);
    assert_eq!(
        target["treatment"]["units"], "mmol",
        "the treatment as stored"
    );
    assert_eq!(over["targetLow"], 140);
    assert_eq!(over["targetHigh"], 160);
    assert_eq!(over["insulinPercent"], 80);
    assert_eq!(over["name"], "🏃 Running");
    assert_eq!(over["startMills"], now - 30 * MIN);
    assert_eq!(over["endMills"], now + 30 * MIN);
    assert_eq!(over["originalId"], LOOP_ID);
    for a in &active {
        assert_eq!(a["status"], "active");
    }

    let all = c.list("/api/v4/adjustments");
    assert_eq!(all.len(), 5, "not the 100 % switch: {all:?}");
    let exercise: Vec<&Value> = all.iter().filter(|a| a["kind"] == "Exercise").collect();
    assert_eq!(exercise.len(), 2);
    assert_eq!(exercise[0]["status"], "expired");
    assert_eq!(exercise[0]["durationMs"], 3_600_000);
    assert_eq!(exercise[0]["name"], "Exercise preset");
    assert_eq!(exercise[0]["source"], "Trio");
    assert_eq!(
        exercise[1]["plannedDurationMs"],
        Value::Null,
        "Trio's 43,200 minutes"
    );
    assert_eq!(exercise[1]["status"], "superseded");
    assert_eq!(exercise[1]["durationMs"], 300 * MIN);
    assert_eq!(exercise[1]["supersededBy"], exercise[0]["id"]);

    let only = c.list("/api/v4/adjustments?category=TemporaryTarget");
    assert_eq!(only.len(), 1);
    let bad = c.get("/api/v4/adjustments?category=TempBasal");
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(c.get("/api/v4/adjustments?status=maybe").status, 400);
    assert_eq!(s.get("/api/v4/adjustments").status, 401);
}

/// Round trip through API v3: Loop's indefinite override is read back with no `duration`, and
/// with its `correctionRange` and `remoteAddress`, by UUID and in a search.
#[test]
fn an_indefinite_loop_override_comes_back_from_v3_without_a_duration() {
    let s = TestServer::start();
    let c = Client::new(&s, &["admin"]);
    let at = now_ms() - 5 * MIN;
    let sent = loop_override(LOOP_ID, at, None);
    s.post_ok("/api/v1/treatments", &sent);
    let one = c.get(&format!("/api/v3/treatments/{LOOP_ID}"));
    assert_eq!(one.status, 200, "{}", one.text);
    let found = c.list_v3("/api/v3/treatments?eventType=Temporary%20Override");
    assert_eq!(found.len(), 1);
    for doc in [&one.json()["result"], &found[0]] {
        assert!(doc.get("duration").is_none(), "{doc}");
        assert_eq!(doc["identifier"], LOOP_ID);
        for key in [
            "durationType",
            "correctionRange",
            "remoteAddress",
            "insulinNeedsScaleFactor",
            "reason",
            "timestamp",
            "enteredBy",
            "created_at",
        ] {
            assert_eq!(doc[key], sent[key], "{key}");
        }
    }
    // A later override ends it; the stored treatment still has no duration.
    s.post_ok(
        "/api/v1/treatments",
        &loop_override(
            "0A7E2C1B-0000-4000-8000-000000000001",
            at + 2 * MIN,
            Some(30.0),
        ),
    );
    let spans = c.list("/api/v4/state-spans?category=Override");
    assert_eq!(spans[1]["endMills"], at + 2 * MIN, "{spans:?}");
    let again = c.get(&format!("/api/v3/treatments/{LOOP_ID}")).json();
    assert!(again["result"].get("duration").is_none());
    assert_eq!(
        again["result"],
        one.json()["result"],
        "not touched by the supersession"
    );
}

/// A profile span superseded (and one resumed) changes no stored treatment: every switch reads
/// back exactly as before the later ones arrived, srvModified included.
#[test]
fn superseded_profile_spans_change_no_stored_treatment() {
    let s = TestServer::start();
    let c = Client::new(&s, &["admin"]);
    let t0 = now_ms() - 300 * MIN;
    let careportal = |at: i64, profile: &str, minutes: i64| {
        json!({"eventType": "Profile Switch", "created_at": iso(at), "profile": profile,
               "duration": minutes, "enteredBy": "careportal"})
    };
    s.post_ok("/api/v1/treatments", &careportal(t0, "Default", 0));
    let before = c.list_v3("/api/v3/treatments?eventType=Profile%20Switch");
    assert_eq!(before.len(), 1);
    s.post_ok(
        "/api/v1/treatments",
        &careportal(t0 + 60 * MIN, "Sport", 30),
    );
    let aaps = json!({"eventType": "Profile Switch", "date": t0 + 120 * MIN, "utcOffset": 0,
        "profile": "Default (150%)", "originalProfileName": "Default", "percentage": 150,
        "timeshift": 0, "duration": 0, "app": "AAPS"});
    assert_eq!(c.v3("POST", "/api/v3/treatments", &aaps).status, 201);

    let spans = c.list("/api/v4/state-spans?category=Profile");
    let first = spans
        .iter()
        .filter(|s| s["metadata"]["profile"] == "Default")
        .collect::<Vec<_>>();
    assert_eq!(first.len(), 2, "interrupted, resumed: {spans:?}");
    assert!(first.iter().any(|s| !s["supersededBy"].is_null()));
    let after = c.list_v3("/api/v3/treatments?eventType=Profile%20Switch&sort=date");
    assert_eq!(after.len(), 3);
    assert_eq!(
        after[0], before[0],
        "the superseded switch as stored, srvModified too"
    );
    assert_eq!(after[0]["duration"], 0);
    assert!(after[0].get("endMills").is_none() && after[0].get("supersededBy").is_none());
}

/// Loop's device status (NightscoutKit `DeviceStatus`), uploaded every five minutes.
fn loop_status(at: i64, suspended: bool, over: bool) -> Value {
    json!({
        "device": "loop://iPhone", "created_at": iso(at),
        "pump": {"clock": iso(at), "pumpID": "1234", "manufacturer": "Insulet", "model": "Dash",
                 "reservoir": 120.5, "bolusing": false, "suspended": suspended},
        "loop": {"name": "Loop", "version": "3.4.1", "timestamp": iso(at)},
        "override": if over {
            json!({"name": "🏃 Running", "timestamp": iso(at - at % (60 * MIN)), "active": true,
                   "currentCorrectionRange": {"minValue": 140, "maxValue": 160},
                   "duration": 3600, "multiplier": 0.8})
        } else {
            json!({"timestamp": iso(at), "active": false})
        },
        "uploader": {"name": "iPhone", "timestamp": iso(at), "battery": 80}
    })
}

/// Statuses every five minutes make one span per run, not one per status; the same state
/// uploaded as a treatment is listed once, as the treatment's span.
#[test]
fn loop_statuses_make_one_span_per_run_and_a_treatment_takes_precedence() {
    let s = TestServer::start();
    let c = Client::new(&s, &["readable"]);
    let t0 = now_ms() - 60 * MIN;
    let t0 = t0 - t0 % (60 * MIN);
    let statuses: Vec<Value> = (0..12)
        .map(|i| loop_status(t0 + i * 5 * MIN, (2..6).contains(&i), (6..9).contains(&i)))
        .collect();
    s.post_ok("/api/v1/devicestatus", &Value::Array(statuses));
    let pump = c.list("/api/v4/state-spans?category=PumpMode");
    assert_eq!(pump.len(), 1, "{pump:?}");
    assert_eq!(pump[0]["state"], "Suspended");
    assert_eq!(pump[0]["source"], "Loop");
    assert_eq!(pump[0]["originKind"], "devicestatus");
    assert_eq!(pump[0]["startMills"], t0 + 10 * MIN);
    assert_eq!(pump[0]["endMills"], t0 + 30 * MIN);
    assert_eq!(pump[0]["metadata"]["device"], "loop://iPhone");
    let over = c.list("/api/v4/adjustments?category=Override");
    assert_eq!(over.len(), 1, "{over:?}");
    assert_eq!(over[0]["name"], "🏃 Running");
    assert_eq!(over[0]["insulinPercent"], 80);
    assert_eq!(over[0]["targetLow"], 140);
    assert_eq!(over[0]["plannedDurationMs"], 3_600_000, "Loop's seconds");
    assert_eq!(over[0]["durationMs"], 15 * MIN);
    assert_eq!(over[0]["treatment"], Value::Null);

    // Loop also uploads the suspension as treatments: one span, the treatment's.
    for (event, at) in [
        ("Suspend Pump", t0 + 10 * MIN),
        ("Resume Pump", t0 + 30 * MIN),
    ] {
        s.post_ok(
            "/api/v1/treatments",
            &json!({"eventType": event, "created_at": iso(at), "enteredBy": "Loop"}),
        );
    }
    let pump = c.list("/api/v4/state-spans?category=PumpMode");
    assert_eq!(pump.len(), 1, "{pump:?}");
    assert_eq!(pump[0]["originKind"], "treatment");
    assert_eq!(pump[0]["endMills"], t0 + 30 * MIN);
    // A status arriving late, in the middle of the run, changes nothing that is listed.
    s.post_ok(
        "/api/v1/devicestatus",
        &loop_status(t0 + 12 * MIN, true, false),
    );
    assert_eq!(c.list("/api/v4/state-spans?category=PumpMode"), pump);
}

/// An /adjustments page holds `limit` items when more exist: the rule that a switch changes
/// insulin is applied in the query, not after it ("80%" is not a percentage nightlite applies,
/// src/profiles/switch.rs, so those switches are not adjustments).
#[test]
fn an_adjustments_page_holds_limit_items_when_more_exist() {
    let s = TestServer::start();
    let c = Client::new(&s, &["readable"]);
    let now = now_ms();
    for (i, pct) in [json!(80), json!(90), json!(120), json!("80%"), json!("70%")]
        .into_iter()
        .enumerate()
    {
        let at = now - (100 - 10 * i64::try_from(i).unwrap()) * MIN;
        s.post_ok(
            "/api/v1/treatments",
            &json!({"eventType": "Profile Switch", "created_at": iso(at), "profile": "Default",
                    "percentage": pct, "duration": 5, "enteredBy": "test"}),
        );
    }
    let page = c.list("/api/v4/adjustments?category=Profile&limit=2");
    let pcts: Vec<&Value> = page.iter().map(|a| &a["insulinPercent"]).collect();
    assert_eq!(pcts, [&json!(120), &json!(90)], "{page:?}");
    let next = c.list("/api/v4/adjustments?category=Profile&limit=2&offset=2");
    assert_eq!(next.len(), 1, "{next:?}");
}

/// `from`/`to` select overlapping spans with `endMills` exclusive, `active` splits the spans in
/// force now from the others, and /api/v3/state-spans serves the same spans as v4.
#[test]
fn range_bounds_active_and_the_v3_route() {
    let s = TestServer::start();
    let c = Client::new(&s, &["readable"]);
    let now = now_ms();
    let t0 = now - 5 * 60 * MIN;
    let tt = |at: i64, minutes: i64| {
        json!({"eventType": "Temporary Target", "created_at": iso(at), "duration": minutes,
               "targetTop": 140, "targetBottom": 140, "units": "mg/dl", "enteredBy": "careportal"})
    };
    s.post_ok("/api/v1/treatments", &tt(t0, 60)); // [t0, t0+60) expired
    s.post_ok("/api/v1/treatments", &tt(now - 30 * MIN, 60)); // in force now
    let at = |q: &str| -> Vec<i64> {
        c.list(&format!("/api/v4/state-spans?category=TemporaryTarget&{q}"))
            .iter()
            .map(|s| s["startMills"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(
        at(&format!("from={}", t0 + 60 * MIN)),
        [now - 30 * MIN],
        "end is exclusive"
    );
    assert_eq!(
        at(&format!("from={}", iso(t0 + 59 * MIN))),
        [now - 30 * MIN, t0]
    );
    assert_eq!(
        at(&format!("to={}", iso(now - 30 * MIN))),
        [now - 30 * MIN, t0],
        "start <= to"
    );
    assert_eq!(at(&format!("to={}", now - 31 * MIN)), [t0]);
    assert_eq!(
        at("active=true"),
        [now - 30 * MIN],
        "a finite span still running"
    );
    assert_eq!(at("active=false"), [t0]);
    let v3 = c.list("/api/v3/state-spans?category=TemporaryTarget");
    assert_eq!(v3, c.list("/api/v4/state-spans?category=TemporaryTarget"));
    assert_eq!(v3.len(), 2);
}
