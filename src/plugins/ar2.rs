//! AR2 forecast (lib/plugins/ar2.js): a second-order autoregressive model on the log of the
//! glucose, from the current 5-minute mean and the one five minutes before; six points
//! (30 minutes) for the property and its predictive alarm. The viewer's cone (thirteen
//! widening pairs) is drawn by web/forecast.js; the tests keep a reference of it.

use serde_json::{json, Value};

use super::shared::{scale_mgdl, Doc, MIN};
use super::Data;
use crate::config::{Thresholds, Units};
use crate::jsnum::{js_number, js_round, js_str, mgdl_to_mmol, num};

const BG_REF: f64 = 140.0;
const BG_MIN: f64 = 36.0;
const BG_MAX: f64 = 400.0;
const WARN_THRESHOLD: f64 = 0.05;
const URGENT_THRESHOLD: f64 = 0.10;
const AR: [f64; 2] = [-0.723, 1.716];
const COLOR: &str = "cyan";
const FIVE_MIN: i64 = 5 * MIN;
/// A forecast point: `{mills, mgdl, color}`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub mills: i64,
    pub mgdl: f64,
}

/// The model's state: the time of the last point and the last two log values.
#[derive(Debug, Clone, Copy)]
struct State {
    time: i64,
    prev: f64,
    curr: f64,
}

impl State {
    fn next(self) -> State {
        State {
            time: self.time + FIVE_MIN,
            prev: self.curr,
            curr: AR[0] * self.prev + AR[1] * self.curr,
        }
    }

    /// ar2Point: the value `cone * step` away in log space, rounded and clamped to 36..400.
    fn point(self, offset: i64, cone: f64, step: f64) -> Point {
        let mgdl = js_round(BG_REF * (self.curr + cone * step).exp());
        Point {
            mills: self.time + offset,
            mgdl: mgdl.clamp(BG_MIN, BG_MAX),
        }
    }
}

/// okToForecast + initAR2: the start from `bgnow` and `delta` (mean, its time, the mean five
/// minutes earlier); `None` when Nightscout does not forecast.
fn start(props: &Doc, now: i64) -> Option<State> {
    let bgnow = props.get("bgnow")?.as_object()?;
    let delta = props.get("delta")?.as_object()?;
    let mean = js_number(bgnow.get("mean")).filter(|m| *m >= BG_MIN)?;
    // `delta.mean5MinsAgo && _.isNumber(...)`: a non-zero number.
    let before = delta
        .get("mean5MinsAgo")
        .and_then(Value::as_f64)
        .filter(|m| *m != 0.0 && !m.is_nan())?;
    let time = bgnow
        .get("mills")
        .and_then(Value::as_i64)
        .filter(|m| *m != 0)
        .unwrap_or(now);
    Some(State {
        time,
        prev: (before / BG_REF).ln(),
        curr: (mean / BG_REF).ln(),
    })
}

/// ar2.forecast: six points 5 minutes apart (2 s after each step) and the average loss,
/// the mean squared log10 distance of the first six from 120 mg/dl.
pub fn forecast(props: &Doc, now: i64) -> (Vec<Point>, f64) {
    let Some(mut s) = start(props, now) else {
        return (vec![], 0.0);
    };
    let mut points = Vec::with_capacity(6);
    for _ in 0..6 {
        s = s.next();
        points.push(s.point(2000, 0.0, 0.0));
    }
    let size = (points.len() - 1).min(6);
    let mut avg_loss = 0.0;
    for p in points.iter().take(size + 1) {
        let log10 = (p.mgdl / 120.0).ln() / std::f64::consts::LN_10;
        avg_loss += 1.0 / size as f64 * log10.powi(2);
    }
    (points, avg_loss)
}

/// sandbox.scaleEntry's number for a forecast point.
fn scaled(units: Units, p: &Point) -> f64 {
    match units {
        Units::MgDl => p.mgdl,
        Units::Mmol => mgdl_to_mmol(p.mgdl).parse().unwrap_or(f64::NAN),
    }
}

/// checkForecast + selectEventType: the alarm level of an average loss (2 urgent above 0.10,
/// 1 warning above 0.05) and `high`/`low` when the point 20 minutes ahead is beyond the
/// target range and that alarm is switched on ("" otherwise).
pub fn level(
    points: &[Point],
    avg_loss: f64,
    units: Units,
    thresholds: &Thresholds,
    alarm_high: bool,
    alarm_low: bool,
) -> Option<(i64, &'static str)> {
    let level = if avg_loss > URGENT_THRESHOLD {
        2
    } else if avg_loss > WARN_THRESHOLD {
        1
    } else {
        return None;
    };
    let mut event = "";
    if let Some(p) = points.get(3) {
        let in20 = scaled(units, p);
        if alarm_high && in20 > scale_mgdl(units, thresholds.bg_target_top) {
            event = "high";
        } else if alarm_low && in20 < scale_mgdl(units, thresholds.bg_target_bottom) {
            event = "low";
        }
    }
    Some((level, event))
}

/// The `ar2` property: `{forecast: {predicted, avgLoss}, level?, eventName?, displayLine?}`.
pub fn property(props: &Doc, d: &Data) -> Doc {
    let (points, avg_loss) = forecast(props, d.now);
    let predicted: Vec<Value> = points
        .iter()
        .map(|p| {
            // scaleEntry leaves `scaled` on each point: the mmol text, or the mg/dl number.
            let scaled = match d.units {
                Units::MgDl => num(p.mgdl),
                Units::Mmol => mgdl_to_mmol(p.mgdl).into(),
            };
            json!({ "mills": p.mills, "mgdl": num(p.mgdl), "color": COLOR, "scaled": scaled })
        })
        .collect();
    let mut out = Doc::new();
    out.insert(
        "forecast".into(),
        json!({ "predicted": predicted, "avgLoss": num(avg_loss) }),
    );
    let found = level(
        &points,
        avg_loss,
        d.units,
        &d.thresholds,
        d.alarm_high,
        d.alarm_low,
    );
    if let Some((level, event)) = found {
        out.insert("level".into(), level.into());
        out.insert("eventName".into(), event.into());
    }
    if let Some(p) = points.get(2) {
        let unit = match d.units {
            Units::MgDl => "mg/dl",
            Units::Mmol => "mmol/L",
        };
        let line = format!("BG 15m: {} {unit}", js_str(scaled(d.units, p)));
        out.insert("displayLine".into(), line.into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::{testing, Settings};

    /// forecastCone's steps: how far each later point of the cone spreads.
    const CONE_STEPS: [f64; 13] = [
        0.020, 0.041, 0.061, 0.081, 0.099, 0.116, 0.132, 0.146, 0.159, 0.171, 0.182, 0.192, 0.201,
    ];

    /// ar2.forecastCone: for each step the lower (2 s after the step, when the cone factor is
    /// positive) and upper (4 s after) bound, for the viewer.
    fn cone(props: &Doc, now: i64, cone_factor: f64) -> Vec<Point> {
        let Some(mut s) = start(props, now) else {
            return vec![];
        };
        let mut points = vec![];
        for step in CONE_STEPS {
            s = s.next();
            if cone_factor > 0.0 {
                points.push(s.point(2000, -cone_factor, step));
            }
            points.push(s.point(4000, cone_factor, step));
        }
        points
    }

    const T: i64 = 1_700_000_000_000;

    fn props(mean: f64, before: f64) -> Doc {
        json!({
            "bgnow": { "mean": mean, "last": mean, "mills": T },
            "delta": { "mean5MinsAgo": before }
        })
        .as_object()
        .cloned()
        .unwrap_or_default()
    }

    fn data(units: Units, settings: &Settings) -> Data<'_> {
        let mut d = testing::data(settings, &[], &[], None);
        d.units = units;
        d.now = T + 60_000;
        d
    }

    #[test]
    fn forecast_rising_matches_nightscout() {
        // 150 now, 140 five minutes ago: prev = ln(140/140) = 0, curr = ln(150/140) = 0.0689929.
        // Step 1: curr = -0.723*0 + 1.716*0.0689929 = 0.1183918 → 140·e^0.1183918 = 157.60 → 158;
        // then 0.1532837 → 163.19 → 163, 0.1774470 → 167.18 → 167, 0.1936822 → 169.87 → 170,
        // 0.2041647 → 171.66 → 172, 0.2102214 → 172.70 → 173.
        let (points, loss) = forecast(&props(150.0, 140.0), T + 60_000);
        let mgdl: Vec<f64> = points.iter().map(|p| p.mgdl).collect();
        assert_eq!(mgdl, vec![158.0, 163.0, 167.0, 170.0, 172.0, 173.0]);
        let mills: Vec<i64> = points.iter().map(|p| p.mills).collect();
        assert_eq!(mills[0], T + 300_000 + 2000);
        assert_eq!(mills[5], T + 6 * 300_000 + 2000);
        // avgLoss = Σ_{j=0..5} 1/5 · log10(mgdl_j/120)²: 6 terms over size 5, as Nightscout.
        let expect: f64 = mgdl
            .iter()
            .map(|m| 1.0 / 5.0 * ((m / 120.0).ln() / std::f64::consts::LN_10).powi(2))
            .sum();
        assert!((loss - expect).abs() < 1e-15);
        assert!((loss - 0.025026).abs() < 1e-6, "{loss}");
    }

    #[test]
    fn property_levels_and_event_names() {
        let s = Settings::default();
        // Falling fast: 70 now, 85 before → 61, 56, 52, 51, 50, 49; loss 0.1524 > 0.10.
        let d = data(Units::MgDl, &s);
        let p = property(&props(70.0, 85.0), &d);
        let pred = &p["forecast"]["predicted"];
        assert_eq!(pred[0]["mgdl"], json!(61));
        assert_eq!(pred[3]["mgdl"], json!(51));
        assert_eq!(pred[0]["color"], json!("cyan"));
        assert_eq!(pred[0]["scaled"], json!(61));
        assert_eq!(p["level"], json!(2));
        assert_eq!(p["eventName"], json!("low"));
        assert_eq!(p["displayLine"], json!("BG 15m: 52 mg/dl"));
        // In range and steady (the model drifts towards 140: 120, 120, 121, ...): no level.
        let calm = property(&props(120.0, 120.0), &d);
        assert!(calm.get("level").is_none());
        assert_eq!(calm["forecast"]["predicted"][2]["mgdl"], json!(121));
        let keys: Vec<&String> = calm.keys().collect();
        assert_eq!(keys, vec!["forecast", "displayLine"]);
        // mmol: the point's `scaled` is the one-decimal text (167 / 18.01559 = 9.27 → "9.3"),
        // the line its number.
        let m = property(&props(150.0, 140.0), &data(Units::Mmol, &s));
        assert_eq!(m["forecast"]["predicted"][2]["scaled"], json!("9.3"));
        assert_eq!(m["displayLine"], json!("BG 15m: 9.3 mmol/L"));
        // No delta: nothing forecast.
        let mut none = props(150.0, 140.0);
        none.remove("delta");
        let n = property(&none, &d);
        assert_eq!(n["forecast"], json!({ "predicted": [], "avgLoss": 0 }));
        assert!(n.get("displayLine").is_none());
    }

    #[test]
    fn low_alarm_needs_alarm_low_on() {
        let s = Settings::default();
        let mut d = data(Units::MgDl, &s);
        d.alarm_low = false;
        let p = property(&props(70.0, 85.0), &d);
        assert_eq!(p["level"], json!(2));
        assert_eq!(p["eventName"], json!(""));
    }

    #[test]
    fn cone_pairs_widen() {
        // Steady 120: step 1 is -0.723·ln(120/140) + 1.716·ln(120/140) = -0.1530716; the cone
        // adds ∓2·0.020: 140·e^-0.1930716 = 115.42 → 115, 140·e^-0.1130716 = 125.03 → 125.
        let c = cone(&props(120.0, 120.0), T, 2.0);
        assert_eq!(c.len(), 26);
        assert_eq!((c[0].mgdl, c[0].mills), (115.0, T + 300_000 + 2000));
        assert_eq!((c[1].mgdl, c[1].mills), (125.0, T + 300_000 + 4000));
        // Last step (0.201) around 124.56: 83 and 186.
        assert_eq!((c[24].mgdl, c[25].mgdl), (83.0, 186.0));
        // Factor 0: upper points only, on the curve itself.
        let flat = cone(&props(120.0, 120.0), T, 0.0);
        assert_eq!(flat.len(), 13);
        assert_eq!((flat[0].mgdl, flat[12].mgdl), (120.0, 125.0));
    }
}
