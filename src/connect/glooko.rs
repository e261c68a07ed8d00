//! Glooko (research/bridges.md §4): an email sign-in sets a session cookie and names the
//! patient (`glookoCode`); the v2 lists read with that cookie are the pump's normal boluses
//! and scheduled basals, the logbook's foods and insulins (treatments) and the CGM readings
//! (entries). Glooko writes every time as the pump's local wall clock with a `Z`: the
//! configured zone turns it back into an instant (an IANA zone is right on both sides of a
//! DST change; a fixed offset is wrong for half the year). Each record's `guid` is its
//! `identifier`, so a record fetched again, or after a restart, is the same document.
//!
//! Glooko's answers are not stable (research §4): a sign-in refused with 401/403 or 422 (the
//! web app's CSRF check, seen on EU accounts) is fatal, as is a demand for a second factor;
//! on the lists, 401/421 and 403 (`data_cant_view`: the patient code changed) end the session
//! (one new sign-in), 422 is a throttle, 432 and the rest transient.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::engine::{local_iso, sgv_entry, Batch, Gap, Source};
use super::errors::SourceError;
use super::http::{base_url, host_of, percent_encode, Body, Http, Reply};
use crate::config::bridges::{Glooko as Settings, LocalTime, Password};

pub const DEVICE: &str = "glooko";
const HOUR_MS: i64 = 3_600_000;
/// The lists Glooko is asked for, with the key of each reply's array.
const LISTS: [(&str, &str); 5] = [
    ("/api/v2/pumps/normal_boluses", "normalBoluses"),
    ("/api/v2/pumps/scheduled_basals", "scheduledBasals"),
    ("/api/v2/foods", "foods"),
    ("/api/v2/insulins", "insulins"),
    ("/api/v2/cgm/readings", "readings"),
];
/// Glooko wants `lastGuid` on every list request; any well-formed UUID is accepted (this is
/// the one nightscout-connect sends).
const LAST_GUID: &str = "1e0c094e-1e54-4a4f-8e6a-f94484b53789";
/// The most a zone is ahead of or behind UTC: the list window is widened by it, since Glooko
/// compares it with its local times written as UTC.
const MAX_ZONE_MS: i64 = 14 * HOUR_MS;

pub struct Glooko {
    base: String,
    origin: String,
    email: String,
    password: Password,
    local: Local,
}

/// The configured local time, resolved once.
enum Local {
    Zone(jiff::tz::TimeZone),
    Offset(i32),
}

/// What the sign-in yields: the cookie, and the patient code when the reply names it.
pub struct SignedIn {
    cookie: String,
    patient: Option<String>,
}

#[derive(Clone)]
pub struct Session {
    cookie: String,
    patient: String,
}

/// Each list's records, in the order of [`LISTS`].
pub struct Lists(Vec<Vec<Value>>);

impl Glooko {
    pub fn new(s: &Settings) -> Glooko {
        let local = match &s.local_time {
            // Checked when the settings were read; UTC should it vanish since.
            LocalTime::Zone(z) => {
                Local::Zone(jiff::tz::TimeZone::get(z).unwrap_or(jiff::tz::TimeZone::UTC))
            }
            LocalTime::Offset(o) => Local::Offset(*o),
        };
        Glooko {
            base: base_url(&s.server),
            origin: s.web_origin.clone(),
            email: s.email.clone(),
            password: s.password.clone(),
            local,
        }
    }

    fn host(&self) -> String {
        format!("Glooko ({})", host_of(&self.base))
    }

    /// The headers the web app sends (Glooko checks Origin); the cookie when there is one.
    fn headers<'a>(&'a self, cookie: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        let mut h = vec![
            ("Origin", self.origin.as_str()),
            ("Referer", self.origin.as_str()),
        ];
        if let Some(c) = cookie {
            h.push(("Cookie", c));
        }
        h
    }

    /// The sign-in's device: fixed for the account (not a secret: a hash of its email), so
    /// Glooko sees one device and not a new one per login.
    fn device_information(&self) -> Value {
        let id = crate::ids::hex(&Sha256::digest(self.email.as_bytes()));
        json!({
            "applicationType": "logbook",
            "os": "android",
            "osVersion": "33",
            "device": "nightlite",
            "deviceManufacturer": "nightlite",
            "deviceModel": "nightlite",
            "serialNumber": &id[..24],
            "clinicalResearch": false,
            "deviceId": &id[24..40],
            "applicationVersion": "6.1.3",
            "buildNumber": "0",
            "gitHash": env!("CARGO_PKG_VERSION"),
        })
    }

    async fn get(&self, http: &Http, cookie: &str, path: &str) -> Result<Value, SourceError> {
        let host = self.host();
        let reply = http
            .get_with(
                &host,
                &format!("{}{path}", self.base),
                &self.headers(Some(cookie)),
            )
            .await?;
        data_reply(&host, &reply)
    }

    /// A Glooko time (local wall clock written as UTC) as epoch ms and the offset in force.
    pub fn instant(&self, fake_utc: &str) -> Option<(i64, i32)> {
        let read = crate::dates::parse_iso(fake_utc)?;
        // The wall clock as written, whatever suffix it carries.
        let wall = read.ms + i64::from(read.offset_min) * 60_000;
        match &self.local {
            Local::Offset(o) => Some((wall - i64::from(*o) * 60_000, *o)),
            Local::Zone(tz) => {
                let civil = jiff::Timestamp::from_millisecond(wall)
                    .ok()?
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .datetime();
                // A time the clock skipped is read as after the change, a repeated one as
                // the first pass (the records cannot tell the two apart).
                let z = tz.to_ambiguous_zoned(civil).compatible().ok()?;
                Some((z.timestamp().as_millisecond(), z.offset().seconds() / 60))
            }
        }
    }
}

/// A sign-in reply, by class: the cookie and patient code, or why not.
fn sign_in_reply(host: &str, reply: &Reply, cookies: Vec<String>) -> Result<SignedIn, SourceError> {
    match reply.status {
        200 | 201 => {}
        401 | 403 => {
            return Err(SourceError::fatal(format!(
                "{host}: the email or password is wrong (or the account is in another \
                 CONNECT_GLOOKO_ENV) ({})",
                reply.status
            )))
        }
        422 => {
            return Err(SourceError::fatal(format!(
                "{host}: Glooko refused this sign-in (422, its web app's check that some \
                 accounts, mostly in the EU, get); nightlite cannot sign in to this account"
            )))
        }
        s => {
            return Err(SourceError::transient(format!(
                "{host}: the sign-in answered HTTP {s}"
            )))
        }
    }
    let body = reply.json().unwrap_or(Value::Null);
    let two_factor = ["twoFaRequired", "two_fa_required", "twoFactorRequired"]
        .iter()
        .any(|k| body[*k] == true);
    if two_factor {
        return Err(SourceError::fatal(format!(
            "{host}: the account asks for a second factor, which nightlite cannot give; \
             turn it off for this account to use the bridge"
        )));
    }
    if cookies.is_empty() {
        return Err(SourceError::transient(format!(
            "{host}: the sign-in set no session cookie"
        )));
    }
    Ok(SignedIn {
        cookie: cookies.join("; "),
        patient: patient_code(&body),
    })
}

/// The patient code in a sign-in or session reply.
fn patient_code(body: &Value) -> Option<String> {
    [
        &body["userLogin"]["glookoCode"],
        &body["user"]["glookoCode"],
        &body["currentUser"]["glookoCode"],
        &body["currentPatient"]["glookoCode"],
    ]
    .into_iter()
    .find_map(Value::as_str)
    .filter(|c| !c.is_empty())
    .map(str::to_string)
}

/// A list's reply, by class.
fn data_reply(host: &str, reply: &Reply) -> Result<Value, SourceError> {
    match reply.status {
        200 => reply
            .json()
            .ok_or_else(|| SourceError::transient(format!("{host}: a reply that is not JSON"))),
        401 | 421 => Err(SourceError::auth(format!(
            "{host}: the session was refused ({})",
            reply.status
        ))),
        // `data_cant_view`: the patient code changed (a new sign-in reads the new one).
        403 => Err(SourceError::auth(format!(
            "{host}: this session may not read the patient's data (403)"
        ))),
        422 => Err(SourceError::throttle(
            format!("{host}: the lists were refused (422)"),
            None,
        )),
        s => Err(SourceError::transient(format!("{host} answered HTTP {s}"))),
    }
}

/// A number field, when it is a number above 0.
fn positive(v: &Value, keys: &[&str]) -> Option<f64> {
    keys.iter()
        .find_map(|k| v[*k].as_f64())
        .filter(|x| *x > 0.0 && x.is_finite())
}

/// `x` as a JSON number, whole when it is.
fn number(x: f64) -> Value {
    crate::jsnum::num(x)
}

impl Glooko {
    /// A treatment at the record's time with its guid as identifier; None without a time.
    fn treatment(&self, record: &Value, time_keys: &[&str], fields: Value) -> Option<Value> {
        let stamp = time_keys.iter().find_map(|k| record[*k].as_str())?;
        let (ms, offset) = self.instant(stamp)?;
        let mut doc = Map::new();
        if let Value::Object(f) = fields {
            doc.extend(f);
        }
        doc.insert("created_at".into(), local_iso(ms, offset).into());
        doc.insert("enteredBy".into(), DEVICE.into());
        if let Some(g) = record["guid"].as_str().filter(|g| !g.is_empty()) {
            doc.insert("identifier".into(), g.into());
        }
        Some(Value::Object(doc))
    }

    fn bolus(&self, r: &Value) -> Option<Value> {
        let insulin = positive(r, &["insulinDelivered", "deliveredUnits"])?;
        let carbs = positive(r, &["carbsInput"]);
        let mut f = json!({
            "eventType": if carbs.is_some() { "Meal Bolus" } else { "Correction Bolus" },
            "insulin": number(insulin),
        });
        if let Some(c) = carbs {
            f["carbs"] = number(c);
        }
        self.treatment(r, &["pumpTimestamp", "timestamp"], f)
    }

    fn basal(&self, r: &Value) -> Option<Value> {
        let rate = r["rate"].as_f64().filter(|x| *x >= 0.0 && x.is_finite())?;
        let seconds = positive(r, &["duration"])?;
        let f = json!({
            "eventType": "Temp Basal",
            "rate": number(rate),
            "absolute": number(rate),
            "duration": number(seconds / 60.0),
        });
        self.treatment(r, &["pumpTimestamp", "timestamp"], f)
    }

    fn food(&self, r: &Value) -> Option<Value> {
        let carbs = positive(r, &["carbs", "carbohydrateGrams"])?;
        let mut f = json!({"eventType": "Carb Correction", "carbs": number(carbs)});
        if let Some(d) = r["description"].as_str().filter(|d| !d.is_empty()) {
            f["notes"] = d.into();
        }
        self.treatment(r, &["pumpTimestamp", "timestamp"], f)
    }

    fn insulin(&self, r: &Value) -> Option<Value> {
        let units = positive(r, &["value", "units"])?;
        let f = json!({"eventType": "Correction Bolus", "insulin": number(units)});
        self.treatment(r, &["timestamp", "pumpTimestamp"], f)
    }

    fn reading(&self, r: &Value) -> Option<Value> {
        let (ms, offset) = self.instant(r["timestamp"].as_str()?)?;
        let v = positive(r, &["value"])?;
        // v2 readings are in hundredths of mg/dl (nightscout-connect's reading).
        let sgv = if v > 1000.0 { v / 100.0 } else { v }.round();
        let mut e = sgv_entry(DEVICE, ms, number(sgv), offset, None);
        if let Some(g) = r["guid"].as_str().filter(|g| !g.is_empty()) {
            e["identifier"] = g.into();
        }
        Some(e)
    }
}

/// ISO 8601 in UTC, as Glooko's query parameters are written.
fn iso(ms: i64) -> String {
    crate::dates::to_iso(ms)
}

impl Source for Glooko {
    type Auth = SignedIn;
    type Session = Session;
    type Raw = Lists;

    fn name(&self) -> &'static str {
        "glooko"
    }

    fn device(&self) -> &'static str {
        DEVICE
    }

    /// nightscout-connect signs in again after a day.
    fn session_ttl_ms(&self) -> i64 {
        24 * HOUR_MS
    }

    fn window_ms(&self) -> i64 {
        48 * HOUR_MS
    }

    /// Glooko gets data when the phone or uploader syncs, an hour or more late and a pump's
    /// boluses apart from its readings: every poll reads the last day again (the guids make
    /// that free of duplicates).
    fn overlap_ms(&self) -> i64 {
        24 * HOUR_MS
    }

    async fn authenticate(&self, http: &Http) -> Result<SignedIn, SourceError> {
        let host = self.host();
        let body = json!({
            "userLogin": {"email": self.email, "password": self.password.reveal()},
            "deviceInformation": self.device_information(),
        });
        let r = http
            .exchange(
                &host,
                reqwest::Method::POST,
                &format!("{}/api/v2/users/sign_in", self.base),
                &self.headers(None),
                Body::Json(&body),
            )
            .await?;
        let cookies = r.cookies();
        sign_in_reply(&host, &r.reply, cookies)
    }

    async fn authorize(&self, http: &Http, a: SignedIn) -> Result<Session, SourceError> {
        let patient = match a.patient {
            Some(p) => p,
            None => {
                let profile = self.get(http, &a.cookie, "/api/v3/session/users").await?;
                patient_code(&profile).ok_or_else(|| {
                    SourceError::transient(format!("{}: the session names no patient", self.host()))
                })?
            }
        };
        Ok(Session {
            cookie: a.cookie,
            patient,
        })
    }

    async fn fetch(&self, http: &Http, s: &Session, gap: &Gap) -> Result<Lists, SourceError> {
        let (start, end) = (gap.from - MAX_ZONE_MS, gap.now + MAX_ZONE_MS);
        // One record every 5 minutes at most, and room for more.
        let limit = (end - start) / 300_000 + 1000;
        let query = format!(
            "patient={}&startDate={}&endDate={}&lastGuid={LAST_GUID}&lastUpdatedAt={}&limit={limit}",
            percent_encode(&s.patient),
            iso(start),
            iso(end),
            iso(start),
        );
        let mut lists = Vec::with_capacity(LISTS.len());
        for (path, key) in LISTS {
            let body = self
                .get(http, &s.cookie, &format!("{path}?{query}"))
                .await?;
            lists.push(body[key].as_array().cloned().unwrap_or_default());
        }
        Ok(Lists(lists))
    }

    fn transform(&self, raw: Lists, _gap: &Gap) -> Result<Batch, SourceError> {
        let mut batch = Batch::default();
        for ((_, key), records) in LISTS.iter().zip(raw.0) {
            for r in records.iter().filter(|r| r["softDeleted"] != true) {
                let doc = match *key {
                    "normalBoluses" => self.bolus(r),
                    "scheduledBasals" => self.basal(r),
                    "foods" => self.food(r),
                    "insulins" => self.insulin(r),
                    _ => {
                        if let Some(e) = self.reading(r) {
                            batch.entries.push(e);
                        }
                        continue;
                    }
                };
                batch.treatments.extend(doc);
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::errors::ErrorClass;
    use super::*;

    fn glooko(local: LocalTime) -> Glooko {
        Glooko::new(&Settings {
            email: "a@example.org".into(),
            password: Password::new("p".into()),
            server: "api.glooko.com".into(),
            web_origin: "https://my.glooko.com".into(),
            local_time: local,
        })
    }

    #[test]
    fn local_times_written_as_utc_are_read_in_the_zone_across_dst() {
        let g = glooko(LocalTime::Zone("America/New_York".into()));
        // 2026-11-01: EDT (-4) ends at 06:00Z, 02:00 local becomes 01:00.
        let at = |s| g.instant(s).unwrap();
        let before = at("2026-10-31T23:30:00.000Z");
        assert_eq!(
            before,
            (
                crate::dates::parse_iso("2026-11-01T03:30:00Z").unwrap().ms,
                -240
            )
        );
        let after = at("2026-11-01T03:00:00.000Z");
        assert_eq!(
            after,
            (
                crate::dates::parse_iso("2026-11-01T08:00:00Z").unwrap().ms,
                -300
            )
        );
        // The repeated hour: the first pass.
        assert_eq!(at("2026-11-01T01:30:00.000Z").1, -240);
        // Spring: 02:30 never happened; read as after the change.
        assert_eq!(
            at("2026-03-08T02:30:00.000Z"),
            (
                crate::dates::parse_iso("2026-03-08T07:30:00Z").unwrap().ms,
                -240
            )
        );
        let fixed = glooko(LocalTime::Offset(120));
        assert_eq!(
            fixed.instant("2026-07-01T12:00:00.000Z").unwrap(),
            (
                crate::dates::parse_iso("2026-07-01T10:00:00Z").unwrap().ms,
                120
            )
        );
    }

    #[test]
    fn records_become_treatments_and_entries_with_their_guid() {
        let g = glooko(LocalTime::Offset(-300));
        let b = g
            .bolus(
                &json!({"pumpTimestamp":"2026-01-10T08:00:00.000Z","insulinDelivered":3.5,
                "carbsInput":40,"guid":"g-1"}),
            )
            .unwrap();
        assert_eq!(b["eventType"], "Meal Bolus");
        assert_eq!(b["created_at"], "2026-01-10T08:00:00.000-05:00");
        assert_eq!(
            (b["insulin"].as_f64(), b["carbs"].as_i64()),
            (Some(3.5), Some(40))
        );
        assert_eq!(b["identifier"], "g-1");
        let c = g
            .bolus(&json!({"pumpTimestamp":"2026-01-10T08:00:00.000Z","insulinDelivered":1,"carbsInput":0}))
            .unwrap();
        assert_eq!(c["eventType"], "Correction Bolus");
        assert!(c.get("carbs").is_none() && c.get("identifier").is_none());
        let t = g
            .basal(&json!({"pumpTimestamp":"2026-01-10T08:00:00.000Z","rate":0.85,"duration":1800,"guid":"g-2"}))
            .unwrap();
        assert_eq!(
            (t["eventType"].as_str(), t["duration"].as_i64()),
            (Some("Temp Basal"), Some(30))
        );
        assert_eq!(t["absolute"].as_f64(), Some(0.85));
        let e = g
            .reading(&json!({"timestamp":"2026-01-10T08:00:00.000Z","value":14200,"guid":"g-3"}))
            .unwrap();
        assert_eq!(
            (e["sgv"].as_i64(), e["identifier"].as_str()),
            (Some(142), Some("g-3"))
        );
        assert!(g
            .food(&json!({"timestamp":"2026-01-10T08:00:00.000Z","carbs":0}))
            .is_none());
        assert!(
            g.reading(&json!({"value":120})).is_none(),
            "no time, no entry"
        );
    }

    #[test]
    fn sign_in_and_list_answers_are_classified() {
        let r = |status: u16, body: &str| Reply {
            status,
            body: body.into(),
        };
        let sign_in = |status, body| {
            sign_in_reply("h", &r(status, body), vec!["_logbook-web_session=x".into()])
                .err()
                .map(|e| e.class)
        };
        assert_eq!(sign_in(401, "{}"), Some(ErrorClass::Fatal));
        assert_eq!(sign_in(422, "{}"), Some(ErrorClass::Fatal));
        assert_eq!(sign_in(432, "{}"), Some(ErrorClass::Transient));
        assert_eq!(
            sign_in(200, r#"{"twoFaRequired":true}"#),
            Some(ErrorClass::Fatal)
        );
        assert_eq!(sign_in(200, r#"{"userLogin":{}}"#), None);
        let ok = sign_in_reply(
            "h",
            &r(200, r#"{"userLogin":{"glookoCode":"us-east-1-x-1"}}"#),
            vec!["a=1".into(), "b=2".into()],
        )
        .unwrap();
        assert_eq!(
            (ok.cookie.as_str(), ok.patient.as_deref()),
            ("a=1; b=2", Some("us-east-1-x-1"))
        );
        assert!(sign_in_reply("h", &r(200, "{}"), vec![]).is_err());
        let data = |status| data_reply("h", &r(status, "{}")).err().map(|e| e.class);
        assert_eq!(data(200), None);
        assert_eq!(data(401), Some(ErrorClass::Auth));
        assert_eq!(data(421), Some(ErrorClass::Auth));
        assert_eq!(data(403), Some(ErrorClass::Auth));
        assert_eq!(data(422), Some(ErrorClass::Throttle));
        assert_eq!(data(432), Some(ErrorClass::Transient));
    }
}
