//! `GET /pebble[?count=N&units=mmol]`: the compact current-readings format of Nightscout's
//! lib/server/pebble.js, which watch faces and many small clients still read.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::v1::State;
use crate::config::Units;
use crate::error::Result;
use crate::jsnum;
use crate::plugins::bgnow::{self, Sgv};
use crate::plugins::current::{runtime_doc, MathInputs};
use crate::plugins::{cob, devicestatus, iob, registry, Doc};
use crate::store::recent::{self, EntryKind};
use crate::store::StoredDoc;
use crate::{dates, Config};

/// Nightscout's in-memory window of entries.
const ENTRIES_WINDOW_MS: i64 = 2 * 86_400_000;
/// The most readings one request returns (two days of 5-minute readings from several
/// uploaders fit).
const MAX_COUNT: usize = 2_000;
/// Readings read beyond `count`, for the delta (bgnow skips future-dated readings).
const EXTRA_READINGS: usize = 100;
/// Nightscout's in-memory window of device statuses, where the battery is looked up.
const DEVICESTATUS_WINDOW_MS: i64 = 86_400_000;
/// IOB and COB come from statuses of the last 30 minutes; COB from treatments looks up the
/// insulin activity at past moments in the rest of the day, where only the IOB reports of
/// the older statuses are read (as /api/v2/properties: `plugins::current::older_iob`).
const RECENT_STATUS_MS: i64 = 30 * 60_000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/pebble", web::get().to(get));
}

/// The request as Nightscout's pebble middleware reads it.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub mmol: bool,
    /// `parseInt(count) || 1`: may be negative, which JavaScript's slice counts from the end.
    pub count: i64,
    pub rawbg: bool,
    pub iob: bool,
    pub cob: bool,
}

/// What /pebble is computed from, newest first.
pub struct Data {
    pub entries: Vec<Doc>,
    pub cals: Vec<Doc>,
    /// Those of the last 30 minutes whole, then the day's older ones with their IOB reports only.
    pub devicestatus: Vec<Doc>,
    pub uploader_status: Option<Doc>,
    /// Treatments of the last 2.5 days and the newest profile, for IOB/COB from treatments
    /// and the bolus wizard preview (src/plugins/).
    pub treatments: Vec<Doc>,
    pub profiles: crate::plugins::Profiles,
}

/// `array.slice(0, count)`.
fn js_slice<T>(items: Vec<T>, count: i64) -> Vec<T> {
    let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let end = if count < 0 {
        (len + count).max(0)
    } else {
        count.min(len)
    };
    items
        .into_iter()
        .take(usize::try_from(end).unwrap_or(0))
        .collect()
}

/// pebble.js directionToTrend.
fn trend(direction: Option<&Value>) -> i64 {
    match direction.and_then(Value::as_str) {
        Some("NONE") => 0,
        Some("DoubleUp") => 1,
        Some("SingleUp") => 2,
        Some("FortyFiveUp") => 3,
        Some("Flat") => 4,
        Some("FortyFiveDown") => 5,
        Some("SingleDown") => 6,
        Some("DoubleDown") => 7,
        Some("RATE OUT OF RANGE") => 9,
        _ => 8,
    }
}

/// The /pebble body. Pure, so it is tested without a server.
pub fn build(config: &Config, req: Request, data: &Data, now: i64) -> Value {
    let units = if req.mmol { Units::Mmol } else { config.units };
    let mut sgvs: Vec<Sgv> = bgnow::sgvs(&data.entries);
    let bg = bgnow::compute(now, units, &mut sgvs);
    let cals: Vec<(Doc, i64)> = data
        .cals
        .iter()
        .rev()
        .filter_map(|c| {
            let m = c.get("date").and_then(dates::ms_from_number)?;
            Some((c.clone(), m))
        })
        .collect();
    let cal = cals.iter().rev().find(|(_, m)| *m <= now);

    let newest_first: Vec<&Sgv> = sgvs.iter().rev().collect();
    let mut bgs: Vec<Map<String, Value>> = js_slice(newest_first, req.count)
        .into_iter()
        .map(|s| {
            let mut b = Map::new();
            let sgv = match (req.mmol, s.mgdl) {
                (true, Some(m)) => jsnum::mgdl_to_mmol(m),
                (true, None) => "NaN".to_string(),
                (false, m) => jsnum::js_str(m.unwrap_or(f64::NAN)),
            };
            b.insert("sgv".into(), sgv.into());
            b.insert("trend".into(), trend(s.doc.get("direction")).into());
            if let Some(d) = s.doc.get("direction") {
                b.insert("direction".into(), d.clone());
            }
            b.insert("datetime".into(), s.mills.into());
            if req.rawbg && cal.is_some() {
                for k in ["filtered", "unfiltered", "noise"] {
                    if let Some(v) = s.doc.get(k) {
                        b.insert(k.into(), v.clone());
                    }
                }
            }
            b
        })
        .collect();

    if let Some(first) = bgs.first_mut() {
        // Nightscout sends 0 when there is no delta, "for legacy reasons".
        let scaled = bg
            .delta
            .as_ref()
            .and_then(|d| d.get("scaled"))
            .and_then(Value::as_f64)
            .filter(|s| *s != 0.0)
            .unwrap_or(0.0);
        let bgdelta = if req.mmol {
            Value::String(jsnum::to_fixed(scaled, 1))
        } else {
            jsnum::num(scaled)
        };
        first.insert("bgdelta".into(), bgdelta);

        let ds = devicestatus(&data.uploader_status.iter().cloned().collect::<Vec<_>>());
        let battery = ds
            .last()
            .and_then(|(d, _)| d.get("uploader"))
            .and_then(|u| u.get("battery"))
            .filter(|b| {
                jsnum::truthy(Some(b)) && jsnum::js_number(Some(b)).is_some_and(|x| x >= 0.0)
            });
        if let Some(b) = battery {
            let text = match b {
                Value::String(s) => s.clone(),
                other => jsnum::js_str(jsnum::js_number(Some(other)).unwrap_or(f64::NAN)),
            };
            first.insert("battery".into(), text.into());
        }

        let statuses = devicestatus(&data.devicestatus);
        let mut plugin = Doc::new();
        plugin.insert("buckets".into(), Value::Array(bg.buckets.clone()));
        plugin.insert(
            "iob".into(),
            Value::Object(iob::from_devicestatus(now, &statuses)),
        );
        plugin.insert(
            "cob".into(),
            Value::Object(cob::from_devicestatus(now, &statuses)),
        );
        let mut with_units = config.clone();
        with_units.units = units;
        crate::plugins::extend_with(
            &mut plugin,
            &with_units,
            now,
            data.treatments.clone(),
            &statuses,
            &data.profiles,
        );
        let get = |name: &str| plugin.get(name).and_then(Value::as_object);
        if req.iob {
            let display = get("iob")
                .and_then(|i| i.get("display"))
                .cloned()
                .filter(|d| jsnum::truthy(Some(d)));
            first.insert("iob".into(), display.unwrap_or_else(|| 0.into()));
            // pebble.js: the bolus wizard preview with that IOB.
            if let Some(b) = get("bwp") {
                for (key, field) in [("bwp", "bolusEstimateDisplay"), ("bwpo", "outcomeDisplay")] {
                    if let Some(v) = b.get(field) {
                        first.insert(key.into(), v.clone());
                    }
                }
            }
        }
        if req.cob {
            let display = get("cob")
                .and_then(|c| c.get("display"))
                .cloned()
                .filter(|d| jsnum::truthy(Some(d)));
            first.insert("cob".into(), display.unwrap_or_else(|| 0.into()));
        }
    }

    let cals_out: Vec<Value> = if req.rawbg {
        let newest_first: Vec<&(Doc, i64)> = cals.iter().rev().collect();
        js_slice(newest_first, req.count)
            .into_iter()
            .map(|(c, _)| {
                let mut o = Map::new();
                for k in ["slope", "intercept", "scale"] {
                    if let Some(v) = c.get(k) {
                        o.insert(k.into(), v.clone());
                    }
                }
                Value::Object(o)
            })
            .collect()
    } else {
        vec![]
    };

    json!({
        "status": [{ "now": now }],
        "bgs": bgs,
        "cals": cals_out,
    })
}

async fn get(state: State, req: HttpRequest) -> Result<HttpResponse> {
    let q = req.query_string();
    let config = &state.config;
    let units = crate::qs::first_value(q, "units").filter(|u| !u.is_empty());
    let request = Request {
        mmol: units.as_deref().unwrap_or(config.units.as_str()) == "mmol",
        count: crate::qs::first_value(q, "count")
            .and_then(|c| jsnum::parse_int(&c))
            .filter(|c| *c != 0)
            .unwrap_or(1),
        rawbg: config.enabled("rawbg"),
        iob: registry::enabled(config, "iob"),
        cob: registry::enabled(config, "cob"),
    };
    let now = dates::now_ms();
    let limit = match usize::try_from(request.count) {
        Ok(n) => n.min(MAX_COUNT),
        Err(_) => MAX_COUNT,
    } + EXTRA_READINGS;
    let rawbg = request.rawbg;
    let data = state
        .store
        .read(move |conn| {
            let docs = |v: Vec<StoredDoc>| -> Vec<Doc> { v.into_iter().map(runtime_doc).collect() };
            let from = now - ENTRIES_WINDOW_MS;
            let math = MathInputs::read(conn, now)?;
            Ok(Data {
                entries: docs(recent::entries(conn, EntryKind::Sgv, from, limit)?),
                cals: if rawbg {
                    docs(recent::entries(conn, EntryKind::Cal, from, limit)?)
                } else {
                    vec![]
                },
                devicestatus: {
                    let since = now - RECENT_STATUS_MS;
                    let mut all = docs(recent::devicestatus(conn, since, 1_000)?);
                    all.extend(crate::plugins::current::older_iob(conn, since, now)?);
                    all
                },
                uploader_status: recent::latest_uploader_status(
                    conn,
                    now - DEVICESTATUS_WINDOW_MS,
                )?
                .map(runtime_doc),
                treatments: math.treatments,
                profiles: math.profiles,
            })
        })
        .await?;
    let body = build(config, request, &data, now);
    Ok(HttpResponse::Ok().json(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_int_and_slice_as_javascript() {
        assert_eq!(jsnum::parse_int("5"), Some(5));
        assert_eq!(jsnum::parse_int(" 12abc"), Some(12));
        assert_eq!(jsnum::parse_int("-2"), Some(-2));
        assert_eq!(jsnum::parse_int("abc"), None);
        assert_eq!(js_slice(vec![1, 2, 3, 4], 2), vec![1, 2]);
        assert_eq!(js_slice(vec![1, 2, 3, 4], 9), vec![1, 2, 3, 4]);
        assert_eq!(js_slice(vec![1, 2, 3, 4], -1), vec![1, 2, 3]);
        assert_eq!(js_slice(vec![1, 2], -5), Vec::<i32>::new());
    }

    #[test]
    fn trends() {
        assert_eq!(trend(Some(&json!("Flat"))), 4);
        assert_eq!(trend(Some(&json!("DoubleDown"))), 7);
        assert_eq!(trend(Some(&json!("NOT COMPUTABLE"))), 8);
        assert_eq!(trend(None), 8);
    }
}
