//! Bolus wizard preview (lib/plugins/boluswizardpreview.js): the insulin (or, negative, the
//! excess) needed to bring the current glucose, less the effect of the insulin on board, into
//! the profile's target range; its warnings (`BWP_WARN`, `BWP_URGENT`) and the high-alarm
//! snooze while enough insulin is on board (`BWP_SNOOZE`, `BWP_SNOOZE_MINS`).

use serde_json::{json, Value};

use super::shared::{round_bg, scale_mgdl, Doc, MIN};
use super::{round_insulin, truthy_num, Data, Field};
use crate::jsnum::{js_number, js_round, num};

/// sandbox.lastSGVEntry from the bgnow buckets: the newest reading not in the future (bucket
/// 0 is laid around it), whatever its value.
fn last_sgv(props: &Doc) -> Option<&Doc> {
    let sgvs = props.get("buckets")?.get(0)?.get("sgvs")?.as_array()?;
    let mills = |s: &Doc| s.get("mills").and_then(Value::as_i64);
    sgvs.iter()
        .filter_map(Value::as_object)
        .max_by_key(|s| mills(s))
}

/// Whether the newest reading lets the preview run: a glucose value (39 and up) at most 15
/// minutes old. The alarm task asks it before computing the properties.
pub fn is_current(mgdl: f64, mills: i64, now: i64) -> bool {
    mgdl >= 39.0 && now.saturating_sub(mills) <= 15 * MIN
}

/// The `bwp` property, from the computed properties (`buckets`, `iob`).
pub fn property(d: &Data, props: &Doc) -> Doc {
    let now = d.now;
    let last = last_sgv(props);
    let scaled = last.and_then(|s| js_number(s.get("scaled")));
    let mut out = Doc::new();
    out.insert("effect".into(), 0.into());
    out.insert("outcome".into(), 0.into());
    out.insert("bolusEstimate".into(), 0.into());
    if let Some(s) = scaled {
        out.insert("scaledSGV".into(), num(s));
    }
    let at = |f: Field| d.profile.and_then(|p| p(now, f));
    let mut errors: Vec<&str> = vec![];
    if d.profile.is_none() {
        errors.push("Missing need a treatment profile");
    } else if !truthy_num(at(Field::Sens))
        || !truthy_num(at(Field::TargetHigh))
        || !truthy_num(at(Field::TargetLow))
    {
        errors.push("Missing sens, target_high, or target_low treatment profile fields");
    }
    let iob_prop = props.get("iob").and_then(Value::as_object);
    if iob_prop.is_none() {
        errors.push("Missing IOB property");
    }
    let current = last.is_some_and(|s| {
        let mgdl = js_number(s.get("mgdl")).unwrap_or(f64::NAN);
        let mills = s.get("mills").and_then(Value::as_i64).unwrap_or(i64::MIN);
        is_current(mgdl, mills, now)
    });
    if !current {
        errors.push("Data isn't current");
    }
    if !errors.is_empty() {
        out.insert("errors".into(), json!(errors));
        return out;
    }
    let scaled = scaled.unwrap_or(f64::NAN);
    let sens = at(Field::Sens).unwrap_or(f64::NAN);
    let iob = iob_prop
        .and_then(|i| js_number(i.get("iob")))
        .filter(|i| *i != 0.0 && !i.is_nan())
        .unwrap_or(0.0);
    out.insert("iob".into(), num(iob));
    let effect = iob * sens;
    let outcome = scaled - effect;
    out.insert("effect".into(), num(effect));
    out.insert("outcome".into(), num(outcome));
    let recent_carbs = d.treatments.iter().rev().find(|(t, m)| {
        *m <= now && now - *m < 60 * MIN && js_number(t.get("carbs")).is_some_and(|c| c > 0.0)
    });
    if let Some((t, _)) = recent_carbs {
        out.insert("recentCarbs".into(), Value::Object(t.clone()));
    }
    let target_high = at(Field::TargetHigh).unwrap_or(f64::NAN);
    let mut estimate = 0.0;
    if outcome > target_high {
        estimate = (outcome - target_high) / sens;
        out.insert("aimTarget".into(), num(target_high));
        out.insert("aimTargetString".into(), "above high".into());
    }
    let target_low = at(Field::TargetLow).unwrap_or(f64::NAN);
    out.insert("belowLowTarget".into(), (scaled < target_low).into());
    if outcome < target_low {
        // `delta / sens * -1`: an exact negation.
        estimate = -((outcome - target_low).abs() / sens);
        out.insert("aimTarget".into(), num(target_low));
        out.insert("aimTargetString".into(), "below low".into());
    }
    out.insert("bolusEstimate".into(), num(estimate));
    let basal = at(Field::Basal);
    if estimate != 0.0 && truthy_num(basal) {
        let b = basal.unwrap_or(f64::NAN);
        let thirty = js_round((b / 2.0 + estimate) / (b / 2.0) * 100.0);
        let hour = js_round((b + estimate) / b * 100.0);
        out.insert(
            "tempBasalAdjustment".into(),
            json!({ "thirtymin": num(thirty), "onehour": num(hour) }),
        );
    }
    let shown = round_insulin(estimate);
    out.insert("bolusEstimateDisplay".into(), shown.clone().into());
    out.insert("outcomeDisplay".into(), num(round_bg(d.units, outcome)));
    out.insert("displayIOB".into(), round_insulin(iob).into());
    out.insert("effectDisplay".into(), num(round_bg(d.units, effect)));
    out.insert("displayLine".into(), format!("BWP: {shown}U").into());
    out
}

/// What bwp.checkNotifications asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Snooze the alarms this long: high, but enough insulin on board.
    Snooze { length_ms: i64 },
    /// Level 1 or 2, "Warning, Check BG, time to bolus?", and Nightscout's message lines
    /// (`BG NOW: 220 mg/dl`, `Delta: +5`, `BWP: 0.80 U`, `IOB: 1.20 U`, `COB: 15 g`).
    Notify {
        level: u8,
        title: String,
        message: String,
    },
}

/// bwp.checkNotifications from the computed properties (`bwp`, and `delta`, `iob`, `cob` for
/// the message): nothing below the profile's high target; above BG_TARGET_TOP with an estimate
/// under BWP_SNOOZE a snooze of BWP_SNOOZE_MINS; an estimate over BWP_WARN a warning (urgent
/// over BWP_URGENT).
pub fn notice(d: &Data, props: &Doc) -> Option<Notice> {
    let s = d.settings;
    // Without what it needs Nightscout's bwp offers no property, and so asks nothing.
    let prop = props
        .get("bwp")?
        .as_object()
        .filter(|b| !b.contains_key("errors"))?;
    let scaled = js_number(prop.get("scaledSGV")).unwrap_or(f64::NAN);
    let estimate = js_number(prop.get("bolusEstimate")).unwrap_or(f64::NAN);
    let target_high = d
        .profile
        .and_then(|p| p(d.now, Field::TargetHigh))
        .unwrap_or(f64::NAN);
    if scaled < target_high {
        return None;
    }
    // ar2 sets no `eventType`, so only the current glucose decides "high".
    if scaled > scale_mgdl(d.units, d.thresholds.bg_target_top) && estimate < s.bwp_snooze {
        return Some(Notice::Snooze {
            length_ms: s.bwp_snooze_ms,
        });
    }
    if estimate > s.bwp_warn {
        let level = if estimate > s.bwp_urgent { 2 } else { 1 };
        let label = if level == 2 { "Urgent" } else { "Warning" };
        let units = match d.units {
            crate::config::Units::Mmol => "mmol/L",
            crate::config::Units::MgDl => "mg/dl",
        };
        let shown = |name: &str| {
            let v = props.get(name)?.get("display")?;
            crate::jsnum::truthy(Some(v)).then(|| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        let mut lines = vec![format!("BG NOW: {} {units}", crate::jsnum::js_str(scaled))];
        if let Some(delta) = shown("delta") {
            lines.push(format!("Delta: {delta}"));
        }
        let estimate_shown = prop.get("bolusEstimateDisplay").and_then(Value::as_str);
        lines.push(format!("BWP: {} U", estimate_shown.unwrap_or("")));
        if let Some(iob) = shown("iob") {
            lines.push(format!("IOB: {iob} U"));
        }
        if let Some(cob) = shown("cob") {
            lines.push(format!("COB: {cob} g"));
        }
        return Some(Notice::Notify {
            level,
            title: format!("{label}, Check BG, time to bolus?"),
            message: lines.join("\n"),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{data, doc, treatments, MIN as M, NOW};
    use crate::plugins::Settings;

    fn profile(_: i64, f: Field) -> Option<f64> {
        match f {
            Field::Sens => Some(50.0),
            Field::TargetLow => Some(90.0),
            Field::TargetHigh => Some(120.0),
            Field::Basal => Some(1.0),
            Field::CarbRatio => Some(10.0),
            _ => None,
        }
    }

    fn props(sgv: f64, ago_min: i64, iob: f64) -> Doc {
        doc(json!({
            "buckets": [{ "sgvs": [{ "mgdl": sgv, "mills": NOW - ago_min * M, "scaled": sgv }] }],
            "iob": { "iob": iob }
        }))
    }

    #[test]
    fn estimate_above_high_target() {
        let s = Settings::default();
        let d = data(&s, &[], &[], Some(&profile));
        // 220 - 1.2·50 = 160 > 120: (160 - 120)/50 = 0.8 U. Basal 1: 30 min (0.5 + 0.8)/0.5
        // = 260 %, 1 h (1 + 0.8)/1 = 180 %.
        let p = property(&d, &props(220.0, 2, 1.2));
        assert_eq!(
            Value::Object(p),
            json!({
                "effect": 60, "outcome": 160, "bolusEstimate": 0.8, "scaledSGV": 220,
                "iob": 1.2, "aimTarget": 120, "aimTargetString": "above high",
                "belowLowTarget": false,
                "tempBasalAdjustment": { "thirtymin": 260, "onehour": 180 },
                "bolusEstimateDisplay": "0.80", "outcomeDisplay": 160, "displayIOB": "1.20",
                "effectDisplay": 60, "displayLine": "BWP: 0.80U"
            })
        );
    }

    #[test]
    fn excess_insulin_below_low_target() {
        let s = Settings::default();
        let t = treatments(&[(30, json!({ "eventType": "Meal Bolus", "carbs": 20 }))]);
        let d = data(&s, &t, &[], Some(&profile));
        // 100 - 0.5·50 = 75 < 90: -(15/50) = -0.3 U; the carbs 30 min ago are recent.
        let p = property(&d, &props(100.0, 1, 0.5));
        assert_eq!(p["bolusEstimate"], json!(-0.3));
        assert_eq!(p["aimTargetString"], json!("below low"));
        assert_eq!(p["bolusEstimateDisplay"], json!("-0.30"));
        assert_eq!(p["recentCarbs"]["carbs"], json!(20));
        assert_eq!(
            p["tempBasalAdjustment"],
            json!({ "thirtymin": 40, "onehour": 70 })
        );
        let keys: Vec<&String> = p.keys().collect();
        // Keys in the order Nightscout's assignments create them (effect and outcome exist
        // from the start; the low aimTarget comes after belowLowTarget).
        assert_eq!(
            keys[4..8],
            ["iob", "recentCarbs", "belowLowTarget", "aimTarget"]
        );
    }

    #[test]
    fn errors_when_information_is_missing() {
        let s = Settings::default();
        let p = property(&data(&s, &[], &[], None), &props(150.0, 20, 0.0));
        assert_eq!(
            p["errors"],
            json!(["Missing need a treatment profile", "Data isn't current"])
        );
        assert_eq!(p["scaledSGV"], json!(150));
        assert!(p.get("displayLine").is_none());
    }

    /// 15.0.7's boluswizardpreview.js asks `sbx.isCurrent(lastSGVEntry)`: at most 15 minutes
    /// old (sandbox.js `sbx.time - entry.mills <= times.mins(15).msecs`); an older copy of the
    /// plugin asked for 10.
    #[test]
    fn a_reading_up_to_15_minutes_old_is_current() {
        let s = Settings::default();
        let d = data(&s, &[], &[], Some(&profile));
        let aged = |ago_ms: i64| {
            let mut p = props(220.0, 0, 1.2);
            p["buckets"][0]["sgvs"][0]["mills"] = json!(NOW - ago_ms);
            property(&d, &p)
        };
        for ago in [12 * M, 15 * M] {
            let p = aged(ago);
            assert!(p.get("errors").is_none(), "{ago}: {p:?}");
            assert_eq!(p["bolusEstimateDisplay"], json!("0.80"));
        }
        let stale = aged(15 * M + 1);
        assert_eq!(stale["errors"], json!(["Data isn't current"]));
        assert!(is_current(100.0, NOW - 15 * M, NOW) && !is_current(100.0, NOW - 15 * M - 1, NOW));
        assert!(!is_current(38.0, NOW, NOW), "error codes are not readings");
    }

    #[test]
    fn notices_follow_the_bwp_settings() {
        let s = Settings::default();
        let d = data(&s, &[], &[], Some(&profile));
        let with = |sgv: f64, iob: f64| {
            let mut all = props(sgv, 2, iob);
            all.insert("iob".into(), json!({ "iob": iob, "display": "1.20" }));
            all.insert("delta".into(), json!({ "display": "+5" }));
            let b = property(&d, &all);
            all.insert("bwp".into(), Value::Object(b));
            notice(&d, &all)
        };
        // 0.8 U > 0.5 (warn), not > 1.0 (urgent).
        assert_eq!(
            with(220.0, 1.2),
            Some(Notice::Notify {
                level: 1,
                title: "Warning, Check BG, time to bolus?".into(),
                message: "BG NOW: 220 mg/dl\nDelta: +5\nBWP: 0.80 U\nIOB: 1.20 U".into(),
            })
        );
        // 300 with 1.2 U on board: (240 - 120)/50 = 2.4 U: urgent.
        assert!(matches!(
            with(300.0, 1.2),
            Some(Notice::Notify { level: 2, .. })
        ));
        // 190 (above the 180 target top) with 3 U on board: estimate 0 < 0.1: snooze 10 min.
        assert_eq!(
            with(190.0, 3.0),
            Some(Notice::Snooze { length_ms: 600_000 })
        );
        // Below the profile's 120 high target: nothing.
        assert_eq!(with(110.0, 0.0), None);
        // Without a profile (a bwp with errors): nothing, however high.
        let none = data(&s, &[], &[], None);
        let mut all = props(300.0, 2, 0.0);
        let b = property(&none, &all);
        all.insert("bwp".into(), Value::Object(b));
        assert_eq!(notice(&none, &all), None);
    }
}
