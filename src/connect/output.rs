//! CONNECT_OUTPUT: upload to a remote Nightscout what this server stores, through
//! src/remote/ (API v3 create with each document's identifier, so uploading again is an
//! update on the site, never a second copy; API v1 for a site without v3).
//!
//! Local storage still happens: a bridge writes here first, as always, and the output follows
//! this server's own API v3 history (srvModified strictly increasing here, so no paging
//! trouble) for entries, treatments, device statuses and profiles. The local database is the
//! queue: an upload that fails is tried again from the same place, and a document is marked
//! done only when the site has it. The position is kept in memory; a start uploads the last
//! [`REPLAY_MS`] again, which the identifiers make harmless. Deleted documents are not
//! uploaded (nor deleted there). It runs at once after every local change, and at least every
//! minute; errors back off in the engine's classes (a refused token stops it).

use std::sync::Arc;

use serde_json::Value;

use super::clock::Clock;
use super::errors::{ErrorClass, SourceError};
use super::http::Http;
use super::schedule;
use super::status::{Row, State};
use crate::config::bridges::RemoteSite;
use crate::documents::{self, Caller};
use crate::remote::write::Uploaded;
use crate::remote::{Api, Remote};
use crate::store::{Collection, Store, StoredDoc};

/// How far back a start uploads again (a day, as Dexcom's backfill).
pub const REPLAY_MS: i64 = 86_400_000;
/// The longest wait between two rounds when nothing changes here.
const INTERVAL_MS: i64 = 60_000;
/// Documents read from the local history at a time.
const PAGE: usize = 200;
const COLLECTIONS: [Collection; 4] = [
    Collection::Entries,
    Collection::Treatments,
    Collection::DeviceStatus,
    Collection::Profile,
];

/// The status board's name and `device` for the output's row.
pub const NAME: &str = "output";

pub struct Output {
    remote: Remote,
    store: Store,
    clock: Arc<dyn Clock>,
    caller: Caller,
    row: Row,
}

impl Output {
    pub fn new(
        site: &RemoteSite,
        http: Http,
        clock: Arc<dyn Clock>,
        store: Store,
        row: Row,
    ) -> Output {
        Output {
            remote: Remote::new(site, http, clock.clone()),
            store,
            clock,
            caller: Caller::server("connect:output"),
            row,
        }
    }

    /// Uploads until a fatal error (then returns) or until the task is aborted.
    pub async fn run(self) {
        let mut changes = self.store.subscribe();
        let start = self.clock.now_ms() - REPLAY_MS;
        // Local srvModified per collection: what is uploaded.
        let mut cursors = [start; COLLECTIONS.len()];
        let mut api = None;
        let mut failures = 0u32;
        let mut next = self.clock.now_ms();
        let mut listening = true;
        loop {
            tokio::select! {
                () = self.clock.sleep_until(next) => {}
                // A local change (a lagged receiver only means "changes"); a closed bus (the
                // store shutting down) is not listened to again, or it would spin.
                r = changes.recv(), if listening && failures == 0 => {
                    if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        listening = false;
                    }
                }
            }
            self.row.update(|r| r.state = State::Polling);
            let outcome = self.round(&mut cursors, &mut api).await;
            let now = self.clock.now_ms();
            match outcome {
                Ok(()) => {
                    failures = 0;
                    next = now + INTERVAL_MS;
                    self.row.succeeded(now, next);
                }
                Err(e) => {
                    tracing::warn!(
                        output = self.remote.label(),
                        class = e.class.name(),
                        "output: {}",
                        e.message
                    );
                    let stopped = e.class == ErrorClass::Fatal;
                    if !stopped {
                        failures += 1;
                        let wait = match e.class {
                            ErrorClass::Throttle => schedule::throttled(failures, e.retry_after_ms),
                            _ => schedule::backoff(failures, INTERVAL_MS * 2, 0),
                        };
                        next = now + wait;
                    }
                    self.row.failed(now, e, (!stopped).then_some(next));
                    if stopped {
                        tracing::error!(
                            "output stopped: no more uploads until its settings change and \
                             the server restarts (docs/bridges.md)"
                        );
                        return;
                    }
                }
            }
        }
    }

    /// Uploads everything changed here after the cursors, collection by collection.
    async fn round(
        &self,
        cursors: &mut [i64; COLLECTIONS.len()],
        api: &mut Option<Api>,
    ) -> Result<(), SourceError> {
        let api = match *api {
            Some(a) => a,
            None => {
                self.row.update(|r| r.counters.logins += 1);
                self.remote.login().await?;
                let a = self.remote.api().await?;
                *api = Some(a);
                a
            }
        };
        for (coll, cursor) in COLLECTIONS.into_iter().zip(cursors.iter_mut()) {
            loop {
                let page = self.local_page(coll, *cursor).await?;
                let full = page.len() >= PAGE;
                for (srv_modified, doc) in page {
                    if let Some(doc) = doc {
                        self.upload(api, coll, doc).await?;
                    }
                    *cursor = srv_modified;
                }
                if !full {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The next local changes of `coll` after `since`: (srvModified, the API v3 view, or
    /// None for a deleted document).
    async fn local_page(
        &self,
        coll: Collection,
        since: i64,
    ) -> Result<Vec<(i64, Option<serde_json::Map<String, Value>>)>, SourceError> {
        documents::history(
            &self.store,
            &self.caller,
            coll,
            since,
            false,
            PAGE,
            move |docs| {
                docs.into_iter()
                    .map(|raw| {
                        let d = StoredDoc::parse(raw)?;
                        let view = d.is_valid.then(|| {
                            let mut v = crate::store::v3::view(coll, &d);
                            // API v1 matches treatments by it (write.rs drops it for v3).
                            v.insert("_id".into(), d.id.clone().into());
                            v
                        });
                        Ok((d.srv_modified, view))
                    })
                    .collect()
            },
        )
        .await
        .map_err(|e| SourceError::transient(format!("reading here failed: {}", e.client_message())))
    }

    async fn upload(
        &self,
        api: Api,
        coll: Collection,
        doc: serde_json::Map<String, Value>,
    ) -> Result<(), SourceError> {
        self.row.update(|r| r.counters.fetches += 1);
        let uploaded = self.remote.upload(api, coll.table(), doc).await?;
        self.row.update(|r| match uploaded {
            Uploaded::Created => r.counters.stored += 1,
            Uploaded::Updated => r.counters.duplicates += 1,
            Uploaded::Refused(_) => {}
        });
        if let Uploaded::Refused(status) = uploaded {
            // Retrying cannot help; the rest goes on. Neither the document nor the site's
            // message is logged (they may hold health data).
            tracing::warn!(
                output = self.remote.label(),
                collection = coll.table(),
                status,
                "output: the site refused a document"
            );
        }
        Ok(())
    }
}
