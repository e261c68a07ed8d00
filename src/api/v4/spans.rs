//! `GET /api/v4/state-spans` (also `/api/v3/state-spans`) and `GET /api/v4/overrides`: the
//! state spans derived from treatments (src/spans/, docs/state-spans.md).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{Map, Value};

use super::time_param;
use crate::api::v1::State;
use crate::error::{Error, Result};
use crate::qs;
use crate::spans::{Category, OriginKind, Span, Status};
use crate::store::spans::{self as store_spans, SpanQuery};
use crate::store::StoredDoc;

/// Spans per reply unless `limit` says otherwise, and the most one may ask for.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/state-spans", web::get().to(state_spans))
        .route("/overrides", web::get().to(overrides));
}

/// The v3 address the requirements name (REQ-STATESPAN-001).
pub fn v3_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/state-spans", web::get().to(state_spans));
}

/// Every value of a parameter, repeated or comma-separated.
fn all_values(query: &str, name: &str) -> Vec<String> {
    qs::values(query, name)
        .flat_map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn categories(query: &str) -> Result<Vec<Category>> {
    all_values(query, "category")
        .iter()
        .map(|name| {
            Category::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Category::ALL.iter().map(|c| c.name()).collect();
                Error::bad_request(format!(
                    "unknown category {name:?}; one of {}",
                    known.join(", ")
                ))
            })
        })
        .collect()
}

pub(super) fn count_param(query: &str, name: &str, default: usize, max: usize) -> Result<usize> {
    match qs::first_value(query, name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                Error::bad_request(format!("{name} must be a whole number up to {max}"))
            }),
    }
}

fn active_param(query: &str) -> Result<Option<bool>> {
    match qs::first_value(query, "active").as_deref() {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(Error::bad_request(format!(
            "active must be true or false, got {other:?}"
        ))),
    }
}

pub(super) fn span_query(query: &str, now: i64) -> Result<SpanQuery> {
    let from = time_param(query, "from")?;
    let to = time_param(query, "to")?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(Error::bad_request("from must not be after to"));
        }
    }
    Ok(SpanQuery {
        from,
        to,
        categories: categories(query)?,
        source: qs::first_value(query, "source"),
        active: active_param(query)?.map(|a| (a, now)),
        status: None,
        adjustments_only: false,
        limit: count_param(query, "limit", DEFAULT_LIMIT, MAX_LIMIT)?,
        offset: count_param(query, "offset", 0, usize::MAX)?,
    })
}

/// A span as the API shows it.
pub fn render(s: &Span) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("id".into(), s.id.clone().into());
    out.insert("category".into(), s.category.name().into());
    out.insert("state".into(), s.state.clone().into());
    out.insert("startMills".into(), s.start.into());
    out.insert("endMills".into(), s.end.into());
    out.insert("source".into(), s.source.clone().into());
    out.insert("metadata".into(), Value::Object(s.metadata.clone()));
    out.insert("originalId".into(), s.origin.clone().into());
    out.insert("originKind".into(), s.origin_kind.name().into());
    out.insert("supersededBy".into(), s.superseded_by.clone().into());
    out.insert("supersededAt".into(), s.superseded_at.into());
    out.insert("endedBy".into(), s.ended_by.clone().into());
    out
}

async fn state_spans(state: State, req: HttpRequest) -> Result<HttpResponse> {
    let q = span_query(req.query_string(), crate::dates::now_ms())?;
    let spans = state
        .store
        .read(move |conn| store_spans::list(conn, &q))
        .await?;
    let body: Vec<Value> = spans.iter().map(|s| Value::Object(render(s))).collect();
    Ok(reply(&body))
}

/// The `status` asked for, if any; 400 for an unknown one.
pub(super) fn status_param(query: &str) -> Result<Option<Status>> {
    match qs::first_value(query, "status") {
        None => Ok(None),
        Some(w) => Status::from_name(&w).map(Some).ok_or_else(|| {
            let known: Vec<&str> = Status::ALL.iter().map(|s| s.name()).collect();
            Error::bad_request(format!("unknown status {w:?}; one of {}", known.join(", ")))
        }),
    }
}

/// The treatment a span comes from, if it comes from one (not a run of device statuses) and
/// it is live.
pub(super) fn origin_of<'a>(origins: &'a [StoredDoc], s: &Span) -> Option<&'a StoredDoc> {
    if s.origin_kind != OriginKind::Treatment {
        return None;
    }
    origins.iter().find(|d| d.seq == s.origin_seq)
}

/// The live treatment `s` comes from, as stored (REQ-OVERRIDE-004); null when it is gone or
/// the span comes from device statuses.
pub(super) fn treatment(origins: &[StoredDoc], s: &Span) -> Value {
    origin_of(origins, s).map_or(Value::Null, StoredDoc::to_v1)
}

/// A span reply: never cached, as the spans change with every treatment.
pub(super) fn reply(items: &[Value]) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-cache"))
        .json(items)
}

/// The spans `q` selects and the live treatments they come from.
pub(super) async fn with_origins(
    state: &State,
    q: SpanQuery,
) -> Result<(Vec<Span>, Vec<StoredDoc>)> {
    state
        .store
        .read(move |conn| {
            let spans = store_spans::list(conn, &q)?;
            let seqs: Vec<i64> = spans
                .iter()
                .filter(|s| s.origin_kind == OriginKind::Treatment)
                .map(|s| s.origin_seq)
                .collect();
            Ok((spans, store_spans::origins(conn, &seqs)?))
        })
        .await
}

async fn overrides(state: State, req: HttpRequest) -> Result<HttpResponse> {
    let query = req.query_string();
    let now = crate::dates::now_ms();
    let wanted = status_param(query)?;
    let mut q = span_query(query, now)?;
    q.categories = vec![Category::Override, Category::TemporaryTarget];
    // Selected in the query, so `limit` and `offset` count only spans of that status.
    q.status = wanted.map(|w| (w, now));
    let (spans, origins) = with_origins(&state, q).await?;
    let mut items: Vec<Value> = Vec::new();
    for s in &spans {
        let status = Status::of(s, now).name();
        let mut item = render(s);
        item.insert("status".into(), status.into());
        item.insert("superseded_by".into(), s.superseded_by.clone().into());
        item.insert("superseded_at".into(), s.superseded_at.into());
        item.insert("treatment".into(), treatment(&origins, s));
        items.push(Value::Object(item));
        // In force now is one at most: the newest (REQ-OVERRIDE-005); spans come newest first.
        if wanted == Some(Status::Active) {
            break;
        }
    }
    Ok(reply(&items))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn categories_repeated_or_comma_separated_and_unknown_refused() {
        assert_eq!(
            categories("category=Override,TempBasal&category=Profile").unwrap(),
            vec![Category::Override, Category::TempBasal, Category::Profile]
        );
        let e = categories("category=Basal").unwrap_err().client_message();
        assert!(e.starts_with("unknown category \"Basal\""), "{e}");
    }

    #[test]
    fn query_parameters_are_checked() {
        assert!(span_query("limit=1001", 0).is_err());
        assert!(span_query("active=yes", 0).is_err());
        assert!(span_query("from=2&to=1", 0).is_err());
        let q = span_query("from=2026-12-07T00:00:00Z&active=true&limit=5", 7).unwrap();
        assert_eq!(q.from, Some(1_796_601_600_000));
        assert_eq!(q.active, Some((true, 7)));
        assert_eq!(q.limit, 5);
    }
}
