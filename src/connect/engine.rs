//! One task per configured source: wait for the next poll on the clock, take the session
//! (logging in when there is none), find the gap from the source's own newest stored
//! document, fetch, transform, and write through src/documents/ as an upload would be
//! written. Errors are handled by class (errors.rs): an auth error drops the session and logs
//! in again once within the same poll; a fatal one stops the source for good; a throttle
//! waits as the vendor asks; anything else backs off (schedule.rs).
//!
//! nightscout-connect's defects this does not have (research/bridges.md §1): the session is
//! invalidated on an auth error instead of being reused until it expires; a bad password is
//! never retried; the back-off grows as configured; only the source's own documents decide
//! the gap; every document has a deterministic identifier, so a re-fetch stores nothing new.

use std::sync::Arc;

use serde_json::Value;

use super::clock::Clock;
use super::errors::{ErrorClass, SourceError};
use super::http::Http;
use super::schedule;
use super::session::Sessions;
use super::status::{Row, State};
use crate::documents::{self, Action, Caller, Outcome};
use crate::store::prepare::prepare;
use crate::store::upsert::{Merge, Written};
use crate::store::{Collection, Store};

/// Where a fetch starts, and when it is asked.
#[derive(Debug, Clone, Copy)]
pub struct Gap {
    pub now: i64,
    /// Fetch what is newer than this (epoch ms).
    pub from: i64,
    /// The source's own newest stored entry, if any.
    pub newest_own: Option<i64>,
}

/// What one fetch brought, as v1-shaped documents with `device` and `identifier` set.
#[derive(Debug, Default)]
pub struct Batch {
    pub entries: Vec<Value>,
    pub treatments: Vec<Value>,
    pub devicestatus: Vec<Value>,
    pub profile: Vec<Value>,
    /// Documents the vendor deleted (a followed Nightscout's `isValid: false`), by
    /// identifier: soft-deleted here when they are live here.
    pub deleted: Vec<(Collection, String)>,
}

/// A glucose reading as the v1 entry every source writes: `sgv` in mg/dl at `date`, its
/// `dateString` in the zone `offset_min` east of UTC (so the stored `utcOffset` is the
/// sensor's), Nightscout's trend and direction when known, the source's fixed `device` and
/// API v3's identifier of device and date, which makes a second fetch a no-op.
pub fn sgv_entry(
    device: &str,
    date: i64,
    sgv: Value,
    offset_min: i32,
    trend: Option<(i64, &str)>,
) -> Value {
    // An offset of a day or more is a vendor's garbage, not a zone: written, it would make a
    // dateString no reader (ours included, dates::parse_iso) can parse. UTC, as when unknown.
    let offset_min = if offset_min.unsigned_abs() < 24 * 60 {
        offset_min
    } else {
        0
    };
    let mut doc = serde_json::Map::new();
    doc.insert("type".into(), "sgv".into());
    doc.insert("sgv".into(), sgv);
    doc.insert("date".into(), date.into());
    doc.insert("dateString".into(), local_iso(date, offset_min).into());
    if let Some((n, name)) = trend {
        doc.insert("trend".into(), n.into());
        doc.insert("direction".into(), name.into());
    }
    doc.insert("device".into(), device.into());
    doc.insert(
        "identifier".into(),
        crate::ids::v3_identifier(Some(device), date, None).into(),
    );
    Value::Object(doc)
}

/// ISO 8601 of `ms` in the zone `offset_min` east of UTC.
pub fn local_iso(ms: i64, offset_min: i32) -> String {
    let utc = crate::dates::to_iso(ms + i64::from(offset_min) * 60_000);
    let sign = if offset_min < 0 { '-' } else { '+' };
    let o = offset_min.abs();
    format!(
        "{}{sign}{:02}:{:02}",
        utc.trim_end_matches('Z'),
        o / 60,
        o % 60
    )
}

/// A vendor cloud (dexcom.rs, ...). Every method's error is classified by the source.
pub trait Source: 'static {
    /// What authenticating yields (Dexcom: the account id).
    type Auth;
    /// What fetching needs (Dexcom: the session id).
    type Session: Clone;
    /// What a fetch replies, before it is transformed.
    type Raw;

    /// The CONNECT_SOURCE name.
    fn name(&self) -> &'static str;
    /// The `device` of every document it writes; also how its own newest is found.
    fn device(&self) -> &'static str;
    /// How often the vendor has a new reading.
    fn interval_ms(&self) -> i64 {
        5 * 60_000
    }
    /// How long a session is used before logging in again.
    fn session_ttl_ms(&self) -> i64;
    /// How far back the vendor can be asked (the first run backfills it).
    fn window_ms(&self) -> i64;
    /// How far before its own newest document a fetch starts again.
    fn overlap_ms(&self) -> i64 {
        10 * 60_000
    }

    async fn authenticate(&self, http: &Http) -> Result<Self::Auth, SourceError>;
    async fn authorize(&self, http: &Http, auth: Self::Auth) -> Result<Self::Session, SourceError>;
    async fn fetch(
        &self,
        http: &Http,
        session: &Self::Session,
        gap: &Gap,
    ) -> Result<Self::Raw, SourceError>;
    fn transform(&self, raw: Self::Raw, gap: &Gap) -> Result<Batch, SourceError>;
    /// Called once a fetch's batch is stored: a source that keeps cursors of its own
    /// (nightscout.rs) moves them only now, so a failed write is fetched again.
    fn stored(&self) {}
}

pub struct Engine<S: Source> {
    source: S,
    http: Http,
    clock: Arc<dyn Clock>,
    store: Store,
    caller: Caller,
    row: Row,
    sessions: Sessions<S::Session>,
}

impl<S: Source> Engine<S> {
    pub fn new(source: S, http: Http, clock: Arc<dyn Clock>, store: Store, row: Row) -> Engine<S> {
        let caller = Caller::server(&format!("connect:{}", source.name()));
        tracing::info!(source = source.name(), "bridge started");
        let sessions = Sessions::new(source.session_ttl_ms());
        Engine {
            source,
            http,
            clock,
            store,
            caller,
            row,
            sessions,
        }
    }

    /// Polls until a fatal error (then returns) or until the task is aborted at shutdown.
    pub async fn run(self) {
        let interval = self.source.interval_ms();
        let name = self.source.name();
        let mut failures: u32 = 0;
        let mut throttles: u32 = 0;
        let mut next = self.clock.now_ms();
        loop {
            self.clock.sleep_until(next).await;
            let outcome = self.poll().await;
            let now = self.clock.now_ms();
            match outcome {
                Ok(newest) => {
                    failures = 0;
                    throttles = 0;
                    next = schedule::aligned(
                        newest,
                        now,
                        interval,
                        schedule::jitter(schedule::READING_DELAY_MS),
                    );
                    self.row.succeeded(now, next);
                }
                Err(e) => {
                    tracing::warn!(
                        source = name,
                        class = e.class.name(),
                        "bridge: {}",
                        e.message
                    );
                    let wait = match e.class {
                        ErrorClass::Fatal => None,
                        ErrorClass::Throttle => {
                            throttles += 1;
                            Some(schedule::throttled(throttles, e.retry_after_ms))
                        }
                        ErrorClass::Auth | ErrorClass::Transient | ErrorClass::Refused => {
                            throttles = 0;
                            failures += 1;
                            let jitter =
                                schedule::jitter(schedule::backoff_jitter_max(failures, interval));
                            Some(schedule::backoff(failures, interval, jitter))
                        }
                    };
                    let stopped = wait.is_none();
                    if let Some(w) = wait {
                        next = now + w;
                    }
                    self.row.failed(now, e, (!stopped).then_some(next));
                    if stopped {
                        tracing::error!(
                            source = name,
                            "bridge stopped: no more requests until its settings change and \
                             the server restarts (docs/bridges.md)"
                        );
                        return;
                    }
                }
            }
        }
    }

    /// One poll: session, gap, fetch, transform, store; on an auth error the session is
    /// dropped and one new login tried. Returns the newest reading known after it.
    async fn poll(&self) -> Result<Option<i64>, SourceError> {
        let mut logged_in_again = false;
        loop {
            let session = self.session().await?;
            self.row.update(|r| r.state = State::Polling);
            let gap = self.gap().await?;
            self.row.update(|r| r.counters.fetches += 1);
            match self.source.fetch(&self.http, &session, &gap).await {
                Ok(raw) => {
                    let batch = self.source.transform(raw, &gap)?;
                    let newest = self.persist(batch, gap.newest_own).await?;
                    self.source.stored();
                    return Ok(newest);
                }
                Err(e) if e.class == ErrorClass::Auth => {
                    self.sessions.invalidate().await;
                    if logged_in_again {
                        return Err(e);
                    }
                    logged_in_again = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn session(&self) -> Result<S::Session, SourceError> {
        let now = self.clock.now_ms();
        self.sessions
            .get(now, || async {
                self.row.update(|r| {
                    r.state = State::LoggingIn;
                    r.counters.logins += 1;
                });
                let auth = self.source.authenticate(&self.http).await?;
                self.source.authorize(&self.http, auth).await
            })
            .await
    }

    async fn gap(&self) -> Result<Gap, SourceError> {
        let now = self.clock.now_ms();
        let newest_own = documents::newest_of_device(
            &self.store,
            &self.caller,
            Collection::Entries,
            self.source.device().to_string(),
        )
        .await
        .map_err(|e| local(&e))?
        // A reading stored with a date ahead of the clock (a receiver's clock a year off)
        // counts as now: else every later fetch would start in the future and find nothing.
        .map(|t| t.min(now));
        let from = schedule::fetch_from(
            newest_own,
            now,
            self.source.overlap_ms(),
            self.source.window_ms(),
        );
        Ok(Gap {
            now,
            from,
            newest_own,
        })
    }

    /// Counts a document the store refused and shows why in the status (the store's message
    /// names the field by its path, never a credential).
    fn refused(&self, e: &crate::error::Error) {
        let message = format!("a document was refused: {}", e.client_message());
        tracing::warn!(source = self.source.name(), "bridge: {message}");
        let now = self.clock.now_ms();
        self.row.update(|r| {
            r.counters.refused += 1;
            r.last_error = Some((now, SourceError::new(ErrorClass::Refused, message)));
        });
    }

    /// Writes the batch collection by collection; returns the newest entry now known.
    async fn persist(
        &self,
        batch: Batch,
        newest_own: Option<i64>,
    ) -> Result<Option<i64>, SourceError> {
        let mut newest = newest_own;
        for (coll, docs) in [
            (Collection::Entries, batch.entries),
            (Collection::Treatments, batch.treatments),
            (Collection::DeviceStatus, batch.devicestatus),
            (Collection::Profile, batch.profile),
        ] {
            if docs.is_empty() {
                continue;
            }
            let now = crate::dates::now_ms();
            let mut prepared = Vec::with_capacity(docs.len());
            for (i, doc) in docs.into_iter().enumerate() {
                let label = format!("{}.{}[{i}]", self.source.name(), coll.table());
                match prepare(coll, doc, &label, now) {
                    Ok(p) => prepared.extend(p),
                    // One document the store refuses (a value out of range, a date it cannot
                    // read) is counted and reported, and the rest stored: failing the poll
                    // would fetch the same batch again at every poll and store none of it.
                    Err(e) => self.refused(&e),
                }
            }
            if prepared.is_empty() {
                continue;
            }
            if coll == Collection::Entries {
                // Only what the store accepts sets the schedule: a refused reading dated in
                // the year 287,000 must not push the next poll there.
                newest = prepared.iter().map(|d| d.mills).chain(newest).max();
            }
            let written: Vec<Written> = documents::upsert(
                &self.store,
                &self.caller,
                coll,
                prepared,
                Merge::Replace,
                Action::Create,
                Vec::new(),
            )
            .await
            .map_err(|e| local(&e))?;
            let duplicates = written
                .iter()
                .filter(|w| matches!(w.outcome, Outcome::Unchanged | Outcome::Deduplicated { .. }))
                .count() as u64;
            let stored = written.len() as u64 - duplicates;
            self.row.update(|r| {
                r.counters.stored += stored;
                r.counters.duplicates += duplicates;
            });
        }
        for (coll, identifier) in batch.deleted {
            let live = documents::get(&self.store, &self.caller, coll, identifier.clone())
                .await
                .map_err(|e| local(&e))?;
            if live.is_some() {
                documents::delete(&self.store, &self.caller, coll, identifier, false)
                    .await
                    .map_err(|e| local(&e))?;
                self.row.update(|r| r.counters.stored += 1);
            }
        }
        // Likewise for the schedule: the next poll follows the clock, not a future date.
        Ok(newest.map(|t| t.min(self.clock.now_ms())))
    }
}

/// A local failure (the database) while handling a fetch: transient, so the next poll tries
/// again, and its text holds no vendor data.
fn local(e: &crate::error::Error) -> SourceError {
    SourceError::transient(format!("storing failed: {}", e.client_message()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_entry_s_date_string_is_readable_whatever_offset_the_vendor_sent() {
        let date = 1_763_776_800_000;
        for (offset, kept) in [(-300, -300), (23 * 60 + 59, 1439), (3000, 0), (i32::MIN, 0)] {
            let e = sgv_entry("x", date, 100.into(), offset, None);
            let at = crate::dates::parse_iso(e["dateString"].as_str().unwrap()).unwrap();
            assert_eq!((at.ms, at.offset_min), (date, kept), "{e}");
        }
    }
}
