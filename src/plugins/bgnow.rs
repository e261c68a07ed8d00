//! bgnow (lib/plugins/bgnow.js): the readings in four 5-minute buckets back from the newest,
//! the newest bucket as `bgnow`, the change to the one before it as `delta`, and the buckets.

use serde_json::{json, Value};

use super::shared::{obj, round_bg, scale_mgdl, set_if, Doc, MIN};
use crate::config::Units;
use crate::dates;
use crate::jsnum::{js_number, js_round, js_str, mgdl_to_mmol, num, opt_num, truthy};

/// The fields of an entry a reading keeps besides `_id`, `mgdl`, `mills` and `type` (also
/// what ddata sends followers).
pub const SGV_FIELDS: [&str; 6] = [
    "device",
    "direction",
    "filtered",
    "unfiltered",
    "noise",
    "rssi",
];

/// One reading as Nightscout's ddata.sgvs holds it.
#[derive(Debug, Clone)]
pub struct Sgv {
    /// `{_id, mgdl, mills, device, direction, filtered, unfiltered, noise, rssi, type}`.
    pub doc: Doc,
    /// `Number(sgv)`; `None` is NaN.
    pub mgdl: Option<f64>,
    pub mills: i64,
}

/// The readings among `entries` (newest first), oldest first: entries with a truthy `sgv` and
/// no truthy `mbg`, as Nightscout's data loader splits them.
pub fn sgvs(entries: &[Doc]) -> Vec<Sgv> {
    let mut out: Vec<Sgv> = entries
        .iter()
        .rev()
        .filter(|e| truthy(e.get("sgv")) && !truthy(e.get("mbg")))
        .filter_map(|e| {
            let mills = e
                .get("date")
                .and_then(dates::ms_from_number)
                .or_else(|| e.get("mills").and_then(dates::ms_from_number))?;
            let mgdl = js_number(e.get("sgv"));
            let mut doc = Doc::new();
            set_if(&mut doc, "_id", e.get("_id"));
            doc.insert("mgdl".into(), opt_num(mgdl));
            doc.insert("mills".into(), mills.into());
            for k in SGV_FIELDS {
                set_if(&mut doc, k, e.get(k));
            }
            doc.insert("type".into(), "sgv".into());
            Some(Sgv { doc, mgdl, mills })
        })
        .collect();
    out.sort_by_key(|s| s.mills);
    out
}

/// sandbox.scaleEntry: adds `scaled` (mmol as a one-decimal string, mg/dl as the number).
fn scale_entry(units: Units, s: &mut Sgv) {
    if s.doc.contains_key("scaled") {
        return;
    }
    let scaled = match (units, s.mgdl) {
        (Units::Mmol, Some(m)) => Value::String(mgdl_to_mmol(m)),
        (Units::Mmol, None) => Value::String("NaN".into()),
        (Units::MgDl, m) => opt_num(m),
    };
    s.doc.insert("scaled".into(), scaled);
}

/// A 5-minute bucket after bgnow.analyzeBucket.
struct Bucket {
    /// Its JSON, `index`/`fromMills`/`toMills` included.
    json: Doc,
    mean: Option<f64>,
    mills: Option<i64>,
    empty: bool,
}

impl Bucket {
    /// The bucket without its bookkeeping fields (what `bgnow` and `delta.previous` show).
    fn public(&self) -> Doc {
        let mut d = self.json.clone();
        for k in ["index", "fromMills", "toMills"] {
            d.shift_remove(k);
        }
        d
    }
}

pub struct BgNow {
    pub bgnow: Doc,
    pub delta: Option<Doc>,
    pub buckets: Vec<Value>,
}

const BUCKET_MS: i64 = 5 * MIN;
const BUCKET_OFFSET_MS: i64 = 150_000;

/// bgnow.setProperties: four 5-minute buckets back from the last reading, the newest
/// non-empty one as `bgnow` and the delta to the one before it. Marks bucketed readings as
/// scaled.
pub fn compute(now: i64, units: Units, sgvs: &mut [Sgv]) -> BgNow {
    let last = sgvs.iter().rposition(|s| s.mills <= now);
    let last_mills = last.map(|i| sgvs[i].mills);
    let ranges: Vec<Option<(i64, i64)>> = (0..4)
        .map(|i| {
            last_mills.map(|m| {
                (
                    m - BUCKET_OFFSET_MS - i * BUCKET_MS,
                    m - BUCKET_OFFSET_MS - i * BUCKET_MS + BUCKET_MS,
                )
            })
        })
        .collect();
    let mut members: Vec<Vec<usize>> = vec![vec![]; 4];
    // Newest first, skipping future readings, until one falls outside every bucket.
    for idx in (0..sgvs.len()).rev() {
        let m = sgvs[idx].mills;
        if m > now {
            continue;
        }
        let Some(b) = ranges
            .iter()
            .position(|r| r.is_some_and(|(from, to)| m >= from && m <= to))
        else {
            break;
        };
        scale_entry(units, &mut sgvs[idx]);
        members[b].push(idx);
    }
    let buckets: Vec<Bucket> = members
        .iter()
        .enumerate()
        .map(|(index, idxs)| analyze_bucket(index, ranges[index], idxs, sgvs))
        .collect();
    let recent = buckets.iter().find(|b| !b.empty);
    let previous = recent.and_then(|r| {
        buckets
            .iter()
            .find(|b| !b.empty && matches!((b.mills, r.mills), (Some(a), Some(c)) if a < c))
    });
    let delta = match (recent, previous) {
        (Some(r), Some(p)) => calc_delta(units, r, p),
        _ => None,
    };
    BgNow {
        bgnow: recent.map(Bucket::public).unwrap_or_default(),
        delta,
        buckets: buckets.into_iter().map(|b| Value::Object(b.json)).collect(),
    }
}

fn analyze_bucket(index: usize, range: Option<(i64, i64)>, idxs: &[usize], sgvs: &[Sgv]) -> Bucket {
    let mut tail = Doc::new();
    tail.insert("index".into(), index.into());
    tail.insert(
        "fromMills".into(),
        range.map_or(Value::Null, |r| r.0.into()),
    );
    tail.insert("toMills".into(), range.map_or(Value::Null, |r| r.1.into()));
    let members: Vec<&Sgv> = idxs.iter().map(|i| &sgvs[*i]).collect();
    tail.insert(
        "sgvs".into(),
        Value::Array(
            members
                .iter()
                .map(|s| Value::Object(s.doc.clone()))
                .collect(),
        ),
    );
    if members.is_empty() {
        tail.insert("isEmpty".into(), true.into());
        return Bucket {
            json: tail,
            mean: None,
            mills: None,
            empty: true,
        };
    }
    // Readings of 39 and below are sensor errors (a Dexcom convention Nightscout keeps).
    let valid: Vec<&Sgv> = members
        .iter()
        .copied()
        .filter(|s| s.mgdl.is_some_and(|m| m > 39.0))
        .collect();
    let mut json = Doc::new();
    let mean = if valid.is_empty() {
        None
    } else {
        let sum: f64 = valid.iter().filter_map(|s| s.mgdl).sum();
        Some(sum / valid.len() as f64).filter(|m| *m != 0.0)
    };
    if let Some(m) = mean {
        json.insert("mean".into(), num(m));
    }
    // The first of the newest (lodash maxBy keeps the first maximum).
    let mut most_recent: Option<&Sgv> = None;
    for s in &valid {
        if most_recent.is_none_or(|r| s.mills > r.mills) {
            most_recent = Some(s);
        }
    }
    if let Some(r) = most_recent {
        json.insert("last".into(), opt_num(r.mgdl));
        json.insert("mills".into(), r.mills.into());
    }
    let errors: Vec<Value> = members
        .iter()
        .filter(|s| s.mgdl.is_none_or(|m| m == 0.0 || m < 39.0))
        .map(|s| Value::Object(s.doc.clone()))
        .collect();
    if !errors.is_empty() {
        json.insert("errors".into(), Value::Array(errors));
    }
    json.extend(tail);
    Bucket {
        json,
        mean,
        mills: most_recent.map(|r| r.mills),
        empty: false,
    }
}

/// bgnow.calcDelta between the newest bucket and the one before it.
fn calc_delta(units: Units, recent: &Bucket, previous: &Bucket) -> Option<Doc> {
    let (rm, pm) = (recent.mean?, previous.mean?);
    let (rt, pt) = (recent.mills?, previous.mills?);
    let absolute = rm - pm;
    let elapsed = (rt - pt) as f64 / MIN as f64;
    // Farther apart than a missed reading: scale the change to 5 minutes.
    let interpolated = elapsed > 9.0;
    let mean5 = if interpolated {
        rm - absolute / elapsed * 5.0
    } else {
        rm - absolute
    };
    let mgdl = js_round(rm - mean5);
    let scaled = match units {
        Units::Mmol => round_bg(units, scale_mgdl(units, rm) - scale_mgdl(units, mean5)),
        Units::MgDl => mgdl,
    };
    let display = format!("{}{}", if scaled >= 0.0 { "+" } else { "" }, js_str(scaled));
    Some(obj(json!({
        "absolute": num(absolute),
        "elapsedMins": num(elapsed),
        "interpolated": interpolated,
        "mean5MinsAgo": num(mean5),
        "times": { "recent": rt, "previous": pt },
        "mgdl": num(mgdl),
        "scaled": num(scaled),
        "display": display,
        "previous": previous.public(),
    })))
}

#[cfg(test)]
mod tests {
    use crate::plugins::testing::{from_entries, sgv, MIN, NOW};
    use serde_json::json;

    #[test]
    fn bgnow_delta_buckets_direction_mgdl() {
        let t0 = NOW - 60_000;
        let p = from_entries(
            "mg/dl",
            vec![
                // Outside the four buckets: collection stops there.
                sgv(40 * MIN, 90, "a"),
                sgv(11 * MIN, 111, "a"),
                sgv(6 * MIN, 115, "a"),
                sgv(MIN, 120, "a"),
                // In the future: skipped.
                sgv(-5 * MIN, 200, "a"),
            ],
        );
        let bgnow = &p["bgnow"];
        let keys: Vec<&String> = bgnow.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["mean", "last", "mills", "sgvs"]);
        assert_eq!(bgnow["mean"], 120);
        assert_eq!(bgnow["last"], 120);
        assert_eq!(bgnow["mills"], t0);
        assert_eq!(
            bgnow["sgvs"],
            json!([{ "mgdl": 120, "mills": t0, "device": "a", "direction": "Flat", "type": "sgv", "scaled": 120 }])
        );
        // Previous bucket: 115 five minutes earlier.
        let d = &p["delta"];
        let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "absolute",
                "elapsedMins",
                "interpolated",
                "mean5MinsAgo",
                "times",
                "mgdl",
                "scaled",
                "display",
                "previous"
            ]
        );
        assert_eq!(d["absolute"], 5);
        assert_eq!(d["elapsedMins"], 5);
        assert_eq!(d["interpolated"], false);
        assert_eq!(d["mean5MinsAgo"], 115);
        assert_eq!(
            d["times"],
            json!({ "recent": t0, "previous": t0 - 5 * MIN })
        );
        assert_eq!(
            (d["mgdl"].clone(), d["scaled"].clone()),
            (json!(5), json!(5))
        );
        assert_eq!(d["display"], "+5");
        assert_eq!(d["previous"]["mean"], 115);
        assert!(d["previous"].get("index").is_none());
        // Buckets 0..2 hold 120, 115, 111; bucket 3 ([t0-17.5m, t0-12.5m]) is empty.
        let buckets = p["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), 4);
        assert_eq!(buckets[0]["fromMills"], t0 - 150_000);
        assert_eq!(buckets[0]["toMills"], t0 + 150_000);
        assert_eq!(buckets[2]["mean"], 111);
        assert_eq!(buckets[3]["isEmpty"], true);
        assert_eq!(buckets[3]["sgvs"], json!([]));
        // 1 minute old: current. → is U+2192 (8594).
        assert_eq!(
            p["direction"],
            json!({ "display": null, "value": "Flat", "label": "→", "entity": "&#8594;" })
        );
    }

    #[test]
    fn delta_interpolates_over_a_gap() {
        // 120 now, 110 ten minutes ago (bucket 1 empty): the 10 mg/dl change over 10 minutes
        // is 5 per 5 minutes; mean5MinsAgo = 120 - 10/10*5 = 115.
        let p = from_entries("mg/dl", vec![sgv(10 * MIN, 110, "a"), sgv(0, 120, "a")]);
        let d = &p["delta"];
        assert_eq!(d["absolute"], 10);
        assert_eq!(d["elapsedMins"], 10);
        assert_eq!(d["interpolated"], true);
        assert_eq!(d["mean5MinsAgo"], 115);
        assert_eq!(d["mgdl"], 5);
        assert_eq!(d["display"], "+5");
    }

    #[test]
    fn mmol_scaling_and_signs() {
        // 120 → 6.6609 → "6.7"; 115 → 6.3833 → 6.4; 6.7 - 6.4 = 0.2999999999999998 → 0.3.
        let p = from_entries("mmol", vec![sgv(5 * MIN, 115, "a"), sgv(0, 120, "a")]);
        assert_eq!(p["bgnow"]["sgvs"][0]["scaled"], "6.7");
        assert_eq!(p["bgnow"]["last"], 120);
        assert_eq!(p["delta"]["mgdl"], 5);
        assert_eq!(p["delta"]["scaled"], 0.3);
        assert_eq!(p["delta"]["display"], "+0.3");
        // 117 → 6.4943 → 6.5; 6.5 - 6.7 = -0.20000000000000018 → Math.round(-2.0…) = -2 → -0.2.
        let p = from_entries("mmol", vec![sgv(5 * MIN, 120, "a"), sgv(0, 117, "a")]);
        assert_eq!(p["delta"]["mgdl"], -3);
        assert_eq!(p["delta"]["scaled"], -0.2);
        assert_eq!(p["delta"]["display"], "-0.2");
        // No change is "+0", as Nightscout writes it.
        let p = from_entries("mg/dl", vec![sgv(5 * MIN, 100, "a"), sgv(0, 100, "a")]);
        assert_eq!(p["delta"]["display"], "+0");
    }

    #[test]
    fn errors_and_two_devices() {
        let t0 = NOW;
        let p = from_entries(
            "mg/dl",
            vec![
                sgv(10 * MIN, 112, "a"),
                // A sensor error: bucket 1 holds nothing usable.
                sgv(5 * MIN, 38, "a"),
                sgv(30_000, 124, "b"),
                sgv(0, 120, "a"),
            ],
        );
        // Bucket 0: (120 + 124) / 2 = 122; the newest is 120 at t0.
        assert_eq!(p["bgnow"]["mean"], 122);
        assert_eq!(p["bgnow"]["last"], 120);
        assert_eq!(p["bgnow"]["mills"], t0);
        assert_eq!(p["bgnow"]["sgvs"].as_array().unwrap().len(), 2);
        let b1 = &p["buckets"][1];
        assert!(b1.get("mean").is_none() && b1.get("mills").is_none());
        assert_eq!(b1["errors"][0]["mgdl"], 38);
        // Previous is bucket 2 (112, ten minutes back): 122 - 10/10*5 = 117 → mgdl 5.
        assert_eq!(p["delta"]["elapsedMins"], 10);
        assert_eq!(p["delta"]["mean5MinsAgo"], 117);
        assert_eq!(p["delta"]["mgdl"], 5);
    }

    #[test]
    fn one_reading_no_delta_and_stale_direction() {
        let p = from_entries("mg/dl", vec![sgv(16 * MIN, 150, "a")]);
        // bgnow still shows the last reading, however old; no delta; no direction after 15 min.
        assert_eq!(p["bgnow"]["last"], 150);
        assert!(p.get("delta").is_none());
        assert!(p.get("direction").is_none());
    }
}
