//! Medtronic CareLink (research/bridges.md §5): the CarePartner app's v13 `display/message`,
//! read with an Auth0 access token from an imported token file (carelink_tokens.rs) that
//! nightlite refreshes itself. One reply holds the last 24 hours: sensor glucose → entries,
//! the pump's markers (insulin, meals, finger sticks) → treatments, and the pump's state
//! (battery, reservoir, active insulin, sensor) → one device status per upload.
//!
//! CareLink writes device times as the pump's wall clock labelled UTC (a fake `Z`); the
//! upload's server time (`lastConduitUpdateServerDateTime`, real UTC) against its device time
//! (`lastConduitDateTime`) gives the pump's offset, rounded to a quarter hour (xDrip rounds
//! to the hour, which is wrong in India or Newfoundland), and every time is read with it.
//!
//! Faults: a 401 on the data refreshes the token and tries once more (the engine's re-login);
//! a refused refresh (400/401/403: revoked, expired, used elsewhere) is fatal and asks for a
//! new login; a 403 or 5xx on the data is transient.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::{json, Map, Value};

use super::carelink_tokens::{self as tokens, Tokens};
use super::engine::{local_iso, sgv_entry, Batch, Gap, Source};
use super::errors::SourceError;
use super::http::{base_url, host_of, Body, Http, Reply};
use crate::config::bridges::Carelink as Settings;

pub const DEVICE: &str = "carelink";
const HOUR_MS: i64 = 3_600_000;
const QUARTER_MS: i64 = 15 * 60_000;
const MESSAGE_PATH: &str = "/connect/carepartner/v13/display/message";
/// The CarePartner app version the data request names (care-partner mode).
const APP_VERSION: &str = "3.6.0";
/// A meal and the bolus that goes with it are recorded this close together.
const MEAL_BOLUS_MS: i64 = 60_000;

pub struct Carelink {
    base: String,
    token_file: PathBuf,
    username: String,
    patient: Option<String>,
    /// Set by a 401 on the data: the next login refreshes even an unexpired token.
    force_refresh: Cell<bool>,
    /// The tokens in use, newer than the file while a write-back failed.
    held: RefCell<Option<Held>>,
    /// How the last reply's device times were read (see [`Reading::known`]).
    known: RefCell<HashMap<String, Instant>>,
}

struct Held {
    tokens: Tokens,
    /// The file's text as last read or written: a different text is a new login's file.
    seen: String,
    /// Refreshed tokens the file does not have yet (its write failed): written at each login
    /// until it works, and never dropped for the file's older ones meanwhile.
    unsaved: bool,
}

#[derive(Clone)]
pub struct Session {
    access_token: String,
    mag_identifier: Option<String>,
}

impl Carelink {
    pub fn new(s: &Settings) -> Carelink {
        Carelink {
            base: base_url(&s.server),
            token_file: PathBuf::from(&s.token_file),
            username: s.username.clone(),
            patient: s.patient.clone(),
            force_refresh: Cell::new(false),
            held: RefCell::new(None),
            known: RefCell::new(HashMap::new()),
        }
    }

    fn host(&self) -> String {
        format!("CareLink ({})", host_of(&self.base))
    }

    fn message_body(&self) -> Value {
        match &self.patient {
            Some(p) => json!({"username": self.username, "role": "carepartner",
                "patientId": p, "appVersion": APP_VERSION}),
            None => json!({"username": self.username, "role": "patient"}),
        }
    }

    async fn refresh(&self, http: &Http, tokens: &mut Tokens) -> Result<(), SourceError> {
        let req = tokens.refresh_request(&self.token_file)?;
        let host = format!("CareLink login ({})", host_of(&base_url(&req.url)));
        let form: Vec<(&str, &str)> = req.form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = http
            .exchange(
                &host,
                reqwest::Method::POST,
                &req.url,
                &[],
                Body::Form(&form),
            )
            .await?;
        let body = refresh_reply(&host, &r.reply)?;
        tokens.refreshed(&body)?;
        tracing::info!(
            source = "minimedcarelink",
            "CareLink: access token refreshed"
        );
        Ok(())
    }

    /// The tokens to use: those in memory while the file is as nightlite last saw it (or
    /// unreadable after a refresh it could not write), else the file's.
    fn current(&self, text: Result<String, SourceError>) -> Result<Held, SourceError> {
        match (self.held.take(), text) {
            (Some(h), Ok(t)) if t == h.seen => Ok(h),
            (Some(h), Err(_)) if h.unsaved => Ok(h),
            (_, Ok(t)) => Ok(Held {
                tokens: Tokens::parse(&t, &self.token_file)?,
                seen: t,
                unsaved: false,
            }),
            (_, Err(e)) => Err(e),
        }
    }

    /// Writes refreshed tokens back; a failure is logged and tried again at the next login
    /// (the tokens in memory keep working meanwhile).
    async fn write_back(&self, held: &mut Held) {
        if !held.unsaved {
            return;
        }
        let (tokens, path) = (held.tokens.clone(), self.token_file.clone());
        match off_worker(move || tokens.save(&path)).await {
            Ok(text) => {
                held.seen = text;
                held.unsaved = false;
            }
            Err(e) => tracing::error!(
                source = "minimedcarelink",
                "{}; a restart before it works needs a new login",
                e.message
            ),
        }
    }
}

/// Runs the token file's reads and writes (an fsync on a Pi's SD card can take a while) on
/// tokio's blocking pool, not on the worker that also serves requests.
async fn off_worker<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|_| Err(SourceError::transient("the token file task failed")))
}

/// A token refresh's reply, by class.
fn refresh_reply(host: &str, reply: &Reply) -> Result<Value, SourceError> {
    match reply.status {
        200 => reply
            .json()
            .ok_or_else(|| SourceError::transient(format!("{host}: a reply that is not JSON"))),
        400 | 401 | 403 => Err(SourceError::fatal(format!(
            "{host} refused the token refresh ({}): the CareLink login has expired or was \
             revoked (logging in elsewhere with the same account revokes it); log in again \
             and replace the token file (docs/bridges.md, CareLink)",
            reply.status
        ))),
        s => Err(SourceError::transient(format!(
            "{host}: the token refresh answered HTTP {s}"
        ))),
    }
}

/// The data request's reply, by class.
fn data_reply(host: &str, reply: &Reply) -> Result<Value, SourceError> {
    match reply.status {
        200 => reply
            .json()
            .ok_or_else(|| SourceError::transient(format!("{host}: a reply that is not JSON"))),
        401 => Err(SourceError::auth(format!(
            "{host}: the access token was refused (401)"
        ))),
        s => Err(SourceError::transient(format!("{host} answered HTTP {s}"))),
    }
}

/// The pump's zone, minutes east of UTC, from the upload's device time and server time;
/// None when either is missing or they are a day or more apart.
fn pump_offset(data: &Value) -> Option<i32> {
    let server = data["lastConduitUpdateServerDateTime"].as_i64()?;
    let device = wall_ms(data["lastConduitDateTime"].as_str()?)?;
    let diff = device - server;
    if diff.abs() >= 26 * HOUR_MS {
        return None;
    }
    let quarters = (diff as f64 / QUARTER_MS as f64).round() as i64;
    i32::try_from(quarters * 15).ok()
}

/// A device time's wall clock, as epoch ms of that wall clock read as UTC (whatever suffix
/// it carries).
fn wall_ms(stamp: &str) -> Option<i64> {
    let read = crate::dates::parse_iso(stamp)?;
    Some(read.ms + i64::from(read.offset_min) * 60_000)
}

/// Where CareLink keeps a record's time: `timestamp` (v13), `datetime`/`dateTime` (legacy).
fn stamp(record: &Value) -> Option<&str> {
    ["timestamp", "datetime", "dateTime"]
        .iter()
        .find_map(|k| record[*k].as_str())
}

/// A positive finite number at the first of `keys` that has one.
fn positive(v: &Value, keys: &[&str]) -> Option<f64> {
    keys.iter()
        .find_map(|k| v[*k].as_f64())
        .filter(|x| *x > 0.0 && x.is_finite())
}

/// Nightscout's trend and direction for CareLink's `lastSGTrend`.
fn trend(name: &str) -> Option<(i64, &'static str)> {
    Some(match name {
        "NONE" => (4, "Flat"),
        "UP" => (2, "SingleUp"),
        "UP_DOUBLE" => (1, "DoubleUp"),
        "UP_TRIPLE" => (1, "TripleUp"),
        "DOWN" => (6, "SingleDown"),
        "DOWN_DOUBLE" => (7, "DoubleDown"),
        "DOWN_TRIPLE" => (7, "TripleDown"),
        _ => return None,
    })
}

/// A device time as read: epoch ms and the pump's offset then.
type Instant = (i64, i32);

/// One reply read with the pump's offset.
struct Reading<'a> {
    data: &'a Value,
    offset: Option<i32>,
    /// How the previous reply's times were read: a record still in this reply keeps its
    /// instant when the pump's clock has changed since (a DST change), so it is not stored
    /// again an hour off.
    known: &'a HashMap<String, Instant>,
    /// How this reply's times were read, for the next.
    read: RefCell<HashMap<String, Instant>>,
}

impl Reading<'_> {
    /// A device time as (epoch ms, the pump's offset).
    fn instant(&self, stamp: &str) -> Option<Instant> {
        let at = match (self.known.get(stamp), self.offset) {
            (Some(known), _) => *known,
            (None, Some(o)) => (wall_ms(stamp)? - i64::from(o) * 60_000, o),
            // No server time to correct with: the stamp as written.
            (None, None) => {
                let read = crate::dates::parse_iso(stamp)?;
                (read.ms, read.offset_min)
            }
        };
        self.read.borrow_mut().insert(stamp.to_string(), at);
        Some(at)
    }

    fn entries(&self) -> Vec<Value> {
        let sgs = self.data["sgs"].as_array().cloned().unwrap_or_default();
        let last_sg = self.data["lastSG"]["sg"].as_f64();
        let last_trend = self.data["lastSGTrend"].as_str().and_then(trend);
        let n = sgs.len();
        sgs.iter()
            .enumerate()
            .filter(|(_, s)| s["kind"].as_str().is_none_or(|k| k == "SG"))
            .filter_map(|(i, s)| {
                let sg = positive(s, &["sg"])?;
                let (ms, offset) = self.instant(stamp(s)?)?;
                // Only the newest reading has a trend, and only when it is the one CareLink
                // computed it for.
                let t = (i + 1 == n && last_sg == Some(sg))
                    .then_some(last_trend)
                    .flatten();
                Some(sgv_entry(DEVICE, ms, crate::jsnum::num(sg), offset, t))
            })
            .collect()
    }

    fn treatment(&self, ms: i64, offset: i32, key: &str, fields: Value) -> Value {
        let mut doc = Map::new();
        if let Value::Object(f) = fields {
            doc.extend(f);
        }
        doc.insert("created_at".into(), local_iso(ms, offset).into());
        doc.insert("enteredBy".into(), DEVICE.into());
        doc.insert(
            "identifier".into(),
            crate::ids::v3_identifier(Some(DEVICE), ms, Some(key)).into(),
        );
        Value::Object(doc)
    }

    /// Boluses (with the meal recorded beside them), meals alone and finger sticks. A meal
    /// and its bolus share the bolus's identity, so a meal that arrives after its bolus was
    /// stored turns that Correction Bolus into a Meal Bolus rather than a second document.
    fn treatments(&self) -> Vec<Value> {
        let markers = self.data["markers"].as_array().cloned().unwrap_or_default();
        let mut boluses = Vec::new();
        let mut meals = Vec::new();
        let mut out = Vec::new();
        for m in &markers {
            let Some((ms, offset)) = stamp(m).and_then(|s| self.instant(s)) else {
                continue;
            };
            let values = if m["data"]["dataValues"].is_object() {
                &m["data"]["dataValues"]
            } else {
                m
            };
            match m["type"].as_str().unwrap_or("") {
                "INSULIN" => {
                    if let Some(u) = positive(values, &["deliveredFastAmount"]) {
                        let programmed = positive(values, &["programmedFastAmount"]);
                        boluses.push((ms, offset, u, programmed));
                    }
                }
                "MEAL" => {
                    if let Some(c) = positive(values, &["amount"]) {
                        meals.push((ms, offset, c));
                    }
                }
                "BG_READING" | "BG" | "CALIBRATION" => {
                    if let Some(g) = positive(values, &["unitValue", "bgValue", "value"]) {
                        let f = json!({"eventType": "BG Check", "glucose": crate::jsnum::num(g),
                            "glucoseType": "Finger", "units": "mg/dl"});
                        out.push(self.treatment(ms, offset, "bg", f));
                    }
                }
                _ => {}
            }
        }
        let mut used = vec![false; meals.len()];
        for (ms, offset, units, programmed) in boluses {
            let meal = meals
                .iter()
                .enumerate()
                .find(|(i, (t, _, _))| !used[*i] && (t - ms).abs() <= MEAL_BOLUS_MS);
            let mut f = json!({"insulin": crate::jsnum::num(units)});
            if let Some(p) = programmed {
                f["programmed"] = crate::jsnum::num(p);
            }
            if let Some((i, (_, _, carbs))) = meal {
                used[i] = true;
                f["eventType"] = "Meal Bolus".into();
                f["carbs"] = crate::jsnum::num(*carbs);
            } else {
                f["eventType"] = "Correction Bolus".into();
            }
            out.push(self.treatment(ms, offset, "bolus", f));
        }
        for (i, (ms, offset, carbs)) in meals.into_iter().enumerate() {
            if !used[i] {
                let f = json!({"eventType": "Carb Correction", "carbs": crate::jsnum::num(carbs)});
                out.push(self.treatment(ms, offset, "bolus", f));
            }
        }
        out
    }

    /// The pump and sensor as of the upload (its server time, real UTC): nothing without it.
    fn device_status(&self) -> Option<Value> {
        let d = self.data;
        let at = d["lastConduitUpdateServerDateTime"].as_i64()?;
        let family = d["medicalDeviceFamily"].as_str().unwrap_or("");
        let mut connect = Map::new();
        for k in [
            "sensorState",
            "calibStatus",
            "sensorDurationHours",
            "timeToNextCalibHours",
            "conduitInRange",
            "conduitMedicalDeviceInRange",
            "conduitSensorInRange",
            "medicalDeviceFamily",
        ] {
            if !d[k].is_null() {
                connect.insert(k.into(), d[k].clone());
            }
        }
        let mut doc = json!({
            "created_at": crate::dates::to_iso(at),
            "device": DEVICE,
            "identifier": crate::ids::v3_identifier(Some(DEVICE), at, None),
            "connect": connect,
        });
        if let Some(b) = d["conduitBatteryLevel"].as_f64() {
            doc["uploader"] = json!({"battery": crate::jsnum::num(b)});
        }
        // A Guardian (sensor and phone, no pump) has no pump to report.
        if family != "GUARDIAN" {
            let mut pump = Map::new();
            if let Some(p) = d["medicalDeviceBatteryLevelPercent"].as_f64() {
                pump.insert("battery".into(), json!({"percent": crate::jsnum::num(p)}));
            }
            if let Some(r) = d["reservoirRemainingUnits"].as_f64() {
                pump.insert("reservoir".into(), crate::jsnum::num(r));
            }
            if let Some(iob) = d["activeInsulin"]["amount"].as_f64().filter(|x| *x >= 0.0) {
                // Nightscout's pump plugin reads pump.iob.bolusiob.
                pump.insert(
                    "iob".into(),
                    json!({"timestamp": crate::dates::to_iso(at), "bolusiob": crate::jsnum::num(iob)}),
                );
            }
            if let Some((ms, o)) = d["lastConduitDateTime"]
                .as_str()
                .and_then(|s| self.instant(s))
            {
                pump.insert("clock".into(), local_iso(ms, o).into());
            }
            if !pump.is_empty() {
                doc["pump"] = Value::Object(pump);
            }
        }
        Some(doc)
    }
}

impl Source for Carelink {
    type Auth = Session;
    type Session = Session;
    type Raw = Value;

    fn name(&self) -> &'static str {
        "minimedcarelink"
    }

    fn device(&self) -> &'static str {
        DEVICE
    }

    /// Shorter than a poll, so every poll reads the token file again and checks the access
    /// token's expiry (a refresh only when it is near).
    fn session_ttl_ms(&self) -> i64 {
        4 * 60_000
    }

    /// A reply always covers the last 24 hours.
    fn window_ms(&self) -> i64 {
        24 * HOUR_MS
    }

    async fn authenticate(&self, http: &Http) -> Result<Session, SourceError> {
        let path = self.token_file.clone();
        let mut held = self.current(off_worker(move || tokens::read(&path)).await)?;
        if self.force_refresh.get() || held.tokens.stale(http.now_ms()) {
            if let Err(e) = self.refresh(http, &mut held.tokens).await {
                // Kept: a failed refresh changes no token (and unsaved ones must survive it).
                self.held.replace(Some(held));
                return Err(e);
            }
            self.force_refresh.set(false);
            held.unsaved = true;
        }
        self.write_back(&mut held).await;
        let session = Session {
            access_token: held.tokens.access_token().to_string(),
            mag_identifier: held.tokens.mag_identifier().map(str::to_string),
        };
        self.held.replace(Some(held));
        Ok(session)
    }

    async fn authorize(&self, _http: &Http, s: Session) -> Result<Session, SourceError> {
        Ok(s)
    }

    async fn fetch(&self, http: &Http, s: &Session, _gap: &Gap) -> Result<Value, SourceError> {
        let host = self.host();
        let bearer = format!("Bearer {}", s.access_token);
        let mut headers = vec![("Authorization", bearer.as_str())];
        if let Some(m) = &s.mag_identifier {
            headers.push(("mag-identifier", m.as_str()));
        }
        let reply = http
            .post_with(
                &host,
                &format!("{}{MESSAGE_PATH}", self.base),
                &headers,
                &self.message_body(),
            )
            .await?;
        let r = data_reply(&host, &reply);
        if r.as_ref()
            .is_err_and(|e| e.class == super::errors::ErrorClass::Auth)
        {
            self.force_refresh.set(true);
        }
        r
    }

    fn transform(&self, raw: Value, _gap: &Gap) -> Result<Batch, SourceError> {
        // v13 wraps the data in `patientData`; v11 sent it bare.
        let data = if raw["patientData"].is_object() {
            &raw["patientData"]
        } else {
            &raw
        };
        let known = self.known.take();
        let r = Reading {
            data,
            offset: pump_offset(data),
            known: &known,
            read: RefCell::default(),
        };
        let batch = Batch {
            entries: r.entries(),
            treatments: r.treatments(),
            devicestatus: r.device_status().into_iter().collect(),
            ..Batch::default()
        };
        self.known.replace(r.read.take());
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::errors::ErrorClass;
    use super::*;

    fn ms(iso: &str) -> i64 {
        crate::dates::parse_iso(iso).unwrap().ms
    }

    #[test]
    fn device_times_labelled_utc_are_read_with_the_pump_s_offset() {
        // CET wall clock with a fake Z; the server's time is real UTC (research §5).
        let data = json!({"lastConduitDateTime": "2026-01-10T15:05:12.000Z",
            "lastConduitUpdateServerDateTime": ms("2026-01-10T14:05:40Z")});
        assert_eq!(pump_offset(&data), Some(60));
        let india = json!({"lastConduitDateTime": "2026-01-10T19:35:12.000Z",
            "lastConduitUpdateServerDateTime": ms("2026-01-10T14:05:30Z")});
        assert_eq!(pump_offset(&india), Some(330));
        let known = HashMap::new();
        let r = Reading {
            data: &data,
            offset: Some(60),
            known: &known,
            read: RefCell::default(),
        };
        assert_eq!(
            r.instant("2026-01-10T15:00:00.000Z").unwrap(),
            (ms("2026-01-10T14:00:00Z"), 60)
        );
        let garbage = json!({"lastConduitDateTime": "2026-01-15T15:05:12.000Z",
            "lastConduitUpdateServerDateTime": ms("2026-01-10T14:05:40Z")});
        assert_eq!(pump_offset(&garbage), None);
    }

    #[test]
    fn markers_pair_a_meal_with_its_bolus() {
        let data = json!({"markers": [
            {"type": "INSULIN", "timestamp": "2026-01-10T12:00:00.000Z",
             "data": {"dataValues": {"deliveredFastAmount": 2.5, "programmedFastAmount": 3}}},
            {"type": "MEAL", "timestamp": "2026-01-10T12:00:30.000Z",
             "data": {"dataValues": {"amount": 30}}},
            {"type": "MEAL", "timestamp": "2026-01-10T15:00:00.000Z",
             "data": {"dataValues": {"amount": 12}}},
            {"type": "BG_READING", "timestamp": "2026-01-10T16:00:00.000Z",
             "data": {"dataValues": {"unitValue": 110}}},
            {"type": "INSULIN", "timestamp": "2026-01-10T17:00:00.000Z",
             "data": {"dataValues": {"deliveredFastAmount": 0}}}]});
        let known = HashMap::new();
        let r = Reading {
            data: &data,
            offset: Some(0),
            known: &known,
            read: RefCell::default(),
        };
        let t = r.treatments();
        let kinds: Vec<&str> = t.iter().map(|d| d["eventType"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["BG Check", "Meal Bolus", "Carb Correction"]);
        assert_eq!(
            (t[1]["insulin"].as_f64(), t[1]["carbs"].as_i64()),
            (Some(2.5), Some(30))
        );
        assert_eq!(t[0]["glucose"].as_i64(), Some(110));
    }

    #[test]
    fn refresh_and_data_answers_are_classified() {
        let r = |status| Reply {
            status,
            body: "{}".into(),
        };
        let refresh = |s| refresh_reply("h", &r(s)).err().map(|e| e.class);
        assert_eq!(refresh(200), None);
        assert_eq!(refresh(403), Some(ErrorClass::Fatal));
        assert_eq!(refresh(400), Some(ErrorClass::Fatal));
        assert_eq!(refresh(503), Some(ErrorClass::Transient));
        let data = |s| data_reply("h", &r(s)).err().map(|e| e.class);
        assert_eq!(data(401), Some(ErrorClass::Auth));
        assert_eq!(data(403), Some(ErrorClass::Transient));
        assert_eq!(data(502), Some(ErrorClass::Transient));
    }
}
