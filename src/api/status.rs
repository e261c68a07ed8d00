//! /api/v1/status, /api/versions, /api/v1/verifyauth, /api/v1/adminnotifies.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::v1::State;
use crate::auth::Access;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::{dates, NIGHTLITE_VERSION, NIGHTSCOUT_VERSION};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource(["/status", "/status.{ext}"]).route(web::get().to(status)))
        .route("/verifyauth", web::get().to(verifyauth))
        .route("/adminnotifies", web::get().to(adminnotifies))
        .route("/notifications/ack", web::get().to(ack));
}

/// lib/api/root.js: v3's entry is API3_VERSION, the version /api/v3/version reports.
pub async fn versions() -> HttpResponse {
    HttpResponse::Ok().json(json!([
        { "version": "1.0.0", "url": "/api/v1" },
        { "version": "2.0.0", "url": "/api/v2" },
        { "version": super::v3::API3_VERSION, "url": "/api/v3" }
    ]))
}

/// Nightscout's DEFAULT_FEATURES (lib/settings.js), enabled unless DISABLE names them.
const DEFAULT_FEATURES: [&str; 13] = [
    "bgnow",
    "delta",
    "direction",
    "timeago",
    "devicestatus",
    "upbat",
    "errorcodes",
    "profile",
    "bolus",
    "dbsize",
    "runtimestate",
    "basal",
    "careportal",
];

/// `settings.alarmTypes`: what ALARM_TYPES turned on (src/plugins/settings.rs), in
/// Nightscout's order.
fn alarm_types(c: &Config) -> Vec<&'static str> {
    let mut types = Vec::new();
    if c.plugins.simple_alarms {
        types.push("simple");
    }
    if c.plugins.predict_alarms {
        types.push("predict");
    }
    types
}

/// `settings.enable` as lib/settings.js builds it: ENABLE, then `treatmentnotify` when
/// careportal (or pushover, maker) is enabled, the default features, the alarm plugin; minus
/// DISABLE.
pub fn enabled_features(c: &Config) -> Vec<String> {
    let mut all = c.enable.clone();
    if ["careportal", "pushover", "maker"]
        .iter()
        .any(|f| all.iter().any(|e| e == f))
    {
        all.push("treatmentnotify".into());
    }
    for f in DEFAULT_FEATURES {
        if !all.iter().any(|e| e == f) {
            all.push(f.into());
        }
    }
    // lib/settings.js: simplealarms for ALARM_TYPES simple, ar2 for predict.
    if c.plugins.simple_alarms {
        all.push("simplealarms".into());
    }
    if c.plugins.predict_alarms {
        all.push("ar2".into());
    }
    all.retain(|f| !c.disable.contains(f));
    all
}

/// `extendedSettings` as Nightscout's plugins.extendedClientSettings: devicestatus, and the
/// client plugins' settings the viewer reads (ar2's cone factor, when ar2 is enabled).
fn extended_settings(c: &Config, enabled: &[String]) -> Value {
    let mut out = json!({ "devicestatus": { "advanced": true, "days": 1 } });
    let cone = c.plugins.cone_factor_setting.clone();
    if let Some(v) = cone.filter(|_| enabled.iter().any(|f| f == "ar2")) {
        out["ar2"] = json!({ "coneFactor": v });
    }
    out
}

/// ALARM_*_MINS as Nightscout's status shows them: numbers (whole ones without a fraction).
fn mins(list: &[f64]) -> Value {
    Value::Array(list.iter().map(|m| crate::jsnum::num(*m)).collect())
}

/// The client-visible settings, as Nightscout's filteredSettings: every key of lib/settings.js
/// in its order (never a secret; `obscured` and `obscureDeviceProvenance` are removed there too).
pub fn settings_json(c: &Config) -> Value {
    let t = &c.thresholds;
    let mut s = json!({
        "units": c.units.as_str(),
        "timeFormat": c.time_format,
        "dayStart": 7,
        "dayEnd": 21,
        "nightMode": c.night_mode,
        "editMode": true,
        "showRawbg": "never",
        "customTitle": c.custom_title,
        "theme": c.theme,
        "alarmUrgentHigh": c.alarms.urgent_high,
        "alarmUrgentHighMins": mins(&c.alarms.snooze.urgent_high),
        "alarmHigh": c.alarms.high,
        "alarmHighMins": mins(&c.alarms.snooze.high),
        "alarmLow": c.alarms.low,
        "alarmLowMins": mins(&c.alarms.snooze.low),
        "alarmUrgentLow": c.alarms.urgent_low,
        "alarmUrgentLowMins": mins(&c.alarms.snooze.urgent_low),
        "alarmUrgentMins": mins(&c.alarms.snooze.urgent),
        "alarmWarnMins": mins(&c.alarms.snooze.warn),
        "alarmTimeagoWarn": c.alarms.timeago_warn,
        "alarmTimeagoWarnMins": crate::jsnum::num(c.alarms.timeago_warn_mins),
        "alarmTimeagoUrgent": c.alarms.timeago_urgent,
        "alarmTimeagoUrgentMins": crate::jsnum::num(c.alarms.timeago_urgent_mins),
        "alarmPumpBatteryLow": false,
        "language": c.language,
        "scaleY": "log",
        // SHOW_PLUGINS' default with what adjustShownPlugins appends.
        "showPlugins": "dbsize delta direction upbat",
        "showForecast": "ar2",
        "focusHours": 3,
        "heartbeat": 60,
        "baseURL": "",
        "authDefaultRoles": c.auth_default_roles.join(" "),
        "thresholds": {
            "bgHigh": crate::jsnum::num(t.bg_high),
            "bgTargetTop": crate::jsnum::num(t.bg_target_top),
            "bgTargetBottom": crate::jsnum::num(t.bg_target_bottom),
            "bgLow": crate::jsnum::num(t.bg_low)
        },
        "insecureUseHttp": c.insecure_use_http,
        "secureHstsHeader": c.secure_hsts_header,
        "secureHstsHeaderIncludeSubdomains": false,
        "secureHstsHeaderPreload": false,
        "secureCsp": false,
        "deNormalizeDates": false,
        "showClockDelta": false,
        "showClockLastTime": false
    });
    if let Value::Object(m) = &mut s {
        for kind in ["Url", "Name"] {
            for i in 1..=8 {
                m.insert(format!("frame{kind}{i}"), Value::from(""));
            }
        }
        m.insert("authFailDelay".into(), Value::from(c.auth_fail_delay_ms));
        m.insert("adminNotifiesEnabled".into(), Value::Bool(true));
        m.insert("authenticationPromptOnLoad".into(), Value::Bool(false));
        m.insert("DEFAULT_FEATURES".into(), json!(DEFAULT_FEATURES));
        m.insert("alarmTypes".into(), json!(alarm_types(c)));
        m.insert("enable".into(), json!(enabled_features(c)));
    }
    s
}

async fn status(state: State, access: Access, req: HttpRequest) -> Result<HttpResponse> {
    // LoopFollow reads `authorized` for the token it passed.
    let q = req.query_string();
    let presented =
        crate::qs::first_value(q, "token").or_else(|| crate::qs::first_value(q, "secret"));
    let authorized = match presented.filter(|t| !t.is_empty()) {
        Some(t) => state.auth.authorize(&t).await.map(|a| a.to_json()),
        None => None,
    };
    let now = dates::now_ms();
    let c = &state.config;
    let enabled = enabled_features(c);
    // nightlite's own fields: bytes of database + WAL, and bytes free on its disk.
    let dbsize = state.store.db_size();
    let disk_free = state.store.disk().space().ok().map(|s| s.free);
    let mut info = json!({
        "status": "ok",
        "name": "nightlite",
        "version": NIGHTSCOUT_VERSION,
        "nightliteVersion": NIGHTLITE_VERSION,
        "serverTime": dates::to_iso(now),
        "serverTimeEpoch": now,
        "apiEnabled": true,
        "careportalEnabled": enabled.iter().any(|f| f == "careportal"),
        "boluscalcEnabled": enabled.iter().any(|f| f == "boluscalc"),
        "settings": settings_json(c),
        "extendedSettings": extended_settings(c, &enabled),
        "authorized": authorized,
        "runtimeState": "loaded",
        "dbsize": dbsize,
        "diskFree": disk_free
    });
    // The bridges in short (docs/bridges.md), for callers who may read GET /api/v4/bridges;
    // absent when none is configured, so a plain site's status keeps Nightscout's shape.
    let bridges = state.bridges.snapshot();
    if !bridges.is_empty() && access.can("api:bridges:read") {
        let rows: Vec<Value> = bridges.iter().map(|b| b.summary_json()).collect();
        info["bridges"] = Value::Array(rows);
    }
    // The sync in short (docs/sync.md), for the viewer's pill: for callers who may read GET
    // /api/v4/sync/status; absent without SYNC_URL.
    if let Some(sync) = &state.sync {
        if access.can("api:sync:read") {
            info["sync"] = sync.summary().await?;
        }
    }
    let ext = super::format::ext_of(&req);
    // Express' res.format order for a suffix-less request: html, js, text, json.
    let offered = [
        ("text/html", "html"),
        ("application/javascript", "js"),
        ("text/plain", "txt"),
        ("application/json", "json"),
    ];
    let kind = match ext {
        Some(k) => k,
        None => super::format::negotiate(&req, &offered)
            .ok_or_else(|| Error::NotAcceptable("Not Acceptable".into()))?
            .to_string(),
    };
    Ok(match kind.as_str() {
        "json" => HttpResponse::Ok().json(info),
        "html" => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body("<h1>STATUS OK</h1>"),
        "txt" => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("STATUS OK"),
        "js" => HttpResponse::Ok()
            .content_type("application/javascript; charset=utf-8")
            .body(format!("this.serverSettings = {info} ;")),
        other => {
            return Err(Error::NotAcceptable(format!(
                "format '.{other}' is not supported; use .json, .txt, .html or .js"
            )))
        }
    })
}

/// Nightscout's sendJSONStatus shape: `{status, message: <payload>}`.
fn json_status(message: Value) -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": 200, "message": message }))
}

async fn verifyauth(access: Access) -> HttpResponse {
    let can_read = access.can("*:*:read");
    let authorized = can_read && !access.defaults;
    json_status(json!({
        "canRead": can_read,
        "canWrite": access.can("*:*:write"),
        "isAdmin": access.can("*:*:admin"),
        "message": if authorized { "OK" } else { "UNAUTHORIZED" },
        "rolefound": if access.subject.is_some() { "FOUND" } else { "NOTFOUND" },
        "permissions": if access.defaults { "DEFAULT" } else { "ROLE" }
    }))
}

async fn adminnotifies(_access: Access) -> HttpResponse {
    json_status(json!({ "notifies": [], "notifyCount": 0 }))
}

/// `GET /notifications/ack?level=2&group=default&time=<ms>`: silences an alarm (Nightscout's
/// notifications-api).
async fn ack(state: State, req: HttpRequest) -> HttpResponse {
    let q = req.query_string();
    let level = crate::qs::first_value(q, "level")
        .and_then(|l| l.trim().parse::<u8>().ok())
        .unwrap_or(1)
        .min(2);
    let group = crate::qs::first_value(q, "group").unwrap_or_else(|| "default".into());
    let time = crate::qs::first_value(q, "time").and_then(|t| t.trim().parse::<i64>().ok());
    state.live.ack(level, &group, time);
    HttpResponse::Ok().content_type("text/plain").body("OK")
}
