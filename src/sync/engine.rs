//! One sync run with the site (docs/sync.md): CHECKING (log in, which API), DOWNLOADING (the
//! site's changes since its cursors), RESOLVING (documents changed on both sides), UPLOADING
//! (the outbox: local changes the site has not acknowledged), COMPLETE. Every step writes
//! here through the document operations (Caller::server("sync")) and keeps its place in the
//! database (store/sync.rs), so a run cut short anywhere goes on from there next time.

use std::sync::Arc;

use serde::Serialize;

use super::state::{Machine, State};
use crate::config::sync::{Mode, SyncSettings};
use crate::connect::clock::Clock;
use crate::connect::errors::SourceError;
use crate::connect::http::Http;
use crate::documents::Caller;
use crate::remote::Remote;
use crate::store::sync::Cursors;
use crate::store::{Collection, Store};

/// Hears a run's progress (the service's status board, the command's progress line).
pub trait Watch: Send + Sync {
    /// The run moved to `state`.
    fn state(&self, _state: State) {}
    /// `done` documents of `coll` handled so far in the current state.
    fn progress(&self, _coll: Collection, _done: u64) {}
}

/// A watch that hears nothing.
pub struct NoWatch;
impl Watch for NoWatch {}

/// What a run did to one collection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// The collection's name (`entries`, ...).
    pub collection: &'static str,
    /// Documents (and deletions) the site acknowledged.
    pub uploaded: u64,
    /// Documents (and deletions) written here from the site.
    pub downloaded: u64,
    /// Documents changed on both sides (each one logged in sync_conflicts).
    pub conflicts: u64,
    /// Documents one side refused (a 400/422 there, a refusal here): reported, not retried.
    pub refused: u64,
    /// Local changes still waiting for the site after the run.
    pub pending: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub collections: Vec<Counts>,
    /// Per collection, after the run: does each side hold the same (super::integrity)?
    pub integrity: Vec<super::integrity::Integrity>,
}

impl Report {
    pub fn total(&self) -> Counts {
        let mut t = Counts::default();
        for c in &self.collections {
            t.uploaded += c.uploaded;
            t.downloaded += c.downloaded;
            t.conflicts += c.conflicts;
            t.refused += c.refused;
            t.pending += c.pending;
        }
        t
    }
}

/// A run's failure: the engine's error classes (Transient and Throttle are worth retrying
/// with back-off; Auth and Fatal are reported and wait for the settings to change).
pub type SyncError = SourceError;

/// The sync with one site.
pub struct Engine {
    pub(crate) settings: SyncSettings,
    pub(crate) store: Store,
    pub(crate) remote: Remote,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) caller: Caller,
}

impl Engine {
    pub fn new(settings: SyncSettings, store: Store, http: Http, clock: Arc<dyn Clock>) -> Engine {
        let remote =
            Remote::new(&settings.site, http, clock.clone()).with_subject(SUBJECT, &["admin"]);
        Engine {
            settings,
            store,
            remote,
            clock,
            caller: Caller::server("sync"),
        }
    }

    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    /// How messages name the site (never with credentials).
    pub fn label(&self) -> &str {
        self.remote.label()
    }

    /// What this site's cursors, known versions, conflicts and runs are kept under.
    pub fn key(&self) -> &str {
        self.settings.remote_key()
    }

    /// One run in `mode` (not Check: see super::check). The state goes IDLE → CHECKING → ...
    /// → COMPLETE or ERROR; `watch` hears each step. Only one run at a time may use a
    /// database (the service runs them one after another).
    pub async fn run(&self, mode: Mode, watch: &dyn Watch) -> Result<Report, SyncError> {
        let mut machine = Machine::default();
        self.go(&mut machine, State::Checking, watch)?;
        match self.steps(mode, &mut machine, watch).await {
            Ok(report) => {
                self.go(&mut machine, State::Complete, watch)?;
                Ok(report)
            }
            Err(e) => {
                // From any working state ERROR is allowed; a refusal here would only hide e.
                let _ = self.go(&mut machine, State::Error, watch);
                Err(e)
            }
        }
    }

    fn go(&self, m: &mut Machine, s: State, watch: &dyn Watch) -> Result<(), SyncError> {
        m.go(s).map_err(|e| SourceError::fatal(e.to_string()))?;
        watch.state(s);
        Ok(())
    }

    async fn steps(
        &self,
        mode: Mode,
        m: &mut Machine,
        watch: &dyn Watch,
    ) -> Result<Report, SyncError> {
        if mode == Mode::Check {
            return Err(SourceError::fatal(
                "a check is `nightlite sync --direction check`, not a run",
            ));
        }
        self.remote.login().await?;
        let api = self.remote.api().await?;
        let colls = self.settings.collections.clone();
        let mut cursors = Vec::with_capacity(colls.len());
        for coll in &colls {
            cursors.push(self.cursors(*coll).await?);
        }
        let mut counts: Vec<Counts> = colls
            .iter()
            .map(|c| Counts {
                collection: c.table(),
                ..Counts::default()
            })
            .collect();
        if mode.downloads() {
            self.go(m, State::Downloading, watch)?;
            for (i, coll) in colls.iter().enumerate() {
                self.download(api, *coll, &mut cursors[i], &mut counts[i], watch)
                    .await?;
            }
            self.go(m, State::Resolving, watch)?;
            self.resolve(api, mode).await?;
            if mode.uploads() {
                self.go(m, State::Uploading, watch)?;
                self.upload_all(api, &colls, &mut cursors, &mut counts, watch)
                    .await?;
            }
        } else {
            self.go(m, State::Uploading, watch)?;
            self.upload_all(api, &colls, &mut cursors, &mut counts, watch)
                .await?;
            if self.has_decisions().await? {
                self.go(m, State::Resolving, watch)?;
                self.resolve(api, mode).await?;
            }
        }
        let mut report = Report::default();
        for (i, coll) in colls.iter().enumerate() {
            let key = self.key().to_string();
            let coll = *coll;
            counts[i].pending = self
                .store
                .read(move |conn| crate::store::sync::pending(conn, &key, coll))
                .await
                .map_err(|e| local(&e))?;
            let since = self.floor(coll);
            report.integrity.push(
                super::integrity::check(&self.remote, &self.store, self.key(), coll, since).await?,
            );
        }
        report.collections = counts;
        Ok(report)
    }

    async fn upload_all(
        &self,
        api: crate::remote::Api,
        colls: &[Collection],
        cursors: &mut [Cursors],
        counts: &mut [Counts],
        watch: &dyn Watch,
    ) -> Result<(), SyncError> {
        for (i, coll) in colls.iter().enumerate() {
            self.upload(api, *coll, &mut cursors[i], &mut counts[i], watch)
                .await?;
        }
        Ok(())
    }

    /// The cursors of `coll`, made at the first run: everything here is in the outbox and
    /// the site is read from its beginning, but for device statuses, which start
    /// SYNC_DEVICESTATUS_HOURS back on both sides.
    async fn cursors(&self, coll: Collection) -> Result<Cursors, SyncError> {
        let key = self.key().to_string();
        let found = self
            .store
            .read(move |conn| crate::store::sync::cursors(conn, &key, coll))
            .await
            .map_err(|e| local(&e))?;
        if let Some(c) = found {
            return Ok(c);
        }
        let c = Cursors {
            uploaded_through: if coll == Collection::DeviceStatus {
                self.floor(coll)
            } else {
                0
            },
            remote_since: None,
            remote_dated: None,
        };
        self.save(coll, c).await?;
        Ok(c)
    }

    /// Where a first run starts reading the site (and, for device statuses, sending).
    pub(super) fn floor(&self, coll: Collection) -> i64 {
        if coll == Collection::DeviceStatus {
            self.clock.now_ms() - i64::from(self.settings.devicestatus_hours) * 3_600_000
        } else {
            crate::store::v3::MIN_TIMESTAMP
        }
    }

    pub(super) async fn save(&self, coll: Collection, c: Cursors) -> Result<(), SyncError> {
        let key = self.key().to_string();
        self.store
            .write(move |conn| crate::store::sync::set_cursors(conn, &key, coll, &c))
            .await
            .map_err(|e| local(&e))
    }
}

/// A local failure (the database) during a run: transient, so the next run tries again; the
/// message holds no document.
pub(crate) fn local(e: &crate::error::Error) -> SyncError {
    SourceError::transient(format!("the local database failed: {}", e.client_message()))
}

/// With the API secret, the subject on the site whose token the sync reads and writes with.
pub const SUBJECT: &str = "nightlite-sync";
