//! Single reads for the sync's integrity check (src/sync/integrity.rs, docs/sync.md
//! "Integrity"): a nightlite site's digest of a collection, one document through API v3 by
//! identifier, one through API v1 by `_id`.

use serde_json::Value;

use super::{documents, encode, status_error, windows, Remote};
use crate::connect::errors::SourceError;

/// A site's count and hash of a collection (`GET /api/v4/sync/digest/{collection}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteDigest {
    pub count: u64,
    pub hash: String,
}

/// One document as the site shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Found {
    Live(Value),
    /// API v3's 410: deleted there, the tombstone kept.
    Deleted,
    Missing,
}

impl Remote {
    /// The site's digest of `collection` after srvModified `since`; None when it has no such
    /// route (404: not a nightlite, or an older one).
    pub async fn digest(
        &self,
        collection: &str,
        since: i64,
    ) -> Result<Option<SiteDigest>, SourceError> {
        let what = format!("the {collection} digest");
        let reply = self
            .get(&format!("/api/v4/sync/digest/{collection}?since={since}"))
            .await?;
        if reply.status == 404 {
            return Ok(None);
        }
        if reply.status != 200 {
            return Err(status_error(&self.label, reply.status, &what));
        }
        let body = reply.json().unwrap_or(Value::Null);
        match (
            body.get("count").and_then(Value::as_u64),
            body.get("hash").and_then(Value::as_str),
        ) {
            (Some(count), Some(hash)) => Ok(Some(SiteDigest {
                count,
                hash: hash.to_string(),
            })),
            _ => Err(SourceError::transient(format!(
                "{}: the reply to {what} holds no count and hash",
                self.label
            ))),
        }
    }

    /// The document of `collection` whose identifier (or `_id`) is `identity`, through API v3.
    pub async fn document_v3(
        &self,
        collection: &str,
        identity: &str,
    ) -> Result<Found, SourceError> {
        let what = format!("a {collection} document");
        let reply = self
            .get(&format!("/api/v3/{collection}/{}", encode(identity)))
            .await?;
        match reply.status {
            404 => return Ok(Found::Missing),
            410 => return Ok(Found::Deleted),
            200 => {}
            s => return Err(status_error(&self.label, s, &what)),
        }
        match reply.json() {
            // Nightscout's `{"status":200,"result":{...}}`, or the document itself.
            Some(Value::Object(mut o)) => Ok(Found::Live(match o.remove("result") {
                Some(doc @ Value::Object(_)) => doc,
                _ => Value::Object(o),
            })),
            _ => Err(SourceError::transient(format!(
                "{}: the reply to {what} is not JSON",
                self.label
            ))),
        }
    }

    /// The live document of `collection` whose `_id` is `id`, through an API v1 list (which
    /// shows no deleted ones). A find on `_id` lifts Nightscout's 4-day default window.
    /// Not for food: Nightscout's v1 food list takes no find.
    pub async fn document_v1(&self, collection: &str, id: &str) -> Result<Found, SourceError> {
        let path = format!(
            "/api/v1/{}.json?find%5B_id%5D={}&count=1",
            windows::list(collection),
            encode(id)
        );
        let reply = self.get(&path).await?;
        let docs = documents(&self.label, &reply, &format!("a {collection} document"))?;
        // Only the one asked for: a site that ignored the find answers with others.
        Ok(docs
            .into_iter()
            .find(|d| d.get("_id").and_then(Value::as_str) == Some(id))
            .map_or(Found::Missing, Found::Live))
    }
}
