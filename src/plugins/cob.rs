//! Carbs on board (lib/plugins/cob.js): each carb entry absorbs at the profile's `carbs_hr`
//! after a 20-minute delay, queued behind the carbs still absorbing, and later still by the
//! insulin activity meanwhile (liver sensitivity ratio 8); a loop's device-status COB takes
//! precedence while it is at most 10 minutes old.

use serde_json::Value;

use super::iob::{activity_at, boluses, recent_reports, sourced};
use super::shared::{after, get_obj, moment, set_if, Doc, Mo, MIN as MIN_MS};
use super::{or_nan, truthy_num, Data, Field};
use crate::dates;
use crate::jsnum::{js_number, js_round, js_str, num, opt_num, truthy};

const DELAY_MIN: f64 = 20.0;
const LIVER_SENS_RATIO: f64 = 8.0;
const MIN: f64 = 60_000.0;

/// `Math.max` of two numbers: NaN wins, as in JavaScript.
fn js_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// `date.setMinutes(date.getMinutes() + x)`: the minutes field is truncated to an integer
/// (MakeTime's ToIntegerOrInfinity), in the server's time zone (UTC here).
fn add_minutes(date: f64, x: f64) -> f64 {
    let m = (date / MIN).floor().rem_euclid(60.0);
    let total = (m + x).trunc();
    if !total.is_finite() || date.is_nan() {
        return f64::NAN;
    }
    date + (total - m) * MIN
}

/// lastDecayedBy: the number 0 before the first carbs, then a date (NaN when invalid).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Decayed {
    Zero,
    Date(f64),
}

impl Decayed {
    fn ms(self) -> f64 {
        match self {
            Decayed::Zero => 0.0,
            Decayed::Date(d) => d,
        }
    }

    fn json(self) -> Value {
        match self {
            Decayed::Zero => 0.into(),
            Decayed::Date(d) if d.is_finite() => Value::String(dates::to_iso(d as i64)),
            Decayed::Date(_) => Value::Null,
        }
    }
}

/// `iob.calcTotal(..., time).activity` at a decay time.
fn activity(d: &Data, boluses: &[(i64, f64)], at: Decayed) -> f64 {
    match at {
        Decayed::Zero => activity_at(d, boluses, 0),
        // An invalid date compares false with every treatment time: nothing counts.
        Decayed::Date(x) if x.is_nan() => {
            if d.treatments.is_empty() {
                f64::NAN
            } else {
                0.0
            }
        }
        Decayed::Date(x) => activity_at(d, boluses, x as i64),
    }
}

/// cob.fromTreatments at `d.now`.
pub struct FromTreatments<'a> {
    decayed_by: Decayed,
    is_decaying: f64,
    carbs_hr: Option<f64>,
    raw_carb_impact: f64,
    pub cob: f64,
    last_carbs: Option<&'a Doc>,
}

pub fn from_treatments<'a>(d: &Data<'a>) -> FromTreatments<'a> {
    let time = d.now;
    let at = |t: i64, f: Field| d.profile.and_then(|p| p(t, f));
    let mut total = 0.0;
    let mut last_carbs = None;
    let mut is_decaying = 0.0;
    let mut last = Decayed::Zero;
    let boluses = boluses(d);
    for (t, mills) in d.treatments.iter() {
        if !(truthy(t.get("carbs")) && *mills < time) {
            continue;
        }
        last_carbs = Some(t);
        let carbs = or_nan(js_number(t.get("carbs")));
        let carb_time = *mills as f64;
        // cobCalc.
        let carbs_hr = or_nan(at(*mills, Field::CarbsHr));
        let carbs_min = carbs_hr / 60.0;
        let minutes_left = (last.ms() - carb_time) / MIN;
        let mut decayed_by = add_minutes(
            carb_time,
            js_max(DELAY_MIN, minutes_left) + carbs / carbs_min,
        );
        let start_decay = add_minutes(carb_time, DELAY_MIN);
        let now = time as f64;
        let decaying = if now < last.ms() || now > start_decay {
            1.0
        } else {
            0.0
        };
        let mut decays_in_hr = (decayed_by - now) / 1000.0 / 60.0 / 60.0;
        if decays_in_hr > -10.0 {
            let act_start = activity(d, &boluses, last);
            let act_end = activity(d, &boluses, Decayed::Date(decayed_by));
            let avg = (act_start + act_end) / 2.0;
            let delayed = (avg * LIVER_SENS_RATIO / or_nan(at(*mills, Field::Sens)))
                * or_nan(at(*mills, Field::CarbRatio));
            let delay_minutes = js_round(delayed / carbs_hr * 60.0);
            if delay_minutes > 0.0 {
                decayed_by = add_minutes(decayed_by, delay_minutes);
                decays_in_hr = (decayed_by - now) / 1000.0 / 60.0 / 60.0;
            }
        }
        last = Decayed::Date(decayed_by);
        if decays_in_hr > 0.0 {
            let left = decays_in_hr * carbs_hr;
            total += if carbs.is_nan() || left.is_nan() {
                f64::NAN
            } else {
                carbs.min(left)
            };
            is_decaying = decaying;
        } else {
            total = 0.0;
        }
    }
    let raw = is_decaying * or_nan(at(time, Field::Sens)) / or_nan(at(time, Field::CarbRatio))
        * or_nan(at(time, Field::CarbsHr))
        / 60.0;
    FromTreatments {
        decayed_by: last,
        is_decaying,
        carbs_hr: at(time, Field::CarbsHr),
        raw_carb_impact: raw,
        cob: total,
        last_carbs,
    }
}

fn treatment_cob(t: &FromTreatments) -> Doc {
    let mut out = Doc::new();
    out.insert("decayedBy".into(), t.decayed_by.json());
    out.insert("isDecaying".into(), num(t.is_decaying));
    if let Some(c) = t.carbs_hr {
        out.insert("carbs_hr".into(), num(c));
    }
    out.insert("rawCarbImpact".into(), num(t.raw_carb_impact));
    out.insert("cob".into(), num(t.cob));
    out.insert(
        "lastCarbs".into(),
        t.last_carbs
            .map_or(Value::Null, |c| Value::Object(c.clone())),
    );
    out
}

/// The `cob` property: the device status' (`device`, as [`from_devicestatus`] made
/// it) while there is one, else from the treatments (`source: "Care Portal"`, with
/// `treatmentCOB`) when the profile has `sens` and `carbratio`; `{}` otherwise.
pub fn property(d: &Data, device: Doc) -> Doc {
    if !device.is_empty() {
        return device;
    }
    let Some(profile) = d.profile else {
        return Doc::new();
    };
    if !truthy_num(profile(d.now, Field::Sens)) || !truthy_num(profile(d.now, Field::CarbRatio)) {
        return Doc::new();
    }
    if d.treatments.is_empty() {
        return Doc::new();
    }
    let t = from_treatments(d);
    let inner = treatment_cob(&t);
    let mut out = inner.clone();
    out.insert("source".into(), "Care Portal".into());
    out.insert("treatmentCOB".into(), Value::Object(inner));
    let display = js_round(t.cob * 10.0) / 10.0;
    out.insert("display".into(), num(display));
    out.insert(
        "displayLine".into(),
        format!("COB: {}g", js_str(display)).into(),
    );
    out
}

// ---------------------------------------------------------------------------------------------
// From device statuses (cob.fromDeviceStatus)

/// One device status' COB as cob.fromDeviceStatus reads it.
fn cob_from_status(status: &Doc, now: i64) -> Option<(Doc, Mo, ())> {
    let device = status.get("device");
    let mut out = Doc::new();
    if status.contains_key("openaps") {
        let oa = get_obj(status, "openaps");
        let suggested = oa
            .and_then(|o| o.get("suggested"))
            .filter(|v| truthy(Some(v)));
        let enacted = oa
            .and_then(|o| o.get("enacted"))
            .filter(|v| truthy(Some(v)));
        let ts = |v: &Value| moment(v.get("timestamp"), now);
        let (cob, m) = match (suggested, enacted) {
            (Some(s), Some(e)) => {
                if after(ts(e), ts(s)) {
                    (e.get("COB"), ts(e))
                } else {
                    (s.get("COB"), ts(s))
                }
            }
            (None, Some(e)) => (e.get("COB"), ts(e)),
            (Some(s), None) => (s.get("COB"), ts(s)),
            (None, None) => return None,
        };
        if matches!(cob, Some(Value::Null)) {
            return None;
        }
        set_if(&mut out, "cob", cob);
        sourced(&mut out, "OpenAPS", device, m);
        return Some((out, m, ()));
    }
    let c = get_obj(status, "loop").and_then(|l| get_obj(l, "cob"))?;
    let m = moment(c.get("timestamp"), now);
    set_if(&mut out, "cob", c.get("cob"));
    sourced(&mut out, "Loop", device, m);
    Some((out, m, ()))
}

/// cob.js' device-status part: the newest COB a device status reports, if at most 10
/// minutes old; `{}` otherwise ([`property`] then computes it from the treatments).
pub fn from_devicestatus(now: i64, ds: &[(Doc, i64)]) -> Doc {
    let items = recent_reports(now, ds, |d, _| cob_from_status(d, now));
    let Some((mut out, m, ())) = items.last().cloned() else {
        return Doc::new();
    };
    let value = match out.get("cob") {
        None | Some(Value::Null) => return Doc::new(),
        Some(v) => js_number(Some(v)),
    };
    if m.is_some_and(|m| now - m > 10 * MIN_MS) {
        return Doc::new();
    }
    let display = value.map(|c| js_round(c * 10.0) / 10.0);
    out.insert("display".into(), opt_num(display));
    let text = display.map_or("NaN".into(), js_str);
    out.insert("displayLine".into(), format!("COB: {text}g").into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{data, treatments, MIN as M, NOW};
    use crate::plugins::Settings;
    use serde_json::json;

    fn profile(_: i64, f: Field) -> Option<f64> {
        match f {
            Field::Dia => Some(3.0),
            Field::Sens => Some(50.0),
            Field::CarbRatio => Some(10.0),
            Field::CarbsHr => Some(30.0),
            _ => None,
        }
    }

    #[test]
    fn carbs_alone_absorb_at_carbs_hr_after_the_delay() {
        let s = Settings::default();
        let t = treatments(&[(60, json!({ "eventType": "Carb Correction", "carbs": 40 }))]);
        let d = data(&s, &t, &[], Some(&profile));
        // carbs_min = 30/60 = 0.5; decayedBy = carb time + 20 + 40/0.5 = 100 minutes, 40 from
        // now; no insulin, no delay. COB = min(40, 40/60·30) = 20; rawCarbImpact = 50/10·30/60.
        let p = property(&d, Doc::new());
        assert_eq!(p["cob"], json!(20));
        assert_eq!(p["display"], json!(20));
        assert_eq!(p["displayLine"], json!("COB: 20g"));
        assert_eq!(p["isDecaying"], json!(1));
        assert_eq!(p["rawCarbImpact"], json!(2.5));
        assert_eq!(p["carbs_hr"], json!(30));
        assert_eq!(p["source"], json!("Care Portal"));
        assert_eq!(p["decayedBy"], json!(dates::to_iso(NOW + 40 * M)));
        assert_eq!(p["treatmentCOB"]["cob"], json!(20));
        assert_eq!(p["lastCarbs"]["carbs"], json!(40));
    }

    #[test]
    fn insulin_activity_delays_absorption() {
        let s = Settings::default();
        let t = treatments(&[(
            60,
            json!({ "eventType": "Meal Bolus", "carbs": 40, "insulin": 2 }),
        )]);
        let d = data(&s, &t, &[], Some(&profile));
        // Activity at decayedBy (100 min after the bolus, dia 3):
        // 50·2·(2/3/60 - 25·2/3/60/105) = 0.846561; at lastDecayedBy (0) none; average
        // 0.423280 → 0.423280·8/50·10 = 0.677249 g → round(0.677249/30·60) = 1 minute more.
        // COB = min(40, 41/60·30) = 20.5.
        let p = property(&d, Doc::new());
        assert_eq!(p["cob"], json!(20.5));
        assert_eq!(p["displayLine"], json!("COB: 20.5g"));
    }

    #[test]
    fn queued_carbs_and_device_status_precedence() {
        let s = Settings::default();
        // 30 g 30 min ago (decays by +80 min: 50 from now), then 15 g 10 min ago: 60 minutes
        // left > 20, so it queues: 60 + 15/0.5 = 90 minutes after it, 80 from now.
        // Total: min(30, 50/60·30 = 25) + min(15, 80/60·30) = 25 + 15 = 40.
        let t = treatments(&[(30, json!({ "carbs": 30 })), (10, json!({ "carbs": "15" }))]);
        let d = data(&s, &t, &[], Some(&profile));
        assert_eq!(property(&d, Doc::new())["cob"], json!(40));
        // A device status' COB (already checked for age) wins as it is.
        let device = crate::plugins::testing::doc(json!({ "cob": 12, "source": "Loop" }));
        assert_eq!(property(&d, device.clone()), device);
        // No profile, or one without carbratio: {}.
        assert!(property(&data(&s, &t, &[], None), Doc::new()).is_empty());
        let no_ratio = |_: i64, f: Field| (f == Field::Sens).then_some(50.0);
        assert!(property(&data(&s, &t, &[], Some(&no_ratio)), Doc::new()).is_empty());
    }
}
