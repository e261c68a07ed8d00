//! pump (lib/plugins/pump.js): the pump's latest status with its reservoir, battery, clock
//! and status, and their levels under Nightscout's default pump settings.

use serde_json::{json, Value};

use super::shared::{
    get_obj, mo_json, moment, obj, set_if, Doc, Mo, DAY, HOUR, MIN, NONE, URGENT, WARN,
};
use crate::jsnum::{js_number, js_round, js_text, num, to_precision, truthy};

/// timeago.calcDisplay + pump.formatAgo: "5m ago", "2h ago", "future", ...
fn ago(mills: Mo, now: i64) -> String {
    let since = mills.filter(|m| *m != 0).map(|m| now - m);
    let (value, short): (Option<i64>, &str) = match (mills, since) {
        (_, None) | (None, _) => (None, "ago"),
        (Some(m), _) if m - 5 * MIN > now => (None, "future"),
        (Some(m), _) if m > now => (Some(1), "m"),
        (_, Some(s)) => {
            let per = |unit: i64| Some((js_round(s as f64 / unit as f64) as i64).max(1));
            if s < 2 * MIN || s < HOUR {
                (per(MIN), "m")
            } else if s < DAY {
                (per(HOUR), "h")
            } else if s < 7 * DAY {
                (per(DAY), "d")
            } else {
                (None, "ago")
            }
        }
    };
    let value = value.map(|v| v.to_string()).unwrap_or_default();
    let suffix = if short.chars().count() == 1 {
        " ago"
    } else {
        ""
    };
    format!("{value}{short}{suffix}")
}

/// The pump's latest status (by its clock) of the last two hours, with `data`: reservoir,
/// battery, clock, status and their levels as Nightscout's default pump settings decide them.
pub fn property(now: i64, ds: &[(Doc, i64)], treatments: &[(Doc, i64)]) -> Doc {
    const URGENT_CLOCK_MIN: i64 = 60;
    const WARN_CLOCK_MIN: i64 = 30;
    let mut best: Option<(Doc, f64)> = None;
    for (status, mills) in ds {
        if !status.contains_key("pump") || *mills > now || *mills < now - 2 * URGENT_CLOCK_MIN * MIN
        {
            continue;
        }
        let clock = get_obj(status, "pump").and_then(|p| p.get("clock"));
        let clock_mills = if truthy(clock) {
            moment(clock, now).map_or(f64::NAN, |m| m as f64)
        } else {
            *mills as f64
        };
        if best.as_ref().is_none_or(|(_, b)| clock_mills > *b) {
            best = Some((status.clone(), clock_mills));
        }
    }
    let mut out = match best {
        Some((mut s, clock_mills)) => {
            s.insert("clockMills".into(), num(clock_mills));
            s
        }
        None => Doc::new(),
    };
    let p = get_obj(&out, "pump").cloned().unwrap_or_default();
    let mut data = Doc::new();
    let mut levels: Vec<(Option<f64>, Option<Value>)> = vec![];

    // Clock
    let clock = if truthy(p.get("clock")) {
        let m = moment(p.get("clock"), now);
        let mut c = Doc::new();
        c.insert("value".into(), mo_json(m));
        c.insert("label".into(), "Last Clock".into());
        c.insert("display".into(), ago(m, now).into());
        if m.is_some_and(|m| m < now - URGENT_CLOCK_MIN * MIN) {
            c.insert("level".into(), URGENT.into());
            c.insert("message".into(), "URGENT: Pump data stale".into());
        } else if m.is_some_and(|m| m < now - WARN_CLOCK_MIN * MIN) {
            c.insert("level".into(), WARN.into());
            c.insert("message".into(), "Warning, Pump data stale".into());
        } else {
            c.insert("level".into(), NONE.into());
        }
        Some(c)
    } else {
        None
    };

    // Reservoir
    let mut reservoir = match p.get("reservoir") {
        Some(v) if truthy(Some(v)) || v.as_f64() == Some(0.0) => {
            let x = js_number(Some(v));
            let mut r = Doc::new();
            r.insert("value".into(), v.clone());
            r.insert("label".into(), "Reservoir".into());
            r.insert(
                "display".into(),
                format!("{}U", x.map_or("NaN".into(), |x| to_precision(x, 3))).into(),
            );
            match x {
                Some(x) if x < 5.0 => {
                    r.insert("level".into(), URGENT.into());
                    r.insert("message".into(), "URGENT: Pump Reservoir Low".into());
                }
                Some(x) if x < 10.0 => {
                    r.insert("level".into(), WARN.into());
                    r.insert("message".into(), "Warning, Pump Reservoir Low".into());
                }
                _ => {
                    r.insert("level".into(), NONE.into());
                }
            }
            Some(r)
        }
        _ if p.get("manufacturer").and_then(Value::as_str) == Some("Insulet") => {
            // Omnipod reports no level above 50 U.
            Some(obj(json!({ "label": "Reservoir", "display": "50+ U" })))
        }
        _ => None,
    };
    let display_override = p
        .get("reservoir_display_override")
        .filter(|v| truthy(Some(v)));
    let level_override = p
        .get("reservoir_level_override")
        .filter(|v| truthy(Some(v)));
    if let Some(r) = reservoir.as_mut() {
        set_if(r, "display", display_override);
        set_if(r, "level", level_override);
    }

    // Status
    let status = get_obj(&p, "status").map(|st| {
        let mut value = if truthy(st.get("status")) {
            st.get("status").cloned().unwrap_or(Value::Null)
        } else {
            Value::from("normal")
        };
        if truthy(st.get("bolusing")) {
            value = "bolusing".into();
        } else if truthy(st.get("suspended")) {
            value = "suspended".into();
        }
        json!({ "value": value, "display": value, "label": "Status" })
    });

    // Battery
    let battery = get_obj(&p, "battery").and_then(|b| {
        let (raw, unit, suffix, urgent, warn) = if truthy(b.get("percent")) {
            (b.get("percent")?, "percent", "%", 20.0, 30.0)
        } else if truthy(b.get("voltage")) {
            (b.get("voltage")?, "volts", "v", 1.3, 1.35)
        } else {
            return None;
        };
        let x = js_number(Some(raw));
        let mut r = Doc::new();
        r.insert("value".into(), raw.clone());
        r.insert("unit".into(), unit.into());
        r.insert("label".into(), "Battery".into());
        r.insert("display".into(), format!("{}{suffix}", js_text(raw)).into());
        match x {
            Some(x) if x < urgent => {
                r.insert("level".into(), URGENT.into());
                r.insert("message".into(), "URGENT: Pump Battery Low".into());
            }
            Some(x) if x < warn => {
                r.insert("level".into(), WARN.into());
                r.insert("message".into(), "Warning, Pump Battery Low".into());
            }
            _ => {
                r.insert("level".into(), NONE.into());
            }
        }
        Some(r)
    });

    // Highest level of reservoir, battery, clock (status and device carry none by default).
    for field in [&reservoir, &battery, &clock].into_iter().flatten() {
        levels.push((js_number(field.get("level")), field.get("message").cloned()));
    }
    let offline = treatments.iter().any(|(t, m)| {
        let end = if truthy(t.get("duration")) {
            m.saturating_add((js_number(t.get("duration")).unwrap_or(0.0) * MIN as f64) as i64)
        } else {
            *m
        };
        *m <= now
            && t.get("eventType").and_then(Value::as_str) == Some("OpenAPS Offline")
            && end >= now
    });
    let mut level = NONE as f64;
    let mut title = Some(Value::from("Pump Status"));
    if !offline {
        for (l, message) in levels {
            if let Some(l) = l.filter(|l| *l > level) {
                level = l;
                title = message;
            }
        }
    }

    data.insert("level".into(), num(level));
    data.insert(
        "clock".into(),
        clock.clone().map_or(Value::Null, Value::Object),
    );
    data.insert(
        "reservoir".into(),
        reservoir.clone().map_or(Value::Null, Value::Object),
    );
    data.insert(
        "reservoir_display_override".into(),
        display_override.cloned().unwrap_or(Value::Null),
    );
    data.insert(
        "reservoir_level_override".into(),
        level_override.cloned().unwrap_or(Value::Null),
    );
    set_if(&mut data, "manufacturer", p.get("manufacturer"));
    set_if(&mut data, "model", p.get("model"));
    data.insert(
        "extended".into(),
        p.get("extended")
            .filter(|v| truthy(Some(v)))
            .cloned()
            .unwrap_or(Value::Null),
    );
    set_if(&mut data, "status", status.as_ref());
    if let Some(b) = &battery {
        data.insert("battery".into(), Value::Object(b.clone()));
    }
    let mut device = Doc::new();
    device.insert("label".into(), "Device".into());
    set_if(&mut device, "display", out.get("device"));
    data.insert("device".into(), Value::Object(device));
    set_if(&mut data, "title", title.as_ref());
    if level > NONE as f64 {
        let mut lines = vec![];
        if let Some(b) = battery.as_ref().and_then(|b| b.get("display")) {
            lines.push(format!("Pump Battery: {}", js_text(b)));
        }
        if let Some(r) = reservoir.as_ref().and_then(|r| r.get("display")) {
            lines.push(format!("Pump Reservoir: {}", js_text(r)));
        }
        data.insert("message".into(), lines.join("\n").into());
    }
    out.insert("data".into(), Value::Object(data));
    out
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::shared::oldest_first;
    use crate::plugins::testing::{docs, iso, with_mills, NOW};
    use serde_json::json;

    #[test]
    fn pump_levels_and_messages() {
        let ds = with_mills(
            json!([{ "device": "loop://iPhone", "created_at": iso(NOW - 2 * MIN), "pump": {
            "clock": iso(NOW - 2 * MIN), "reservoir": 3, "battery": { "percent": 25 },
            "status": { "status": "normal", "suspended": true }, "manufacturer": "Medtronic" } }]),
        );
        let p = property(NOW, &ds, &[]);
        assert_eq!(p["clockMills"], NOW - 2 * MIN);
        assert_eq!(p["pump"]["reservoir"], 3);
        let d = &p["data"];
        assert_eq!(
            d["clock"],
            json!({ "value": iso(NOW - 2 * MIN), "label": "Last Clock", "display": "2m ago", "level": -3 })
        );
        // 3 < 5: urgent; (3).toPrecision(3) = "3.00".
        assert_eq!(
            d["reservoir"],
            json!({ "value": 3, "label": "Reservoir", "display": "3.00U", "level": 2, "message": "URGENT: Pump Reservoir Low" })
        );
        assert_eq!(
            d["status"],
            json!({ "value": "suspended", "display": "suspended", "label": "Status" })
        );
        // 20 <= 25 < 30: warning.
        assert_eq!(
            d["battery"],
            json!({ "value": 25, "unit": "percent", "label": "Battery", "display": "25%", "level": 1, "message": "Warning, Pump Battery Low" })
        );
        assert_eq!(
            d["device"],
            json!({ "label": "Device", "display": "loop://iPhone" })
        );
        assert_eq!(d["level"], 2);
        assert_eq!(d["title"], "URGENT: Pump Reservoir Low");
        assert_eq!(d["message"], "Pump Battery: 25%\nPump Reservoir: 3.00U");
        let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "level",
                "clock",
                "reservoir",
                "reservoir_display_override",
                "reservoir_level_override",
                "manufacturer",
                "extended",
                "status",
                "battery",
                "device",
                "title",
                "message"
            ]
        );

        // An active "OpenAPS Offline" silences the levels.
        let offline = oldest_first(&docs(json!([
            { "eventType": "OpenAPS Offline", "created_at": iso(NOW - 10 * MIN), "duration": 60 }
        ])));
        let p = property(NOW, &ds, &offline);
        assert_eq!(
            (p["data"]["level"].clone(), p["data"]["title"].clone()),
            (json!(-3), json!("Pump Status"))
        );
        assert!(p["data"].get("message").is_none());

        // The newest by pump clock wins; a 45-minute-old clock is a warning.
        let ds = with_mills(json!([
            { "created_at": iso(NOW - 5 * MIN), "pump": { "clock": iso(NOW - 45 * MIN), "reservoir": 150 } },
            { "created_at": iso(NOW - 50 * MIN), "pump": { "clock": iso(NOW - 50 * MIN), "reservoir": 160 } }
        ]));
        let p = property(NOW, &ds, &[]);
        assert_eq!(p["data"]["reservoir"]["display"], "150U");
        assert_eq!(p["data"]["clock"]["display"], "45m ago");
        assert_eq!(p["data"]["clock"]["message"], "Warning, Pump data stale");
        assert_eq!(p["data"]["title"], "Warning, Pump data stale");
        // Omnipod reports no reservoir above 50 U.
        let ds = with_mills(
            json!([{ "created_at": iso(NOW - 6 * MIN), "pump": { "manufacturer": "Insulet" } }]),
        );
        assert_eq!(
            property(NOW, &ds, &[])["data"]["reservoir"],
            json!({ "label": "Reservoir", "display": "50+ U" })
        );
    }
}
