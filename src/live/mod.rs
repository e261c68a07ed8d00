//! The live layer: the change bus (published by the store's writer), alarms, and the plain
//! WebSocket protocol that followers and the viewer use.

pub(crate) mod alarms;
pub(crate) mod body;
pub(crate) mod ddata;
pub(crate) mod snapshots;
pub mod socketio;
pub(crate) mod ws;
pub(crate) mod wsproto;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::rt::time::{sleep_until, Instant};

use serde_json::Value;
use tokio::sync::broadcast;

use crate::dates::now_ms;
use crate::store::changes::{ChangeSet, Op};
use crate::store::{Collection, Store};
use alarms::{Engine, Notify, Reading};

/// The bolus wizard preview is computed at most this often after writes: Nightscout reloads
/// its data, and so evaluates the plugins' notifications, at most once a second while writes
/// arrive (lib/server/bootevent.js: a 1 s debounce, leading and trailing edge). Each
/// computation reads and computes every property (docs/PERFORMANCE.md).
const BWP_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Events beyond data changes (alarms, announcements) for every connected client.
pub type Events = broadcast::Sender<Arc<Notify>>;

pub struct Live {
    pub events: Events,
    /// Becomes true when the server stops, so sockets close (1001) instead of hanging on.
    stopping: tokio::sync::watch::Sender<bool>,
    engine: Mutex<Engine>,
    latest: Mutex<Option<Reading>>,
    /// The alarm sounding now (the last `alarm`/`urgent_alarm` not yet cleared), sent to a
    /// client as it authorizes so a freshly opened page shows it at once.
    current: Mutex<Option<Arc<Notify>>>,
    /// First `dataUpdate` snapshots shared between clients (see [`snapshots`]).
    pub snapshots: snapshots::Snapshots,
    /// Delta frames shared between WebSocket clients (see [`snapshots::SharedDeltas`]).
    pub deltas: snapshots::SharedDeltas,
    /// /ws and Socket.IO sessions not (yet) authorized with a token or the secret
    /// (NIGHTLITE_MAX_UNAUTHENTICATED_SOCKETS): each holds a slot until it is.
    pub unauthenticated: crate::connlimits::Counter,
}

/// The answer to a new socket over NIGHTLITE_MAX_UNAUTHENTICATED_SOCKETS.
pub fn too_many_sockets() -> actix_web::HttpResponse {
    actix_web::HttpResponse::ServiceUnavailable().json(serde_json::json!({
        "status": 503,
        "message": "too many unauthenticated live connections; retry later",
    }))
}

impl Live {
    pub fn new(config: &crate::Config) -> Live {
        Live {
            events: broadcast::channel(64).0,
            stopping: tokio::sync::watch::channel(false).0,
            engine: Mutex::new(Engine::new(config)),
            latest: Mutex::new(None),
            current: Mutex::new(None),
            snapshots: snapshots::Snapshots::default(),
            deltas: snapshots::SharedDeltas::default(),
            unauthenticated: crate::connlimits::Counter::new(
                config.connections.max_unauthenticated_sockets,
            ),
        }
    }

    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Tells every socket the server is stopping.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    fn emit(&self, notes: Vec<Notify>) {
        for n in notes {
            tracing::info!(event = n.event, title = %n.payload["title"], "alarm");
            let n = Arc::new(n);
            match n.event {
                "alarm" | "urgent_alarm" => {
                    *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&n))
                }
                "clear_alarm" => *self.current.lock().unwrap_or_else(|p| p.into_inner()) = None,
                _ => {}
            }
            let _ = self.events.send(n);
        }
    }

    /// The alarm sounding now, if any.
    pub fn current_alarm(&self) -> Option<Arc<Notify>> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn evaluate(&self) {
        let latest = *self.latest.lock().unwrap_or_else(|p| p.into_inner());
        let notes = self
            .engine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .evaluate(latest, now_ms());
        self.emit(notes);
    }

    /// A user's acknowledgement (HTTP or WebSocket).
    pub fn ack(&self, level: u8, group: &str, silence_ms: Option<i64>) {
        let notes = self.engine.lock().unwrap_or_else(|p| p.into_inner()).ack(
            level,
            group,
            silence_ms,
            now_ms(),
        );
        self.emit(notes);
    }

    /// Follows a commit: the newest reading for the alarms, announcements as they come.
    fn follow(&self, set: &ChangeSet) -> bool {
        // Too much changed to be sent: read the newest reading again.
        let mut reload = set.overflow;
        let mut announcements = vec![];
        let mut latest = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        let mut backfilled = false;
        for c in &set.changes {
            let Some(d) = &c.doc else {
                reload |= c.collection == Collection::Entries;
                continue;
            };
            match c.collection {
                Collection::Entries if c.op == Op::Delete => reload = true,
                Collection::Entries if ddata::list_name(c.collection, &d.doc) == Some("sgvs") => {
                    if let Some(mgdl) = d.doc.get("sgv").and_then(ddata::number) {
                        // A reading from the CGM's last 5-minute interval is current, not backfill.
                        backfilled |= c.op == Op::Insert && d.mills < now - 6 * 60_000;
                        if latest.is_none_or(|l| d.mills >= l.mills) {
                            *latest = Some(Reading {
                                mgdl,
                                mills: d.mills,
                            });
                        }
                    }
                }
                Collection::Treatments
                    if c.op == Op::Insert
                        && d.doc.get("eventType").and_then(Value::as_str)
                            == Some("Announcement") =>
                {
                    announcements.push(alarms::announcement(&d.doc, now_ms()));
                }
                _ => {}
            }
        }
        drop(latest);
        if backfilled {
            self.engine
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .backfilled(now);
        }
        self.emit(announcements);
        reload
    }

    /// The bolus wizard preview's notice for the next evaluation: the properties are computed
    /// from the store only while the newest reading is current (BWP needs one), with `bwp`
    /// not in DISABLE.
    async fn refresh_bwp(&self, store: &Store, config: &Arc<crate::Config>) {
        let now = now_ms();
        let latest = *self.latest.lock().unwrap_or_else(|p| p.into_inner());
        let current = latest.is_some_and(|r| crate::plugins::bwp::is_current(r.mgdl, r.mills, now));
        let notice = if current && crate::plugins::registry::enabled(config, "bwp") {
            let config = Arc::clone(config);
            let path = store.path().to_path_buf();
            let read = store
                .read(move |conn| {
                    crate::plugins::current::read_with_notice(conn, &config, &path, now)
                })
                .await;
            match read {
                Ok((_, notice)) => notice,
                Err(e) => {
                    tracing::warn!(error = %e, "computing the bolus wizard preview failed");
                    None
                }
            }
        } else {
            None
        };
        self.engine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set_bwp(notice);
    }

    async fn reload_latest(&self, store: &Store) {
        match store.read(crate::store::latest_sgv).await {
            Ok(r) => {
                *self.latest.lock().unwrap_or_else(|p| p.into_inner()) =
                    r.map(|(mgdl, mills)| Reading { mgdl, mills });
            }
            Err(e) => tracing::warn!(error = %e, "reading the latest sgv failed"),
        }
    }

    /// Runs the alarm evaluation for the life of the server: on every commit and on a timer
    /// (so data going stale alarms without new data).
    pub async fn run(self: Arc<Self>, store: Store, config: crate::Config) {
        let config = Arc::new(config);
        let mut bus = store.subscribe();
        self.reload_latest(&store).await;
        self.refresh_bwp(&store, &config).await;
        self.evaluate();
        let warn_ms = (config.alarms.timeago_warn_mins * 60_000.0) as u64;
        let tick = Duration::from_millis((warn_ms / 4).clamp(200, 30_000));
        let mut timer = actix_web::rt::time::interval(tick);
        let mut last_bwp = Instant::now();
        // Commits arrived since the last computation, which was too recent to run again.
        let mut bwp_due = false;
        loop {
            tokio::select! {
                msg = bus.recv() => match msg {
                    Ok(set) => {
                        if self.follow(&set) {
                            self.reload_latest(&store).await;
                        }
                        // A burst of commits: the preview is computed once it is read, at
                        // most once per BWP_MIN_INTERVAL (else when that has passed).
                        if bus.is_empty() {
                            if last_bwp.elapsed() >= BWP_MIN_INTERVAL {
                                self.refresh_bwp(&store, &config).await;
                                last_bwp = Instant::now();
                                bwp_due = false;
                            } else {
                                bwp_due = true;
                            }
                        }
                        self.evaluate();
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.reload_latest(&store).await;
                        bwp_due = true;
                        self.evaluate();
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = sleep_until(last_bwp + BWP_MIN_INTERVAL), if bwp_due => {
                    self.refresh_bwp(&store, &config).await;
                    last_bwp = Instant::now();
                    bwp_due = false;
                    self.evaluate();
                }
                _ = timer.tick() => {
                    self.refresh_bwp(&store, &config).await;
                    last_bwp = Instant::now();
                    bwp_due = false;
                    self.evaluate();
                }
            }
        }
    }
}
