//! Dexcom Share (research/bridges.md §2): log in with the publisher's account in two steps
//! (AuthenticatePublisherAccount → account id, LoginPublisherAccountById → session id), then
//! ReadPublisherLatestGlucoseValues for the gap. Errors come as HTTP 500 with a `Code`,
//! classified by [`classify`]. Entries carry `device: "share2"`, the name
//! share2nightscout-bridge gave them, so Nightscout clients see the source they know, and
//! API v3's identifier of device and date, so a re-fetch never stores a second copy.

use serde_json::{json, Value};

use super::engine::{sgv_entry, Batch, Gap, Source};
use super::errors::SourceError;
use super::http::{base_url, host_of, Http, Reply};
use crate::config::bridges::{DexcomShare, Password, ShareRegion};

/// The `device` of every entry this source writes.
pub const DEVICE: &str = "share2";
const APP_ID: &str = "d89443d2-327c-4a6f-89e5-496bbb0317db";
const APP_ID_JP: &str = "d8665ade-9673-4e27-9ff6-92db4ce13d13";
const SERVICES: &str = "/ShareWebServices/Services";
/// The service answers at most a day, 288 readings (pydexcom's limits).
const MAX_MINUTES: i64 = 1440;
const MAX_COUNT: i64 = 288;
const DAY_MS: i64 = 86_400_000;
const NULL_ID: &str = "00000000-0000-0000-0000-000000000000";

pub struct Dexcom {
    base: String,
    host: String,
    account_name: String,
    password: Password,
    app_id: &'static str,
}

impl Dexcom {
    pub fn new(s: &DexcomShare) -> Dexcom {
        let base = base_url(&s.server);
        Dexcom {
            host: format!("Dexcom Share ({})", host_of(&base)),
            base,
            account_name: s.account_name.clone(),
            password: s.password.clone(),
            app_id: if s.region == ShareRegion::Jp {
                APP_ID_JP
            } else {
                APP_ID
            },
        }
    }

    async fn call(&self, http: &Http, path: &str, body: &Value) -> Result<Reply, SourceError> {
        let reply = http
            .post_json(&self.host, &format!("{}{SERVICES}/{path}", self.base), body)
            .await?;
        if reply.status == 200 {
            Ok(reply)
        } else {
            Err(classify(&self.host, &reply))
        }
    }
}

/// A reply other than 200, by Dexcom's error code (HTTP 500 `{"Code": ...}`).
pub fn classify(host: &str, reply: &Reply) -> SourceError {
    let code = reply
        .json()
        .and_then(|v| v.get("Code").and_then(Value::as_str).map(str::to_string))
        // Only the code is shown: the vendor's message can quote the session id.
        .filter(|c| c.len() <= 64 && c.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    let Some(code) = code else {
        return match reply.status {
            401 | 403 => {
                SourceError::auth(format!("{host} refused the session ({})", reply.status))
            }
            s => SourceError::transient(format!("{host} answered HTTP {s}")),
        };
    };
    match code.as_str() {
        "AccountPasswordInvalid" | "SSO_AuthenticatePasswordInvalid" => {
            SourceError::fatal(format!(
                "{host}: {code}: the account name or password is wrong, or the account is in \
             another region (CONNECT_SHARE_REGION)"
            ))
        }
        "SSO_AuthenticateMaxAttemptsExceeded" => SourceError::fatal(format!(
            "{host}: {code}: the account is locked after too many failed logins; wait, then \
             check the password in the Dexcom app"
        )),
        "SSO_InternalError" | "InvalidArgument" | "AccountNotFound" => SourceError::fatal(format!(
            "{host}: {code}: Dexcom refused the login; check CONNECT_SHARE_ACCOUNT_NAME"
        )),
        "SessionIdNotFound" | "SessionNotValid" => {
            SourceError::auth(format!("{host}: {code}: the session has ended"))
        }
        _ => SourceError::transient(format!("{host}: {code} (HTTP {})", reply.status)),
    }
}

/// An id from a login reply: a bare JSON string, or `{"accountId": ...}` / `{"sessionId": ...}`.
fn parse_id(host: &str, reply: &Reply, what: &str) -> Result<String, SourceError> {
    let id = match reply.json() {
        Some(Value::String(s)) => Some(s),
        Some(Value::Object(o)) => o
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(what))
            .and_then(|(_, v)| v.as_str().map(str::to_string)),
        _ => None,
    };
    let id = id
        .filter(|s| s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        .ok_or_else(|| {
            SourceError::transient(format!("{host}: the login reply holds no {what}"))
        })?;
    if id == NULL_ID {
        // Dexcom's way of saying no: as a wrong password, never retried.
        return Err(SourceError::fatal(format!(
            "{host}: the login was refused (empty {what}); check the account name and password"
        )));
    }
    Ok(id)
}

impl Source for Dexcom {
    type Auth = String;
    type Session = String;
    type Raw = Value;

    fn name(&self) -> &'static str {
        "dexcomshare"
    }

    fn device(&self) -> &'static str {
        DEVICE
    }

    fn session_ttl_ms(&self) -> i64 {
        DAY_MS
    }

    fn window_ms(&self) -> i64 {
        MAX_MINUTES * 60_000
    }

    async fn authenticate(&self, http: &Http) -> Result<String, SourceError> {
        let body = json!({
            "accountName": self.account_name,
            "password": self.password.reveal(),
            "applicationId": self.app_id,
        });
        let reply = self
            .call(http, "General/AuthenticatePublisherAccount", &body)
            .await?;
        parse_id(&self.host, &reply, "accountId")
    }

    async fn authorize(&self, http: &Http, account_id: String) -> Result<String, SourceError> {
        let body = json!({
            "accountId": account_id,
            "password": self.password.reveal(),
            "applicationId": self.app_id,
        });
        let reply = self
            .call(http, "General/LoginPublisherAccountById", &body)
            .await?;
        parse_id(&self.host, &reply, "sessionId")
    }

    async fn fetch(&self, http: &Http, session: &String, gap: &Gap) -> Result<Value, SourceError> {
        let (minutes, count) = window(gap);
        let path = format!(
            "Publisher/ReadPublisherLatestGlucoseValues?sessionID={session}&minutes={minutes}&maxCount={count}"
        );
        let reply = self.call(http, &path, &json!({})).await?;
        reply.json().filter(Value::is_array).ok_or_else(|| {
            SourceError::transient(format!("{}: the readings are not a list", self.host))
        })
    }

    fn transform(&self, raw: Value, _gap: &Gap) -> Result<Batch, SourceError> {
        let entries = raw
            .as_array()
            .map(|a| a.iter().filter_map(entry).collect())
            .unwrap_or_default();
        Ok(Batch {
            entries,
            ..Batch::default()
        })
    }
}

/// `minutes` and `maxCount` for the gap: from its start to now, a reading per 5 minutes and
/// one more, within the service's limits.
pub fn window(gap: &Gap) -> (i64, i64) {
    let minutes = ((gap.now - gap.from + 59_999) / 60_000).clamp(1, MAX_MINUTES);
    let count = (minutes / 5 + 1).clamp(1, MAX_COUNT);
    (minutes, count)
}

/// The first run of digits (with a sign) inside `Date(...)`, and the offset after it.
fn parse_date(v: &str) -> Option<(i64, Option<i32>)> {
    let inner = v.split_once('(')?.1.split_once(')')?.0;
    // The sign of the offset comes after the first character (which may be the number's
    // own sign); `get` rather than slicing, so `Date()` is refused instead of panicking.
    let split = inner.get(1..)?.find(['+', '-']).map(|i| i + 1);
    let (ms, offset) = match split {
        Some(i) => (&inner[..i], Some(&inner[i..])),
        None => (inner, None),
    };
    let ms = ms.parse::<i64>().ok()?;
    let offset = offset.and_then(|o| {
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let digits = &o[1..];
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let h: i32 = digits[..2].parse().ok()?;
        let m: i32 = digits[2..].parse().ok()?;
        Some(sign * (h * 60 + m))
    });
    Some((ms, offset))
}

/// Dexcom's trend: a number 0–9 or a name, to Nightscout's trend number and direction.
pub fn trend(v: &Value) -> Option<(i64, &'static str)> {
    const NAMES: [&str; 10] = [
        "NONE",
        "DoubleUp",
        "SingleUp",
        "FortyFiveUp",
        "Flat",
        "FortyFiveDown",
        "SingleDown",
        "DoubleDown",
        "NOT COMPUTABLE",
        "RATE OUT OF RANGE",
    ];
    let fold = |s: &str| {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let n = match v {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => {
            let f = fold(s);
            NAMES.iter().position(|name| fold(name) == f)? as i64
        }
        _ => return None,
    };
    let name = NAMES.get(usize::try_from(n).ok()?)?;
    Some((n, name))
}

/// One reading as a v1 entry; None for a record without a time or a positive value.
fn entry(r: &Value) -> Option<Value> {
    let (date, _) = parse_date(r.get("WT")?.as_str()?)?;
    let sgv = r
        .get("Value")
        .filter(|v| v.as_f64().is_some_and(|x| x > 0.0))?
        .clone();
    let offset = r
        .get("DT")
        .and_then(Value::as_str)
        .and_then(parse_date)
        .and_then(|(_, o)| o)
        .unwrap_or(0);
    // The reading's local time, so the stored utcOffset is the one the receiver had.
    let trend = r.get("Trend").and_then(trend);
    Some(sgv_entry(DEVICE, date, sgv, offset, trend))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::errors::ErrorClass;
    use super::*;

    #[test]
    fn readings_become_entries_with_direction_offset_and_identifier() {
        let r = json!({"WT":"Date(1763776800000)","ST":"Date(1763776800000)",
            "DT":"Date(1763776800000-0500)","Value":142,"Trend":"FortyFiveDown"});
        let e = entry(&r).unwrap();
        assert_eq!(e["sgv"], 142);
        assert_eq!(e["date"], 1_763_776_800_000_i64);
        assert_eq!(e["direction"], "FortyFiveDown");
        assert_eq!(e["trend"], 5);
        assert_eq!(e["dateString"], "2025-11-21T21:00:00.000-05:00");
        assert_eq!(e["device"], "share2");
        assert_eq!(
            e["identifier"],
            crate::ids::v3_identifier(Some("share2"), 1_763_776_800_000, None)
        );
        let old = json!({"WT":"/Date(1426292016000-0700)/","Value":100,"Trend":4});
        let e = entry(&old).unwrap();
        assert_eq!(
            (e["date"].as_i64(), &e["direction"]),
            (Some(1_426_292_016_000), &json!("Flat"))
        );
        assert!(entry(&json!({"WT":"Date(1)","Value":0})).is_none());
        // A malformed time is skipped, never a panic in the polling task.
        assert!(entry(&json!({"WT":"Date()","Value":100})).is_none());
        assert!(entry(&json!({"WT":"Date(é5)","Value":100})).is_none());
    }

    #[test]
    fn trend_names_and_numbers() {
        assert_eq!(trend(&json!("NotComputable")), Some((8, "NOT COMPUTABLE")));
        assert_eq!(trend(&json!("None")), Some((0, "NONE")));
        assert_eq!(
            trend(&json!("rate out of range")),
            Some((9, "RATE OUT OF RANGE"))
        );
        assert_eq!(trend(&json!(1)), Some((1, "DoubleUp")));
        assert_eq!(trend(&json!(12)), None);
        assert_eq!(trend(&json!("Sideways")), None);
    }

    #[test]
    fn error_codes_are_classified_and_quote_no_message() {
        let reply = |code: &str| Reply {
            status: 500,
            body: json!({"Code": code, "Message": "Failed [SessionId = 1234]"}).to_string(),
        };
        let class = |code: &str| classify("h", &reply(code)).class;
        assert_eq!(class("AccountPasswordInvalid"), ErrorClass::Fatal);
        assert_eq!(
            class("SSO_AuthenticateMaxAttemptsExceeded"),
            ErrorClass::Fatal
        );
        assert_eq!(class("SessionIdNotFound"), ErrorClass::Auth);
        assert_eq!(class("SessionNotValid"), ErrorClass::Auth);
        assert_eq!(class("Whatever"), ErrorClass::Transient);
        assert!(!classify("h", &reply("SessionIdNotFound"))
            .message
            .contains("1234"));
        let plain = Reply {
            status: 502,
            body: "<html>".into(),
        };
        assert_eq!(classify("h", &plain).class, ErrorClass::Transient);
    }

    #[test]
    fn ids_are_bare_strings_or_objects_and_zeros_are_fatal() {
        let r = |body: &str| Reply {
            status: 200,
            body: body.into(),
        };
        let id = "99999999-9999-9999-9999-999999999999";
        assert_eq!(
            parse_id("h", &r(&format!("\"{id}\"")), "accountId").unwrap(),
            id
        );
        assert_eq!(
            parse_id("h", &r(&format!("{{\"accountId\":\"{id}\"}}")), "accountId").unwrap(),
            id
        );
        assert_eq!(
            parse_id("h", &r(&format!("\"{NULL_ID}\"")), "sessionId")
                .unwrap_err()
                .class,
            ErrorClass::Fatal
        );
        assert_eq!(
            parse_id("h", &r("[]"), "sessionId").unwrap_err().class,
            ErrorClass::Transient
        );
    }

    #[test]
    fn the_window_follows_the_gap_within_a_day_and_288_readings() {
        let g = |from: i64| Gap {
            now: 10 * DAY_MS,
            from,
            newest_own: None,
        };
        assert_eq!(window(&g(10 * DAY_MS - 30 * 60_000)), (30, 7));
        assert_eq!(window(&g(0)), (1440, 288));
        assert_eq!(window(&g(10 * DAY_MS)), (1, 1));
    }
}
