//! `GET /api/v2/stats`: report numbers for the viewer (docs/api-stats.md). The SQL lives in
//! `store::stats`; this file reads the query string and shapes the reply.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::v1::State;
use crate::error::{Error, Result};
use crate::store::stats::{self, Bands, Grouping, StatsQuery, PERCENTILES};

pub const MAX_DAYS: i64 = 365;
/// Consensus limits (Battelino et al. 2019) for level 2 hypo- and hyperglycaemia, mg/dl.
const VERY_LOW: f64 = 54.0;
const VERY_HIGH: f64 = 250.0;
const DAY_MS: i64 = 86_400_000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v2/stats", web::get().to(get_stats))
        // Before the pattern below, which would take "loop" for a grouping.
        .route("/api/v2/stats/loop", web::get().to(get_loop))
        .route("/api/v2/stats/{by}", web::get().to(get_groups));
}

/// Two decimals: enough for any display, and stable numbers for clients to compare.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn parse_int(q: &str, name: &str, min: i64, max: i64) -> Result<Option<i64>> {
    let Some(raw) = crate::qs::first_value(q, name) else {
        return Ok(None);
    };
    let raw = raw.trim();
    // Accept `14` and `14.0` alike; anything else names the parameter.
    let value = raw
        .parse::<i64>()
        .ok()
        .or_else(|| {
            raw.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| f as i64)
        })
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| {
            Error::bad_request(format!("{name} must be a whole number from {min} to {max}"))
        })?;
    Ok(Some(value))
}

fn parse_mgdl(q: &str, name: &str) -> Result<Option<f64>> {
    let Some(raw) = crate::qs::first_value(q, name) else {
        return Ok(None);
    };
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| (VERY_LOW..=VERY_HIGH).contains(v))
        .map(Some)
        .ok_or_else(|| {
            Error::bad_request(format!(
                "{name} must be a glucose value in mg/dl from {VERY_LOW} to {VERY_HIGH}"
            ))
        })
}

/// The window, offset and bands a report request asks for; `days` is the window's length in
/// whole days (rounded when `start` gives a window across a daylight-saving change).
fn parse_query(state: &State, q: &str) -> Result<(i64, i64, StatsQuery)> {
    let now = crate::dates::now_ms();
    let to = parse_int(q, "end", 0, 253_402_300_799_999)?.unwrap_or(now);
    let (days, from) = match parse_int(q, "start", 0, 253_402_300_799_999)? {
        // A date picker's window: local midnight to local midnight, any length up to MAX_DAYS.
        Some(from) => {
            let span = to - from;
            if span <= 0 || span > MAX_DAYS * DAY_MS {
                return Err(Error::bad_request(format!(
                    "start must be before end and at most {MAX_DAYS} days earlier"
                )));
            }
            ((span + DAY_MS / 2) / DAY_MS, from)
        }
        None => {
            let days = parse_int(q, "days", 1, MAX_DAYS)?.unwrap_or(14);
            (days, stats::window(days, to).0)
        }
    };
    // Minutes east of UTC, as Nightscout's utcOffset; real zones span -12:00 to +14:00.
    let tz = parse_int(q, "tz", -900, 900)?.unwrap_or(0);
    let t = state.config.thresholds;
    // The target range is the configured one, kept inside the consensus very low/high limits
    // so the five ranges never overlap.
    let low = parse_mgdl(q, "low")?.unwrap_or(t.bg_target_bottom.clamp(VERY_LOW, VERY_HIGH));
    let high = parse_mgdl(q, "high")?.unwrap_or(t.bg_target_top.clamp(VERY_LOW, VERY_HIGH));
    if low >= high {
        return Err(Error::bad_request("low must be below high"));
    }
    let query = StatsQuery {
        from,
        to,
        tz_minutes: tz,
        bands: Bands {
            very_low: VERY_LOW,
            low,
            high,
            very_high: VERY_HIGH,
        },
    };
    Ok((days, tz, query))
}

async fn get_stats(state: State, req: HttpRequest) -> Result<HttpResponse> {
    let (days, tz, query) = parse_query(&state, req.query_string())?;
    let s = state
        .store
        .read(move |conn| stats::stats(conn, &query))
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-cache"))
        .json(render(days, tz, &query, &s, state.config.units.as_str())))
}

/// `GET /api/v2/stats/hours|days|weeks`: the same numbers for each hour of the day, each
/// local day or each local week (from Monday) of the window.
async fn get_groups(state: State, req: HttpRequest, by: web::Path<String>) -> Result<HttpResponse> {
    let (by, by_name) = match by.as_str() {
        "hours" => (Grouping::TimeOfDay(60), "hours"),
        "days" => (Grouping::Day, "days"),
        "weeks" => (Grouping::Week, "weeks"),
        other => {
            return Err(Error::NotFound(format!(
                "no report '{other}' (hours, days, weeks)"
            )))
        }
    };
    let (days, tz, query) = parse_query(&state, req.query_string())?;
    let (groups, week_hours) = state
        .store
        .read(move |conn| {
            let groups = stats::groups(conn, &query, by)?;
            // Weeks carry their hourly curve (Nightscout's week-to-week chart).
            let week_hours = match by {
                Grouping::Week => stats::week_hours(conn, &query)?,
                _ => Vec::new(),
            };
            Ok((groups, week_hours))
        })
        .await?;
    let tz_ms = tz * 60_000;
    let items: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut o = serde_json::Map::new();
            // Where the group starts: an hour of the day, or a local day's midnight as epoch
            // ms (and its date) for days and weeks.
            let day = match by {
                Grouping::Day => Some(g.key),
                Grouping::Week => Some(g.key * 7 - 3),
                _ => None,
            };
            match day {
                None => {
                    o.insert("hour".into(), g.key.into());
                }
                Some(day) => {
                    o.insert("start".into(), (day * DAY_MS - tz_ms).into());
                    let iso = crate::dates::to_iso(day * DAY_MS);
                    o.insert("date".into(), iso.get(..10).unwrap_or(&iso).into());
                }
            }
            o.insert("count".into(), g.count.into());
            o.insert("mean".into(), json!(round2(g.mean())));
            o.insert("sd".into(), json!(round2(g.sd())));
            o.insert("min".into(), json!(round2(g.min)));
            o.insert("max".into(), json!(round2(g.max)));
            for (p, v) in PERCENTILES.iter().zip(g.percentiles) {
                o.insert(format!("p{}", (p * 100.0).round()), json!(round2(v)));
            }
            let r = g.range_counts;
            o.insert(
                "ranges".into(),
                json!({ "veryLow": r[0], "low": r[1], "inRange": r[2], "high": r[3], "veryHigh": r[4] }),
            );
            if by == Grouping::Week {
                let curve: Vec<Value> = week_hours
                    .iter()
                    .filter(|h| h.week == g.key)
                    .map(|h| json!([h.hour, round2(h.mean)]))
                    .collect();
                o.insert("curve".into(), curve.into());
            }
            Value::Object(o)
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-cache"))
        .json(json!({
            "by": by_name,
            "days": days,
            "from": query.from,
            "to": query.to,
            "tz": tz,
            "units": state.config.units.as_str(),
            "bands": bands_json(&query.bands),
            "count": groups.iter().map(|g| g.count).sum::<i64>(),
            "groups": items,
        })))
}

/// `GET /api/v2/stats/loop`: mean IOB and COB and enacted changes by hour of the local day,
/// from the device statuses of a loop (docs/api-stats.md).
async fn get_loop(state: State, req: HttpRequest) -> Result<HttpResponse> {
    let (days, tz, q) = parse_query(&state, req.query_string())?;
    let (from, to) = (q.from, q.to);
    let hours = state
        .store
        .read(move |conn| stats::loop_hours(conn, from, to, tz))
        .await?;
    let items: Vec<Value> = hours
        .iter()
        .map(|h| {
            json!({
                "hour": h.hour,
                "statuses": h.statuses,
                "iob": h.iob.map(round2),
                "cob": h.cob.map(round2),
                "enacted": h.enacted,
            })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-cache"))
        .json(json!({
            "days": days,
            "from": from,
            "to": to,
            "tz": tz,
            "statuses": hours.iter().map(|h| h.statuses).sum::<i64>(),
            "enacted": hours.iter().map(|h| h.enacted).sum::<i64>(),
            "hours": items,
        })))
}

fn bands_json(b: &Bands) -> Value {
    json!({ "veryLow": b.very_low, "low": b.low, "high": b.high, "veryHigh": b.very_high })
}

/// Glucose management indicator (Bergenstal et al. 2018), percent, from the mean in mg/dl.
fn gmi_of(mean: f64) -> f64 {
    3.31 + 0.02392 * mean
}

/// The A1c estimate of Nightscout's glucose distribution (Nathan et al. 2008, ADAG), DCCT
/// percent, from the mean in mg/dl; IFCC mmol/mol is (DCCT - 2.15) × 10.929.
fn a1c_dcct(mean: f64) -> f64 {
    (mean + 46.7) / 28.7
}

fn render(days: i64, tz: i64, q: &StatsQuery, s: &stats::Stats, units: &str) -> Value {
    let percent = |c: i64| {
        if s.count == 0 {
            Value::Null
        } else {
            json!(round2(c as f64 * 100.0 / s.count as f64))
        }
    };
    let range =
        |k: usize| json!({ "count": s.range_counts[k], "percent": percent(s.range_counts[k]) });
    let cv = match (s.mean, s.sd) {
        (Some(m), Some(sd)) if m > 0.0 => Some(sd / m * 100.0),
        _ => None,
    };
    let gmi = s.mean.map(gmi_of);
    // Nightscout's glucose distribution: a row per range and the overall row.
    let row = |g: &stats::Group| {
        json!({
            "count": g.count,
            "percent": percent(g.count),
            "mean": round2(g.mean()),
            "median": round2(g.percentiles[2]),
            "sd": round2(g.sd()),
        })
    };
    let mut distribution = serde_json::Map::new();
    for g in &s.distribution {
        let name = match g.key {
            0 => "low",
            1 => "inRange",
            _ => "high",
        };
        distribution.insert(name.into(), row(g));
    }
    if let Some(all) = &s.overall {
        let mut o = row(all);
        let dcct = a1c_dcct(all.mean());
        o["a1c"] = json!({ "dcct": round2(dcct), "ifcc": round2((dcct - 2.15) * 10.929) });
        o["gmi"] = json!(round2(gmi_of(all.mean())));
        distribution.insert("overall".into(), o);
    }
    let agp: Vec<Value> = s
        .agp
        .iter()
        .map(|b| {
            let mut o = serde_json::Map::new();
            o.insert("minute".into(), b.minute.into());
            o.insert("count".into(), b.count.into());
            for (p, v) in PERCENTILES.iter().zip(b.percentiles) {
                o.insert(format!("p{}", (p * 100.0).round()), json!(round2(v)));
            }
            Value::Object(o)
        })
        .collect();
    json!({
        "days": days,
        "from": q.from,
        "to": q.to,
        "tz": tz,
        "units": units,
        "bands": bands_json(&q.bands),
        "count": s.count,
        "first": s.first,
        "last": s.last,
        "mean": s.mean.map(round2),
        "sd": s.sd.map(round2),
        "cv": cv.map(round2),
        "gmi": gmi.map(round2),
        "ranges": {
            "veryLow": range(0),
            "low": range(1),
            "inRange": range(2),
            "high": range(3),
            "veryHigh": range(4),
        },
        "distribution": distribution,
        "bucketMinutes": stats::BUCKET_MINUTES,
        "agp": agp,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ints_are_checked() {
        assert_eq!(parse_int("days=7", "days", 1, 90).unwrap(), Some(7));
        assert_eq!(parse_int("days=7.0", "days", 1, 90).unwrap(), Some(7));
        assert_eq!(parse_int("x=1", "days", 1, 90).unwrap(), None);
        assert!(parse_int("days=0", "days", 1, 90).is_err());
        assert!(parse_int("days=abc", "days", 1, 90).is_err());
        assert!(parse_int("days=1.5", "days", 1, 90).is_err());
        assert_eq!(parse_int("tz=-120", "tz", -900, 900).unwrap(), Some(-120));
    }
}
