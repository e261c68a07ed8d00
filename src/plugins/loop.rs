//! loop (lib/plugins/loop.js): Loop's state from its device statuses.

use serde_json::{json, Value};

use super::shared::{after, get_obj, mo_json, moment, Doc, Mo, HOUR, MIN};
use crate::jsnum::truthy;

pub(crate) fn pill(symbol: &str, code: &str, label: &str) -> Value {
    json!({ "symbol": symbol, "code": code, "label": label })
}

/// Loop's status from its device statuses of the last six hours: last loop, last enacted,
/// last prediction, last override, last success, and the pill's symbol.
pub fn property(now: i64, ds: &[(Doc, i64)]) -> Doc {
    let recent = now - 15 * MIN;
    let mut last_loop: Option<(Doc, Mo)> = None;
    let mut last_enacted: Option<(Doc, Mo)> = None;
    let mut last_predicted: Option<Value> = None;
    let mut last_override: Option<(Doc, Mo)> = None;
    let mut last_ok: Option<Mo> = None;
    for (status, mills) in ds {
        if *mills > now || *mills < now - 6 * HOUR {
            continue;
        }
        let Some(l) = get_obj(status, "loop") else {
            continue;
        };
        if !truthy(l.get("timestamp")) {
            continue;
        }
        let mut lp = l.clone();
        let m = moment(lp.get("timestamp"), now);
        lp.insert("moment".into(), mo_json(m));
        if let Some(e) = lp.get_mut("enacted").and_then(Value::as_object_mut) {
            if truthy(e.get("timestamp")) {
                let em = moment(e.get("timestamp"), now);
                e.insert("moment".into(), mo_json(em));
                if last_enacted.as_ref().is_none_or(|(_, lm)| after(em, *lm)) {
                    last_enacted = Some((e.clone(), em));
                }
            }
        }
        if let Some(p) = lp.get("predicted").filter(|p| truthy(p.get("startDate"))) {
            last_predicted = Some(p.clone());
        }
        if last_loop.as_ref().is_none_or(|(_, lm)| after(m, *lm)) {
            last_loop = Some((lp.clone(), m));
        }
        if let Some(o) = get_obj(status, "override").filter(|o| truthy(o.get("timestamp"))) {
            let om = moment(o.get("timestamp"), now);
            if last_override.as_ref().is_none_or(|(_, lm)| after(om, *lm)) {
                let mut o = o.clone();
                o.insert("moment".into(), mo_json(om));
                last_override = Some((o, om));
            }
        }
        if !truthy(lp.get("failureReason")) && last_ok.is_none_or(|lm| after(m, lm)) {
            last_ok = Some(m);
        }
    }
    let display = match &last_loop {
        None => pill("⚠", "warning", "Warning"),
        Some((l, m)) => {
            let enacted = l.get("enacted").filter(|e| truthy(Some(e)));
            let rtb = l.get("recommendedTempBasal").filter(|r| truthy(Some(r)));
            if truthy(l.get("failureReason")) || enacted.is_some_and(|e| !truthy(e.get("received")))
            {
                pill("x", "error", "Error")
            } else if enacted.is_some() && after(moment(l.get("timestamp"), now), Some(recent)) {
                pill("⌁", "enacted", "Enacted")
            } else if rtb.is_some_and(|r| after(moment(r.get("timestamp"), now), Some(recent))) {
                pill("⏀", "recommendation", "Recomendation")
            } else if after(*m, Some(recent)) {
                pill("↻", "looping", "Looping")
            } else {
                pill("⚠", "warning", "Warning")
            }
        }
    };
    let mut out = Doc::new();
    out.insert(
        "lastLoop".into(),
        last_loop.map_or(Value::Null, |(d, _)| Value::Object(d)),
    );
    out.insert(
        "lastEnacted".into(),
        last_enacted.map_or(Value::Null, |(d, _)| Value::Object(d)),
    );
    out.insert(
        "lastPredicted".into(),
        last_predicted.unwrap_or(Value::Null),
    );
    out.insert("lastOkMoment".into(), last_ok.map_or(Value::Null, mo_json));
    if let Some((o, _)) = last_override {
        out.insert("lastOverride".into(), Value::Object(o));
    }
    out.insert("display".into(), display);
    out
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{iso, with_mills, NOW};

    #[test]
    fn loop_states() {
        let ds = with_mills(json!([
            { "created_at": iso(NOW - 8 * MIN), "loop": { "timestamp": iso(NOW - 8 * MIN), "failureReason": "x" } },
            { "created_at": iso(NOW - 3 * MIN), "loop": {
                "timestamp": iso(NOW - 3 * MIN),
                "enacted": { "timestamp": iso(NOW - 3 * MIN), "received": true, "rate": 0.5 },
                "predicted": { "startDate": iso(NOW - 3 * MIN), "values": [120, 118] } },
              "override": { "timestamp": iso(NOW - 3 * MIN), "active": false } }
        ]));
        let l = property(NOW, &ds);
        assert_eq!(
            l["display"],
            json!({ "symbol": "⌁", "code": "enacted", "label": "Enacted" })
        );
        assert_eq!(l["lastEnacted"]["rate"], 0.5);
        assert_eq!(l["lastEnacted"]["moment"], iso(NOW - 3 * MIN));
        assert_eq!(l["lastLoop"]["moment"], iso(NOW - 3 * MIN));
        assert_eq!(l["lastLoop"]["enacted"]["moment"], iso(NOW - 3 * MIN));
        assert_eq!(l["lastPredicted"]["values"], json!([120, 118]));
        assert_eq!(l["lastOkMoment"], iso(NOW - 3 * MIN));
        assert_eq!(l["lastOverride"]["moment"], iso(NOW - 3 * MIN));
        // Only the failed loop: an error, and no success to report.
        let l = property(NOW, &ds[..1]);
        assert_eq!(l["display"]["code"], "error");
        assert_eq!(l["lastOkMoment"], Value::Null);
        // A loop 20 minutes ago, nothing enacted: a warning.
        let old = with_mills(
            json!([{ "created_at": iso(NOW - 20 * MIN), "loop": { "timestamp": iso(NOW - 20 * MIN) } }]),
        );
        assert_eq!(property(NOW, &old)["display"]["code"], "warning");
        assert_eq!(
            Value::Object(property(NOW, &[])),
            json!({ "lastLoop": null, "lastEnacted": null, "lastPredicted": null, "lastOkMoment": null,
                    "display": { "symbol": "⚠", "code": "warning", "label": "Warning" } })
        );
    }
}
