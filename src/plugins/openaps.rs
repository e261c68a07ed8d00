//! openaps (lib/plugins/openaps.js): OpenAPS' state per rig and overall from its device
//! statuses.

use serde_json::{json, Value};

use super::r#loop::pill;
use super::shared::{after, device_uri, get_obj, mo_json, moment, obj, set_if, Doc, Mo, HOUR, MIN};
use crate::jsnum::truthy;

/// openaps.momentsToLoopStatus.
fn openaps_status(
    enacted: Option<Mo>,
    not_enacted: Option<Mo>,
    suggested: Option<Mo>,
    when: Option<Mo>,
    no_warning: bool,
    recent: i64,
) -> Doc {
    let r = Some(recent);
    let (symbol, code, label) = if not_enacted.is_some_and(|n| match enacted {
        Some(e) => after(n, e),
        None => after(n, r),
    }) {
        ("x", "notenacted", "Not Enacted")
    } else if enacted.is_some_and(|e| after(e, r)) {
        ("⌁", "enacted", "Enacted")
    } else if suggested.is_some_and(|s| after(s, r)) {
        ("↻", "looping", "Looping")
    } else if when.is_some_and(|w| no_warning || after(w, r)) {
        ("◉", "waiting", "Waiting")
    } else {
        ("⚠", "warning", "Warning")
    };
    obj(pill(symbol, code, label))
}

/// utils.deviceName: `openaps://host/x` → `host`.
fn device_name(uri: &str) -> String {
    let last = uri.rsplit("://").next().unwrap_or(uri);
    last.split('/').next().unwrap_or(last).to_string()
}

/// Where a prediction came from, to tell whether a newer one replaces it.
struct Pred {
    value: Value,
    moment: Mo,
}

/// Makes the object `v`, with its `moment` `m`, the latest in `slot` when its time as
/// compared (`by`) is after the one there, and returns it then.
fn keep_latest<'a>(
    slot: &'a mut Option<(Doc, Mo)>,
    m: Option<Mo>,
    v: Option<&Value>,
    by: impl Fn(&Doc, Mo) -> Mo,
) -> Option<(&'a mut Doc, Mo)> {
    let m = m?;
    let mut d = v.and_then(Value::as_object).cloned()?;
    if slot.as_ref().is_some_and(|(_, lm)| !after(by(&d, m), *lm)) {
        return None;
    }
    d.insert("moment".into(), mo_json(m));
    let (d, _) = slot.insert((d, m));
    Some((d, m))
}

/// OpenAPS' status from device statuses of the last six hours: per device its loop state,
/// and overall the last enacted / not enacted / suggested, IOB and predictions.
pub fn property(now: i64, ds: &[(Doc, i64)]) -> Doc {
    let recent = now - 15 * MIN;
    let mut devices: Vec<(String, Doc, Mo)> = vec![];
    let mut last_enacted: Option<(Doc, Mo)> = None;
    let mut last_not_enacted: Option<(Doc, Mo)> = None;
    let mut last_suggested: Option<(Doc, Mo)> = None;
    let mut last_iob: Option<(Doc, Mo)> = None;
    let mut last_pred: Option<Pred> = None;

    // predBGs of an enacted/suggested that just became the latest: an array is wrapped, an
    // object gains the moment (in the enacted/suggested too, as Nightscout shares the object).
    fn take_pred(doc: &mut Doc, m: Mo, last_pred: &mut Option<Pred>) {
        let Some(p) = doc.get_mut("predBGs").filter(|p| truthy(Some(p))) else {
            return;
        };
        if last_pred.as_ref().is_some_and(|lp| !after(m, lp.moment)) {
            return;
        }
        let value = match p {
            Value::Array(a) => json!({ "values": a.clone(), "moment": mo_json(m) }),
            Value::Object(o) => {
                o.insert("moment".into(), mo_json(m));
                Value::Object(o.clone())
            }
            other => other.clone(),
        };
        *last_pred = Some(Pred { value, moment: m });
    }

    for (status, mills) in ds {
        if *mills > now || *mills < now - 6 * HOUR {
            continue;
        }
        let Some(mut oa) = get_obj(status, "openaps").cloned() else {
            continue;
        };
        // AMA's array of predictions: the first is now.
        if let Some(first) = oa
            .get("iob")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            let first = first.clone();
            oa.insert("iob".into(), first);
        }
        // `time` becomes `timestamp`: openaps.js does it for the array; for AAPS' object the
        // iob plugin (iob.fromDeviceStatus, run before openaps on the same objects) does it.
        if let Some(o) = oa.get_mut("iob").and_then(Value::as_object_mut) {
            if let Some(t) = o.get("time").filter(|t| truthy(Some(t))).cloned() {
                o.insert("timestamp".into(), t);
            }
        }
        let stamp = |v: Option<&Value>, prefer_mills: bool| -> Option<Mo> {
            let v = v.filter(|v| truthy(Some(v)))?;
            if prefer_mills && truthy(v.get("mills")) {
                Some(moment(v.get("mills"), now))
            } else if truthy(v.get("timestamp")) {
                Some(moment(v.get("timestamp"), now))
            } else {
                None
            }
        };
        let enacted_obj = oa
            .get("enacted")
            .filter(|e| truthy(Some(e)) && truthy(e.get("timestamp")));
        let received =
            enacted_obj.is_some_and(|e| truthy(e.get("recieved")) || truthy(e.get("received")));
        let (m_enacted, m_not_enacted) = match enacted_obj {
            Some(_) if received => (stamp(oa.get("enacted"), true), None),
            Some(_) => (None, stamp(oa.get("enacted"), true)),
            None => (None, None),
        };
        let m_suggested = stamp(oa.get("suggested"), true);
        let m_iob = stamp(oa.get("iob"), true);
        let when = Some(*mills);

        let uri = device_uri(status, "device");
        let pos = match devices.iter().position(|d| d.0 == uri) {
            Some(p) => p,
            None => {
                let mut d = Doc::new();
                d.insert("name".into(), device_name(&uri).into());
                d.insert("uri".into(), uri.clone().into());
                devices.push((uri.clone(), d, None));
                devices.len() - 1
            }
        };
        {
            let (_, dev, _) = &mut devices[pos];
            let prev_when = dev
                .get("status")
                .and_then(|s| s.get("when"))
                .map(|w| moment(Some(w), now));
            if prev_when.is_none_or(|pw| after(when, pw)) {
                let mut st = openaps_status(
                    m_enacted,
                    m_not_enacted,
                    m_suggested,
                    Some(when),
                    true,
                    recent,
                );
                st.insert("when".into(), mo_json(when));
                dev.insert("status".into(), Value::Object(st));
            }
        }

        let enacted = oa.get("enacted");
        if let Some((e, em)) = keep_latest(&mut last_enacted, m_enacted, enacted, |_, m| m) {
            take_pred(e, em, &mut last_pred);
        }
        keep_latest(&mut last_not_enacted, m_not_enacted, enacted, |_, m| m);
        let suggested = oa.get("suggested");
        if let Some((s, sm)) = keep_latest(&mut last_suggested, m_suggested, suggested, |_, m| m) {
            take_pred(s, sm, &mut last_pred);
        }
        // The IOB compares by its own timestamp.
        let by_timestamp = |d: &Doc, _| moment(d.get("timestamp"), now);
        keep_latest(&mut last_iob, m_iob, oa.get("iob"), by_timestamp);
        if let Some(mut mm) = get_obj(status, "mmtune")
            .filter(|m| truthy(m.get("timestamp")))
            .cloned()
        {
            let mt = moment(mm.get("timestamp"), now);
            mm.insert("moment".into(), mo_json(mt));
            let (_, dev, dev_mm) = &mut devices[pos];
            if !dev.contains_key("mmtune") || after(when, *dev_mm) {
                dev.insert("mmtune".into(), Value::Object(mm));
                *dev_mm = mt;
            }
        }
    }

    let pick = |d: &(Doc, Mo)| (d.1, d.0.get("eventualBG").cloned());
    let last_loop = match (&last_enacted, &last_suggested) {
        (Some(e), Some(s)) => Some(if after(e.1, s.1) { pick(e) } else { pick(s) }),
        (Some(e), None) => Some(pick(e)),
        (None, Some(s)) => Some(pick(s)),
        (None, None) => None,
    };
    let status = openaps_status(
        last_enacted.as_ref().map(|e| e.1),
        last_not_enacted.as_ref().map(|e| e.1),
        last_suggested.as_ref().map(|e| e.1),
        None,
        false,
        recent,
    );
    let mut seen = Doc::new();
    for (uri, d, _) in devices {
        seen.insert(uri, Value::Object(d));
    }
    let doc_or_null = |d: Option<(Doc, Mo)>| d.map_or(Value::Null, |(d, _)| Value::Object(d));
    let mut out = Doc::new();
    out.insert("seenDevices".into(), Value::Object(seen));
    out.insert("lastEnacted".into(), doc_or_null(last_enacted));
    out.insert("lastNotEnacted".into(), doc_or_null(last_not_enacted));
    out.insert("lastSuggested".into(), doc_or_null(last_suggested));
    out.insert("lastIOB".into(), doc_or_null(last_iob));
    out.insert("lastMMTune".into(), Value::Null);
    out.insert(
        "lastPredBGs".into(),
        last_pred.map_or(Value::Null, |p| p.value),
    );
    if let Some((m, bg)) = last_loop {
        out.insert("lastLoopMoment".into(), mo_json(m));
        set_if(&mut out, "lastEventualBG", bg.as_ref());
    }
    out.insert("status".into(), Value::Object(status));
    out
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{iso, with_mills, NOW};

    #[test]
    fn openaps_states() {
        let ds = with_mills(
            json!([{ "device": "openaps://rig1/x", "created_at": iso(NOW - 2 * MIN),
            "openaps": {
                "suggested": { "timestamp": iso(NOW - 2 * MIN), "eventualBG": 110, "predBGs": { "IOB": [110, 108] } },
                "enacted": { "timestamp": iso(NOW - MIN), "received": true, "eventualBG": 105, "predBGs": { "IOB": [105, 100] } },
                "iob": [{ "iob": 1.0, "time": iso(NOW - 2 * MIN) }] },
            "mmtune": { "timestamp": iso(NOW - 5 * MIN) } }]),
        );
        let o = property(NOW, &ds);
        let dev = &o["seenDevices"]["openaps://rig1/x"];
        assert_eq!(dev["name"], "rig1");
        assert_eq!(
            dev["status"],
            json!({ "symbol": "⌁", "code": "enacted", "label": "Enacted", "when": iso(NOW - 2 * MIN) })
        );
        assert_eq!(dev["mmtune"]["moment"], iso(NOW - 5 * MIN));
        assert_eq!(o["lastEnacted"]["moment"], iso(NOW - MIN));
        assert_eq!(o["lastSuggested"]["moment"], iso(NOW - 2 * MIN));
        assert_eq!(o["lastIOB"]["timestamp"], iso(NOW - 2 * MIN));
        assert_eq!(o["lastIOB"]["moment"], iso(NOW - 2 * MIN));
        // The enacted prediction is newer than the suggested one.
        assert_eq!(
            o["lastPredBGs"],
            json!({ "IOB": [105, 100], "moment": iso(NOW - MIN) })
        );
        assert_eq!(o["lastLoopMoment"], iso(NOW - MIN));
        assert_eq!(o["lastEventualBG"], 105);
        assert_eq!(o["status"]["code"], "enacted");
        assert_eq!(o["lastMMTune"], Value::Null);

        // Enacted but not received: "Not Enacted".
        let ds = with_mills(json!([{ "created_at": iso(NOW - MIN),
            "openaps": { "enacted": { "timestamp": iso(NOW - MIN), "predBGs": [1, 2] } } }]));
        let o = property(NOW, &ds);
        assert_eq!(o["status"]["code"], "notenacted");
        assert_eq!(o["lastNotEnacted"]["moment"], iso(NOW - MIN));
        assert_eq!(o["lastEnacted"], Value::Null);
        assert_eq!(o["seenDevices"]["device"]["status"]["code"], "notenacted");
    }
}
