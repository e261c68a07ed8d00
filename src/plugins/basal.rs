//! The basal pill (lib/plugins/basalprofile.js with profilefunctions.js getTempBasal): the
//! profile's scheduled rate now, replaced by an active temp basal (absolute, or a percent
//! change) and raised by an active combo bolus' extended part.

use serde_json::Value;

use super::Doc;
use super::{or_nan, truthy_num, Data, Field};
use crate::jsnum::{js_number, num, to_fixed, truthy};

const MIN: f64 = 60_000.0;

/// A temp basal or combo bolus with its time and (possibly cut) duration in minutes.
#[derive(Debug, Clone, Copy)]
struct Timed<'a> {
    doc: &'a Doc,
    mills: i64,
    duration: f64,
    /// Whether processDurations shortened it (its JSON then shows the new duration).
    cut: bool,
}

impl<'a> Timed<'a> {
    fn new(doc: &'a Doc, mills: i64) -> Timed<'a> {
        Timed {
            doc,
            mills,
            duration: or_nan(js_number(doc.get("duration"))),
            cut: false,
        }
    }

    fn has_duration(&self) -> bool {
        truthy(self.doc.get("duration"))
    }

    /// `mills + (duration || 0)` minutes.
    fn end(&self) -> f64 {
        let minutes = if self.duration.is_nan() {
            0.0
        } else {
            self.duration
        };
        self.mills as f64 + minutes * MIN
    }

    /// cutIfInInterval: ends this one where `end` starts, if inside it.
    fn cut_by(&mut self, end_mills: i64) {
        if self.mills < end_mills && self.end() > end_mills as f64 {
            self.duration = (end_mills - self.mills) as f64 / MIN;
            self.cut = true;
        }
    }

    /// The treatment as Nightscout's profile holds it: the cut duration and `endmills`.
    fn json(&self, with_end: bool) -> Value {
        let mut doc = self.doc.clone();
        if self.cut {
            doc.insert("duration".into(), num(self.duration));
        }
        if with_end {
            doc.insert("endmills".into(), num(self.end()));
        }
        Value::Object(doc)
    }
}

/// ddata.processDurations (without zero durations): unique by time; each temp basal is cut
/// by any later one (a zero duration is a cancel) that starts while it runs. The treatments
/// are in time order, so the earliest later start is the next one, which is where the cuts
/// of Nightscout's two passes over all pairs end.
fn temp_basals<'a>(d: &Data<'a>) -> Vec<Timed<'a>> {
    let mut list: Vec<Timed> = vec![];
    for (t, m) in d.treatments {
        let is_temp = t
            .get("eventType")
            .and_then(Value::as_str)
            .is_some_and(|e| e.contains("Temp Basal"));
        if is_temp && list.last().is_none_or(|x| x.mills != *m) {
            list.push(Timed::new(t, *m));
        }
    }
    for i in 1..list.len() {
        let next = list[i].mills;
        if list[i - 1].has_duration() {
            list[i - 1].cut_by(next);
        }
    }
    list.retain(Timed::has_duration);
    list
}

/// tempBasalTreatment: the binary search over the sorted temp basals.
fn active_temp<'a>(list: &[Timed<'a>], time: i64) -> Option<Timed<'a>> {
    let (mut first, mut last) = (0_i64, list.len() as i64 - 1);
    while first <= last {
        let i = first + (last - first) / 2;
        let t = list[i as usize];
        if time >= t.mills && (time as f64) <= t.end() {
            return Some(t);
        }
        if time < t.mills {
            last = i - 1;
        } else {
            first = i + 1;
        }
    }
    None
}

/// comboBolusTreatment: the last combo bolus running at `time` (start and end excluded).
fn active_combo<'a>(d: &Data<'a>, time: i64) -> Option<Timed<'a>> {
    d.treatments
        .iter()
        .filter(|(t, _)| t.get("eventType").and_then(Value::as_str) == Some("Combo Bolus"))
        .map(|(t, m)| Timed::new(t, *m))
        .rfind(|c| (time as f64) < c.end() && time > c.mills)
}

/// The `basal` property, `{display, current}`; `None` without a profile with a basal now.
pub fn property(d: &Data) -> Option<Doc> {
    let profile = d.profile?;
    let time = d.now;
    let basal = profile(time, Field::Basal);
    if !truthy_num(basal) {
        return None;
    }
    let temps = temp_basals(d);
    let temp = active_temp(&temps, time);
    let combo = active_combo(d, time);
    let scheduled = or_nan(basal);
    let mut tempbasal = scheduled;
    if let Some(t) = temp {
        let absolute = t.doc.get("absolute").and_then(|a| js_number(Some(a)));
        let percent = js_number(t.doc.get("percent"));
        // `!isNaN(absolute)`: a temp to 0 counts; a missing absolute does not.
        if let (Some(a), true) = (absolute, t.duration > 0.0) {
            tempbasal = a;
        } else if truthy(t.doc.get("percent")) {
            tempbasal = scheduled * (100.0 + or_nan(percent)) / 100.0;
        }
    }
    let combobolus = combo
        .as_ref()
        .filter(|c| truthy(c.doc.get("relative")))
        .map_or(0.0, |c| or_nan(js_number(c.doc.get("relative"))));
    let total = tempbasal + combobolus;
    let mut mark = String::new();
    if temp.is_some() {
        mark.push('T');
    }
    if combo.is_some() {
        mark.push('C');
    }
    if !mark.is_empty() {
        mark.push_str(": ");
    }
    let mut current = Doc::new();
    current.insert("basal".into(), num(scheduled));
    current.insert(
        "treatment".into(),
        temp.map_or(Value::Null, |t| t.json(true)),
    );
    current.insert(
        "combobolustreatment".into(),
        combo.map_or(Value::Null, |c| c.json(false)),
    );
    current.insert("tempbasal".into(), num(tempbasal));
    current.insert("combobolusbasal".into(), num(combobolus));
    current.insert("totalbasal".into(), num(total));
    let mut out = Doc::new();
    out.insert(
        "display".into(),
        format!("{mark}{}U", to_fixed(total, 3)).into(),
    );
    out.insert("current".into(), Value::Object(current));
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::testing::{data, treatments, MIN as M, NOW};
    use crate::plugins::Settings;
    use serde_json::json;

    // NOW is 2023-11-14T22:13:20Z: the 22:00 rate (UTC profile).
    fn profile(t: i64, f: Field) -> Option<f64> {
        let hour = t.rem_euclid(86_400_000) / 3_600_000;
        (f == Field::Basal).then_some(if hour >= 22 { 1.0 } else { 0.8 })
    }

    fn display(list: &[(i64, serde_json::Value)]) -> Option<Doc> {
        let s = Settings::default();
        let t = treatments(list);
        property(&data(&s, &t, &[], Some(&profile)))
    }

    #[test]
    fn scheduled_rate_without_temps() {
        let p = display(&[]).unwrap_or_default();
        assert_eq!(p["display"], json!("1.000U"));
        assert_eq!(
            p["current"],
            json!({ "basal": 1, "treatment": null, "combobolustreatment": null,
                    "tempbasal": 1, "combobolusbasal": 0, "totalbasal": 1 })
        );
        // Without a profile (or without a basal now): no property.
        let s = Settings::default();
        assert!(property(&data(&s, &[], &[], None)).is_none());
    }

    #[test]
    fn absolute_percent_and_zero_temps() {
        let abs = json!({ "eventType": "Temp Basal", "absolute": 1.5, "duration": 30 });
        let p = display(&[(10, abs)]).unwrap_or_default();
        assert_eq!(p["display"], json!("T: 1.500U"));
        assert_eq!(p["current"]["treatment"]["endmills"], json!(NOW + 20 * M));
        let pct = json!({ "eventType": "Temp Basal", "percent": -30, "duration": 30 });
        // 1.0·(100 - 30)/100 = 0.7.
        assert_eq!(
            display(&[(10, pct)]).unwrap_or_default()["display"],
            json!("T: 0.700U")
        );
        let zero = json!({ "eventType": "Temp Basal", "absolute": 0, "duration": 30 });
        assert_eq!(
            display(&[(10, zero)]).unwrap_or_default()["display"],
            json!("T: 0.000U")
        );
        // Ended ten minutes ago.
        let over = json!({ "eventType": "Temp Basal", "absolute": 2, "duration": 20 });
        assert_eq!(
            display(&[(30, over)]).unwrap_or_default()["display"],
            json!("1.000U")
        );
    }

    #[test]
    fn later_temps_and_cancels_cut_earlier_ones() {
        let long = json!({ "eventType": "Temp Basal", "absolute": 2, "duration": 120 });
        let next = json!({ "eventType": "Temp Basal", "absolute": 0.5, "duration": 60 });
        let p = display(&[(40, long.clone()), (20, next.clone())]).unwrap_or_default();
        assert_eq!(p["display"], json!("T: 0.500U"));
        // A zero-duration Temp Basal (a cancel) 5 minutes ago ends the running one.
        let cancel = json!({ "eventType": "Temp Basal", "duration": 0 });
        let p = display(&[(40, long), (20, next), (5, cancel)]).unwrap_or_default();
        assert_eq!(p["display"], json!("1.000U"));
    }

    #[test]
    fn combo_bolus_adds_its_extended_rate() {
        let combo = json!({ "eventType": "Combo Bolus", "insulin": 1, "relative": 0.4,
                            "duration": 60 });
        let temp = json!({ "eventType": "Temp Basal", "absolute": 1.5, "duration": 30 });
        let p = display(&[(10, combo.clone()), (5, temp)]).unwrap_or_default();
        assert_eq!(p["display"], json!("TC: 1.900U"));
        let p = display(&[(10, combo)]).unwrap_or_default();
        assert_eq!(p["display"], json!("C: 1.400U"));
        assert_eq!(p["current"]["combobolusbasal"], json!(0.4));
    }
}
