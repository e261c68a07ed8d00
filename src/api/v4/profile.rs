//! `GET /api/v4/profile/effective` and `/api/v4/profile/timeline`: the profile in force at a
//! moment and over a range, from the stored profiles and Profile Switch treatments
//! (src/profiles, docs/api-v4.md).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::time_param;
use crate::api::v1::State;
use crate::error::{Error, Result};
use crate::profiles::schedule::number_json;
use crate::profiles::{self, Effective, Kind, ProfileSwitch, Segment};

const HOUR_MS: f64 = 3_600_000.0;
const DAY_MS: i64 = 86_400_000;
/// The longest timeline one request may ask for.
pub const MAX_TIMELINE_DAYS: i64 = 366;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/profile/effective", web::get().to(effective))
        .route("/profile/timeline", web::get().to(timeline));
}

async fn effective(state: State, req: HttpRequest) -> Result<HttpResponse> {
    let at = time_param(req.query_string(), "at")?.unwrap_or_else(crate::dates::now_ms);
    let e = state
        .store
        .read(move |conn| {
            let (docs, switches) = profiles::load(conn, at, at)?;
            Ok(profiles::effective_at(&docs, &switches, at))
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-cache"))
        .json(render_effective(at, e.as_ref())))
}

async fn timeline(state: State, req: HttpRequest) -> Result<HttpResponse> {
    let q = req.query_string();
    let to = time_param(q, "to")?.unwrap_or_else(crate::dates::now_ms);
    let from = time_param(q, "from")?.unwrap_or(to - DAY_MS);
    if from >= to {
        return Err(Error::bad_request("from must be before to"));
    }
    if to - from > MAX_TIMELINE_DAYS * DAY_MS {
        return Err(Error::bad_request(format!(
            "from and to may be at most {MAX_TIMELINE_DAYS} days apart"
        )));
    }
    let segments = state
        .store
        .read(move |conn| {
            let (docs, switches) = profiles::load(conn, from, to)?;
            Ok(profiles::timeline(&docs, &switches, from, to)
                .iter()
                .map(render_segment)
                .collect::<Vec<Value>>())
        })
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-cache"))
        .json(json!({ "from": from, "to": to, "segments": segments })))
}

/// Hours, as careportal and the requirements state a timeshift.
fn hours(ms: i64) -> Value {
    number_json(ms as f64 / HOUR_MS)
}

fn render_switch(s: &ProfileSwitch) -> Value {
    json!({
        "_id": s.id,
        "identifier": s.identifier,
        "name": s.profile,
        "originalProfileName": s.original_profile_name,
        "percentage": number_json(s.percentage),
        "timeshift": hours(s.timeshift_ms),
        "timeshiftMs": s.timeshift_ms,
        "start": s.mills,
        "end": s.end(),
        "duration": s.duration_ms.map(|d| number_json(d as f64 / 60_000.0)),
        "durationSource": s.duration_source.as_str(),
        "CircadianPercentageProfile": s.circadian_percentage_profile,
        "hasProfileJson": s.profile_json.is_some(),
        "source": s.source,
    })
}

fn render_effective(at: i64, e: Option<&Effective>) -> Value {
    let Some(e) = e else {
        // No profile stored: the same shape, nothing known.
        return json!({
            "at": at, "profileName": null, "profileSource": null, "document": null,
            "switch": null, "percentage": null, "timeshift": null, "timeshiftMs": null,
            "units": null, "timezone": null, "zone": null, "dia": null,
            "values": null, "schedules": null,
        });
    };
    let mut values = Map::new();
    let mut schedules = Map::new();
    for k in Kind::ALL {
        values.insert(
            k.field().into(),
            e.value(k).map_or(Value::Null, number_json),
        );
        schedules.insert(
            k.field().into(),
            e.schedule(k).map_or(Value::Null, |s| s.to_json()),
        );
    }
    json!({
        "at": at,
        "profileName": e.profile_name,
        "profileSource": e.profile_source.as_str(),
        "document": {
            "_id": e.document_id,
            "startDate": crate::dates::to_iso(e.document_start),
            "mills": e.document_start,
            "defaultProfile": e.default_profile,
        },
        "switch": e.switch.as_ref().map(render_switch),
        "percentage": number_json(e.percentage),
        "timeshift": hours(e.timeshift_ms),
        "timeshiftMs": e.timeshift_ms,
        "units": e.units,
        "timezone": e.timezone,
        "zone": e.zone.name,
        "dia": e.dia.map(number_json),
        "values": values,
        "schedules": schedules,
    })
}

fn render_segment(s: &Segment) -> Value {
    let sel = &s.selection;
    let (percentage, timeshift) = sel
        .switch
        .map_or((100.0, 0), |w| (w.percentage, w.timeshift_ms));
    json!({
        "start": s.start,
        "end": s.end,
        "profileName": sel.name,
        "profileSource": sel.source.as_str(),
        "documentId": sel.doc.id,
        "percentage": number_json(percentage),
        "timeshift": hours(timeshift),
        "timeshiftMs": timeshift,
        "switch": sel.switch.map(render_switch),
    })
}

/// The Profile Switch in force at `at` in the shape of `switch` above, or None: REQ-SYNC-058's
/// `activeSwitch`, which `GET /api/v1/profile/current` adds to its reply.
pub async fn active_switch(state: &State, at: i64) -> Result<Option<Value>> {
    Ok(switch_in_force(state, at).await?.map(|(_, s)| s))
}

/// The Profile Switch in force at `at` (as [`active_switch`]) with the `_id` of the profile
/// document it applies to.
pub async fn switch_in_force(state: &State, at: i64) -> Result<Option<(String, Value)>> {
    state
        .store
        .read(move |conn| {
            let (docs, switches) = profiles::load(conn, at, at)?;
            Ok(profiles::effective_at(&docs, &switches, at)
                .and_then(|e| e.switch.map(|s| (e.document_id, render_switch(&s)))))
        })
        .await
}

/// `body` (one JSON object as text) with `"activeSwitch": switch` added last; the text before
/// it stays byte for byte as it was.
pub fn add_active_switch(mut body: String, switch: Option<Value>) -> String {
    if let Some(s) = switch {
        if body.len() > 2 && body.starts_with('{') && body.ends_with('}') {
            body.pop();
            body.push_str(",\"activeSwitch\":");
            body.push_str(&s.to_string());
            body.push('}');
        }
    }
    body
}
