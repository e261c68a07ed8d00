//! Reading a site's whole history through API v1, as `nightlite import --from` does: lists
//! by document time (entries by `date`, profiles by `startDate` through `/api/v1/profiles`,
//! the others by `created_at`), newest first, one page below a bound at a time, so the reader
//! holds one page and can stop and go on at any bound.
//! v1 is what every Nightscout has (15.0.7's v1 writes set no srvModified, so API v3 history
//! misses them) and what the API secret may read. A bound in the find also lifts Nightscout's
//! 4-day default window; `count` lifts its 10-document default.

use serde_json::Value;

use super::read::page_size;
use super::{documents, Remote};
use crate::connect::errors::SourceError;

/// The field a collection's v1 lists are filtered and sorted by, and a bound on it as the
/// query wants it (epoch ms for entries, ISO 8601 text for the others).
fn field(collection: &str) -> &'static str {
    match collection {
        "entries" => "date",
        // Nightscout's `/api/v1/profiles` takes a find on it and sorts by it.
        "profile" => "startDate",
        _ => "created_at",
    }
}

/// Where v1 lists a collection with a find: `/api/v1/profile` takes none, `/profiles` does.
pub(super) fn list(collection: &str) -> &str {
    if collection == "profile" {
        "profiles"
    } else {
        collection
    }
}

/// A document's time in the field its pages go by, epoch ms.
fn time_of(collection: &str, doc: &Value) -> Option<i64> {
    match doc.get(field(collection))? {
        Value::Number(n) => n.as_f64().map(|d| d as i64),
        Value::String(s) => crate::dates::parse_iso(s).map(|d| d.ms),
        _ => None,
    }
}

fn bound(collection: &str, ms: i64) -> String {
    if collection == "entries" {
        ms.to_string()
    } else {
        super::encode(&crate::dates::to_iso(ms))
    }
}

/// Whether v1 lists this collection by time (food is read whole).
pub fn by_time(collection: &str) -> bool {
    matches!(
        collection,
        "entries" | "treatments" | "devicestatus" | "profile"
    )
}

/// One page of history: documents newest first, and the bound to read on below (None at the
/// end). Every document whose time is in (next, below] is in `docs`, each once.
pub struct Page {
    pub docs: Vec<Value>,
    pub next: Option<i64>,
    /// The newest time in `docs`.
    pub newest: Option<i64>,
}

impl Remote {
    /// The documents of `collection` at or before `below` (all of them when None), newest
    /// first, a page at a time (see [`Page`]). A full page ends inside its oldest millisecond
    /// perhaps: the rest of that millisecond is read whole (many documents can share one
    /// time), and the next page starts below it.
    pub async fn history_page(
        &self,
        collection: &str,
        below: Option<i64>,
    ) -> Result<Page, SourceError> {
        let page = page_size(collection);
        let f = field(collection);
        let docs = self.v1_window(collection, 0, below, page).await?;
        let newest = docs.iter().filter_map(|d| time_of(collection, d)).max();
        if docs.len() < page {
            return Ok(Page {
                docs,
                next: None,
                newest,
            });
        }
        let Some(oldest) = docs.iter().filter_map(|d| time_of(collection, d)).min() else {
            return Err(SourceError::fatal(format!(
                "{}: its {collection} have no {f} to page by",
                self.label
            )));
        };
        let mut docs: Vec<Value> = docs
            .into_iter()
            .filter(|d| time_of(collection, d).is_some_and(|t| t > oldest))
            .collect();
        // All of the oldest millisecond, with a larger count until it fits.
        let mut count = page;
        loop {
            let at = self
                .v1_window(collection, oldest, Some(oldest), count)
                .await?;
            if at.len() < count {
                docs.extend(at);
                break;
            }
            count = count.saturating_mul(4);
        }
        Ok(Page {
            docs,
            next: Some(oldest - 1),
            newest,
        })
    }

    /// A v1 list of `collection` with time in [from, to], newest first, at most `count`.
    async fn v1_window(
        &self,
        collection: &str,
        from: i64,
        to: Option<i64>,
        count: usize,
    ) -> Result<Vec<Value>, SourceError> {
        let f = field(collection);
        let mut path = format!(
            "/api/v1/{}.json?count={count}&find%5B{f}%5D%5B%24gte%5D={}",
            list(collection),
            bound(collection, from)
        );
        if let Some(to) = to {
            path.push_str(&format!(
                "&find%5B{f}%5D%5B%24lte%5D={}",
                bound(collection, to)
            ));
        }
        let reply = self.get(&path).await?;
        documents(&self.label, &reply, &format!("the v1 {collection} list"))
    }

    /// A collection v1 lists without time (food): all of it, up to `count`.
    pub async fn whole(&self, collection: &str, count: usize) -> Result<Vec<Value>, SourceError> {
        let reply = self
            .get(&format!("/api/v1/{collection}.json?count={count}"))
            .await?;
        documents(&self.label, &reply, &format!("the v1 {collection} list"))
    }

    /// Whether the site's count endpoint counts treatments and device statuses by their own
    /// time: nightlite's does; Nightscout's (lib/server/aggregate.js, through 15.0.7) builds
    /// every collection's query with the entries' defaults, a 4-day window on `date` that
    /// treatments and device statuses do not have, so it counts none of them. Told by the
    /// name `/api/v1/status.json` gives, asked once.
    async fn counts_all(&self) -> Result<bool, SourceError> {
        let ask = || async {
            let reply = self.get("/api/v1/status.json").await?;
            let status: Option<Value> = serde_json::from_str(&reply.body).ok();
            let name = status.as_ref().and_then(|s| s.get("name"));
            Ok(reply.status == 200 && name.and_then(Value::as_str) == Some("nightlite"))
        };
        self.counts_all.get_or_try_init(ask).await.copied()
    }

    /// How many documents of `collection` the site holds (at or before `upto` when given),
    /// from `/api/v1/count/<c>/where` (Nightscout's and nightlite's; for entries, treatments
    /// and device statuses only: both count entries for any other name; on Nightscout for
    /// entries only, see [`Self::counts_all`]). None when the site has no such endpoint or
    /// cannot count the collection.
    pub async fn count(
        &self,
        collection: &str,
        upto: Option<i64>,
    ) -> Result<Option<u64>, SourceError> {
        if !matches!(collection, "entries" | "treatments" | "devicestatus") {
            return Ok(None);
        }
        if collection != "entries" && !self.counts_all().await? {
            return Ok(None);
        }
        let f = field(collection);
        let mut path = format!(
            "/api/v1/count/{collection}/where?find%5B{f}%5D%5B%24gte%5D={}",
            bound(collection, 0)
        );
        if let Some(t) = upto {
            path.push_str(&format!(
                "&find%5B{f}%5D%5B%24lte%5D={}",
                bound(collection, t)
            ));
        }
        let reply = self.get(&path).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        let groups = documents(&self.label, &reply, &format!("the {collection} count"))?;
        // A Mongo `$group` count: `[{"_id":null,"count":n}]`, or `[]` for none.
        Ok(Some(
            groups
                .first()
                .and_then(|g| g.get("count"))
                .and_then(Value::as_u64)
                .unwrap_or(0),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pages_go_by_each_collections_own_time() {
        assert_eq!(
            time_of("entries", &json!({"date": 5, "created_at": "x"})),
            Some(5)
        );
        let p =
            json!({"startDate": "1970-01-01T00:00:02.000Z", "created_at": "1970-01-01T00:00:09Z"});
        assert_eq!(time_of("profile", &p), Some(2000));
        assert_eq!(time_of("treatments", &p), Some(9000));
        assert_eq!(list("profile"), "profiles");
        assert_eq!(bound("treatments", 0), "1970-01-01T00%3A00%3A00.000Z");
    }
}
