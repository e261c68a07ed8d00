//! The rules of the effective profile, each on the shapes uploaders send
//! (/work/shared/research/wave2.md A.4/A.5: AndroidAPS v3 and v1, Nightscout's careportal).
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};

use super::timeline::ProfileSource;
use super::*;

const H: i64 = 3_600_000;
const MIN: i64 = 60_000;

fn ms(iso: &str) -> i64 {
    crate::dates::parse_iso(iso).unwrap().ms
}

/// 2026-04-20T00:00Z, the document's start.
fn day() -> i64 {
    ms("2026-04-20T00:00:00Z")
}

fn block(pairs: &[(&str, f64)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(t, v)| {
                let (h, m) = t.split_once(':').unwrap();
                let secs = h.parse::<i64>().unwrap() * 3600 + m.parse::<i64>().unwrap() * 60;
                json!({"time": t, "timeAsSeconds": secs, "value": v})
            })
            .collect(),
    )
}

fn weekday(tz: &str) -> Value {
    json!({
        "dia": 5, "units": "mg/dl", "timezone": tz,
        "basal": block(&[("00:00", 0.8), ("06:00", 1.2), ("22:00", 0.6)]),
        "carbratio": block(&[("00:00", 10.0)]),
        "sens": block(&[("00:00", 50.0), ("12:00", 60.0)]),
        "target_low": block(&[("00:00", 100.0)]),
        "target_high": block(&[("00:00", 120.0)])
    })
}

/// An AndroidAPS profile store upload (`profile` collection).
fn doc_at(id: &str, seq: i64, start: i64, tz: &str) -> ProfileDoc {
    let d = json!({
        "defaultProfile": "Weekday",
        "date": start, "created_at": crate::dates::to_iso(start),
        "startDate": crate::dates::to_iso(start), "units": "mg/dl",
        "store": {
            "Weekday": weekday(tz),
            "Night": {"dia": 5, "units": "mg/dl", "timezone": tz,
                      "basal": block(&[("00:00", 0.5)]), "carbratio": block(&[("00:00", 12.0)]),
                      "sens": block(&[("00:00", 70.0)]), "target_low": block(&[("00:00", 110.0)]),
                      "target_high": block(&[("00:00", 130.0)])}
        }
    });
    ProfileDoc::from_json(id, seq, start, d.as_object().unwrap())
}

fn docs() -> Vec<ProfileDoc> {
    vec![doc_at("p1", 1, day(), "UTC")]
}

fn sw(id: &str, seq: i64, start: i64, v: Value) -> ProfileSwitch {
    ProfileSwitch::from_json(id, seq, start, v.as_object().unwrap())
}

/// AndroidAPS NSClientV3's Profile Switch (ProfileSwitchExtension.kt), as in wave2.md A.4.
fn aaps_v3(start: i64, percentage: i64, timeshift: i64, minutes: i64) -> Value {
    json!({
        "eventType": "Profile Switch", "date": start, "utcOffset": 120, "isValid": true,
        "profile": "Weekday (150%,-1h)", "originalProfileName": "Weekday",
        "percentage": percentage, "timeshift": timeshift,
        "duration": minutes, "durationInMilliseconds": minutes * MIN,
        "originalDuration": minutes * MIN,
        "pumpId": 11000, "pumpType": "DANA_I", "pumpSerial": "bbbb", "app": "AAPS"
    })
}

/// Nightscout careportal's Profile Switch: minutes, hours, the CCP flag.
fn careportal(profile: &str, minutes: i64) -> Value {
    json!({"eventType": "Profile Switch", "profile": profile, "duration": minutes,
           "enteredBy": "careportal", "created_at": "2026-04-20T08:00:00.000Z"})
}

fn basal(e: &Effective) -> f64 {
    schedule::round(e.value(Kind::Basal).unwrap())
}

#[test]
fn no_switch_is_the_default_profile() {
    let e = effective_at(&docs(), &[], day() + 7 * H).unwrap();
    assert_eq!(e.profile_name, "Weekday");
    assert_eq!(e.profile_source, ProfileSource::Default);
    assert!(e.switch.is_none());
    assert_eq!(basal(&e), 1.2);
    assert!(effective_at(&[], &[], day()).is_none());
}

#[test]
fn an_ended_temporary_switch_falls_back_to_the_switch_before_it() {
    let night = sw("s1", 1, day() + 8 * H, careportal("Night", 0));
    let sport = sw("s2", 2, day() + 10 * H, careportal("Weekday", 60));
    let switches = [sport, night];
    let at = |t| effective_at(&docs(), &switches, t).unwrap();
    assert_eq!(at(day() + 9 * H).profile_name, "Night");
    let during = at(day() + 10 * H + 30 * MIN);
    assert_eq!(during.switch.as_ref().unwrap().id, "s2");
    assert_eq!(basal(&during), 1.2);
    let after = at(day() + 11 * H);
    assert_eq!(
        after.switch.as_ref().unwrap().id,
        "s1",
        "not the default profile"
    );
    assert_eq!(after.profile_name, "Night");
    assert_eq!(basal(&after), 0.5);
}

#[test]
fn percentage_scales_basal_up_and_ratios_down_with_or_without_ccp() {
    let aaps = sw("s1", 1, day() + 8 * H, aaps_v3(day() + 8 * H, 150, 0, 120));
    let e = effective_at(&docs(), std::slice::from_ref(&aaps), day() + 9 * H).unwrap();
    assert!(aaps.circadian_percentage_profile.is_none());
    assert_eq!(e.percentage, 150.0);
    assert_eq!(basal(&e), 1.8);
    assert_eq!(schedule::round(e.value(Kind::Sens).unwrap()), 33.3333);
    assert_eq!(schedule::round(e.value(Kind::CarbRatio).unwrap()), 6.6667);
    assert_eq!(e.value(Kind::TargetLow), Some(100.0), "targets unscaled");
    assert_eq!(e.value(Kind::TargetHigh), Some(120.0));
    // The same with Nightscout's careportal flag.
    let mut v = careportal("Weekday", 0);
    v["percentage"] = json!(50);
    v["CircadianPercentageProfile"] = json!(true);
    let ccp = sw("s2", 2, day() + 8 * H, v);
    let e = effective_at(&docs(), &[ccp], day() + 9 * H).unwrap();
    assert_eq!(basal(&e), 0.6);
    assert_eq!(e.value(Kind::CarbRatio), Some(20.0));
}

#[test]
fn timeshift_in_ms_or_hours_moves_the_schedule() {
    // AndroidAPS: -1 h in ms. The 06:00 rate starts at 05:00.
    let aaps = sw("s1", 1, day() + H, aaps_v3(day() + H, 100, -H, 0));
    let e = effective_at(&docs(), &[aaps], day() + 5 * H).unwrap();
    assert_eq!(e.timeshift_ms, -H);
    assert_eq!(basal(&e), 1.2);
    assert_eq!(e.value_at(Kind::Basal, day() + 4 * H + 59 * MIN), Some(0.8));
    let sched = e.schedule(Kind::Basal).unwrap().to_json();
    assert_eq!(sched[1]["time"], "05:00");
    // Careportal: +2 h in hours. The 06:00 rate starts at 08:00.
    let mut v = careportal("Weekday", 0);
    v["timeshift"] = json!(2);
    let cp = sw("s2", 2, day() + H, v);
    let e = effective_at(&docs(), &[cp], day() + 7 * H).unwrap();
    assert_eq!(basal(&e), 0.8);
    assert_eq!(e.value_at(Kind::Basal, day() + 8 * H), Some(1.2));
}

#[test]
fn profile_json_is_the_profile_for_the_switch_duration() {
    let start = day() + 8 * H;
    let mut v = aaps_v3(start, 100, 0, 60);
    v["profile"] = json!("Travel");
    v["profileJson"] = json!(json!({
        "units": "mg/dl", "dia": 6, "timezone": "UTC",
        "basal": block(&[("00:00", 2.0)]), "sens": block(&[("00:00", 40.0)]),
        "carbratio": block(&[("00:00", 8.0)]), "target_low": block(&[("00:00", 90.0)]),
        "target_high": block(&[("00:00", 95.0)])
    })
    .to_string());
    let s = sw("s1", 1, start, v);
    let switches = [s];
    let e = effective_at(&docs(), &switches, start + 30 * MIN).unwrap();
    assert_eq!(e.profile_name, "Travel", "the uploaded name, not renamed");
    assert_eq!(e.profile_source, ProfileSource::ProfileJson);
    assert_eq!(basal(&e), 2.0);
    assert_eq!(e.dia, Some(6.0));
    assert_eq!(switches[0].profile.as_deref(), Some("Travel"));
    let after = effective_at(&docs(), &switches, start + 61 * MIN).unwrap();
    assert_eq!(after.profile_name, "Weekday");
    assert_eq!(basal(&after), 1.2);
}

#[test]
fn aaps_ms_durations_are_detected() {
    let start = day() + 8 * H;
    // Before AndroidAPS 9b90eea774: `duration` = 3,600,000 "minutes" (6.8 years).
    let mut v = aaps_v3(start, 150, 0, 60);
    v["duration"] = json!(3_600_000);
    v["durationInMilliseconds"] = json!(216_000_000_000_i64);
    let s = sw("s1", 1, start, v);
    assert_eq!(s.duration_ms, Some(H));
    let switches = [s];
    assert_eq!(
        effective_at(&docs(), &switches, start + 59 * MIN)
            .unwrap()
            .percentage,
        150.0
    );
    let after = effective_at(&docs(), &switches, start + 2 * H).unwrap();
    assert!(after.switch.is_none(), "ended after one hour");
}

#[test]
fn ties_and_switches_older_than_the_document_are_deterministic() {
    let t = day() + 8 * H;
    let a = sw("a", 5, t, careportal("Night", 0));
    let b = sw("b", 9, t, careportal("Weekday", 0));
    for order in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
        let e = effective_at(&docs(), &order, t + H).unwrap();
        assert_eq!(e.switch.unwrap().id, "b", "the later stored wins a tie");
    }
    // A switch from before the newest document does not carry over into it.
    let old = sw("old", 1, day() - H, careportal("Night", 0));
    let docs2 = vec![
        doc_at("p0", 1, day() - 2 * H, "UTC"),
        doc_at("p1", 2, day(), "UTC"),
    ];
    let before = effective_at(&docs2, std::slice::from_ref(&old), day() - 30 * MIN).unwrap();
    assert_eq!(before.profile_name, "Night");
    let after = effective_at(&docs2, &[old], day() + H).unwrap();
    assert_eq!(after.document_id, "p1");
    assert_eq!(after.profile_name, "Weekday");
    assert!(after.switch.is_none());
    // Two documents with the same startDate: the later stored.
    let same = vec![doc_at("x", 7, day(), "UTC"), doc_at("y", 3, day(), "UTC")];
    assert_eq!(effective_at(&same, &[], day()).unwrap().document_id, "x");
}

#[test]
fn schedules_are_read_in_the_profile_zone() {
    // 2026-04-20 in Berlin is CEST (UTC+2): 04:30Z is 06:30 local, the 06:00 rate.
    let docs = vec![doc_at("p1", 1, day() - 24 * H, "Europe/Berlin")];
    let e = effective_at(&docs, &[], day() + 4 * H + 30 * MIN).unwrap();
    assert_eq!(e.zone.name, "Europe/Berlin");
    assert_eq!(basal(&e), 1.2);
    assert_eq!(e.value_at(Kind::Basal, day() + 3 * H + 59 * MIN), Some(0.8));
}

#[test]
fn timeline_segments_cut_at_every_change_and_merge_equal_neighbours() {
    let night = sw("s1", 1, day() + 8 * H, careportal("Night", 0));
    let sport = sw("s2", 2, day() + 10 * H, careportal("Weekday", 60));
    // Ends at 09:00, inside Night's time: that cut changes nothing and is merged away.
    let early = sw("s0", 0, day() + 7 * H, careportal("Weekday", 120));
    let switches = [night, sport, early];
    let docs = docs();
    let segs = timeline(&docs, &switches, day(), day() + 24 * H);
    let got: Vec<(i64, i64, &str, Option<&str>)> = segs
        .iter()
        .map(|s| {
            (
                (s.start - day()) / MIN,
                (s.end - day()) / MIN,
                s.selection.name,
                s.selection.switch.map(|w| w.id.as_str()),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, 420, "Weekday", None),
            (420, 480, "Weekday", Some("s0")),
            (480, 600, "Night", Some("s1")),
            (600, 660, "Weekday", Some("s2")),
            (660, 1440, "Night", Some("s1")),
        ]
    );
}
