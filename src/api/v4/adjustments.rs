//! `GET /api/v4/adjustments`: what changes glucose targets or insulin, in one shape
//! (REQ-OVRD-004): overrides, temporary targets, Trio's Exercise overrides and Profile
//! Switches with a percentage other than 100, from the state spans (spans::adjust,
//! docs/state-spans.md).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::Value;

use super::spans::{origin_of, reply, span_query, status_param, with_origins};
use crate::api::v1::State;
use crate::error::{Error, Result};
use crate::spans::{adjust, Status};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/adjustments", web::get().to(adjustments));
}

async fn adjustments(state: State, req: HttpRequest) -> Result<HttpResponse> {
    let query = req.query_string();
    let now = crate::dates::now_ms();
    let wanted = status_param(query)?;
    let mut q = span_query(query, now)?;
    if let Some(c) = q
        .categories
        .iter()
        .find(|c| !adjust::CATEGORIES.contains(c))
    {
        return Err(Error::bad_request(format!(
            "category {} holds no adjustment; one of Override, TemporaryTarget, Profile",
            c.name()
        )));
    }
    if q.categories.is_empty() {
        q.categories = adjust::CATEGORIES.to_vec();
    }
    q.adjustments_only = true;
    // Selected in the query, so `limit` and `offset` count only spans of that status.
    q.status = wanted.map(|w| (w, now));
    let page = (q.offset, q.limit);
    let active = wanted == Some(Status::Active);
    if active {
        // Few spans are in force at once: all of them, then one per category, then the page.
        q.offset = 0;
        q.limit = usize::MAX;
    }
    let (spans, origins) = with_origins(&state, q).await?;
    let spans = if active {
        adjust::one_per_category(spans)
            .into_iter()
            .skip(page.0)
            .take(page.1)
            .collect()
    } else {
        spans
    };
    let mut items: Vec<Value> = Vec::new();
    for s in &spans {
        let status = Status::of(s, now).name();
        let origin = origin_of(&origins, s);
        let mut item = adjust::adjustment(s, origin.map(|d| &d.doc));
        item.insert("status".into(), status.into());
        item.insert("supersededBy".into(), s.superseded_by.clone().into());
        item.insert("supersededAt".into(), s.superseded_at.into());
        item.insert("endedBy".into(), s.ended_by.clone().into());
        item.insert(
            "treatment".into(),
            origin.map_or(Value::Null, |d| d.to_v1()),
        );
        items.push(Value::Object(item));
    }
    Ok(reply(&items))
}
