//! The sync service (SYNC_URL, docs/sync.md): one [`Engine`] whose runs happen one at a time,
//! triggered at start, every SYNC_INTERVAL_MINUTES, [`DEBOUNCE_MS`] after a local change, by
//! `POST /api/v4/sync/run` or a decided conflict, and by the site's own change events
//! (storage_events.rs). A trigger during a run makes another run right after it. A run that
//! could not reach the site (transient errors, throttles) is tried again after an exponential
//! back-off with jitter (a throttle's Retry-After honoured), the state QUEUED meanwhile; a
//! refused credential or a fatal error waits for the next interval. Every run is recorded in
//! sync_runs (store/sync_runs.rs) and runs older than SYNC_HISTORY_DAYS are forgotten.
//!
//! Time is the [`Clock`]'s, as the bridges' is, so tests drive it by hand.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::engine::{Engine, Report, SyncError, Watch};
use super::state::{Machine, State};
use super::storage_events;
use crate::config::sync::{Mode, SyncSettings};
use crate::connect::clock::Clock;
use crate::connect::errors::ErrorClass;
use crate::connect::http::Http;
use crate::connect::schedule;
use crate::error::{Error, Result};
use crate::store::sync_runs::{self, Decided, Finish, RunTotals};
use crate::store::{self, Collection, Store};

/// A local change is synced this long after it (more changes meanwhile join the same run).
pub const DEBOUNCE_MS: i64 = 10_000;
/// A request to the site that takes longer counts as a transient error.
const REQUEST_TIMEOUT_MS: i64 = 30_000;
/// The event socket's long polls: the site answers each within its ping interval (25 s in
/// Nightscout and nightlite), so one without an answer in this long has lost the site.
const EVENTS_TIMEOUT_MS: i64 = 60_000;
/// The first retry after a transient error comes half this after it, each next one twice as
/// late, at most six times this (connect::schedule::backoff).
const RETRY_BASE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;
/// Triggers waiting for the loop at most (a flood of the site's events or of POSTs during a
/// long run is dropped past it: the run after the current one covers them all).
const TRIGGERS: usize = 16;

/// Why a run started (sync_runs.trigger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Start,
    Interval,
    /// A local change, after the debounce.
    Change,
    /// `POST /api/v4/sync/run`.
    Manual,
    /// A held conflict was decided (`POST /api/v4/sync/conflicts/{id}`).
    Decision,
    /// The site announced a change (storage_events.rs), after the debounce.
    Remote,
    /// The try after a back-off.
    Retry,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Interval => "interval",
            Trigger::Change => "change",
            Trigger::Manual => "manual",
            Trigger::Decision => "decision",
            Trigger::Remote => "remote",
            Trigger::Retry => "retry",
        }
    }
}

/// What the status shows of the loop (the rest is read from the database).
#[derive(Debug, Default)]
struct Board {
    machine: Machine,
    /// The trigger of the run in progress.
    running: Option<Trigger>,
    next_run: Option<i64>,
    /// Failed runs in a row that are being retried.
    failures: u32,
    /// Per collection, documents handled so far in the current state of the run.
    progress: Vec<(Collection, u64)>,
    /// The site's change events (storage_events.rs): `off` (no token to subscribe with),
    /// `connecting`, `listening`, `retrying`.
    realtime: &'static str,
}

struct Shared {
    settings: SyncSettings,
    store: Store,
    board: Mutex<Board>,
    /// Bounded: triggers beyond it while a run is in progress add nothing (one queued is
    /// enough for the run after it).
    triggers: mpsc::Sender<Trigger>,
    /// Taken by [`SyncService::spawn`].
    receiver: Mutex<Option<mpsc::Receiver<Trigger>>>,
}

/// The sync with SYNC_URL: its status and triggers, shared by the loop and the API.
#[derive(Clone)]
pub struct SyncService {
    shared: Arc<Shared>,
}

impl SyncService {
    pub fn new(settings: SyncSettings, store: Store) -> SyncService {
        let (triggers, receiver) = mpsc::channel(TRIGGERS);
        SyncService {
            shared: Arc::new(Shared {
                settings,
                store,
                board: Mutex::new(Board {
                    realtime: "off",
                    ..Board::default()
                }),
                triggers,
                receiver: Mutex::new(Some(receiver)),
            }),
        }
    }

    fn board(&self) -> std::sync::MutexGuard<'_, Board> {
        self.shared.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn settings(&self) -> &SyncSettings {
        &self.shared.settings
    }

    /// Starts the loop and the listener of the site's change events (once; nothing after the
    /// first call) on the current (actix) runtime, waiting on `clock`. The caller aborts them
    /// at shutdown.
    pub fn spawn(&self, clock: Arc<dyn Clock>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        let receiver = self
            .shared
            .receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let Some(receiver) = receiver else {
            return tasks;
        };
        let (engine_http, events_http) = match (
            Http::new(clock.clone(), REQUEST_TIMEOUT_MS),
            Http::new(clock.clone(), EVENTS_TIMEOUT_MS),
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!("sync: {e}");
                return tasks;
            }
        };
        let s = &self.shared;
        let engine = Engine::new(
            s.settings.clone(),
            s.store.clone(),
            engine_http,
            clock.clone(),
        );
        let site = s
            .settings
            .site
            .token
            .as_ref()
            .map(|t| storage_events::Site {
                base: s.settings.site.base.clone(),
                label: engine.label().to_string(),
                token: t.clone(),
                collections: s.settings.collections.clone(),
            });
        let service = self.clone();
        let loop_clock = clock.clone();
        tasks.push(actix_web::rt::spawn(async move {
            service.run_loop(engine, loop_clock, receiver).await;
        }));
        match site {
            Some(site) => {
                let listener = self.clone();
                tasks.push(actix_web::rt::spawn(storage_events::listen(
                    site,
                    events_http,
                    clock,
                    listener,
                )));
            }
            None => tracing::info!(
                "sync: with SYNC_API_SECRET and no token, the site's change events are not \
                 heard; the periodic sync and local changes trigger runs"
            ),
        }
        tasks
    }

    /// Asks for a run now (after the one in progress, if any).
    pub fn trigger(&self, why: Trigger) {
        // Fails once the loop has ended (shutdown: nothing to trigger), or when triggers
        // already wait (the next run covers this one too).
        let _ = self.shared.triggers.try_send(why);
    }

    async fn run_loop<R: Runner>(
        self,
        engine: R,
        clock: Arc<dyn Clock>,
        mut triggers: mpsc::Receiver<Trigger>,
    ) {
        let interval = i64::from(self.settings().interval_minutes) * 60_000;
        let mut changes = self.shared.store.subscribe();
        let mut listening = true;
        let mut due = (clock.now_ms(), Trigger::Start);
        let mut throttles = 0u32;
        loop {
            self.board().next_run = Some(due.0);
            tokio::select! {
                biased;
                t = triggers.recv() => match t {
                    // The site's events come in bursts, as local changes do; during a
                    // back-off (a throttle's Retry-After included) they wait for its end.
                    Some(Trigger::Remote) => {
                        if self.board().failures == 0 {
                            due = earlier(due, (clock.now_ms() + DEBOUNCE_MS, Trigger::Remote));
                        }
                        continue;
                    }
                    Some(t) => {
                        due = (clock.now_ms(), t);
                        continue;
                    }
                    None => return,
                },
                () = clock.sleep_until(due.0) => {}
                // A local change (a lagged receiver only means "changes"). Not while the site
                // is being waited for: the retry comes anyway. A closed bus (the store shutting
                // down) is not listened to again, or it would spin.
                r = changes.recv(), if listening && self.board().failures == 0 => {
                    if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        listening = false;
                    } else {
                        due = earlier(due, (clock.now_ms() + DEBOUNCE_MS, Trigger::Change));
                    }
                    continue;
                }
            }
            let result = self.run_once(&engine, &*clock, due.1).await;
            let now = clock.now_ms();
            // The run's own downloads are changes here too: those heard during the run only
            // trigger another when local changes still wait for the site.
            let mut heard = false;
            while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) =
                changes.try_recv()
            {
                heard = true;
            }
            due = match result {
                Ok(report) => {
                    self.board().failures = 0;
                    throttles = 0;
                    let next = (now + interval, Trigger::Interval);
                    if heard && report.total().pending > 0 && self.settings().mode.uploads() {
                        earlier(next, (now + DEBOUNCE_MS, Trigger::Change))
                    } else {
                        next
                    }
                }
                Err(e) => {
                    let failures = {
                        let mut b = self.board();
                        if retried(&e) {
                            b.failures += 1;
                        } else {
                            b.failures = 0;
                        }
                        b.failures
                    };
                    match e.class {
                        ErrorClass::Throttle => throttles += 1,
                        _ => throttles = 0,
                    }
                    match retry_wait(&e, failures, throttles) {
                        Some(wait) => (now + wait, Trigger::Retry),
                        None => (now + interval, Trigger::Interval),
                    }
                }
            };
        }
    }

    /// One run, recorded in sync_runs, the board following its states.
    async fn run_once<R: Runner>(
        &self,
        engine: &R,
        clock: &dyn Clock,
        trigger: Trigger,
    ) -> std::result::Result<Report, SyncError> {
        let started = clock.now_ms();
        {
            let mut b = self.board();
            if matches!(b.machine.state(), State::Complete | State::Error) {
                let _ = b.machine.go(State::Idle);
            }
            b.running = Some(trigger);
            b.next_run = None;
            b.progress.clear();
        }
        let s = &self.shared;
        let (remote, mode) = (s.settings.remote_key().to_string(), s.settings.mode);
        let id = s
            .store
            .write(move |conn| {
                sync_runs::start_run(conn, &remote, trigger.name(), mode.name(), started)
            })
            .await;
        let result = engine.run(mode, &BoardWatch(self)).await;
        let finished = clock.now_ms();
        let outcome = {
            let mut b = self.board();
            b.running = None;
            match &result {
                Ok(_) => {
                    if b.machine.state() != State::Complete {
                        let _ = b.machine.go(State::Complete);
                    }
                    let _ = b.machine.go(State::Idle);
                    "complete"
                }
                Err(e) => {
                    if b.machine.state() != State::Error {
                        let _ = b.machine.go(State::Error);
                    }
                    if retried(e) {
                        let _ = b.machine.go(State::Idle);
                        let _ = b.machine.go(State::Queued);
                        "queued"
                    } else {
                        "error"
                    }
                }
            }
        };
        match &result {
            Ok(r) => tracing::info!(
                site = engine.label(),
                trigger = trigger.name(),
                uploaded = r.total().uploaded,
                downloaded = r.total().downloaded,
                conflicts = r.total().conflicts,
                "sync complete"
            ),
            Err(e) => tracing::warn!(
                site = engine.label(),
                trigger = trigger.name(),
                class = e.class.name(),
                "sync failed: {}",
                e.message
            ),
        }
        let history_days = i64::from(s.settings.history_days);
        let record = match id {
            Ok(id) => {
                let (counts, error, detail) = match &result {
                    Ok(r) => {
                        let t = r.total();
                        let counts = RunTotals {
                            uploaded: t.uploaded,
                            downloaded: t.downloaded,
                            conflicts: t.conflicts,
                            refused: t.refused,
                        };
                        (counts, None, serde_json::to_string(r).ok())
                    }
                    Err(e) => (RunTotals::default(), Some(e.to_string()), None),
                };
                s.store
                    .write(move |conn| {
                        sync_runs::finish_run(
                            conn,
                            id,
                            &Finish {
                                at: finished,
                                outcome,
                                counts,
                                error: error.as_deref(),
                                detail,
                            },
                        )?;
                        sync_runs::prune_runs(conn, finished - history_days * DAY_MS)
                    })
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = record {
            tracing::warn!(
                "sync: the run could not be recorded: {}",
                e.client_message()
            );
        }
        result
    }

    /// `GET /api/v4/sync/status` (docs/sync.md, "Status and conflicts API").
    pub async fn status(&self) -> Result<Value> {
        let s = &self.shared;
        let remote = s.settings.remote_key().to_string();
        let collections = s.settings.collections.clone();
        let (last, success, conflicts, per_collection) = s
            .store
            .read(move |conn| {
                let last = sync_runs::last_run(conn, &remote, None)?;
                let success = sync_runs::last_run(conn, &remote, Some("complete"))?;
                let conflicts = sync_runs::conflict_counts(conn, &remote)?;
                let mut per = Vec::new();
                for c in collections {
                    let cursors = store::sync::cursors(conn, &remote, c)?.unwrap_or_default();
                    let pending = store::sync::pending(conn, &remote, c)?;
                    per.push(json!({
                        "collection": c.table(),
                        "uploadedThrough": cursors.uploaded_through,
                        "remoteSince": cursors.remote_since,
                        "remoteDated": cursors.remote_dated,
                        "pending": pending,
                    }));
                }
                Ok((last, success, conflicts, per))
            })
            .await?;
        let pending: u64 = per_collection
            .iter()
            .filter_map(|c| c["pending"].as_u64())
            .sum();
        let b = self.board();
        let last_error = last
            .as_ref()
            .filter(|r| r.error.is_some())
            .map(|r| json!({"at": r.finished, "message": r.error, "outcome": r.outcome}));
        Ok(json!({
            "configured": true,
            "state": b.machine.state().name(),
            "running": b.running.map(Trigger::name),
            "progress": b.progress.iter()
                .map(|(c, n)| json!({"collection": c.table(), "done": n}))
                .collect::<Vec<_>>(),
            "remote": s.settings.remote_key(),
            "direction": s.settings.mode.name(),
            "conflictStrategy": s.settings.conflict.name(),
            "intervalMinutes": s.settings.interval_minutes,
            "realtime": b.realtime,
            "lastSuccess": success.as_ref().and_then(|r| r.finished),
            "lastRun": last.as_ref().map(|r| json!({
                "id": r.id,
                "trigger": r.trigger,
                "started": r.started,
                "finished": r.finished,
                "outcome": r.outcome,
                "counts": r.counts,
                "error": r.error,
            })),
            "lastError": last_error,
            "failures": b.failures,
            "nextRun": b.next_run,
            "pending": pending,
            "collections": per_collection,
            "conflicts": {"open": conflicts.0, "total": conflicts.1},
        }))
    }

    /// The short form `/api/v1/status.json` carries: what the viewer's pill needs.
    pub async fn summary(&self) -> Result<Value> {
        let full = self.status().await?;
        let mut out = serde_json::Map::new();
        for k in [
            "state",
            "running",
            "remote",
            "lastSuccess",
            "lastError",
            "pending",
        ] {
            out.insert(k.to_string(), full[k].clone());
        }
        Ok(Value::Object(out))
    }

    /// `GET /api/v4/sync/runs`: newest first.
    pub async fn runs(&self, limit: usize) -> Result<Vec<sync_runs::Run>> {
        let remote = self.settings().remote_key().to_string();
        self.shared
            .store
            .read(move |conn| sync_runs::runs(conn, &remote, limit))
            .await
    }

    /// `GET /api/v4/sync/conflicts`: newest first.
    pub async fn conflicts(&self, limit: usize) -> Result<Vec<crate::store::sync::Conflict>> {
        let remote = self.settings().remote_key().to_string();
        self.shared
            .store
            .read(move |conn| crate::store::sync::newest_conflicts(conn, &remote, limit))
            .await
    }

    /// Keeps `keep` (`local` or `remote`) for the held conflict `id` at `at`, and triggers a
    /// run to carry it out.
    pub async fn decide(&self, id: i64, keep: &str, at: i64) -> Result<()> {
        let Some(keep) = super::resolve::Keep::parse(keep) else {
            return Err(Error::bad_request(
                "keep must be \"local\" or \"remote\"".to_string(),
            ));
        };
        let remote = self.settings().remote_key().to_string();
        let kept = keep.name();
        let decided = self
            .shared
            .store
            .write(move |conn| sync_runs::decide(conn, &remote, id, kept, at))
            .await?;
        match decided {
            Decided::Done => {
                self.trigger(Trigger::Decision);
                Ok(())
            }
            Decided::NoSuchConflict => Err(Error::NotFound(format!("no sync conflict {id}"))),
            Decided::AlreadyDecided => Err(Error::Conflict(format!(
                "sync conflict {id} is decided already"
            ))),
        }
    }
}

/// What the loop runs: the [`Engine`]; a scripted one in the tests.
trait Runner {
    async fn run(&self, mode: Mode, watch: &dyn Watch) -> std::result::Result<Report, SyncError>;
    fn label(&self) -> &str;
}

impl Runner for Engine {
    async fn run(&self, mode: Mode, watch: &dyn Watch) -> std::result::Result<Report, SyncError> {
        Engine::run(self, mode, watch).await
    }

    fn label(&self) -> &str {
        Engine::label(self)
    }
}

/// Errors worth retrying soon: the site was unreachable or asked us to slow down.
fn retried(e: &SyncError) -> bool {
    matches!(e.class, ErrorClass::Transient | ErrorClass::Throttle)
}

/// How long to wait before trying again after `e`, the `failures`-th retried failure in a row
/// (`throttles` of them throttles in a row); None: not before the next interval.
fn retry_wait(e: &SyncError, failures: u32, throttles: u32) -> Option<i64> {
    match e.class {
        ErrorClass::Throttle => Some(schedule::throttled(throttles, e.retry_after_ms)),
        ErrorClass::Transient => {
            let jitter = schedule::jitter(schedule::backoff_jitter_max(failures, RETRY_BASE_MS));
            Some(schedule::backoff(failures, RETRY_BASE_MS, jitter))
        }
        ErrorClass::Auth | ErrorClass::Fatal | ErrorClass::Refused => None,
    }
}

/// The sooner of two due runs.
fn earlier(a: (i64, Trigger), b: (i64, Trigger)) -> (i64, Trigger) {
    if b.0 < a.0 {
        b
    } else {
        a
    }
}

/// The site's change events: a trigger, unless a run is in progress (the site announces what
/// the run itself uploads).
impl storage_events::Listener for SyncService {
    fn heard(&self) {
        if self.board().running.is_none() {
            self.trigger(Trigger::Remote);
        }
    }

    fn connected(&self, state: &'static str) {
        self.board().realtime = state;
    }
}

/// Moves the board along the engine's states.
struct BoardWatch<'a>(&'a SyncService);

impl Watch for BoardWatch<'_> {
    fn state(&self, state: State) {
        let mut b = self.0.board();
        if b.machine.state() != state {
            if let Err(e) = b.machine.go(state) {
                tracing::debug!("sync: {e}");
            }
        }
        b.progress.clear();
    }

    fn progress(&self, coll: Collection, done: u64) {
        let mut b = self.0.board();
        match b.progress.iter_mut().find(|(c, _)| *c == coll) {
            Some(p) => p.1 = done,
            None => b.progress.push((coll, done)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::VecDeque;

    use super::*;
    use crate::config::bridges::{Password, RemoteSite};
    use crate::connect::errors::SourceError;
    use crate::connect::ManualClock;

    #[test]
    fn the_sooner_run_wins_and_keeps_its_trigger() {
        let a = (100, Trigger::Interval);
        let b = (50, Trigger::Change);
        assert_eq!(earlier(a, b), b);
        assert_eq!(earlier(b, a), b);
        assert_eq!(earlier(a, (100, Trigger::Change)), a);
    }

    #[test]
    fn unreachable_sites_are_retried_sooner_and_sooner_not_refused_credentials() {
        let transient = SourceError::transient("connection refused");
        let waits: Vec<i64> = (1..=5)
            .map(|n| retry_wait(&transient, n, 0).unwrap_or(0))
            .collect();
        // Half the base, doubled each time, with at most a tenth more as jitter.
        for (n, w) in waits.iter().enumerate() {
            let plain = schedule::backoff(n as u32 + 1, RETRY_BASE_MS, 0);
            assert!((plain..=plain + plain / 10).contains(w), "{n}: {w}");
        }
        assert!(waits[4] > waits[0] * 8, "{waits:?}");
        let throttled = SourceError::throttle("429", Some(120_000));
        assert_eq!(retry_wait(&throttled, 1, 1), Some(120_000));
        assert_eq!(retry_wait(&throttled, 1, 3), Some(180_000));
        for e in [
            SourceError::auth("the site refused the token"),
            SourceError::fatal("no API"),
        ] {
            assert_eq!(retry_wait(&e, 1, 0), None, "{e}");
        }
    }

    /// An engine that answers each run with the next scripted result (then success).
    struct Scripted {
        results: Mutex<VecDeque<std::result::Result<Report, SyncError>>>,
        /// Asked for a manual run during the first run (as a POST then would).
        during_first: Mutex<Option<SyncService>>,
    }

    impl Runner for Scripted {
        async fn run(
            &self,
            _mode: Mode,
            watch: &dyn Watch,
        ) -> std::result::Result<Report, SyncError> {
            watch.state(State::Checking);
            let during = self.during_first.lock().unwrap().take();
            if let Some(service) = during {
                service.trigger(Trigger::Manual);
            }
            let r = self.results.lock().unwrap().pop_front();
            let r = r.unwrap_or_else(|| Ok(Report::default()));
            watch.state(if r.is_ok() {
                State::Complete
            } else {
                State::Error
            });
            r
        }

        fn label(&self) -> &str {
            "the test site"
        }
    }

    const T0: i64 = 1_800_000_000_000;

    struct Loop {
        service: SyncService,
        clock: Arc<ManualClock>,
        _dir: tempfile::TempDir,
    }

    impl Loop {
        fn start(results: Vec<std::result::Result<Report, SyncError>>) -> Loop {
            Loop::with(results, false)
        }

        fn with(
            results: Vec<std::result::Result<Report, SyncError>>,
            trigger_during: bool,
        ) -> Loop {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let site = RemoteSite {
                base: "http://127.0.0.1:9".into(),
                token: Some(Password::new("sync-secret-token".into())),
                api_secret: None,
            };
            let service = SyncService::new(SyncSettings::for_site(site, Mode::Both), store);
            let clock = ManualClock::new(T0);
            let engine = Scripted {
                results: Mutex::new(results.into()),
                during_first: Mutex::new(trigger_during.then(|| service.clone())),
            };
            let receiver = service.shared.receiver.lock().unwrap().take().unwrap();
            let c: Arc<dyn Clock> = clock.clone();
            actix_web::rt::spawn(service.clone().run_loop(engine, c, receiver));
            Loop {
                service,
                clock,
                _dir: dir,
            }
        }

        /// Waits (in real time, for the loop's task and the store's threads) for `runs`
        /// recorded runs and the loop asleep again; returns (outcomes newest first, state,
        /// next run).
        async fn after(&self, runs: usize) -> (Vec<String>, State, i64) {
            for _ in 0..2000 {
                let list = self.service.runs(100).await.unwrap();
                let (state, next, running) = {
                    let b = self.service.board();
                    (b.machine.state(), b.next_run, b.running)
                };
                let done = list.iter().all(|r| r.outcome.is_some());
                if list.len() == runs && done && running.is_none() {
                    if let Some(next) = next {
                        let outcomes = list.iter().filter_map(|r| r.outcome.clone()).collect();
                        return (outcomes, state, next);
                    }
                }
                actix_web::rt::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            panic!("the loop never recorded {runs} runs");
        }
    }

    #[actix_web::test]
    async fn an_unreachable_site_is_queued_and_retried_with_back_off_on_the_clock() {
        let refused = || Err(SourceError::transient("connection refused"));
        let l = Loop::start(vec![refused(), refused()]);
        let (outcomes, state, next) = l.after(1).await;
        assert_eq!(
            (outcomes, state),
            (vec!["queued".to_string()], State::Queued)
        );
        let first = next - T0;
        assert!((30_000..=33_000).contains(&first), "{first}");
        // Not before the back-off...
        l.clock.set(next - 1);
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(l.service.runs(10).await.unwrap().len(), 1);
        // ...then again, twice as late.
        l.clock.set(next);
        let (outcomes, state, next2) = l.after(2).await;
        assert_eq!((outcomes.len(), state), (2, State::Queued));
        assert!(
            (60_000..=66_000).contains(&(next2 - next)),
            "{}",
            next2 - next
        );
        assert_eq!(l.service.board().failures, 2);
        // The site is back: COMPLETE, then IDLE until the next interval.
        l.clock.set(next2);
        let (outcomes, state, next3) = l.after(3).await;
        assert_eq!(outcomes, ["complete", "queued", "queued"]);
        assert_eq!(state, State::Idle);
        assert_eq!(next3, next2 + 5 * 60_000);
        let runs = l.service.runs(10).await.unwrap();
        let triggers: Vec<&str> = runs.iter().map(|r| r.trigger.as_str()).collect();
        assert_eq!(triggers, ["retry", "retry", "start"]);
        assert_eq!(
            runs[1].error.as_deref(),
            Some("transient error: connection refused")
        );
    }

    #[actix_web::test]
    async fn a_refused_credential_waits_for_the_interval_and_a_trigger_runs_at_once() {
        let l = Loop::start(vec![Err(SourceError::auth("the site refused the token"))]);
        let (outcomes, state, next) = l.after(1).await;
        assert_eq!((outcomes, state), (vec!["error".to_string()], State::Error));
        assert_eq!(next, T0 + 5 * 60_000);
        let status = l.service.status().await.unwrap();
        assert_eq!(status["state"], "ERROR");
        assert_eq!(status["lastError"]["outcome"], "error");
        assert_eq!(status["lastSuccess"], Value::Null);
        assert!(
            !status.to_string().contains("sync-secret-token"),
            "{status}"
        );
        // A manual trigger does not wait for the interval.
        l.service.trigger(Trigger::Manual);
        let (outcomes, state, _) = l.after(2).await;
        assert_eq!((outcomes[0].as_str(), state), ("complete", State::Idle));
        assert_eq!(l.service.runs(1).await.unwrap()[0].trigger, "manual");
        let status = l.service.status().await.unwrap();
        assert_eq!(status["lastSuccess"], T0);
        assert_eq!(status["lastError"], Value::Null);
    }

    #[actix_web::test]
    async fn a_trigger_during_a_run_runs_again_right_after_it() {
        let l = Loop::with(vec![], true);
        let (outcomes, state, next) = l.after(2).await;
        assert_eq!((outcomes.len(), state), (2, State::Idle));
        let runs = l.service.runs(10).await.unwrap();
        let triggers: Vec<(&str, i64)> = runs
            .iter()
            .map(|r| (r.trigger.as_str(), r.started))
            .collect();
        assert_eq!(triggers, [("manual", T0), ("start", T0)]);
        assert_eq!(next, T0 + 5 * 60_000);
    }
}
