#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};

use super::derive::{derive, span_id};
use super::rules::{classify, source, Effect};
use super::{Category, Event};

const MIN: i64 = 60_000;
const T0: i64 = 1_765_094_400_000;

fn ev(seq: i64, mills: i64, origin: &str, doc: Value) -> Event {
    let Value::Object(doc) = doc else {
        panic!("not an object")
    };
    Event {
        seq,
        mills,
        origin: origin.into(),
        doc,
    }
}

#[test]
fn clients_are_named_as_users_know_them() {
    let name = |v: Value| source(v.as_object().unwrap());
    assert_eq!(
        name(json!({ "enteredBy": "Loop (via remote command)" })),
        "Loop"
    );
    assert_eq!(name(json!({ "app": "AAPS" })), "AAPS");
    assert_eq!(name(json!({ "enteredBy": "openaps://AndroidAPS" })), "AAPS");
    assert_eq!(name(json!({ "enteredBy": "Trio" })), "Trio");
    assert_eq!(name(json!({ "enteredBy": "xdrip" })), "xDrip+");
    assert_eq!(name(json!({ "enteredBy": "Mum" })), "Mum");
    assert_eq!(name(json!({})), "careportal");
}

/// Loop (NightscoutKit OverrideTreatment): minutes; indefinite has no duration.
#[test]
fn loop_overrides_finite_indefinite_and_cancelled_by_a_shorter_reupload() {
    let finite = json!({
        "_id": "818F1786-FAB4-4866-97CA-A406EF6624BD", "eventType": "Temporary Override",
        "created_at": "2024-06-27T07:00:21.000Z", "timestamp": "2024-06-27T07:00:21Z",
        "enteredBy": "Loop", "reason": "🏃 Running", "duration": 60,
        "correctionRange": [140, 160], "insulinNeedsScaleFactor": 0.8
    });
    let spans = derive(Category::Override, &[ev(1, T0, "818F", finite.clone())]);
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    assert_eq!((s.start, s.end), (T0, Some(T0 + 60 * MIN)));
    assert_eq!(s.state, "Custom");
    assert_eq!(s.source, "Loop");
    assert_eq!(s.metadata["correctionRange"], json!([140, 160]));
    assert_eq!(s.metadata["insulinNeedsScaleFactor"], json!(0.8));

    let indefinite = json!({
        "eventType": "Temporary Override", "enteredBy": "Loop", "reason": "Custom Override",
        "durationType": "indefinite", "insulinNeedsScaleFactor": 1.3
    });
    let spans = derive(Category::Override, &[ev(1, T0, "u", indefinite)]);
    assert_eq!(spans[0].end, None, "indefinite: open");

    // Ending early re-uploads the same UUID with a shorter duration: the span follows.
    let mut shorter = finite;
    shorter["duration"] = json!(12.5);
    let spans = derive(Category::Override, &[ev(1, T0, "818F", shorter)]);
    assert_eq!(spans[0].end, Some(T0 + 750_000));
}

#[test]
fn a_new_override_supersedes_the_one_in_force() {
    let a = json!({ "eventType": "Temporary Override", "enteredBy": "Loop", "duration": 60 });
    let b = json!({ "eventType": "Temporary Override", "enteredBy": "Loop", "duration": 30 });
    let spans = derive(
        Category::Override,
        &[ev(1, T0, "a", a), ev(2, T0 + 30 * MIN, "b", b)],
    );
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].end, Some(T0 + 30 * MIN));
    assert_eq!(
        spans[0].superseded_by.as_deref(),
        Some(spans[1].id.as_str())
    );
    assert_eq!(spans[0].superseded_at, Some(T0 + 30 * MIN));
    assert_eq!(spans[1].superseded_by, None);
    assert_eq!(spans[1].id, span_id(Category::Override, "b", 0));
}

/// Trio uploads overrides as Exercise; 43,200 minutes means indefinite.
#[test]
fn trio_exercise_is_an_override_and_43200_minutes_is_indefinite() {
    let doc = json!({ "eventType": "Exercise", "created_at": "2025-01-01T10:00:00.000Z",
        "enteredBy": "Trio", "notes": "Exercise preset", "duration": 43200 });
    let (category, effect) = classify(doc.as_object().unwrap()).unwrap();
    assert_eq!(category, Category::Override);
    assert!(matches!(effect, Effect::Start { duration: None, .. }));
    let careportal = json!({ "eventType": "Exercise", "duration": 45, "notes": "swim" });
    let (category, effect) = classify(careportal.as_object().unwrap()).unwrap();
    assert_eq!(category, Category::Exercise);
    assert!(matches!(effect, Effect::Start { duration: Some(d), .. } if d == 45 * MIN));
}

/// AndroidAPS (TemporaryTargetExtension): minutes plus durationInMilliseconds; duration 0
/// cancels the running target.
#[test]
fn aaps_temporary_targets_and_their_cancel() {
    let tt = json!({ "eventType": "Temporary Target", "date": T0, "utcOffset": 120,
        "isValid": true, "units": "mg/dl", "targetTop": 140, "targetBottom": 140,
        "duration": 60, "durationInMilliseconds": 3_600_000, "reason": "Activity", "app": "AAPS" });
    let cancel = json!({ "eventType": "Temporary Target", "date": T0 + 20 * MIN,
        "duration": 0, "app": "AAPS" });
    let spans = derive(
        Category::TemporaryTarget,
        &[ev(1, T0, "tt", tt), ev(2, T0 + 20 * MIN, "cancel", cancel)],
    );
    assert_eq!(spans.len(), 1, "a cancel has no span of its own");
    assert_eq!(spans[0].end, Some(T0 + 20 * MIN));
    assert_eq!(spans[0].ended_by.as_deref(), Some("cancel"));
    assert_eq!(spans[0].superseded_by, None);
    assert_eq!(spans[0].metadata["units"], "mg/dl");
    assert_eq!(spans[0].source, "AAPS");
}

/// AndroidAPS's pre-2025 v3 uploads: `duration` holds the ms count; `originalDuration` is right.
#[test]
fn aaps_profile_switch_with_the_millisecond_duration_bug() {
    let ps = json!({ "eventType": "Profile Switch", "date": T0, "profile": "Weekday (150%,-1h)",
        "originalProfileName": "Weekday", "percentage": 150, "timeshift": -3_600_000,
        "duration": 3_600_000, "durationInMilliseconds": 216_000_000_000_i64,
        "originalDuration": 3_600_000, "app": "AAPS" });
    let spans = derive(Category::Profile, &[ev(1, T0, "ps", ps)]);
    assert_eq!(spans[0].end, Some(T0 + 3_600_000));
    assert_eq!(spans[0].metadata["percentage"], 150);
    assert_eq!(spans[0].metadata["timeshift"], -3_600_000);
}

/// A temporary switch ends and the permanent one it interrupted holds again (Nightscout's
/// rule), as a second piece of the same switch.
#[test]
fn a_profile_holds_again_after_a_temporary_switch() {
    let permanent = json!({ "eventType": "Profile Switch", "profile": "Day", "duration": 0 });
    let temporary = json!({ "eventType": "Profile Switch", "profile": "Sport", "duration": 60 });
    let spans = derive(
        Category::Profile,
        &[
            ev(1, T0, "day", permanent),
            ev(2, T0 + 60 * MIN, "sport", temporary),
        ],
    );
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert_eq!((spans[0].start, spans[0].end), (T0, Some(T0 + 60 * MIN)));
    assert_eq!(
        spans[0].superseded_by.as_deref(),
        Some(spans[1].id.as_str())
    );
    assert_eq!(spans[1].metadata["profile"], "Sport");
    assert_eq!(
        (spans[1].start, spans[1].end),
        (T0 + 60 * MIN, Some(T0 + 120 * MIN))
    );
    assert_eq!(spans[1].superseded_by, None, "it ran its course");
    assert_eq!(spans[2].metadata["profile"], "Day");
    assert_eq!((spans[2].start, spans[2].end), (T0 + 120 * MIN, None));
    assert_eq!(spans[2].metadata["resumed"], true);
    assert_eq!(spans[2].origin, "day");
    assert_ne!(spans[2].id, spans[0].id);
}

#[test]
fn two_switches_in_the_same_millisecond_resolve_by_storage_order() {
    let a = json!({ "eventType": "Profile Switch", "profile": "A" });
    let b = json!({ "eventType": "Profile Switch", "profile": "B" });
    let spans = derive(Category::Profile, &[ev(1, T0, "a", a), ev(2, T0, "b", b)]);
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(spans[0].metadata["profile"], "B");
}

#[test]
fn temp_basals_replace_each_other_and_end_with_duration_zero() {
    let tb = |rate: f64, minutes: i64| {
        json!({ "eventType": "Temp Basal", "absolute": rate, "rate": rate, "duration": minutes,
            "enteredBy": "Pump (tconnectsync)" })
    };
    let spans = derive(
        Category::TempBasal,
        &[
            ev(1, T0, "1", tb(0.8, 30)),
            ev(2, T0 + 10 * MIN, "2", tb(1.2, 30)),
            ev(3, T0 + 15 * MIN, "3", tb(0.0, 0)),
        ],
    );
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].end, Some(T0 + 10 * MIN));
    assert_eq!(spans[1].end, Some(T0 + 15 * MIN));
    assert_eq!(spans[1].metadata["absolute"], 1.2);
    assert_eq!(spans[1].ended_by.as_deref(), Some("3"));
}

#[test]
fn pump_suspend_and_resume_and_sensor_sessions() {
    let spans = derive(
        Category::PumpMode,
        &[
            ev(
                1,
                T0,
                "s",
                json!({ "eventType": "Suspend Pump", "enteredBy": "Loop" }),
            ),
            ev(
                2,
                T0 + 5 * MIN,
                "r",
                json!({ "eventType": "Resume Pump", "enteredBy": "Loop" }),
            ),
        ],
    );
    assert_eq!(spans.len(), 1);
    assert_eq!(
        (spans[0].state.as_str(), spans[0].end),
        ("Suspended", Some(T0 + 5 * MIN))
    );
    let spans = derive(
        Category::Sensor,
        &[
            ev(1, T0, "a", json!({ "eventType": "Sensor Start" })),
            ev(
                2,
                T0 + 10 * 24 * 60 * MIN,
                "b",
                json!({ "eventType": "Sensor Change" }),
            ),
        ],
    );
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].end, Some(T0 + 10 * 24 * 60 * MIN));
    assert_eq!(spans[1].end, None);
}

#[test]
fn aaps_running_modes_from_openaps_offline() {
    let doc = |mode: &str| {
        json!({ "eventType": "OpenAPS Offline", "mode": mode, "duration": 0,
            "originalDuration": 1_800_000, "app": "AAPS" })
    };
    let (c, e) = classify(doc("DISCONNECTED_PUMP").as_object().unwrap()).unwrap();
    assert_eq!(c, Category::PumpConnectivity);
    assert!(
        matches!(e, Effect::Start { ref state, duration: Some(1_800_000), .. } if state == "Disconnected")
    );
    let (c, e) = classify(doc("SUSPENDED_BY_USER").as_object().unwrap()).unwrap();
    assert_eq!(c, Category::PumpMode);
    assert!(matches!(e, Effect::Start { ref state, .. } if state == "Suspended"));
    let (_, e) = classify(doc("CLOSED_LOOP").as_object().unwrap()).unwrap();
    assert_eq!(e, Effect::End);
}

#[test]
fn treatments_without_state_feed_no_category() {
    for doc in [
        json!({ "eventType": "Meal Bolus", "insulin": 2 }),
        json!({ "eventType": "Note", "notes": "x" }),
        json!({ "insulin": 1 }),
    ] {
        assert!(classify(doc.as_object().unwrap()).is_none(), "{doc}");
    }
}

#[test]
fn every_listed_event_type_is_classified() {
    for t in super::rules::EVENT_TYPES {
        let doc = json!({ "eventType": t, "duration": 30, "enteredBy": "Trio" });
        assert!(classify(doc.as_object().unwrap()).is_some(), "{t}");
    }
}

// ---- Device statuses (src/spans/status.rs) ----

use super::status::{self, RunFold, Sample};

/// Loop's status (NightscoutKit `DeviceStatus`: `pump` a `PumpStatus`, `override` an
/// `OverrideStatus` with `duration` in seconds), as it uploads one every five minutes.
fn loop_status(at: i64, suspended: bool, over: Option<(&str, i64)>) -> Value {
    let mut doc = json!({
        "device": "loop://iPhone",
        "created_at": crate::dates::to_iso(at),
        "pump": { "clock": crate::dates::to_iso(at), "pumpID": "1234", "manufacturer": "Insulet",
            "model": "Dash", "reservoir": 120.5, "bolusing": false, "suspended": suspended,
            "secondsFromGMT": 3600 },
        "loop": { "name": "Loop", "version": "3.4.1", "timestamp": crate::dates::to_iso(at) },
        "uploader": { "name": "iPhone", "timestamp": crate::dates::to_iso(at), "battery": 80 },
    });
    doc["override"] = match over {
        Some((name, start)) => json!({ "name": name, "timestamp": crate::dates::to_iso(start),
            "active": true, "currentCorrectionRange": { "minValue": 140, "maxValue": 160 },
            "duration": 3600, "multiplier": 0.8 }),
        None => json!({ "timestamp": crate::dates::to_iso(at), "active": false }),
    };
    doc
}

/// The runs of `category` from statuses given as (mills, doc), one device.
fn runs(category: Category, statuses: &[(i64, Value)]) -> Vec<super::Span> {
    let mut fold: Option<RunFold> = None;
    let mut out = Vec::new();
    for (i, (at, doc)) in statuses.iter().enumerate() {
        let doc = doc.as_object().unwrap();
        let fold = fold.get_or_insert_with(|| RunFold::new(category, &status::device(doc), None));
        let Some((_, reading)) = status::classify(doc)
            .into_iter()
            .find(|(c, _)| *c == category)
        else {
            continue;
        };
        let seq = i64::try_from(i).unwrap();
        let sample = Sample {
            seq,
            mills: *at,
            origin: format!("ds{seq}"),
            reading,
        };
        out.extend(fold.push(&sample));
    }
    out.extend(fold.and_then(RunFold::finish));
    out
}

#[test]
fn loop_statuses_every_five_minutes_make_one_suspension_not_one_per_status() {
    // Suspended from 10 to 40 minutes, then running again; statuses every 5 minutes.
    let statuses: Vec<(i64, Value)> = (0..12)
        .map(|i| {
            let at = T0 + i * 5 * MIN;
            (at, loop_status(at, (2..8).contains(&i), None))
        })
        .collect();
    let spans = runs(Category::PumpMode, &statuses);
    assert_eq!(spans.len(), 1, "{spans:?}");
    let s = &spans[0];
    assert_eq!((s.state.as_str(), s.source.as_str()), ("Suspended", "Loop"));
    assert_eq!((s.start, s.end), (T0 + 10 * MIN, Some(T0 + 40 * MIN)));
    assert_eq!(s.origin, "ds2", "the first status of the run");
    assert_eq!(
        s.ended_by.as_deref(),
        Some("ds8"),
        "the first running status"
    );
    assert_eq!(s.origin_kind, super::OriginKind::DeviceStatus);
    assert_eq!(s.metadata["device"], "loop://iPhone");
    // Still suspended at the latest status: open.
    let spans = runs(Category::PumpMode, &statuses[..5]);
    assert_eq!((spans[0].start, spans[0].end), (T0 + 10 * MIN, None));
}

#[test]
fn loop_status_overrides_one_span_each_and_a_new_one_supersedes() {
    let a = T0 - 3 * MIN;
    let b = T0 + 22 * MIN;
    let statuses: Vec<(i64, Value)> = (0..10)
        .map(|i| {
            let at = T0 + i * 5 * MIN;
            let over = match i {
                0..=4 => Some(("🏃 Running", a)),
                5..=7 => Some(("Pre-Meal", b)),
                _ => None,
            };
            (at, loop_status(at, false, over))
        })
        .collect();
    let spans = runs(Category::Override, &statuses);
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert_eq!((spans[0].start, spans[0].end), (T0, Some(T0 + 25 * MIN)));
    assert_eq!(spans[0].superseded_by.as_ref(), Some(&spans[1].id));
    assert_eq!(spans[0].superseded_at, Some(T0 + 25 * MIN));
    assert_eq!(
        (spans[1].start, spans[1].end),
        (T0 + 25 * MIN, Some(T0 + 40 * MIN))
    );
    assert_eq!(spans[1].ended_by.as_deref(), Some("ds8"));
    // The block's fields unchanged: duration stays Loop's seconds.
    let m = &spans[0].metadata;
    assert_eq!(
        (m["name"].clone(), m["duration"].clone()),
        (json!("🏃 Running"), json!(3600))
    );
    assert_eq!(m["multiplier"], json!(0.8));
    // As an adjustment: seconds to ms, the multiplier as a percentage, the range in mg/dL.
    let adj = super::adjust::adjustment(&spans[0], None);
    assert_eq!(adj["plannedDurationMs"], json!(3_600_000));
    assert_eq!(adj["insulinPercent"], json!(80));
    assert_eq!(
        (adj["targetLow"].clone(), adj["targetHigh"].clone()),
        (json!(140), json!(160))
    );
    assert_eq!(adj["name"], json!("🏃 Running"));
    assert!(super::adjust::adjusts(&spans[0]));
}

#[test]
fn pump_status_shapes_of_openaps_trio_and_androidaps() {
    let pump = |device: &str, status: Value| {
        let doc = json!({ "device": device, "created_at": "2026-12-07T10:00:00Z",
            "openaps": { "iob": { "iob": 0.5 } },
            "pump": { "clock": "2026-12-07T10:00:00Z", "reservoir": 100, "battery": { "percent": 80 },
                "status": status } });
        let doc = doc.as_object().unwrap().clone();
        let found = status::classify(&doc);
        assert_eq!(found.len(), 1, "{doc:?}");
        assert_eq!(found[0].0, Category::PumpMode);
        (
            found[0].1.as_ref().map(|r| r.state.clone()),
            status::source(device),
        )
    };
    // OpenAPS and Trio: `status` names the state and `suspended` says it again.
    let trio = json!({ "status": "suspended", "bolusing": false, "suspended": true,
        "timestamp": "2026-12-07T09:59:00Z" });
    assert_eq!(
        pump("Trio", trio),
        (Some("Suspended".into()), "Trio".into())
    );
    let rig = json!({ "status": "normal", "bolusing": false, "suspended": false });
    assert_eq!(pump("openaps://rig", rig), (None, "OpenAPS".into()));
    // AndroidAPS: `status` alone.
    let aaps = json!({ "status": "suspended", "timestamp": "2026-12-07T09:59:00Z" });
    assert_eq!(
        pump("openaps://AndroidAPS samsung", aaps),
        (Some("Suspended".into()), "AAPS".into())
    );
    let bolusing = json!({ "status": "bolusing", "bolusing": true, "suspended": false });
    assert_eq!(pump("Trio", bolusing).0, None);
}

#[test]
fn statuses_that_carry_no_state_report_nothing() {
    for doc in [
        // minimed-connect: pump without a status.
        json!({ "device": "connect://paradigm", "pump": { "battery": 1, "iob": 0, "clock": "x" },
            "connect": { "sensorState": "NORMAL" } }),
        // xDrip+: the uploader's battery.
        json!({ "device": "xDrip-DexcomG6", "uploader": { "battery": 60 } }),
        // An override block that is not an object.
        json!({ "device": "loop://iPhone", "override": "none" }),
    ] {
        assert!(
            status::classify(doc.as_object().unwrap()).is_empty(),
            "{doc}"
        );
    }
}

/// AndroidAPS uploads the switch it applied as a `Note` with `originalProfileName` (its
/// Effective Profile Switch, ../shared/research/wave2.md A.4): the Profile Switch is the
/// record, so the note adds no second Profile span and ends nothing.
#[test]
fn aaps_effective_profile_switch_note_adds_no_profile_span() {
    let ps = json!({ "eventType": "Profile Switch", "date": T0, "profile": "Weekday (150%,-1h)",
        "originalProfileName": "Weekday", "percentage": 150, "timeshift": -3_600_000,
        "duration": 60, "durationInMilliseconds": 3_600_000, "originalDuration": 3_600_000,
        "app": "AAPS" });
    let eps = json!({ "eventType": "Note", "date": T0 + 1000, "utcOffset": 120, "isValid": true,
        "notes": "Weekday (150%,-1h)", "originalProfileName": "Weekday",
        "originalCustomizedName": "Weekday (150%,-1h)", "originalTimeshift": -3_600_000,
        "originalPercentage": 150, "originalDuration": 3_600_000, "originalEnd": T0 + 3_601_000,
        "profileJson": "{\"units\":\"mg/dl\",\"dia\":5}", "app": "AAPS" });
    assert_eq!(classify(eps.as_object().unwrap()), None);
    let spans = derive(
        Category::Profile,
        &[ev(1, T0, "ps", ps), ev(2, T0 + 1000, "eps", eps)],
    );
    assert_eq!(spans.len(), 1, "{spans:#?}");
    assert_eq!(
        (spans[0].origin.as_str(), spans[0].end),
        ("ps", Some(T0 + 60 * MIN))
    );
}

/// The remaining shapes of the mapping: an AndroidAPS target in mmol with only
/// `durationInMilliseconds`, a percent temp basal (OpenAPS), MyLife's `Pump Suspend` /
/// `Pump Resume`.
#[test]
fn ms_only_targets_percent_temp_basals_and_mylife_suspends() {
    let tt = json!({ "eventType": "Temporary Target", "date": T0, "units": "mmol",
        "targetTop": 7.5, "targetBottom": 7.5, "durationInMilliseconds": 1_800_000,
        "reason": "Eating Soon", "app": "AAPS" });
    let spans = derive(Category::TemporaryTarget, &[ev(1, T0, "tt", tt)]);
    assert_eq!(spans[0].end, Some(T0 + 30 * MIN));
    assert_eq!(spans[0].metadata["units"], "mmol");
    let tb = json!({ "eventType": "Temp Basal", "percent": -50, "duration": 30,
        "enteredBy": "openaps://rig" });
    let spans = derive(Category::TempBasal, &[ev(1, T0, "tb", tb)]);
    assert_eq!(spans[0].end, Some(T0 + 30 * MIN));
    assert_eq!(spans[0].metadata["percent"], -50);
    let spans = derive(
        Category::PumpMode,
        &[
            ev(
                1,
                T0,
                "s",
                json!({ "eventType": "Pump Suspend", "enteredBy": "MyLife" }),
            ),
            ev(
                2,
                T0 + 7 * MIN,
                "r",
                json!({ "eventType": "Pump Resume", "enteredBy": "MyLife" }),
            ),
        ],
    );
    assert_eq!(spans.len(), 1);
    assert_eq!(
        (spans[0].state.as_str(), spans[0].end),
        ("Suspended", Some(T0 + 7 * MIN))
    );
    assert_eq!(spans[0].ended_by.as_deref(), Some("r"));
    assert_eq!(spans[0].source, "MyLife");
}
