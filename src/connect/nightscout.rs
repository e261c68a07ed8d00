//! Nightscout as a source (CONNECT_SOURCE=nightscout): follow another Nightscout-compatible
//! site through src/remote/. Each poll reads, per collection of CONNECT_SOURCE_COLLECTIONS:
//! - API v3 history after this source's srvModified cursor (the remote's clock, never
//!   compared with ours), when the site has v3;
//! - by document time after its date cursor less an overlap: API v3 searches on a v3 site,
//!   where only documents API v1 wrote are kept (on Nightscout 15.0.7 history never lists
//!   them; its search shows them with a srvModified filled in from their own time,
//!   `written_through_v1`; the others came through history, in the same shape);
//!   API v1 lists on a site without v3, or with the API secret (v3 takes only tokens).
//!
//! Documents keep the remote's identifier (API v3's `identifier`; a v1 document without one
//! is known there by its `_id`, as v3 lists it), never its `_id` as ours, so reading one
//! twice, through both APIs or after a restart, stores nothing new. A document history lists
//! as deleted (`isValid: false`) is soft-deleted here when it is live here (a v1 delete on
//! Nightscout leaves no trace to follow). The cursors live in memory and move only once a poll's
//! documents are stored (`Source::stored`); a start reads CONNECT_SOURCE_BACKFILL_HOURS
//! again, which the identifiers make a no-op.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};

use super::clock::Clock;
use super::engine::{Batch, Gap, Source};
use super::errors::SourceError;
use super::http::Http;
use crate::config::bridges::NightscoutSource;
use crate::remote::read::{doc_time, written_through_v1};
use crate::remote::{Api, Remote};

/// The status row's `device`; documents keep the remote's own `device`.
pub const DEVICE: &str = "nightscout";
/// The subject made on the site when only its API secret is given (its token can read API
/// v3; the secret cannot).
pub const READER: &str = "nightlite-reader";
/// How far before the newest document time already read a v1 read starts again (a document
/// that reached the remote late).
const OVERLAP_MS: i64 = 10 * 60_000;
/// Documents read per collection in one poll; more are read by the next.
const MAX_PER_POLL: usize = 50_000;

#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    /// The newest srvModified read through v3 history.
    srv: Option<i64>,
    /// The newest document time read through v1.
    date: Option<i64>,
}

#[derive(Default)]
struct Cursors {
    api: Option<Api>,
    stored: HashMap<&'static str, Cursor>,
    /// Where the poll being stored leaves them.
    pending: HashMap<&'static str, Cursor>,
}

pub struct Nightscout {
    remote: Remote,
    collections: Vec<&'static str>,
    window_ms: i64,
    cursors: Mutex<Cursors>,
}

/// What one poll read: per collection, its documents as the remote has them.
pub struct Fetched(Vec<(&'static str, Vec<Value>)>);

impl Nightscout {
    pub fn new(s: &NightscoutSource, http: Http, clock: Arc<dyn Clock>) -> Nightscout {
        let collections = crate::config::bridges::REMOTE_COLLECTIONS
            .into_iter()
            .filter(|c| s.collections.iter().any(|k| k == c))
            .collect();
        Nightscout {
            remote: Remote::new(&s.site, http, clock).with_subject(READER, &["readable"]),
            collections,
            window_ms: i64::from(s.backfill_hours) * 3_600_000,
            cursors: Mutex::new(Cursors::default()),
        }
    }

    fn cursors(&self) -> std::sync::MutexGuard<'_, Cursors> {
        self.cursors.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn read(
        &self,
        api: Api,
        collection: &'static str,
        at: Cursor,
        gap: &Gap,
    ) -> Result<(Vec<Value>, Cursor), SourceError> {
        let mut docs = Vec::new();
        let mut next = at;
        if api == Api::V3 {
            let since = at.srv.unwrap_or(gap.from);
            let changes = self.remote.changes(collection, since, MAX_PER_POLL).await?;
            next.srv = Some(changes.cursor);
            docs = changes.docs;
        }
        let from = at.date.map_or(gap.from, |d| d - OVERLAP_MS);
        let dated = match api {
            Api::V3 => self.remote.searched(collection, from, MAX_PER_POLL).await?,
            Api::V1 => self.remote.dated(collection, from, MAX_PER_POLL).await?,
        };
        next.date = Some(at.date.unwrap_or(gap.from).max(dated.cursor));
        docs.extend(
            dated
                .docs
                .into_iter()
                .filter(|d| api == Api::V1 || written_through_v1(collection, d)),
        );
        Ok((docs, next))
    }
}

impl Source for Nightscout {
    type Auth = ();
    type Session = ();
    type Raw = Fetched;

    fn name(&self) -> &'static str {
        "nightscout"
    }

    fn device(&self) -> &'static str {
        DEVICE
    }

    /// The JWT is renewed by src/remote/ before it ends; a "session" here is only the check
    /// that the credentials work.
    fn session_ttl_ms(&self) -> i64 {
        86_400_000
    }

    fn window_ms(&self) -> i64 {
        self.window_ms
    }

    async fn authenticate(&self, _http: &Http) -> Result<(), SourceError> {
        self.remote.login().await
    }

    async fn authorize(&self, _http: &Http, _auth: ()) -> Result<(), SourceError> {
        Ok(())
    }

    async fn fetch(&self, _http: &Http, _session: &(), gap: &Gap) -> Result<Fetched, SourceError> {
        let known = self.cursors().api;
        let api = match known {
            Some(a) => a,
            None => {
                let a = self.remote.api().await?;
                self.cursors().api = Some(a);
                a
            }
        };
        let mut out = Vec::new();
        let mut pending = HashMap::new();
        for &c in &self.collections {
            let at = self.cursors().stored.get(c).copied().unwrap_or_default();
            let (docs, next) = self.read(api, c, at, gap).await?;
            pending.insert(c, next);
            out.push((c, docs));
        }
        self.cursors().pending = pending;
        Ok(Fetched(out))
    }

    fn transform(&self, raw: Fetched, _gap: &Gap) -> Result<Batch, SourceError> {
        let mut batch = Batch::default();
        for (c, docs) in raw.0 {
            let list = match c {
                "entries" => &mut batch.entries,
                "treatments" => &mut batch.treatments,
                "devicestatus" => &mut batch.devicestatus,
                _ => &mut batch.profile,
            };
            for d in docs {
                match carried(c, d) {
                    Carried::Doc(d) => list.push(d),
                    Carried::Deleted(identifier) => {
                        if let Some(coll) = crate::store::Collection::from_name(c) {
                            batch.deleted.push((coll, identifier));
                        }
                    }
                    Carried::Nothing => {}
                }
            }
        }
        Ok(batch)
    }

    fn stored(&self) {
        let mut cursors = self.cursors();
        let pending = std::mem::take(&mut cursors.pending);
        cursors.stored.extend(pending);
    }
}

/// What a remote document becomes here.
#[derive(Debug, PartialEq)]
enum Carried {
    Doc(Value),
    /// Deleted there (history lists deletions): this identifier is deleted here.
    Deleted(String),
    /// Not a document.
    Nothing,
}

/// A remote document as stored here: its identifier kept (or made, see the module doc), the
/// remote server's own fields (`_id`, srvModified, srvCreated, isValid) left behind, which
/// this server sets for itself.
fn carried(collection: &str, doc: Value) -> Carried {
    let Value::Object(mut doc) = doc else {
        return Carried::Nothing;
    };
    if doc.get("isValid") == Some(&Value::Bool(false)) {
        return match doc.get("identifier").and_then(Value::as_str) {
            Some(i) if !i.is_empty() => Carried::Deleted(i.to_string()),
            _ => Carried::Nothing,
        };
    }
    let remote_id = doc.get("_id").and_then(|v| match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        // mongoexport's shape, in case a site passes one through.
        Value::Object(o) => o.get("$oid").and_then(Value::as_str).map(str::to_string),
        _ => None,
    });
    for k in ["_id", "srvModified", "srvCreated", "isValid"] {
        doc.remove(k);
    }
    let has_identifier = doc
        .get("identifier")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !has_identifier {
        let identifier = remote_id.unwrap_or_else(|| made_identifier(collection, &doc));
        doc.insert("identifier".into(), identifier.into());
    }
    Carried::Doc(Value::Object(doc))
}

/// API v3's identifier of device, time and eventType, for a document with neither an
/// identifier nor an `_id` (not one Nightscout lists, but a fake or an old export may).
fn made_identifier(collection: &str, doc: &Map<String, Value>) -> String {
    let v = Value::Object(doc.clone());
    let date = doc_time(collection, &v).unwrap_or(0);
    crate::ids::v3_identifier(
        doc.get("device").and_then(Value::as_str),
        date,
        doc.get("eventType").and_then(Value::as_str),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn the_remote_identifier_is_carried_never_its_id() {
        let doc = |c: &str, v: Value| match carried(c, v) {
            Carried::Doc(d) => d,
            other => panic!("{other:?}"),
        };
        let d = doc(
            "entries",
            json!({"_id":"5f0000000000000000000001","identifier":"abc","srvModified":5,
                   "sgv":100,"date":1}),
        );
        assert_eq!(d, json!({"identifier":"abc","sgv":100,"date":1}));
        // A v1 document: known by its _id, as API v3 lists it.
        let d = doc(
            "treatments",
            json!({"_id":"5f0000000000000000000002","eventType":"Note"}),
        );
        assert_eq!(d["identifier"], "5f0000000000000000000002");
        assert!(d.get("_id").is_none());
        let d = doc("entries", json!({"device":"x","date":7}));
        assert_eq!(
            d["identifier"],
            crate::ids::v3_identifier(Some("x"), 7, None)
        );
        assert_eq!(
            carried("entries", json!({"identifier":"a","isValid":false})),
            Carried::Deleted("a".into())
        );
        assert_eq!(carried("entries", json!(3)), Carried::Nothing);
    }
}
