//! upbat (lib/plugins/upbat.js): the uploaders' batteries.

use serde_json::Value;

use super::shared::{device_uri, get_obj, set_if, status_class, Doc, MIN, URGENT, WARN};
use crate::jsnum::{js_number, js_text, opt_num, to_fixed, truthy};

/// Uploader battery: per device the lowest of its last 10 minutes, overall the lowest device.
pub fn property(now: i64, ds: &[(Doc, i64)]) -> Doc {
    struct Device {
        uri: String,
        name: String,
        /// (picked status, battery, mills), as collected.
        statuses: Vec<(Doc, Option<f64>, i64)>,
    }
    let mut devices: Vec<Device> = vec![];
    for (status, mills) in ds {
        if *mills > now || *mills < now - 30 * MIN {
            continue;
        }
        let Some(mut uploader) = get_obj(status, "uploader").cloned() else {
            continue;
        };
        let battery_raw = uploader.get("battery").cloned();
        let battery = js_number(battery_raw.as_ref());
        let has_battery = truthy(battery_raw.as_ref());
        let mut voltage = None;
        let mut voltage_display = None;
        if truthy(uploader.get("batteryVoltage")) {
            // Some uploaders report millivolts.
            let v = js_number(uploader.get("batteryVoltage")).map(|v| {
                if v > 1000.0 {
                    v / 1000.0
                } else {
                    v
                }
            });
            voltage_display = Some(format!("{}v", v.map_or("NaN".into(), |v| to_fixed(v, 3))));
            voltage = Some(v);
        }
        if has_battery || voltage.is_some() {
            let value = match (&battery_raw, voltage) {
                (Some(b), _) if has_battery => b.clone(),
                (_, Some(v)) => opt_num(v),
                _ => Value::Null,
            };
            uploader.insert("value".into(), value);
            if let Some(v) = voltage {
                uploader.insert("voltage".into(), opt_num(v));
                uploader.insert(
                    "voltageDisplay".into(),
                    voltage_display.clone().unwrap_or_default().into(),
                );
            }
            let charging = truthy(status.get("isCharging"));
            let shown = match &battery_raw {
                Some(b) if has_battery => format!("{}%", js_text(b)),
                _ => voltage_display.clone().unwrap_or_default(),
            };
            let display = format!("{shown}{}", if charging { "⚡" } else { "" });
            uploader.insert("display".into(), display.into());
            let level = match battery {
                Some(b) if b >= 95.0 => 100,
                Some(b) if b >= 55.0 => 75,
                Some(b) if b >= 30.0 => 50,
                _ => 25,
            };
            uploader.insert("level".into(), level.into());
            match battery {
                Some(b) if b <= 30.0 && b > 20.0 => {
                    uploader.insert("notification".into(), WARN.into());
                }
                Some(b) if b <= 20.0 => {
                    uploader.insert("notification".into(), URGENT.into());
                }
                _ => {}
            }
        }
        let uri = device_uri(status, "uploader");
        let mut picked = Doc::new();
        picked.insert("uploader".into(), Value::Object(uploader));
        for k in ["created_at", "mills", "_id"] {
            set_if(&mut picked, k, status.get(k));
        }
        let pos = match devices.iter().position(|d| d.uri == uri) {
            Some(p) => p,
            None => {
                let name = uri.strip_prefix("openaps://").unwrap_or(&uri).to_string();
                devices.push(Device {
                    uri: uri.clone(),
                    name,
                    statuses: vec![],
                });
                devices.len() - 1
            }
        };
        devices[pos].statuses.push((picked, battery, *mills));
    }

    let mut devices_json = Doc::new();
    // (uploader JSON, battery) of each device's recent lowest.
    let mut lowests: Vec<(Value, Option<f64>)> = vec![];
    for mut d in devices {
        d.statuses.sort_by_key(|(_, _, m)| *m);
        d.statuses.reverse();
        let first_mills = d.statuses.first().map_or(0, |s| s.2);
        let recent: Vec<&(Doc, Option<f64>, i64)> = d
            .statuses
            .iter()
            .filter(|s| s.2 > first_mills - 10 * MIN)
            .collect();
        let lowest = min_by_battery(&recent)
            // Nightscout fails here when no status has a battery level; show the newest.
            .or_else(|| recent.first().copied());
        let min = lowest.map(|s| (s.0.get("uploader").cloned().unwrap_or(Value::Null), s.1));
        let mut dj = Doc::new();
        dj.insert("name".into(), d.name.into());
        dj.insert("uri".into(), d.uri.clone().into());
        dj.insert(
            "statuses".into(),
            Value::Array(
                d.statuses
                    .iter()
                    .map(|s| Value::Object(s.0.clone()))
                    .collect(),
            ),
        );
        if let Some((u, b)) = min {
            dj.insert("min".into(), u.clone());
            lowests.push((u, b));
        }
        devices_json.insert(d.uri, Value::Object(dj));
    }

    let mut overall: Option<&(Value, Option<f64>)> = None;
    for l in &lowests {
        if let Some(b) = l.1 {
            if overall.is_none_or(|o| o.1.is_some_and(|ob| b < ob)) {
                overall = Some(l);
            }
        }
    }
    let mut out = Doc::new();
    match overall.and_then(|o| o.0.as_object()) {
        Some(u) => {
            set_if(&mut out, "level", u.get("level"));
            set_if(&mut out, "display", u.get("display"));
            let notification = u.get("notification").and_then(Value::as_i64);
            out.insert("status".into(), status_class(notification).into());
            out.insert("devices".into(), Value::Object(devices_json));
            out.insert("min".into(), Value::Object(u.clone()));
        }
        None => {
            out.insert("display".into(), "?%".into());
            out.insert("devices".into(), Value::Object(devices_json));
        }
    }
    out
}

/// lodash minBy over the battery level: the first lowest, skipping statuses without one.
fn min_by_battery<'a>(
    items: &[&'a (Doc, Option<f64>, i64)],
) -> Option<&'a (Doc, Option<f64>, i64)> {
    let mut best: Option<&(Doc, Option<f64>, i64)> = None;
    for s in items {
        if let Some(b) = s.1 {
            if best.is_none_or(|x| x.1.is_some_and(|xb| b < xb)) {
                best = Some(s);
            }
        }
    }
    best
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::shared::obj;
    use crate::plugins::testing::{iso, with_mills, NOW};
    use serde_json::json;

    #[test]
    fn uploader_battery() {
        let ds = with_mills(json!([
            { "device": "xdrip", "created_at": iso(NOW - 45 * MIN), "uploader": { "battery": 5 } },
            { "device": "samsung", "created_at": iso(NOW - 6 * MIN), "uploader": { "battery": 87 } },
            { "device": "openaps://rig", "created_at": iso(NOW - 3 * MIN), "uploaderBattery": 25 },
            { "device": "samsung", "created_at": iso(NOW - 2 * MIN), "uploader": { "battery": 88 } }
        ]));
        let u = property(NOW, &ds);
        // The rig's 25 % is the lowest of the last 30 minutes (xdrip's is older): level 25
        // (below 30), warning (20 < 25 <= 30).
        assert_eq!(u["level"], 25);
        assert_eq!(u["display"], "25%");
        assert_eq!(u["status"], "warn");
        assert_eq!(
            u["min"],
            json!({ "battery": 25, "value": 25, "display": "25%", "level": 25, "notification": 1 })
        );
        let keys: Vec<&String> = u.keys().collect();
        assert_eq!(keys, ["level", "display", "status", "devices", "min"]);
        // samsung: lowest of its statuses within 10 minutes of its newest (87 at -6 min).
        assert_eq!(u["devices"]["samsung"]["min"]["display"], "87%");
        assert_eq!(u["devices"]["samsung"]["min"]["level"], 75);
        assert_eq!(
            u["devices"]["samsung"]["statuses"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(u["devices"]["openaps://rig"]["name"], "rig");
        assert!(u["devices"].get("xdrip").is_none());

        // Voltage only, charging: 3900 mV → 3.9 V; no percentage, so no overall level.
        let ds = with_mills(
            json!([{ "created_at": iso(NOW - MIN), "isCharging": true, "uploader": { "batteryVoltage": 3900 } }]),
        );
        let u = property(NOW, &ds);
        assert_eq!(u["display"], "?%");
        let min = &u["devices"]["uploader"]["min"];
        assert_eq!(min["voltageDisplay"], "3.900v");
        assert_eq!(min["display"], "3.900v⚡");
        assert_eq!(min["value"], 3.9);
        assert_eq!(
            property(NOW, &[]),
            obj(json!({ "display": "?%", "devices": {} }))
        );
    }
}
