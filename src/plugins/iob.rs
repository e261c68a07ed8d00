//! Insulin on board (lib/plugins/iob.js): from the boluses among the treatments, with
//! Nightscout's bilinear activity curve stretched to the profile's DIA, and combined with the
//! IOB a loop reports in its device statuses.
//!
//! As in Nightscout, only `insulin` counts: temp basals add nothing to Care Portal IOB, and a
//! combo bolus counts its `insulin` (the immediate part) at its start.

use serde_json::Value;

use super::shared::{get_obj, moment, set_if, Doc, Mo, MIN};
use super::{or_nan, truthy_num, Data, Field};
use crate::jsnum::{js_number, num, opt_num, round3, to_fixed, truthy};

/// The curve's peak, in (scaled) minutes.
const PEAK: f64 = 75.0;

/// The profile's DIA (3 when missing or zero) and sensitivity at `time`, as calcTreatment
/// reads them (the same for every treatment at that time).
fn dia_sens(d: &Data, time: i64) -> (f64, f64) {
    let lookup = |f: Field| d.profile.and_then(|p| p(time, f));
    let dia = Some(lookup(Field::Dia))
        .filter(|v| truthy_num(*v))
        .flatten()
        .unwrap_or(3.0);
    (dia, or_nan(lookup(Field::Sens)))
}

/// calcTreatment's curve: (iobContrib, activityContrib) of `insulin` given `ms` ago.
fn curve(insulin: f64, ms: i64, dia: f64, sens: f64) -> (f64, f64) {
    let scale = 3.0 / dia;
    let min_ago = scale * ms as f64 / 1000.0 / 60.0;
    if min_ago < PEAK {
        let x1 = min_ago / 5.0 + 1.0;
        let iob = insulin * (1.0 - 0.001852 * x1 * x1 + 0.001852 * x1);
        let activity = sens * insulin * (2.0 / dia / 60.0 / PEAK) * min_ago;
        (iob, activity)
    } else if min_ago < 180.0 {
        let x2 = (min_ago - 75.0) / 5.0;
        let iob = insulin * (0.001323 * x2 * x2 - 0.054233 * x2 + 0.55556);
        let activity = sens
            * insulin
            * (2.0 / dia / 60.0 - (min_ago - PEAK) * 2.0 / dia / 60.0 / (60.0 * 3.0 - PEAK));
        (iob, activity)
    } else {
        (0.0, 0.0)
    }
}

/// iob.fromTreatments at `time`.
pub struct FromTreatments<'a> {
    /// Rounded to three decimals.
    pub iob: f64,
    pub activity: f64,
    pub last_bolus: Option<&'a Doc>,
}

pub fn from_treatments<'a>(d: &Data<'a>, time: i64) -> FromTreatments<'a> {
    let (mut total, mut activity, mut last_bolus) = (0.0, 0.0, None);
    let (dia, sens) = dia_sens(d, time);
    // Oldest first: the ones after `time` end the walk.
    for (t, mills) in d.treatments.iter().take_while(|(_, m)| *m <= time) {
        if !truthy(t.get("insulin")) {
            continue;
        }
        let insulin = or_nan(js_number(t.get("insulin")));
        let (i, a) = curve(insulin, time - mills, dia, sens);
        if i > 0.0 {
            last_bolus = Some(t);
        }
        if truthy_num(Some(i)) {
            total += i;
        }
        if truthy_num(Some(a)) {
            activity += a;
        }
    }
    FromTreatments {
        iob: round3(&num(total)).unwrap_or(f64::NAN),
        activity,
        last_bolus,
    }
}

/// The treatments with a truthy `insulin`, oldest first, as (time, `Number(insulin)`): what
/// the activity sums run over (cob.js asks for it twice per carb entry).
pub fn boluses(d: &Data) -> Vec<(i64, f64)> {
    d.treatments
        .iter()
        .filter(|(t, _)| truthy(t.get("insulin")))
        .map(|(t, m)| (*m, or_nan(js_number(t.get("insulin")))))
        .collect()
}

/// `iob.calcTotal(...).activity` at `time`, as cob.js reads it: the device status' own
/// `activity` when one reports IOB then (undefined, NaN, for Loop), else the treatments'
/// (`boluses` of [`boluses`]).
pub fn activity_at(d: &Data, boluses: &[(i64, f64)], time: i64) -> f64 {
    // Statuses are oldest first: look only when one falls in lastIOBDeviceStatus' window.
    let ds = d.devicestatus;
    let from = ds.partition_point(|(_, m)| *m < time - 30 * MIN);
    let in_window = ds.get(from).is_some_and(|(_, m)| *m <= time + 5 * MIN);
    if in_window {
        if let Some(status) = last_iob_status(time, d.now, ds) {
            if !status.contains_key("iob") {
                return f64::NAN;
            }
            return or_nan(js_number(status.get("activity")));
        }
    }
    if d.treatments.is_empty() {
        return f64::NAN;
    }
    let (dia, sens) = dia_sens(d, time);
    let mut activity = 0.0;
    for (mills, insulin) in boluses.iter().take_while(|(m, _)| *m <= time) {
        let (_, a) = curve(*insulin, time - mills, dia, sens);
        if truthy_num(Some(a)) {
            activity += a;
        }
    }
    activity
}

/// utils.toFixed: two decimals, `"0"` for zero or NaN.
fn display(x: Option<f64>) -> String {
    match x {
        Some(v) if v != 0.0 && !v.is_nan() => {
            let f = to_fixed(v, 2);
            if f == "-0.00" {
                "0.00".into()
            } else {
                f
            }
        }
        _ => "0".into(),
    }
}

/// The `iob` property: the device status' (`device`, as [`from_devicestatus`] made
/// it) with `treatmentIob` when the treatments give some, else the treatments' own
/// (`source: "Care Portal"`).
pub fn property(d: &Data, mut device: Doc) -> Doc {
    if last_iob_status(d.now, d.now, d.devicestatus).is_some() {
        if device.is_empty() || d.treatments.is_empty() {
            return device;
        }
        let t = from_treatments(d, d.now);
        if truthy_num(Some(t.iob)) {
            let display = device.shift_remove("display");
            let line = device.shift_remove("displayLine");
            device.insert(
                "treatmentIob".into(),
                num(round3(&num(t.iob)).unwrap_or(f64::NAN)),
            );
            for (k, v) in [("display", display), ("displayLine", line)] {
                if let Some(v) = v {
                    device.insert(k.into(), v);
                }
            }
        }
        return device;
    }
    if d.treatments.is_empty() {
        return Doc::new();
    }
    let t = from_treatments(d, d.now);
    let mut out = Doc::new();
    out.insert("iob".into(), num(t.iob));
    out.insert("activity".into(), num(t.activity));
    out.insert(
        "lastBolus".into(),
        t.last_bolus
            .map_or(Value::Null, |b| Value::Object(b.clone())),
    );
    out.insert("source".into(), "Care Portal".into());
    let shown = display(Some(t.iob));
    let line = format!("IOB: {shown}U");
    out.insert("display".into(), shown.into());
    out.insert("displayLine".into(), line.into());
    out
}

// ---------------------------------------------------------------------------------------------
// From device statuses (iob.fromDeviceStatus, lastIOBDeviceStatus)

/// The end of a loop's report: its `source`, the status' `device` and the report's time.
pub(super) fn sourced(out: &mut Doc, source: &str, device: Option<&Value>, m: Mo) {
    out.insert("source".into(), source.into());
    set_if(out, "device", device);
    out.insert("mills".into(), opt_num(m.map(|x| x as f64)));
}

/// One device status' IOB as iob.fromDeviceStatus reads it, with its time.
fn iob_from_status(status: &Doc, mills: i64, now: i64) -> Option<(Doc, Mo, bool)> {
    let device = status.get("device");
    let openaps_iob = status
        .get("openaps")
        .and_then(Value::as_object)
        .and_then(|o| o.get("iob"))
        .filter(|v| v.is_object() || v.is_array());
    let loop_iob = get_obj(status, "loop").and_then(|l| get_obj(l, "iob"));
    let pump_iob = get_obj(status, "pump").and_then(|p| get_obj(p, "iob"));
    let mut out = Doc::new();
    if let Some(v) = openaps_iob {
        // AMA uploads an array of IOB predictions; the first is now.
        let o = match v {
            Value::Array(a) => a.first().and_then(Value::as_object),
            other => other.as_object(),
        }
        .filter(|o| !o.is_empty())?;
        let ts = if truthy(o.get("time")) {
            o.get("time")
        } else {
            o.get("timestamp")
        };
        let m = moment(ts, now);
        set_if(&mut out, "iob", o.get("iob"));
        set_if(&mut out, "basaliob", o.get("basaliob"));
        set_if(&mut out, "activity", o.get("activity"));
        sourced(&mut out, "OpenAPS", device, m);
        return Some((out, m, false));
    }
    if let Some(o) = loop_iob {
        let m = moment(o.get("timestamp"), now);
        set_if(&mut out, "iob", o.get("iob"));
        sourced(&mut out, "Loop", device, m);
        return Some((out, m, true));
    }
    if let Some(o) = pump_iob {
        let v = if truthy(o.get("iob")) {
            o.get("iob")
        } else {
            o.get("bolusiob")
        };
        set_if(&mut out, "iob", v);
        if status.contains_key("connect") {
            out.insert("source".into(), "MM Connect".into());
        }
        set_if(&mut out, "device", device);
        out.insert("mills".into(), mills.into());
        return Some((out, Some(mills), false));
    }
    None
}

/// Statuses of the last 30 minutes (up to 5 minutes ahead for clock drift), mapped by `f`
/// and ordered by the time `f` reports (lodash sortBy: invalid times last).
pub(super) fn recent_reports<T>(
    now: i64,
    ds: &[(Doc, i64)],
    f: impl Fn(&Doc, i64) -> Option<(Doc, Mo, T)>,
) -> Vec<(Doc, Mo, T)> {
    let mut items: Vec<(Doc, Mo, T)> = ds
        .iter()
        .filter(|(_, m)| *m <= now + 5 * MIN && *m >= now - 30 * MIN)
        .filter_map(|(d, m)| f(d, *m))
        .collect();
    items.sort_by_key(|(_, m, _)| (m.is_none(), m.unwrap_or(0)));
    items
}

/// iob.lastIOBDeviceStatus at `time` (undated reports read as `now`): the chosen status'
/// IOB before rounding and display, `None` when no status of that window reports one.
pub(crate) fn last_iob_status(time: i64, now: i64, ds: &[(Doc, i64)]) -> Option<Doc> {
    let items = recent_reports(time, ds, |d, m| iob_from_status(d, m, now));
    let chosen = items.iter().rev().find(|(_, _, l)| *l).or(items.last());
    chosen.map(|(d, _, _)| d.clone())
}

/// iob.js' device-status part: the newest IOB a device status reports (Loop's preferred
/// over the pump's); `{}` when none does. [`property`] adds the treatments' IOB to it.
pub fn from_devicestatus(now: i64, ds: &[(Doc, i64)]) -> Doc {
    let Some(mut out) = last_iob_status(now, now, ds) else {
        return Doc::new();
    };
    let Some(raw) = out.get("iob").cloned() else {
        return Doc::new();
    };
    if truthy(Some(&raw)) {
        out.insert("iob".into(), opt_num(round3(&raw)));
    }
    let shown = display(out.get("iob").and_then(|v| js_number(Some(v))));
    let line = format!("IOB: {shown}U");
    out.insert("display".into(), shown.into());
    out.insert("displayLine".into(), line.into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{data, doc, iso, treatments, with_mills, MIN, NOW};
    use crate::plugins::Settings;
    use serde_json::json;

    /// One treatment's share (iob.calcTreatment: what `from_treatments` sums) at `time`: (iobContrib, activityContrib).
    fn calc_treatment(d: &Data, treatment: &Doc, mills: i64, time: i64) -> (f64, f64) {
        if !truthy(treatment.get("insulin")) {
            return (0.0, 0.0);
        }
        let (dia, sens) = super::dia_sens(d, time);
        let insulin = or_nan(js_number(treatment.get("insulin")));
        curve(insulin, time - mills, dia, sens)
    }

    fn dia_sens(dia: f64) -> impl Fn(i64, Field) -> Option<f64> {
        move |_, f| match f {
            Field::Dia => Some(dia),
            Field::Sens => Some(50.0),
            _ => None,
        }
    }

    #[test]
    fn bilinear_curve_by_hand() {
        let s = Settings::default();
        let p3 = dia_sens(3.0);
        let d = data(&s, &[], &[], Some(&p3));
        let bolus = doc(json!({ "insulin": 2 }));
        // dia 3: minAgo 30 → x1 = 30/5 + 1 = 7; 2·(1 - 0.001852·49 + 0.001852·7) = 1.844432;
        // activity 50·2·(2/3/60/75)·30 = 0.4444….
        let (i, a) = calc_treatment(&d, &bolus, NOW - 30 * MIN, NOW);
        assert!((i - 1.844432).abs() < 1e-12, "{i}");
        assert!((a - 0.444_444_444_444_444_4).abs() < 1e-12, "{a}");
        // dia 4: 120 min ago is 90 scaled minutes; x2 = 3;
        // 0.001323·9 - 0.054233·3 + 0.55556 = 0.404768; activity 50·(2/4/60 - 15·2/4/60/105).
        let p4 = dia_sens(4.0);
        let d4 = data(&s, &[], &[], Some(&p4));
        let one = doc(json!({ "insulin": "1" }));
        let (i, a) = calc_treatment(&d4, &one, NOW - 120 * MIN, NOW);
        assert!((i - 0.404768).abs() < 1e-12, "{i}");
        assert!((a - 50.0 * (2.0 / 4.0 / 60.0 - 30.0 / 4.0 / 60.0 / 105.0)).abs() < 1e-12);
        // 240 minutes (180 scaled) is the end of the curve.
        assert_eq!(calc_treatment(&d4, &one, NOW - 240 * MIN, NOW), (0.0, 0.0));
        // No profile: dia 3, and no activity (sens undefined).
        let none = data(&s, &[], &[], None);
        let (i, a) = calc_treatment(&none, &bolus, NOW - 30 * MIN, NOW);
        assert!((i - 1.844432).abs() < 1e-12 && a.is_nan());
    }

    #[test]
    fn care_portal_iob_counts_boluses_only() {
        let s = Settings::default();
        let p3 = dia_sens(3.0);
        let t = treatments(&[
            (
                30,
                json!({ "eventType": "Meal Bolus", "insulin": 2, "carbs": 40 }),
            ),
            (
                20,
                json!({ "eventType": "Temp Basal", "absolute": 1.5, "duration": 30 }),
            ),
            (
                10,
                json!({ "eventType": "Combo Bolus", "insulin": 1, "relative": 0.5, "duration": 60 }),
            ),
            (
                -10,
                json!({ "eventType": "Correction Bolus", "insulin": 5 }),
            ),
        ]);
        let d = data(&s, &t, &[], Some(&p3));
        // 1.844432 + 1·(1 - 0.001852·9 + 0.001852·3) = 1.844432 + 0.988888 = 2.83332 → 2.833;
        // the future correction does not count yet.
        let p = property(&d, Doc::new());
        assert_eq!(p["iob"], json!(2.833));
        assert_eq!(p["source"], json!("Care Portal"));
        assert_eq!(p["lastBolus"]["eventType"], json!("Combo Bolus"));
        assert_eq!(p["display"], json!("2.83"));
        assert_eq!(p["displayLine"], json!("IOB: 2.83U"));
        let keys: Vec<&String> = p.keys().collect();
        assert_eq!(
            keys,
            vec![
                "iob",
                "activity",
                "lastBolus",
                "source",
                "display",
                "displayLine"
            ]
        );
        // No treatments at all: {}.
        assert!(property(&data(&s, &[], &[], Some(&p3)), Doc::new()).is_empty());
    }

    #[test]
    fn device_status_wins_and_shows_treatment_iob() {
        let s = Settings::default();
        let p3 = dia_sens(3.0);
        let t = treatments(&[(30, json!({ "insulin": 2 }))]);
        let status = doc(json!({
            "device": "loop://iPhone",
            "loop": { "iob": { "iob": 1.5, "timestamp": "2023-11-14T22:12:20Z" } }
        }));
        let ds = vec![(status, NOW - 60_000)];
        let device = doc(json!({
            "iob": 1.5, "source": "Loop", "device": "loop://iPhone", "mills": NOW - 60_000,
            "display": "1.50", "displayLine": "IOB: 1.50U"
        }));
        let p = property(&data(&s, &t, &ds, Some(&p3)), device);
        assert_eq!(p["iob"], json!(1.5));
        assert_eq!(p["treatmentIob"], json!(1.844));
        let keys: Vec<&String> = p.keys().collect();
        assert_eq!(
            keys,
            vec![
                "iob",
                "source",
                "device",
                "mills",
                "treatmentIob",
                "display",
                "displayLine"
            ]
        );
        // The loop's activity is undefined: cob.js then reads NaN.
        let with_loop = data(&s, &t, &ds, Some(&p3));
        assert!(activity_at(&with_loop, &boluses(&with_loop), NOW).is_nan());
        let alone = data(&s, &t, &[], Some(&p3));
        assert!((activity_at(&alone, &boluses(&alone), NOW) - 0.4444).abs() < 1e-4);
    }

    #[test]
    fn iob_and_cob_from_device_status() {
        use super::from_devicestatus as iob;
        use crate::plugins::cob::from_devicestatus as cob;

        let ds = with_mills(json!([
            { "device": "loop://iPhone", "created_at": iso(NOW - 4 * MIN),
              "loop": { "iob": { "iob": 2.3456, "timestamp": iso(NOW - 4 * MIN) },
                        "cob": { "cob": 12.34, "timestamp": iso(NOW - 4 * MIN) } } },
            { "device": "medtronic", "created_at": iso(NOW - MIN), "pump": { "iob": { "bolusiob": 1.5 } } }
        ]));
        // Loop's is preferred over the newer pump's. 2.3456 → 2345.6 → 2346 → 2.346; "2.35".
        assert_eq!(
            Value::Object(iob(NOW, &ds)),
            json!({ "iob": 2.346, "source": "Loop", "device": "loop://iPhone", "mills": NOW - 4 * MIN,
                    "display": "2.35", "displayLine": "IOB: 2.35U" })
        );
        // 12.34 → Math.round(123.4) / 10 = 12.3.
        assert_eq!(
            Value::Object(cob(NOW, &ds)),
            json!({ "cob": 12.34, "source": "Loop", "device": "loop://iPhone", "mills": NOW - 4 * MIN,
                    "display": 12.3, "displayLine": "COB: 12.3g" })
        );
        // The pump alone: bolusiob, at the status' time.
        let i = iob(NOW, &ds[1..]);
        assert_eq!(
            (i["iob"].clone(), i["display"].clone()),
            (json!(1.5), json!("1.50"))
        );
        assert_eq!(i["mills"], NOW - MIN);
        assert!(i.get("source").is_none());

        // OpenAPS: an IOB array with `time`; COB of the newer of enacted and suggested.
        let ds = with_mills(
            json!([{ "device": "openaps://rig", "created_at": iso(NOW - MIN),
            "openaps": {
                "iob": [{ "iob": -0.004, "time": iso(NOW - 2 * MIN) }],
                "suggested": { "COB": 0, "timestamp": iso(NOW - 3 * MIN) },
                "enacted": { "COB": 5, "timestamp": iso(NOW - 2 * MIN), "received": true } } }]),
        );
        // -0.004 keeps three decimals; toFixed(2) is "-0.00", shown as "0.00".
        let i = iob(NOW, &ds);
        assert_eq!(
            (i["iob"].clone(), i["display"].clone()),
            (json!(-0.004), json!("0.00"))
        );
        assert_eq!(i["source"], "OpenAPS");
        assert_eq!(i["mills"], NOW - 2 * MIN);
        let c = cob(NOW, &ds);
        assert_eq!(
            (c["display"].clone(), c["displayLine"].clone()),
            (json!(5), json!("COB: 5g"))
        );

        // Too old: IOB from a status 31 minutes back, COB 11 minutes old.
        let ds = with_mills(json!([
            { "created_at": iso(NOW - 31 * MIN), "loop": { "iob": { "iob": 1, "timestamp": iso(NOW - 31 * MIN) } } },
            { "created_at": iso(NOW - 11 * MIN), "loop": { "cob": { "cob": 9, "timestamp": iso(NOW - 11 * MIN) } } }
        ]));
        assert!(iob(NOW, &ds).is_empty());
        assert!(cob(NOW, &ds).is_empty());
        // Zero IOB displays "0".
        let ds = with_mills(
            json!([{ "created_at": iso(NOW), "loop": { "iob": { "iob": 0, "timestamp": iso(NOW) } } }]),
        );
        assert_eq!(iob(NOW, &ds)["display"], "0");
    }
}
