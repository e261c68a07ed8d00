//! Nightscout's plugin properties: the "current state" (`bgnow`, `delta`, `direction`,
//! `upbat`, `pump`, `loop`, `iob`, ...) that /api/v2/properties, /pebble and live clients
//! read, computed by a pure function from recent documents.
//!
//! Followers decode these objects field by field, so shapes, key order, number formatting and
//! rounding follow Nightscout's plugins (lib/plugins/*.js) and its JavaScript number
//! semantics. Where nightlite is simpler, docs/properties.md says how.

use serde_json::{json, Map, Value};

use crate::config::{Units, MMOL_TO_MGDL};
use crate::dates;
use crate::jsnum::{
    js_number, js_round, js_str, js_text, mgdl_to_mmol, num, opt_num, round3, to_fixed,
    to_precision, truthy,
};
use crate::Config;

pub type Doc = Map<String, Value>;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

// Nightscout's notification levels (lib/levels.js).
const URGENT: i64 = 2;
const WARN: i64 = 1;
const INFO: i64 = 0;
const NONE: i64 = -3;

/// The treatment event types whose latest occurrence the properties need.
pub const EVENT_TYPES: &[&str] = &[
    "Site Change",
    "Sensor Start",
    "Sensor Change",
    "Insulin Change",
    "Pump Battery Change",
    "OpenAPS Offline",
];

/// What the properties are computed from.
pub struct Inputs<'a> {
    pub now: i64,
    pub config: &'a Config,
    /// Entries, newest first, as API v1 returns them (their time is `date`).
    pub entries: &'a [Doc],
    /// Device statuses, newest first; their time is `mills`, else `created_at`.
    pub devicestatus: &'a [Doc],
    /// Treatments, newest first; their time is `mills`, else `created_at`.
    pub treatments: &'a [Doc],
    /// Size of the database files (Nightscout reports MongoDB's data + index size).
    pub db_size_bytes: u64,
}

/// Every property, keyed by name, in Nightscout's plugin order. Plugins named in DISABLE are
/// left out.
pub fn compute(i: &Inputs) -> Doc {
    let on = |plugin: &str| !i.config.disable.iter().any(|d| d == plugin);
    let now = i.now;
    let mut sgv_list = sgvs(i.entries);
    let ds = devicestatus(i.devicestatus);
    let treatments = oldest_first(i.treatments);
    let mut out = Doc::new();
    if on("bgnow") {
        let bg = bgnow(now, i.config.units, &mut sgv_list);
        out.insert("bgnow".into(), Value::Object(bg.bgnow));
        if let Some(d) = bg.delta {
            out.insert("delta".into(), Value::Object(d));
        }
        out.insert("buckets".into(), Value::Array(bg.buckets));
    }
    if on("direction") {
        if let Some(d) = direction(now, &sgv_list) {
            out.insert("direction".into(), Value::Object(d));
        }
    }
    let sections: [(&str, &dyn Fn() -> Doc); 12] = [
        ("upbat", &|| upbat(now, &ds)),
        ("iob", &|| iob(now, &ds)),
        ("cob", &|| cob(now, &ds)),
        ("pump", &|| pump(now, &ds, &treatments)),
        ("openaps", &|| openaps(now, &ds)),
        ("loop", &|| loop_status(now, &ds)),
        ("cage", &|| cage(now, &treatments)),
        ("sage", &|| sage(now, &treatments)),
        ("iage", &|| iage(now, &treatments)),
        ("bage", &|| bage(now, &treatments)),
        ("dbsize", &|| dbsize(i.db_size_bytes)),
        ("runtimestate", &|| obj(json!({ "state": "loaded" }))),
    ];
    for (name, f) in sections {
        if on(name) {
            out.insert(name.into(), Value::Object(f()));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Nightscout's sandbox helpers and moments.

/// sandbox.scaleMgdl: mg/dl, or mmol rounded to one decimal.
fn scale_mgdl(units: Units, mgdl: f64) -> f64 {
    if units == Units::Mmol && mgdl != 0.0 && !mgdl.is_nan() {
        js_round(mgdl / MMOL_TO_MGDL * 10.0) / 10.0
    } else {
        mgdl
    }
}

/// sandbox.roundBGToDisplayFormat.
fn round_bg(units: Units, bg: f64) -> f64 {
    match units {
        Units::Mmol => js_round(bg * 10.0) / 10.0,
        Units::MgDl => js_round(bg),
    }
}

/// A moment: epoch ms, or `None` for an invalid date.
type Mo = Option<i64>;

/// `moment(v)`: undefined is now, null or garbage is invalid.
fn moment(v: Option<&Value>, now: i64) -> Mo {
    match v {
        None => Some(now),
        Some(Value::Null) => None,
        Some(v) => dates::parse_value(v).map(|i| i.ms),
    }
}

/// `a.isAfter(b)`: false when either is invalid.
fn after(a: Mo, b: Mo) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a > b)
}

/// A moment as JSON.stringify writes it (toISOString; null when invalid).
fn mo_json(m: Mo) -> Value {
    m.map_or(Value::Null, |ms| Value::String(dates::to_iso(ms)))
}

fn obj(v: Value) -> Doc {
    match v {
        Value::Object(m) => m,
        _ => Doc::new(),
    }
}

fn get_obj<'a>(d: &'a Doc, key: &str) -> Option<&'a Doc> {
    d.get(key).and_then(Value::as_object)
}

/// A document's time: `mills`, else `created_at` (Nightscout's processForRuntime).
fn doc_mills(d: &Doc) -> Option<i64> {
    d.get("mills").and_then(dates::ms_from_number).or_else(|| {
        d.get("created_at")
            .and_then(dates::parse_value)
            .map(|i| i.ms)
    })
}

fn set_if(out: &mut Doc, key: &str, v: Option<&Value>) {
    if let Some(v) = v {
        out.insert(key.into(), v.clone());
    }
}

/// Documents oldest first (Nightscout sorts its in-memory lists by mills), each with `mills`.
fn oldest_first(docs: &[Doc]) -> Vec<(Doc, i64)> {
    let mut out: Vec<(Doc, i64)> = docs
        .iter()
        .rev()
        .filter_map(|d| {
            let ms = doc_mills(d)?;
            let mut d = d.clone();
            if !d.contains_key("mills") {
                d.insert("mills".into(), ms.into());
            }
            Some((d, ms))
        })
        .collect();
    out.sort_by_key(|(_, ms)| *ms);
    out
}

/// Device statuses as Nightscout's data loader holds them: oldest first, with `mills`, and
/// the old `uploaderBattery` field turned into `uploader.battery`.
pub fn devicestatus(docs: &[Doc]) -> Vec<(Doc, i64)> {
    let mut out = oldest_first(docs);
    for (d, _) in &mut out {
        if let Some(b) = d.shift_remove("uploaderBattery") {
            d.insert("uploader".into(), json!({ "battery": b }));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// bgnow, delta, buckets, direction (lib/plugins/bgnow.js, direction.js)

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
            for k in [
                "device",
                "direction",
                "filtered",
                "unfiltered",
                "noise",
                "rssi",
            ] {
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
pub fn bgnow(now: i64, units: Units, sgvs: &mut [Sgv]) -> BgNow {
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

/// The arrow Nightscout shows for a trend (direction.js dir2Char).
fn direction_char(direction: Option<&Value>) -> &'static str {
    match direction.and_then(Value::as_str) {
        Some("NONE") => "⇼",
        Some("TripleUp") => "⤊",
        Some("DoubleUp") => "⇈",
        Some("SingleUp") => "↑",
        Some("FortyFiveUp") => "↗",
        Some("Flat") => "→",
        Some("FortyFiveDown") => "↘",
        Some("SingleDown") => "↓",
        Some("DoubleDown") => "⇊",
        Some("TripleDown") => "⤋",
        Some("NOT COMPUTABLE") => "-",
        Some("RATE OUT OF RANGE") => "⇕",
        _ => "-",
    }
}

/// direction.js: the last reading's trend, only while that reading is current (15 minutes).
pub fn direction(now: i64, sgvs: &[Sgv]) -> Option<Doc> {
    let last = sgvs.iter().rev().find(|s| s.mills <= now)?;
    if now - last.mills > 15 * MIN {
        return None;
    }
    let value = last.doc.get("direction");
    let label = direction_char(value);
    let mut out = Doc::new();
    out.insert("display".into(), Value::Null);
    set_if(&mut out, "value", value);
    out.insert("label".into(), label.into());
    let unit = label.encode_utf16().next().unwrap_or(0);
    out.insert("entity".into(), format!("&#{unit};").into());
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// upbat (lib/plugins/upbat.js)

fn status_class(level: Option<i64>) -> &'static str {
    match level {
        Some(WARN) => "warn",
        Some(URGENT) => "urgent",
        _ => "current",
    }
}

/// Uploader battery: per device the lowest of its last 10 minutes, overall the lowest device.
pub fn upbat(now: i64, ds: &[(Doc, i64)]) -> Doc {
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
        let uri = status
            .get("device")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("uploader")
            .to_string();
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

// ---------------------------------------------------------------------------------------------
// iob and cob from device statuses (lib/plugins/iob.js, cob.js)

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
        out.insert("source".into(), "OpenAPS".into());
        set_if(&mut out, "device", device);
        out.insert("mills".into(), opt_num(m.map(|x| x as f64)));
        return Some((out, m, false));
    }
    if let Some(o) = loop_iob {
        let m = moment(o.get("timestamp"), now);
        set_if(&mut out, "iob", o.get("iob"));
        out.insert("source".into(), "Loop".into());
        set_if(&mut out, "device", device);
        out.insert("mills".into(), opt_num(m.map(|x| x as f64)));
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
fn recent_reports<T>(
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

/// iob.js: the newest IOB a device status reports (Loop's preferred over the pump's);
/// `{}` when none does. Computing IOB from treatments is not done (docs/properties.md).
pub fn iob(now: i64, ds: &[(Doc, i64)]) -> Doc {
    let items = recent_reports(now, ds, |d, m| iob_from_status(d, m, now));
    let chosen = items
        .iter()
        .rev()
        .find(|(_, _, is_loop)| *is_loop)
        .or_else(|| items.last());
    let Some((mut out, _, _)) = chosen.cloned() else {
        return Doc::new();
    };
    let Some(raw) = out.get("iob").cloned() else {
        return Doc::new();
    };
    if truthy(Some(&raw)) {
        out.insert("iob".into(), opt_num(round3(&raw)));
    }
    let value = out.get("iob").and_then(|v| js_number(Some(v)));
    let display = match value {
        Some(x) if x != 0.0 => {
            let f = to_fixed(x, 2);
            if f == "-0.00" {
                "0.00".to_string()
            } else {
                f
            }
        }
        _ => "0".to_string(),
    };
    let line = format!("IOB: {display}U");
    out.insert("display".into(), display.into());
    out.insert("displayLine".into(), line.into());
    out
}

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
        out.insert("source".into(), "OpenAPS".into());
        set_if(&mut out, "device", device);
        out.insert("mills".into(), opt_num(m.map(|x| x as f64)));
        return Some((out, m, ()));
    }
    let c = get_obj(status, "loop").and_then(|l| get_obj(l, "cob"))?;
    let m = moment(c.get("timestamp"), now);
    set_if(&mut out, "cob", c.get("cob"));
    out.insert("source".into(), "Loop".into());
    set_if(&mut out, "device", device);
    out.insert("mills".into(), opt_num(m.map(|x| x as f64)));
    Some((out, m, ()))
}

/// cob.js: the newest COB a device status reports, if at most 10 minutes old; `{}` otherwise
/// (Nightscout then computes COB from treatments, which nightlite does not do yet).
pub fn cob(now: i64, ds: &[(Doc, i64)]) -> Doc {
    let items = recent_reports(now, ds, |d, _| cob_from_status(d, now));
    let Some((mut out, m, ())) = items.last().cloned() else {
        return Doc::new();
    };
    let value = match out.get("cob") {
        None | Some(Value::Null) => return Doc::new(),
        Some(v) => js_number(Some(v)),
    };
    if m.is_some_and(|m| now - m > 10 * MIN) {
        return Doc::new();
    }
    let display = value.map(|c| js_round(c * 10.0) / 10.0);
    out.insert("display".into(), opt_num(display));
    let text = display.map_or("NaN".into(), js_str);
    out.insert("displayLine".into(), format!("COB: {text}g").into());
    out
}

// ---------------------------------------------------------------------------------------------
// pump (lib/plugins/pump.js)

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
pub fn pump(now: i64, ds: &[(Doc, i64)], treatments: &[(Doc, i64)]) -> Doc {
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

// ---------------------------------------------------------------------------------------------
// loop and openaps (lib/plugins/loop.js, openaps.js)

fn loop_display(symbol: &str, code: &str, label: &str) -> Value {
    json!({ "symbol": symbol, "code": code, "label": label })
}

/// Loop's status from its device statuses of the last six hours: last loop, last enacted,
/// last prediction, last override, last success, and the pill's symbol.
pub fn loop_status(now: i64, ds: &[(Doc, i64)]) -> Doc {
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
        None => loop_display("⚠", "warning", "Warning"),
        Some((l, m)) => {
            let enacted = l.get("enacted").filter(|e| truthy(Some(e)));
            let rtb = l.get("recommendedTempBasal").filter(|r| truthy(Some(r)));
            if truthy(l.get("failureReason")) || enacted.is_some_and(|e| !truthy(e.get("received")))
            {
                loop_display("x", "error", "Error")
            } else if enacted.is_some() && after(moment(l.get("timestamp"), now), Some(recent)) {
                loop_display("⌁", "enacted", "Enacted")
            } else if rtb.is_some_and(|r| after(moment(r.get("timestamp"), now), Some(recent))) {
                loop_display("⏀", "recommendation", "Recomendation")
            } else if after(*m, Some(recent)) {
                loop_display("↻", "looping", "Looping")
            } else {
                loop_display("⚠", "warning", "Warning")
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
    obj(loop_display(symbol, code, label))
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

/// OpenAPS' status from device statuses of the last six hours: per device its loop state,
/// and overall the last enacted / not enacted / suggested, IOB and predictions.
pub fn openaps(now: i64, ds: &[(Doc, i64)]) -> Doc {
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

        let uri = status
            .get("device")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("device")
            .to_string();
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

        if let (Some(em), Some(mut e)) = (
            m_enacted,
            oa.get("enacted").and_then(Value::as_object).cloned(),
        ) {
            if last_enacted.as_ref().is_none_or(|(_, lm)| after(em, *lm)) {
                e.insert("moment".into(), mo_json(em));
                take_pred(&mut e, em, &mut last_pred);
                last_enacted = Some((e, em));
            }
        }
        if let (Some(nm), Some(mut e)) = (
            m_not_enacted,
            oa.get("enacted").and_then(Value::as_object).cloned(),
        ) {
            if last_not_enacted
                .as_ref()
                .is_none_or(|(_, lm)| after(nm, *lm))
            {
                e.insert("moment".into(), mo_json(nm));
                last_not_enacted = Some((e, nm));
            }
        }
        if let (Some(sm), Some(mut s)) = (
            m_suggested,
            oa.get("suggested").and_then(Value::as_object).cloned(),
        ) {
            if last_suggested.as_ref().is_none_or(|(_, lm)| after(sm, *lm)) {
                s.insert("moment".into(), mo_json(sm));
                take_pred(&mut s, sm, &mut last_pred);
                last_suggested = Some((s, sm));
            }
        }
        if let (Some(im), Some(mut iob)) =
            (m_iob, oa.get("iob").and_then(Value::as_object).cloned())
        {
            let ts = moment(iob.get("timestamp"), now);
            if last_iob.as_ref().is_none_or(|(_, lm)| after(ts, *lm)) {
                iob.insert("moment".into(), mo_json(im));
                last_iob = Some((iob, im));
            }
        }
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

// ---------------------------------------------------------------------------------------------
// cage, sage, iage, bage (lib/plugins/cannulaage.js, sensorage.js, insulinage.js,
// batteryage.js)

/// Age of an event as moment's diff truncates it: (days, hours past the days, hours, minutes
/// past the hours).
fn age_parts(now: i64, at: i64) -> (i64, i64, i64, i64) {
    let ms = now - at;
    let days = ms / DAY;
    let age = ms / HOUR;
    (days, age - days * 24, age, ms / MIN - age * 60)
}

fn days_hours(age: i64, days: i64, hours: i64) -> String {
    let mut s = String::new();
    if age >= 24 {
        s.push_str(&format!("{days}d"));
    }
    s.push_str(&format!("{hours}h"));
    s
}

/// The newest treatment, not in the future, whose eventType `matches`.
fn latest_event(
    now: i64,
    treatments: &[(Doc, i64)],
    matches: impl Fn(&str) -> bool,
) -> Option<&(Doc, i64)> {
    treatments
        .iter()
        .filter(|(t, m)| {
            *m <= now
                && t.get("eventType")
                    .and_then(Value::as_str)
                    .is_some_and(&matches)
        })
        .max_by_key(|(_, m)| *m)
}

fn level_for(age: Option<i64>, info: i64, warn: i64, urgent: i64) -> i64 {
    match age {
        Some(a) if a >= urgent => URGENT,
        Some(a) if a >= warn => WARN,
        Some(a) if a >= info => INFO,
        _ => NONE,
    }
}

/// cage and bage share a shape: `{found, age, treatmentDate, checkForAlert, days, hours, notes,
/// minFractions, level, display}`.
fn change_age(
    now: i64,
    treatments: &[(Doc, i64)],
    event: &str,
    thresholds: (i64, i64, i64),
    in_days: bool,
) -> Doc {
    let mut out =
        obj(json!({ "found": false, "age": 0, "treatmentDate": null, "checkForAlert": false }));
    let found = latest_event(now, treatments, |e| e.contains(event));
    let mut age = None;
    if let Some((t, m)) = found {
        let (days, hours, a, min_fractions) = age_parts(now, *m);
        out.insert("found".into(), true.into());
        out.insert("age".into(), a.into());
        out.insert("treatmentDate".into(), (*m).into());
        out.insert("days".into(), days.into());
        out.insert("hours".into(), hours.into());
        set_if(&mut out, "notes", t.get("notes"));
        out.insert("minFractions".into(), min_fractions.into());
        age = Some((a, days, hours));
    }
    let (info, warn, urgent) = thresholds;
    out.insert(
        "level".into(),
        level_for(Some(age.map_or(0, |a| a.0)), info, warn, urgent).into(),
    );
    let display = match age {
        Some((a, d, h)) if in_days => days_hours(a, d, h),
        Some((a, _, _)) => format!("{a}h"),
        None => "n/a ".to_string(),
    };
    out.insert("display".into(), display.into());
    out
}

/// Cannula age: hours since the last Site Change (info 44 h, warn 48 h, urgent 72 h).
pub fn cage(now: i64, treatments: &[(Doc, i64)]) -> Doc {
    change_age(now, treatments, "Site Change", (44, 48, 72), false)
}

/// Pump battery age: since the last Pump Battery Change (info 13 d, warn 14 d, urgent 15 d).
pub fn bage(now: i64, treatments: &[(Doc, i64)]) -> Doc {
    change_age(
        now,
        treatments,
        "Pump Battery Change",
        (312, 336, 360),
        true,
    )
}

/// Insulin age: since the last Insulin Change (info 44 h, warn 48 h, urgent 72 h).
pub fn iage(now: i64, treatments: &[(Doc, i64)]) -> Doc {
    let mut out = obj(json!({ "found": false, "age": 0, "treatmentDate": null }));
    let mut age = 0;
    if let Some((t, m)) = latest_event(now, treatments, |e| e.contains("Insulin Change")) {
        let (days, hours, a, min_fractions) = age_parts(now, *m);
        age = a;
        out.insert("found".into(), true.into());
        out.insert("age".into(), a.into());
        out.insert("treatmentDate".into(), (*m).into());
        out.insert("days".into(), days.into());
        out.insert("hours".into(), hours.into());
        set_if(&mut out, "notes", t.get("notes"));
        out.insert("minFractions".into(), min_fractions.into());
        out.insert("display".into(), days_hours(a, days, hours).into());
    }
    out.insert("level".into(), level_for(Some(age), 44, 48, 72).into());
    out
}

/// Sensor age: the last Sensor Start and Sensor Change, `min` naming the one that counts
/// (info 6 d, warn 7 d − 4 h, urgent 7 d − 2 h).
pub fn sage(now: i64, treatments: &[(Doc, i64)]) -> Doc {
    // (event type, its JSON, (time, age in hours) when found)
    type Event<'a> = (&'a str, Doc, Option<(i64, i64)>);
    let mut events: Vec<Event> = vec![];
    for event in ["Sensor Start", "Sensor Change"] {
        let mut v = obj(json!({ "found": false }));
        let mut found = None;
        if let Some((t, m)) = latest_event(now, treatments, |e| e == event) {
            let (days, hours, a, min_fractions) = age_parts(now, *m);
            v.insert("found".into(), true.into());
            v.insert("treatmentDate".into(), (*m).into());
            v.insert("age".into(), a.into());
            v.insert("days".into(), days.into());
            v.insert("hours".into(), hours.into());
            set_if(&mut v, "notes", t.get("notes"));
            v.insert("minFractions".into(), min_fractions.into());
            v.insert("display".into(), days_hours(a, days, hours).into());
            let mut long = String::new();
            if a >= 24 {
                long.push_str(&format!("{days} days "));
            }
            long.push_str(&format!("{hours} hours"));
            v.insert("displayLong".into(), long.into());
            found = Some((*m, a));
        }
        events.push((event, v, found));
    }
    // A sensor change at or after the last start supersedes it.
    let start_at = events[0].2.map(|f| f.0);
    let change_at = events[1].2.map(|f| f.0);
    if let (Some(s), Some(c)) = (start_at, change_at) {
        if c >= s {
            events[0].1.insert("found".into(), false.into());
        }
    }
    let start_found = events[0].1.get("found") == Some(&Value::Bool(true));
    let min = match (start_found.then_some(start_at).flatten(), change_at) {
        (Some(s), Some(c)) if s > c => 0,
        (_, Some(_)) => 1,
        _ => 0,
    };
    let age = events[min].2.map(|f| f.1);
    let level = level_for(age, 144, 164, 166);
    events[min].1.insert("level".into(), level.into());
    let mut out = Doc::new();
    let min_name = events[min].0;
    for (name, v, _) in events {
        out.insert(name.into(), Value::Object(v));
    }
    out.insert("min".into(), min_name.into());
    out
}

// ---------------------------------------------------------------------------------------------
// dbsize (lib/plugins/dbsize.js), with Nightscout's default 496 MiB limit

pub fn dbsize(bytes: u64) -> Doc {
    const MAX_MIB: f64 = 496.0;
    let total = bytes as f64 / (1024.0 * 1024.0);
    let percentage = (total * 100.0 / MAX_MIB).floor();
    let warn_size = (0.6 * MAX_MIB).floor();
    let urgent_size = (0.75 * MAX_MIB).floor();
    let level = if total >= urgent_size {
        URGENT
    } else if total >= warn_size {
        WARN
    } else {
        INFO
    };
    let data_size: f64 = to_fixed(total, 2).parse().unwrap_or(0.0);
    obj(json!({
        "display": format!("{}%", js_str(percentage)),
        "status": status_class(Some(level)),
        "totalDataSize": num(total),
        "dataPercentage": num(percentage),
        "notificationLevel": level,
        "details": { "maxSize": num(MAX_MIB), "dataSize": num(data_size) }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// 2023-11-14T22:13:20Z.
    const NOW: i64 = 1_700_000_000_000;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Config::from_map(&map).unwrap()
    }

    fn docs(v: Value) -> Vec<Doc> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_object().unwrap().clone())
            .collect()
    }

    fn iso(ms: i64) -> String {
        dates::to_iso(ms)
    }

    /// An sgv entry `ago_ms` before NOW.
    fn sgv(ago_ms: i64, value: i64, device: &str) -> Value {
        json!({ "type": "sgv", "sgv": value, "date": NOW - ago_ms, "device": device, "direction": "Flat" })
    }

    /// Properties from entries given oldest first (reversed to the newest-first contract).
    fn from_entries(units: &str, entries: Vec<Value>) -> Doc {
        let mut entries = docs(Value::Array(entries));
        entries.reverse();
        let c = config(&[("DISPLAY_UNITS", units)]);
        compute(&Inputs {
            now: NOW,
            config: &c,
            entries: &entries,
            devicestatus: &[],
            treatments: &[],
            db_size_bytes: 0,
        })
    }

    fn with_mills(v: Value) -> Vec<(Doc, i64)> {
        let mut d = docs(v);
        d.reverse();
        devicestatus(&d)
    }

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

    #[test]
    fn uploader_battery() {
        let ds = with_mills(json!([
            { "device": "xdrip", "created_at": iso(NOW - 45 * MIN), "uploader": { "battery": 5 } },
            { "device": "samsung", "created_at": iso(NOW - 6 * MIN), "uploader": { "battery": 87 } },
            { "device": "openaps://rig", "created_at": iso(NOW - 3 * MIN), "uploaderBattery": 25 },
            { "device": "samsung", "created_at": iso(NOW - 2 * MIN), "uploader": { "battery": 88 } }
        ]));
        let u = upbat(NOW, &ds);
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
        let u = upbat(NOW, &ds);
        assert_eq!(u["display"], "?%");
        let min = &u["devices"]["uploader"]["min"];
        assert_eq!(min["voltageDisplay"], "3.900v");
        assert_eq!(min["display"], "3.900v⚡");
        assert_eq!(min["value"], 3.9);
        assert_eq!(
            upbat(NOW, &[]),
            obj(json!({ "display": "?%", "devices": {} }))
        );
    }

    #[test]
    fn iob_and_cob_from_device_status() {
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

    #[test]
    fn pump_levels_and_messages() {
        let ds = with_mills(
            json!([{ "device": "loop://iPhone", "created_at": iso(NOW - 2 * MIN), "pump": {
            "clock": iso(NOW - 2 * MIN), "reservoir": 3, "battery": { "percent": 25 },
            "status": { "status": "normal", "suspended": true }, "manufacturer": "Medtronic" } }]),
        );
        let p = pump(NOW, &ds, &[]);
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
        let p = pump(NOW, &ds, &offline);
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
        let p = pump(NOW, &ds, &[]);
        assert_eq!(p["data"]["reservoir"]["display"], "150U");
        assert_eq!(p["data"]["clock"]["display"], "45m ago");
        assert_eq!(p["data"]["clock"]["message"], "Warning, Pump data stale");
        assert_eq!(p["data"]["title"], "Warning, Pump data stale");
        // Omnipod reports no reservoir above 50 U.
        let ds = with_mills(
            json!([{ "created_at": iso(NOW - 6 * MIN), "pump": { "manufacturer": "Insulet" } }]),
        );
        assert_eq!(
            pump(NOW, &ds, &[])["data"]["reservoir"],
            json!({ "label": "Reservoir", "display": "50+ U" })
        );
    }

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
        let l = loop_status(NOW, &ds);
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
        let l = loop_status(NOW, &ds[..1]);
        assert_eq!(l["display"]["code"], "error");
        assert_eq!(l["lastOkMoment"], Value::Null);
        // A loop 20 minutes ago, nothing enacted: a warning.
        let old = with_mills(
            json!([{ "created_at": iso(NOW - 20 * MIN), "loop": { "timestamp": iso(NOW - 20 * MIN) } }]),
        );
        assert_eq!(loop_status(NOW, &old)["display"]["code"], "warning");
        assert_eq!(
            Value::Object(loop_status(NOW, &[])),
            json!({ "lastLoop": null, "lastEnacted": null, "lastPredicted": null, "lastOkMoment": null,
                    "display": { "symbol": "⚠", "code": "warning", "label": "Warning" } })
        );
    }

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
        let o = openaps(NOW, &ds);
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
        let o = openaps(NOW, &ds);
        assert_eq!(o["status"]["code"], "notenacted");
        assert_eq!(o["lastNotEnacted"]["moment"], iso(NOW - MIN));
        assert_eq!(o["lastEnacted"], Value::Null);
        assert_eq!(o["seenDevices"]["device"]["status"]["code"], "notenacted");
    }

    #[test]
    fn ages() {
        let t = oldest_first(&docs(json!([
            { "eventType": "Pump Battery Change", "created_at": iso(NOW - 361 * HOUR) },
            { "eventType": "Sensor Start", "created_at": iso(NOW - 240 * HOUR) },
            { "eventType": "Sensor Change", "created_at": iso(NOW - 76 * HOUR) },
            { "eventType": "Insulin Change", "created_at": iso(NOW - 73 * HOUR) },
            { "eventType": "Site Change", "created_at": iso(NOW - 53 * HOUR - 10 * MIN), "notes": "left" },
            // In the future: ignored.
            { "eventType": "Site Change", "created_at": iso(NOW + HOUR) }
        ])));
        // 53 h 10 min: 2 days 5 hours; cage shows hours; 48 <= 53 < 72 is a warning.
        assert_eq!(
            Value::Object(cage(NOW, &t)),
            json!({ "found": true, "age": 53, "treatmentDate": NOW - 53 * HOUR - 10 * MIN, "checkForAlert": false,
                    "days": 2, "hours": 5, "notes": "left", "minFractions": 10, "level": 1, "display": "53h" })
        );
        // 361 h = 15 days 1 hour, past the 360 h urgent mark.
        let b = bage(NOW, &t);
        assert_eq!(
            (b["display"].clone(), b["level"].clone()),
            (json!("15d1h"), json!(2))
        );
        // 73 h = 3 d 1 h, past 72 h: urgent (Nightscout's insulinage never gets there).
        let i = iage(NOW, &t);
        assert_eq!(
            (i["display"].clone(), i["level"].clone()),
            (json!("3d1h"), json!(2))
        );
        // The sensor change (76 h = 3 d 4 h) supersedes the older start.
        let s = sage(NOW, &t);
        assert_eq!(s["min"], "Sensor Change");
        assert_eq!(s["Sensor Start"]["found"], false);
        assert_eq!(s["Sensor Start"]["age"], 240);
        let c = &s["Sensor Change"];
        assert_eq!(
            (c["display"].clone(), c["displayLong"].clone()),
            (json!("3d4h"), json!("3 days 4 hours"))
        );
        assert_eq!(c["level"], -3);

        // A start alone, 165 h (6 d 21 h) ago: 164 <= 165 < 166 is a warning.
        let t = oldest_first(&docs(
            json!([{ "eventType": "Sensor Start", "created_at": iso(NOW - 165 * HOUR) }]),
        ));
        let s = sage(NOW, &t);
        assert_eq!(s["min"], "Sensor Start");
        assert_eq!(s["Sensor Start"]["display"], "6d21h");
        assert_eq!(s["Sensor Start"]["level"], 1);
        // 20 h: no days part.
        let t = oldest_first(&docs(
            json!([{ "eventType": "Insulin Change", "created_at": iso(NOW - 20 * HOUR) }]),
        ));
        assert_eq!(iage(NOW, &t)["display"], "20h");

        // Nothing found.
        assert_eq!(
            Value::Object(cage(NOW, &[])),
            json!({ "found": false, "age": 0, "treatmentDate": null, "checkForAlert": false, "level": -3, "display": "n/a " })
        );
        assert_eq!(
            Value::Object(iage(NOW, &[])),
            json!({ "found": false, "age": 0, "treatmentDate": null, "level": -3 })
        );
        assert_eq!(
            Value::Object(sage(NOW, &[])),
            json!({ "Sensor Start": { "found": false, "level": -3 }, "Sensor Change": { "found": false }, "min": "Sensor Start" })
        );
    }

    #[test]
    fn database_size() {
        // 300 MiB of 496: floor(60.48) = 60 %; 300 >= floor(0.6 * 496) = 297 is a warning.
        assert_eq!(
            Value::Object(dbsize(300 * 1024 * 1024)),
            json!({ "display": "60%", "status": "warn", "totalDataSize": 300, "dataPercentage": 60,
                    "notificationLevel": 1, "details": { "maxSize": 496, "dataSize": 300 } })
        );
        // 1.5 MiB: 0 %, info.
        let d = dbsize(1_572_864);
        assert_eq!(
            (d["display"].clone(), d["status"].clone()),
            (json!("0%"), json!("current"))
        );
        assert_eq!(d["details"]["dataSize"], 1.5);
    }

    #[test]
    fn no_data_gives_empty_valid_shapes() {
        let c = config(&[]);
        let p = compute(&Inputs {
            now: NOW,
            config: &c,
            entries: &[],
            devicestatus: &[],
            treatments: &[],
            db_size_bytes: 0,
        });
        let keys: Vec<&String> = p.keys().collect();
        assert_eq!(
            keys,
            [
                "bgnow",
                "buckets",
                "upbat",
                "iob",
                "cob",
                "pump",
                "openaps",
                "loop",
                "cage",
                "sage",
                "iage",
                "bage",
                "dbsize",
                "runtimestate"
            ]
        );
        assert_eq!(p["bgnow"], json!({}));
        assert_eq!(
            p["buckets"][0],
            json!({ "index": 0, "fromMills": null, "toMills": null, "sgvs": [], "isEmpty": true })
        );
        assert_eq!(p["iob"], json!({}));
        assert_eq!(p["cob"], json!({}));
        assert_eq!(
            p["pump"],
            json!({ "data": { "level": -3, "clock": null, "reservoir": null, "reservoir_display_override": null,
                              "reservoir_level_override": null, "extended": null,
                              "device": { "label": "Device" }, "title": "Pump Status" } })
        );
        assert_eq!(p["openaps"]["seenDevices"], json!({}));
        assert_eq!(p["openaps"]["status"]["code"], "warning");
        assert_eq!(p["runtimestate"], json!({ "state": "loaded" }));
    }

    #[test]
    fn disabled_plugins_are_left_out() {
        let c = config(&[("DISABLE", "pump openaps bgnow")]);
        let entries = docs(json!([sgv(0, 100, "a")]));
        let p = compute(&Inputs {
            now: NOW,
            config: &c,
            entries: &entries,
            devicestatus: &[],
            treatments: &[],
            db_size_bytes: 0,
        });
        for gone in ["pump", "openaps", "bgnow", "delta", "buckets"] {
            assert!(p.get(gone).is_none(), "{gone}");
        }
        assert_eq!(p["direction"]["value"], "Flat");
    }
}
