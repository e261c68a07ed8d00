//! LibreLinkUp (research/bridges.md §3): a follower account logs in (`product`/`version`
//! headers; region redirects followed at most twice), picks the patient from its connections,
//! then reads the graph: ~12 h of readings every 15 min without arrows, and the current
//! reading with its arrow. Calls after the login carry the token and `Account-Id`, the
//! SHA-256 of the user id. Terms to accept, a bad password and the version floor are fatal
//! (nightlite never accepts terms for the user); `locked` is a throttle with its lockout.
//! Entries carry `device: "librelinkup"` and API v3's identifier of device and date.
//!
//! Beyond nightscout-connect (seed proposal P1): each sensor the graph names gives a
//! `Sensor Start` treatment at its activation and a device status with its state (warming up,
//! then active), each with a deterministic identifier so it is stored once; and once an hour
//! the logbook's events that carry a reading (scans, alarms) become entries with their arrow.

use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::engine::{sgv_entry, Batch, Gap, Source};
use super::errors::{ErrorClass, SourceError};
use super::http::{base_url, host_of, Http, Reply};
use crate::config::bridges::{LinkUp, Password};

pub const DEVICE: &str = "librelinkup";
const PRODUCT: &str = "llu.android";
const HOUR_MS: i64 = 3_600_000;
const MAX_REDIRECTS: usize = 2;
/// The logbook (about two weeks of events) is read at most this often.
const LOGBOOK_EVERY_MS: i64 = HOUR_MS;

pub struct Libre {
    /// The configured server, when not the region's.
    server: Option<String>,
    region: String,
    username: String,
    password: Password,
    patient_id: Option<String>,
    interval_ms: i64,
    version: String,
    /// When the logbook was last asked for (epoch ms; i64::MIN before the first time).
    logbook_at: AtomicI64,
}

/// What a fetch brings: the graph, and the logbook when it was due.
pub struct Fetched {
    graph: Value,
    logbook: Option<Value>,
}

/// What the login yields.
#[derive(Clone)]
pub struct Ticket {
    base: String,
    token: String,
    account_id: String,
}

/// What each fetch needs: the login's ticket and the patient chosen.
#[derive(Clone)]
pub struct Session {
    ticket: Ticket,
    patient_id: String,
}

impl Libre {
    pub fn new(s: &LinkUp) -> Libre {
        Libre {
            server: s.server.clone(),
            region: s.region.clone(),
            username: s.username.clone(),
            password: s.password.clone(),
            patient_id: s.patient_id.clone(),
            interval_ms: i64::from(s.interval_min) * 60_000,
            version: s.version.clone(),
            logbook_at: AtomicI64::new(i64::MIN),
        }
    }

    /// The logbook when an hour has passed since it was last asked for. It is optional: a
    /// failure other than an ended session or a throttle is logged and the graph stored.
    async fn logbook(
        &self,
        http: &Http,
        s: &Session,
        now: i64,
    ) -> Result<Option<Value>, SourceError> {
        let last = self.logbook_at.load(Ordering::Relaxed);
        if last != i64::MIN && now - last < LOGBOOK_EVERY_MS {
            return Ok(None);
        }
        self.logbook_at.store(now, Ordering::Relaxed);
        let path = format!("/llu/connections/{}/logbook", s.patient_id);
        match self.get(http, &s.ticket, &path).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if matches!(e.class, ErrorClass::Auth | ErrorClass::Throttle) => Err(e),
            Err(e) => {
                tracing::warn!(
                    "LibreLinkUp: the logbook is skipped this hour: {}",
                    e.message
                );
                Ok(None)
            }
        }
    }

    fn base_for(&self, region: &str) -> String {
        match &self.server {
            Some(s) => base_url(s),
            None => base_url(&LinkUp::region_host(region)),
        }
    }

    fn host(base: &str) -> String {
        format!("LibreLinkUp ({})", host_of(base))
    }

    async fn get(&self, http: &Http, t: &Ticket, path: &str) -> Result<Value, SourceError> {
        let host = Libre::host(&t.base);
        let bearer = format!("Bearer {}", t.token);
        let headers = [
            ("product", PRODUCT),
            ("version", self.version.as_str()),
            ("cache-control", "no-cache"),
            ("Authorization", bearer.as_str()),
            ("Account-Id", t.account_id.as_str()),
        ];
        let reply = http
            .get_with(&host, &format!("{}{path}", t.base), &headers)
            .await?;
        let body = checked(&host, &reply, &self.version)?;
        Ok(body)
    }
}

/// Lowercase hex SHA-256, LibreLinkUp's Account-Id.
pub fn account_id(user_id: &str) -> String {
    crate::ids::hex(&Sha256::digest(user_id.as_bytes()))
}

/// The region a login redirect names, as letters and digits; None when it names none or
/// something far longer than a region code (it becomes part of a host name and messages).
fn redirect_region(data: &Value) -> Option<String> {
    let region: String = data["region"]
        .as_str()?
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    (!region.is_empty() && region.len() <= 8).then_some(region)
}

/// A reply's body when it is a success (HTTP 200, body status 0), else the error by class.
fn checked(host: &str, reply: &Reply, version: &str) -> Result<Value, SourceError> {
    let body = reply.json().unwrap_or(Value::Null);
    let status = body.get("status").and_then(Value::as_i64);
    if reply.status == 401 {
        return Err(SourceError::auth(format!(
            "{host}: the token was refused (401)"
        )));
    }
    if status == Some(920) {
        let floor = body["data"]["minimumVersion"].as_str().unwrap_or("?");
        let floor: String = floor
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '.')
            // Bounded like the step below: the reply may be megabytes.
            .take(20)
            .collect();
        return Err(SourceError::fatal(format!(
            "{host}: version {version} is below LibreLinkUp's floor {floor}; set \
             CONNECT_LINK_UP_VERSION to at least {floor}"
        )));
    }
    if reply.status != 200 {
        return Err(SourceError::transient(format!(
            "{host} answered HTTP {}",
            reply.status
        )));
    }
    match status {
        Some(0) => Ok(body),
        Some(2) => Err(SourceError::fatal(format!(
            "{host}: the email or password is wrong (or the account is in another region)"
        ))),
        Some(4) => {
            let step = body["data"]["step"]["type"].as_str().unwrap_or("");
            if step.is_empty() {
                Err(SourceError::fatal(format!(
                    "{host}: the patient could not be loaded; check CONNECT_LINK_UP_PATIENT_ID \
                     and that the patient still shares with this account"
                )))
            } else {
                let step: String = step
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(20)
                    .collect();
                Err(SourceError::fatal(format!(
                    "{host}: LibreLinkUp asks this account to accept something ({step}): log in \
                     once in the LibreLinkUp app, accept, then restart nightlite"
                )))
            }
        }
        Some(429) => {
            let lockout = body["data"]["data"]["lockout"].as_i64();
            Err(SourceError::throttle(
                format!("{host}: the account is locked for a while after too many logins"),
                lockout.map(|s| s * 1000),
            ))
        }
        _ => Err(SourceError::transient(format!(
            "{host}: an unexpected reply"
        ))),
    }
}

impl Source for Libre {
    type Auth = Ticket;
    type Session = Session;
    type Raw = Fetched;

    fn name(&self) -> &'static str {
        "linkup"
    }

    fn device(&self) -> &'static str {
        DEVICE
    }

    fn interval_ms(&self) -> i64 {
        self.interval_ms
    }

    /// nightscout-connect logs in again every hour.
    fn session_ttl_ms(&self) -> i64 {
        HOUR_MS
    }

    fn window_ms(&self) -> i64 {
        12 * HOUR_MS
    }

    async fn authenticate(&self, http: &Http) -> Result<Ticket, SourceError> {
        let mut base = self.base_for(&self.region);
        let body = json!({ "email": self.username, "password": self.password.reveal() });
        let headers = [
            ("product", PRODUCT),
            ("version", self.version.as_str()),
            ("cache-control", "no-cache"),
        ];
        for _ in 0..=MAX_REDIRECTS {
            let host = Libre::host(&base);
            let reply = http
                .post_with(&host, &format!("{base}/llu/auth/login"), &headers, &body)
                .await?;
            let r = checked(&host, &reply, &self.version)?;
            let data = &r["data"];
            if data["redirect"] == true {
                let Some(region) = redirect_region(data) else {
                    return Err(SourceError::transient(format!(
                        "{host}: a redirect without a region"
                    )));
                };
                base = self.base_for(&region);
                continue;
            }
            let user = data["user"]["id"].as_str();
            let token = data["authTicket"]["token"].as_str();
            let (Some(user), Some(token)) = (user, token) else {
                return Err(SourceError::transient(format!(
                    "{host}: the login reply holds no token"
                )));
            };
            return Ok(Ticket {
                base,
                token: token.to_string(),
                account_id: account_id(user),
            });
        }
        Err(SourceError::transient(format!(
            "{}: more than {MAX_REDIRECTS} region redirects",
            Libre::host(&base)
        )))
    }

    async fn authorize(&self, http: &Http, t: Ticket) -> Result<Session, SourceError> {
        let r = self.get(http, &t, "/llu/connections").await?;
        let connections = r["data"].as_array().cloned().unwrap_or_default();
        let host = Libre::host(&t.base);
        let chosen = match &self.patient_id {
            Some(id) => connections.iter().find(|c| c["patientId"] == id.as_str()),
            None => connections.first(),
        };
        let Some(patient) = chosen.and_then(|c| c["patientId"].as_str()) else {
            return Err(SourceError::fatal(if connections.is_empty() {
                format!("{host}: nobody shares with this account; invite it in the LibreLink app")
            } else {
                format!("{host}: no patient with CONNECT_LINK_UP_PATIENT_ID follows this account")
            }));
        };
        if self.patient_id.is_none() && connections.len() > 1 {
            tracing::warn!(
                "LibreLinkUp: the account follows {} patients; reading the first (set \
                 CONNECT_LINK_UP_PATIENT_ID to choose)",
                connections.len()
            );
        }
        Ok(Session {
            patient_id: patient.to_string(),
            ticket: t,
        })
    }

    async fn fetch(&self, http: &Http, s: &Session, gap: &Gap) -> Result<Fetched, SourceError> {
        let graph = self
            .get(
                http,
                &s.ticket,
                &format!("/llu/connections/{}/graph", s.patient_id),
            )
            .await?;
        let logbook = self.logbook(http, s, gap.now).await?;
        Ok(Fetched { graph, logbook })
    }

    fn transform(&self, raw: Fetched, gap: &Gap) -> Result<Batch, SourceError> {
        let data = &raw.graph["data"];
        let current = &data["connection"]["glucoseMeasurement"];
        let mut items: Vec<(&Value, bool)> = data["graphData"]
            .as_array()
            .map(|a| a.iter().map(|i| (i, false)).collect())
            .unwrap_or_default();
        items.push((current, true));
        let mut entries: Vec<Value> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        // The current reading first, so its arrow wins over a graph point of the same time.
        for (item, with_arrow) in items.into_iter().rev() {
            if let Some(e) = entry(item, with_arrow) {
                let date = e["date"].as_i64().unwrap_or(0);
                if date > gap.from && seen.insert(date) {
                    entries.push(e);
                }
            }
        }
        // Logbook events are each a reading with its arrow; older than the graph's window,
        // they are stored once all the same (their identifiers make a re-read a no-op).
        let logbook = raw.logbook.as_ref().and_then(|l| l["data"].as_array());
        for item in logbook.into_iter().flatten() {
            if let Some(e) = entry(item, true) {
                if seen.insert(e["date"].as_i64().unwrap_or(0)) {
                    entries.push(e);
                }
            }
        }
        let (treatments, devicestatus) = sensors(data, gap.now);
        Ok(Batch {
            entries,
            treatments,
            devicestatus,
            ..Batch::default()
        })
    }
}

/// The sensors a graph reply names (`activeSensors`, and the connection's own), each once:
/// a `Sensor Start` treatment at its activation, and a device status with its state at the
/// moment that state began (so each is stored once, whatever the number of polls).
fn sensors(data: &Value, now: i64) -> (Vec<Value>, Vec<Value>) {
    let listed = data["activeSensors"].as_array().into_iter().flatten();
    let all = listed
        .map(|s| &s["sensor"])
        .chain(std::iter::once(&data["connection"]["sensor"]));
    let (mut treatments, mut statuses) = (Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
    for s in all {
        // `a`: the activation, in Unix seconds; `w`: the warm-up, in minutes.
        let Some(started) = s["a"].as_i64().filter(|a| *a > 0).map(|a| a * 1000) else {
            continue;
        };
        if started > now || !seen.insert(started) {
            continue;
        }
        let warmup = s["w"]
            .as_i64()
            .filter(|w| (0..=24 * 60).contains(w))
            .unwrap_or(60);
        treatments.push(sensor_start(started));
        let ready = started + warmup * 60_000;
        let (state, since) = if now < ready {
            ("warming up", started)
        } else {
            ("active", ready)
        };
        let mut sensor = json!({
            "state": state,
            "started": crate::dates::to_iso(started),
            "warmupMinutes": warmup,
        });
        if let Some(pt) = s["pt"].as_i64() {
            sensor["productType"] = pt.into();
        }
        statuses.push(json!({
            "device": DEVICE,
            "created_at": crate::dates::to_iso(since),
            "identifier": crate::ids::v3_identifier(Some(DEVICE), since, None),
            "librelinkup": { "sensor": sensor },
        }));
    }
    (treatments, statuses)
}

/// The `Sensor Start` treatment of a sensor activated at `started` (epoch ms), with API v3's
/// identifier of device, date and event type.
fn sensor_start(started: i64) -> Value {
    const EVENT: &str = "Sensor Start";
    json!({
        "eventType": EVENT,
        "created_at": crate::dates::to_iso(started),
        "enteredBy": DEVICE,
        "device": DEVICE,
        "notes": "FreeStyle Libre sensor started (from LibreLinkUp)",
        "identifier": crate::ids::v3_identifier(Some(DEVICE), started, Some(EVENT)),
    })
}

/// `M/d/yyyy h:mm:ss AM` (en-US) as epoch ms, read as UTC.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let mut parts = s.split_whitespace();
    let date = parts.next()?;
    let time = parts.next()?;
    let ampm = parts.next();
    let mut d = date.split('/').map(|p| p.parse::<i32>().ok());
    let (m, day, y) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i32>().ok());
    let (mut h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    match ampm.map(str::to_ascii_uppercase).as_deref() {
        Some("AM") if h == 12 => h = 0,
        Some("PM") if h < 12 => h += 12,
        _ => {}
    }
    let dt = jiff::civil::DateTime::new(
        i16::try_from(y).ok()?,
        i8::try_from(m).ok()?,
        i8::try_from(day).ok()?,
        i8::try_from(h).ok()?,
        i8::try_from(mi).ok()?,
        i8::try_from(sec).ok()?,
        0,
    )
    .ok()?;
    Some(
        dt.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()?
            .timestamp()
            .as_millisecond(),
    )
}

/// LibreLinkUp's TrendArrow to Nightscout's trend number and direction.
pub fn arrow(v: i64) -> (i64, &'static str) {
    match v {
        1 => (6, "SingleDown"),
        2 => (5, "FortyFiveDown"),
        3 => (4, "Flat"),
        4 => (3, "FortyFiveUp"),
        5 => (2, "SingleUp"),
        _ => (8, "NOT COMPUTABLE"),
    }
}

/// A GlucoseItem as a v1 entry; None without a time or a value in mg/dl.
fn entry(item: &Value, with_arrow: bool) -> Option<Value> {
    let date = parse_timestamp(item["FactoryTimestamp"].as_str()?)?;
    let sgv = item
        .get("ValueInMgPerDl")
        .filter(|v| v.as_f64().is_some_and(|x| x > 0.0))?
        .clone();
    // The patient's local time, to the nearest 15 min, gives the offset.
    let offset = item["Timestamp"]
        .as_str()
        .and_then(parse_timestamp)
        .map(|local| ((local - date) as f64 / 900_000.0).round() as i64 * 15)
        .unwrap_or(0);
    let trend = if with_arrow {
        item["TrendArrow"].as_i64().map(arrow)
    } else {
        None
    };
    Some(sgv_entry(
        DEVICE,
        date,
        sgv,
        i32::try_from(offset).unwrap_or(i32::MAX),
        trend,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::errors::ErrorClass;
    use super::*;

    #[test]
    fn timestamps_are_en_us_and_utc() {
        assert_eq!(
            parse_timestamp("11/22/2025 2:00:00 AM"),
            Some(1_763_776_800_000)
        );
        assert_eq!(
            parse_timestamp("11/22/2025 12:05:00 PM"),
            Some(1_763_776_800_000 + 10 * 3_600_000 + 300_000)
        );
        assert_eq!(
            parse_timestamp("11/22/2025 12:00:00 AM"),
            Some(1_763_776_800_000 - 2 * 3_600_000)
        );
        assert_eq!(parse_timestamp("yesterday"), None);
    }

    #[test]
    fn items_become_entries_with_arrows_offsets_and_identifiers() {
        let item = json!({"FactoryTimestamp":"11/22/2025 2:00:00 AM","Timestamp":"11/21/2025 9:00:00 PM",
            "type":1,"ValueInMgPerDl":142,"TrendArrow":4,"Value":7.9,"GlucoseUnits":0});
        let e = entry(&item, true).unwrap();
        assert_eq!(e["sgv"], 142);
        assert_eq!(e["date"], 1_763_776_800_000_i64);
        assert_eq!(e["direction"], "FortyFiveUp");
        assert_eq!(e["dateString"], "2025-11-21T21:00:00.000-05:00");
        let e = entry(&item, false).unwrap();
        assert!(e.get("direction").is_none(), "graph points carry no arrow");
        assert_eq!(arrow(9), (8, "NOT COMPUTABLE"));
    }

    #[test]
    fn redirects_name_a_short_region() {
        assert_eq!(
            redirect_region(&json!({"redirect":true,"region":"eu2"})).as_deref(),
            Some("eu2")
        );
        assert_eq!(redirect_region(&json!({"redirect":true})), None);
        assert_eq!(redirect_region(&json!({"region":"-."})), None);
        assert_eq!(redirect_region(&json!({"region":"x".repeat(5_000)})), None);
    }

    #[test]
    fn replies_are_classified() {
        let r = |status: u16, body: Value| Reply {
            status,
            body: body.to_string(),
        };
        let class = |status, body| checked("h", &r(status, body), "4.7.0").unwrap_err().class;
        assert_eq!(
            class(
                200,
                json!({"status":2,"error":{"message":"notAuthenticated"}})
            ),
            ErrorClass::Fatal
        );
        assert_eq!(
            class(200, json!({"status":4,"data":{"step":{"type":"tou"}}})),
            ErrorClass::Fatal
        );
        assert_eq!(
            class(
                403,
                json!({"status":920,"data":{"minimumVersion":"4.16.0"}})
            ),
            ErrorClass::Fatal
        );
        assert_eq!(
            class(401, json!({"message":"invalid or expired jwt"})),
            ErrorClass::Auth
        );
        assert_eq!(class(502, json!(null)), ErrorClass::Transient);
        let locked = checked(
            "h",
            &r(200, json!({"status":429,"data":{"code":60,"data":{"failures":3,"interval":60,"lockout":300},"message":"locked"}})),
            "4.16.0",
        )
        .unwrap_err();
        assert_eq!(
            (locked.class, locked.retry_after_ms),
            (ErrorClass::Throttle, Some(300_000))
        );
        let floor = checked(
            "h",
            &r(
                403,
                json!({"status":920,"data":{"minimumVersion":"4.16.0"}}),
            ),
            "4.7.0",
        )
        .unwrap_err();
        assert!(
            floor.message.contains("at least 4.16.0"),
            "{}",
            floor.message
        );
        let long = checked(
            "h",
            &r(
                403,
                json!({"status":920,"data":{"minimumVersion":"9".repeat(10_000)}}),
            ),
            "4.7.0",
        )
        .unwrap_err();
        assert!(long.message.len() < 300, "{}", long.message.len());
        assert_eq!(account_id("7ad66b40-0000-0000-0000-000000000000").len(), 64);
        // FIPS 180-2's example: the digest itself, not just its length.
        assert_eq!(
            account_id("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
