//! Reading a remote site's changes.
//!
//! API v3 history (`/api/v3/{collection}/history/{since}`) lists the documents whose
//! srvModified is after `since`, oldest first, deleted ones included. Nightscout stamps
//! srvModified with its wall clock, so a batch can share one millisecond, and a page that
//! ends inside that millisecond would make the next page (`> last`) skip the rest of it
//! (research/wave2.md B.2). [`Remote::changes`] never skips and never loops: a full page
//! keeps only the documents before its last millisecond and asks again from there; a full
//! page all in one millisecond is read whole through a search on that millisecond.
//!
//! Nightscout 15.0.7's v1 writes set no srvModified, so history never lists them: on a v3
//! site [`Remote::searched`] reads v3 searches by document time (entries by `date`, the others
//! by `created_at`), newest first. A site without v3 has no history at all: [`Remote::dated`]
//! reads its v1 lists by document time, newest first, window by window.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use serde_json::Value;

use super::{documents, status_error, Remote};
use crate::connect::errors::SourceError;

/// Which API the site has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    V3,
    /// No `/api/v3` (Nightscout before 15, or v3 turned off).
    V1,
}

/// What a read brought, and the cursor to read on from.
#[derive(Debug, Default)]
pub struct Changes {
    pub docs: Vec<Value>,
    /// srvModified ([`Remote::changes`]) or document time ([`Remote::dated`]) of the newest
    /// document read; the starting point when nothing was.
    pub cursor: i64,
    /// False when `max` documents were read before the end: read on from `cursor`.
    pub complete: bool,
}

/// Documents per request: API v3's largest limit, less for large documents, so a page stays
/// well under the HTTP client's reply cap (a device status of a loop is 1 to 4 KB, a profile
/// up to 50 KB).
pub fn page_size(collection: &str) -> usize {
    match collection {
        "entries" => 1000,
        "treatments" => 500,
        "devicestatus" => 200,
        _ => 20,
    }
}

/// The page asked for when a site refuses a larger one.
pub const SMALL_PAGE: usize = 100;

/// A document's srvModified.
pub fn srv_modified(doc: &Value) -> Option<i64> {
    doc.get("srvModified").and_then(Value::as_i64)
}

/// Whether a document read through API v3 was written through API v1 (so history never
/// lists it): it has no srvModified, or (Nightscout 15.0.7's search and read fill one in
/// for such documents, `resolveDates` in lib/api3/generic/collection.js) srvModified is its
/// own time (an entry's `date`, another's `created_at`) and srvCreated the same.
pub fn written_through_v1(collection: &str, doc: &Value) -> bool {
    match srv_modified(doc) {
        None => true,
        Some(m) => {
            doc_time(collection, doc) == Some(m)
                && doc.get("srvCreated").and_then(Value::as_i64) == Some(m)
        }
    }
}

/// A document's time: an entry's `date`, else `created_at` (a profile's `startDate` when it
/// has none), in epoch ms.
pub fn doc_time(collection: &str, doc: &Value) -> Option<i64> {
    if collection == "entries" {
        if let Some(d) = doc.get("date").and_then(Value::as_f64) {
            return Some(d as i64);
        }
    }
    ["created_at", "startDate", "dateString"]
        .iter()
        .filter_map(|k| doc.get(*k).and_then(Value::as_str))
        .find_map(|s| crate::dates::parse_iso(s).map(|d| d.ms))
}

impl Remote {
    /// Whether the site has API v3: `/api/v3/version` answers (it needs no credentials), or a
    /// 404 says it has not. Anonymous reads count as token-based here (a site open to read).
    /// With the API secret, v1: Nightscout's API v3 takes only tokens (lib/api3/security.js).
    pub async fn api(&self) -> Result<Api, SourceError> {
        if !self.auth.token_based() {
            return Ok(Api::V1);
        }
        let reply = self
            .http
            .get_with(&self.label, &format!("{}/api/v3/version", self.base), &[])
            .await?;
        match reply.status {
            200 | 401 | 403 => Ok(Api::V3),
            404 => Ok(Api::V1),
            s => Err(status_error(&self.label, s, "/api/v3/version")),
        }
    }

    /// An API v3 list, `path(limit)`, with the largest page the site takes: a site that
    /// answers 400 to a page (a Nightscout whose API3_MAX_LIMIT is below it) is asked for
    /// [`SMALL_PAGE`] from then on. Returns the documents and the limit used.
    async fn v3_page(
        &self,
        collection: &str,
        what: &str,
        path: impl Fn(usize) -> String,
    ) -> Result<(Vec<Value>, usize), SourceError> {
        loop {
            let limit = page_size(collection).min(self.v3_cap.load(Ordering::Relaxed));
            let reply = self.get(&path(limit)).await?;
            if reply.status == 400 && limit > SMALL_PAGE {
                self.v3_cap.store(SMALL_PAGE, Ordering::Relaxed);
                continue;
            }
            return Ok((documents(&self.label, &reply, what)?, limit));
        }
    }

    /// Every live document whose srvModified is `ms`, through searches in pages (sorted by
    /// identifier, so the pages do not overlap).
    async fn millisecond(&self, collection: &str, ms: i64) -> Result<Vec<Value>, SourceError> {
        let mut out = Vec::new();
        // A bound on pages, so a site answering nonsense cannot keep this going.
        for _ in 0..1000 {
            let skip = out.len();
            let (docs, limit) = self
                .v3_page(collection, &format!("{collection} search"), |limit| {
                    format!(
                        "/api/v3/{collection}?srvModified$eq={ms}&sort=identifier&limit={limit}\
                         &skip={skip}"
                    )
                })
                .await?;
            let short = docs.len() < limit;
            out.extend(docs);
            if short {
                break;
            }
        }
        Ok(out)
    }

    /// The changes of `collection` after srvModified `since`, oldest first, up to about `max`
    /// documents (see the module doc).
    pub async fn changes(
        &self,
        collection: &str,
        since: i64,
        max: usize,
    ) -> Result<Changes, SourceError> {
        let mut out = Changes {
            cursor: since,
            ..Changes::default()
        };
        while out.docs.len() < max {
            let since = out.cursor;
            let (page, limit) = self
                .v3_page(collection, &format!("{collection} history"), |limit| {
                    format!("/api/v3/{collection}/history/{since}?limit={limit}")
                })
                .await?;
            let times: Vec<i64> = page.iter().filter_map(srv_modified).collect();
            let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
                // Empty, or documents without srvModified: nothing to page by.
                out.docs.extend(page);
                out.complete = true;
                return Ok(out);
            };
            if page.len() < limit {
                out.cursor = out.cursor.max(times.iter().copied().max().unwrap_or(last));
                out.docs.extend(page);
                out.complete = true;
                return Ok(out);
            }
            if first < last {
                // The last millisecond may go on past this page: keep what is before it and
                // ask again from there.
                let before: Vec<Value> = page
                    .into_iter()
                    .filter(|d| srv_modified(d).is_some_and(|t| t < last))
                    .collect();
                out.cursor = before
                    .iter()
                    .filter_map(srv_modified)
                    .max()
                    .unwrap_or(out.cursor);
                out.docs.extend(before);
            } else {
                // A whole page in one millisecond: read all of it, then go past it.
                out.docs.extend(self.millisecond(collection, last).await?);
                out.cursor = last;
            }
        }
        Ok(out)
    }

    /// The API v3 documents of `collection` whose time is after `from` (entries by `date`,
    /// the others by `created_at`), newest first, up to about `max`: on Nightscout 15.0.7 the
    /// way to see what its API v1 wrote (listed with identifier = `_id` and no srvModified).
    pub async fn searched(
        &self,
        collection: &str,
        from: i64,
        max: usize,
    ) -> Result<Changes, SourceError> {
        let (field, bound) = if collection == "entries" {
            ("date", from.to_string())
        } else {
            ("created_at", crate::dates::to_iso(from))
        };
        let bound = super::encode(&bound);
        let mut out = Changes {
            cursor: from,
            ..Changes::default()
        };
        loop {
            let skip = out.docs.len();
            let (docs, limit) = self
                .v3_page(collection, &format!("{collection} search"), |limit| {
                    format!(
                        "/api/v3/{collection}?{field}$gt={bound}&sort$desc={field}\
                         &limit={limit}&skip={skip}"
                    )
                })
                .await?;
            let n = docs.len();
            for d in &docs {
                if let Some(t) = doc_time(collection, d) {
                    out.cursor = out.cursor.max(t);
                }
            }
            out.docs.extend(docs);
            if n < limit {
                out.complete = true;
                return Ok(out);
            }
            if out.docs.len() >= max {
                out.cursor = from;
                return Ok(out);
            }
        }
    }

    /// The v1 documents of `collection` whose time is after `from`, newest first, up to about
    /// `max`. Profiles come as one list (v1 has no time filter for them, and they are few).
    pub async fn dated(
        &self,
        collection: &str,
        from: i64,
        max: usize,
    ) -> Result<Changes, SourceError> {
        let what = format!("the v1 {collection} list");
        let page = page_size(collection);
        let mut out = Changes {
            cursor: from,
            ..Changes::default()
        };
        if collection == "profile" {
            let reply = self
                .get(&format!("/api/v1/profile.json?count={page}"))
                .await?;
            out.docs = documents(&self.label, &reply, &what)?;
            out.complete = true;
            return Ok(out);
        }
        let field = if collection == "entries" {
            "date"
        } else {
            "created_at"
        };
        let bound = |ms: i64| {
            if field == "date" {
                ms.to_string()
            } else {
                crate::dates::to_iso(ms)
            }
        };
        let mut seen = HashSet::new();
        let mut to: Option<i64> = None;
        loop {
            let mut path = format!(
                "/api/v1/{collection}.json?count={page}&find%5B{field}%5D%5B%24gt%5D={}",
                super::encode(&bound(from))
            );
            if let Some(t) = to {
                path.push_str(&format!(
                    "&find%5B{field}%5D%5B%24lte%5D={}",
                    super::encode(&bound(t))
                ));
            }
            let reply = self.get(&path).await?;
            let docs = documents(&self.label, &reply, &what)?;
            let full = docs.len() >= page;
            let times: Vec<i64> = docs
                .iter()
                .filter_map(|d| doc_time(collection, d))
                .collect();
            for d in docs {
                // A document read twice (windows meet at a millisecond) is kept once.
                let key = d
                    .get("_id")
                    .or_else(|| d.get("identifier"))
                    .map(Value::to_string)
                    .unwrap_or_else(|| d.to_string());
                if seen.insert(key) {
                    out.docs.push(d);
                }
            }
            if let Some(newest) = times.iter().max() {
                out.cursor = out.cursor.max(*newest);
            }
            let Some(&oldest) = times.iter().min() else {
                out.complete = true;
                return Ok(out);
            };
            if !full || oldest <= from {
                out.complete = true;
                return Ok(out);
            }
            if out.docs.len() >= max {
                // Newest first: what is older than this page is left for a later read, which
                // a cursor at the newest would skip; keep the window's start instead.
                out.cursor = from;
                return Ok(out);
            }
            // The next window ends at the oldest time read (its documents again, kept once);
            // a page all in one millisecond moves on before it, so the reads always move.
            let next = if times.iter().all(|t| *t == oldest) {
                oldest - 1
            } else {
                oldest
            };
            to = Some(match to {
                Some(t) if next >= t => t - 1,
                _ => next,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_v1_document_is_told_by_its_filled_in_srv_modified() {
        let t = 1_709_251_200_000i64;
        let iso = crate::dates::to_iso(t);
        assert!(written_through_v1(
            "treatments",
            &json!({"created_at": iso})
        ));
        // What 15.0.7's search shows for it.
        let filled = json!({"created_at": iso, "srvModified": t, "srvCreated": t});
        assert!(written_through_v1("treatments", &filled));
        let v3 = json!({"created_at": iso, "srvModified": t + 5, "srvCreated": t + 5});
        assert!(!written_through_v1("treatments", &v3));
        let entry = json!({"date": t, "srvModified": t, "srvCreated": t});
        assert!(written_through_v1("entries", &entry));
        assert!(!written_through_v1(
            "entries",
            &json!({"date": t, "srvModified": t + 1})
        ));
    }

    #[test]
    fn document_times() {
        assert_eq!(doc_time("entries", &json!({"date": 5})), Some(5));
        assert_eq!(
            doc_time("treatments", &json!({"created_at": "1970-01-01T00:00:01Z"})),
            Some(1000)
        );
        assert_eq!(
            doc_time("profile", &json!({"startDate": "1970-01-01T00:00:02.000Z"})),
            Some(2000)
        );
        assert_eq!(doc_time("treatments", &json!({"date": 5})), None);
    }
}
