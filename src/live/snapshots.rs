//! Shared first `dataUpdate` snapshots. A client that authorizes gets the full state of the
//! last hours (1,440 sgvs and more for a day of readings); building it per client made N
//! clients connecting together build N multi-megabyte `serde_json` trees at once, which left
//! the allocator's heap fragmented and the server's RSS at several MB per client
//! (docs/PERFORMANCE.md, "WebSocket clients and memory"). Here a snapshot is built once per
//! (history window, readable collections), serialised once, and handed to every client that
//! asks for the same thing while it is still valid, as a shared [`Bytes`] (clones are reference
//! counts; so are the plain-WebSocket frames built from it).
//!
//! # Why a shared snapshot never loses a change
//!
//! A session subscribes to the change bus *before* it asks for its snapshot, and the snapshot
//! is read after that, so every commit that the snapshot's read did not see is published after
//! the session subscribed and reaches it as a delta. A shared snapshot keeps that property in
//! one of two ways; it is handed to a session only if one of them holds.
//!
//! 1. **Built after the session subscribed.** Sessions and builds take tickets from one atomic
//!    counter ([`Snapshots::ticket`]): a session right after it subscribed, a build before it
//!    starts (before its read). A build whose ticket is greater than the session's started its
//!    read after the session subscribed (the counter's read-modify-writes order them), which
//!    is the original argument. This holds whatever is committed meanwhile, so clients that
//!    connect together while data keeps arriving still share one build.
//! 2. **Nothing published since the build began.** A build also subscribes a `probe` receiver
//!    to the bus before its read, and never reads from it. An older build may be handed to a
//!    session only if, at a moment *after* the session subscribed (when the session collects
//!    the result), the probe is still empty. A commit the read did not see committed after the
//!    read began, so it was published after the probe subscribed; the probe being empty at the
//!    check means nothing was published between its subscription and that moment; so that
//!    commit is published after the check, hence after the session subscribed, and reaches
//!    the session as a delta. (A commit the read did see may also fail the check; the session
//!    then waits for a new build. A lagged receiver is not empty either.) The check is made
//!    under the cache's lock on the very entry that built the result (same ticket); an entry
//!    replaced or dropped meanwhile counts as failed.
//!
//! Stale entries do not linger: each build also has a watcher task with a second receiver
//! subscribed at the same moment as the probe, which removes the entry at the first publish
//! (or after [`MAX_AGE`]), so the never-read probe keeps change sets alive in the bus only
//! until that task runs.
//!
//! # Who sees what
//!
//! The key holds the exact set of collections the snapshot contains, computed from the
//! session's own permissions ([`ddata::readable`]); a session only ever gets a snapshot built
//! for exactly its readable set, so a client never receives a collection it may not read. The
//! key also holds the exact history window asked for. A shared snapshot's window ends when it
//! was built (at most [`MAX_AGE`] ago, with nothing committed since): it may reach a little
//! further back than a fresh one would, never less far.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use serde_json::Value;
use tokio::sync::{broadcast, watch};

use super::{ddata, wsproto};
use crate::error::Result;
use crate::store::changes::ChangeSet;
use crate::store::{Collection, Store};

/// How long a snapshot may be shared when nothing is committed (its window slides with time).
pub const MAX_AGE: Duration = Duration::from_secs(30);

/// One built snapshot, shared by every client that gets it.
pub struct Snapshot {
    /// `{"delta":false,"lastUpdated":...,"sgvs":[...],...}` as JSON text.
    json: String,
    /// The plain-WebSocket `dataUpdate` frame, uncompressed and compressed, built on first use.
    ws_frames: [OnceLock<Bytes>; 2],
}

impl Snapshot {
    fn new(msg: serde_json::Map<String, Value>) -> Snapshot {
        Snapshot {
            json: Value::Object(msg).to_string(),
            ws_frames: [OnceLock::new(), OnceLock::new()],
        }
    }

    /// The snapshot object as JSON text (for Socket.IO's `dataUpdate` event).
    pub fn json(&self) -> &str {
        &self.json
    }

    /// The whole `{"type":"dataUpdate",...}` WebSocket frame, compressed when `deflate`.
    pub fn ws_frame(&self, deflate: bool) -> Bytes {
        self.ws_frames[usize::from(deflate)]
            .get_or_init(|| {
                let body = self.json();
                let mut text = String::with_capacity(body.len() + 24);
                text.push_str(r#"{"type":"dataUpdate""#);
                // `body` is a non-empty object: `{` then either `}` or its first member.
                let rest = body.get(1..).unwrap_or("}");
                if !rest.starts_with('}') {
                    text.push(',');
                }
                text.push_str(rest);
                Bytes::from(wsproto::text_frame(&text, deflate))
            })
            .clone()
    }
}

/// Snapshots kept at most (each different window and readable set is one).
const MAX_ENTRIES: usize = 8;

/// Shared builds tried before a client reads its own snapshot (see [`Snapshots::get`]).
const ATTEMPTS: usize = 2;

/// The readable collections (as [`readable_bits`]) and the history window (its f64 bits).
type Key = (u8, u64);

type Bus = broadcast::Receiver<Arc<ChangeSet>>;

/// A build, finished or under way.
struct Entry {
    /// Taken before the build's read (see the module documentation).
    ticket: u64,
    built: Instant,
    /// Subscribed before the build's read; never read. Empty: nothing published since.
    probe: Bus,
    /// None while building; then the snapshot, or None when the build failed.
    result: watch::Receiver<Option<Option<Arc<Snapshot>>>>,
}

impl Entry {
    /// Nothing published since the build began, and not too old.
    fn fresh(&self) -> bool {
        self.probe.is_empty() && self.built.elapsed() < MAX_AGE
    }

    /// May be handed to a session holding `ticket` (rule 1 or, for now, rule 2).
    fn usable_for(&self, ticket: u64) -> bool {
        self.ticket > ticket || self.fresh()
    }
}

#[derive(Default)]
pub struct Snapshots {
    entries: Arc<Mutex<HashMap<Key, Entry>>>,
    tickets: AtomicU64,
}

fn key(readable: &[Collection], hours: f64) -> Key {
    (readable_bits(|c| readable.contains(&c)), hours.to_bits())
}

impl Snapshots {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session's ticket, to be taken right after it subscribed to the store's bus and
    /// passed to [`Snapshots::get`].
    pub fn ticket(&self) -> u64 {
        self.tickets.fetch_add(1, Ordering::SeqCst)
    }

    /// The snapshot of `readable` for the last `hours`, for a session that subscribed to the
    /// store's bus and then took `ticket` (see the module documentation).
    pub async fn get(
        &self,
        store: &Store,
        readable: Vec<Collection>,
        hours: f64,
        ticket: u64,
    ) -> Result<Arc<Snapshot>> {
        let key = key(&readable, hours);
        // The second attempt always finds or starts a build newer than the ticket (rule 1),
        // so it fails only if that build fails; then the session reads its own.
        for _ in 0..ATTEMPTS {
            let (id, result) = {
                let mut entries = self.lock();
                match entries.get(&key) {
                    Some(e) if e.usable_for(ticket) => (e.ticket, e.result.clone()),
                    _ => {
                        entries.retain(|_, e| e.fresh());
                        if entries.len() >= MAX_ENTRIES {
                            // Many different windows asked for at once: do not keep them all.
                            break;
                        }
                        let e = self.start(store, readable.clone(), hours, key);
                        let out = (e.ticket, e.result.clone());
                        entries.insert(key, e);
                        out
                    }
                }
            };
            let built = Self::wait(result).await;
            // Rule 2 is checked now, after the session subscribed.
            let valid = id > ticket
                || self
                    .lock()
                    .get(&key)
                    .is_some_and(|e| e.ticket == id && e.probe.is_empty());
            match (valid, built) {
                (true, Some(snap)) => return Ok(snap),
                (_, None) => break,
                (false, Some(_)) => {}
            }
        }
        // The shared build failed (or too many different ones at once): read our own, after
        // our subscription, as without the cache.
        let msg = ddata::snapshot(store, readable, hours).await?;
        Ok(Arc::new(Snapshot::new(msg)))
    }

    async fn wait(
        mut result: watch::Receiver<Option<Option<Arc<Snapshot>>>>,
    ) -> Option<Arc<Snapshot>> {
        match result.wait_for(Option::is_some).await {
            Ok(built) => built.clone().flatten(),
            // The build task ended without a result (it panicked).
            Err(_) => None,
        }
    }

    /// Subscribes the entry's receivers, then spawns the build and its watcher.
    fn start(&self, store: &Store, readable: Vec<Collection>, hours: f64, key: Key) -> Entry {
        // The ticket and both receivers exist before the build (and so its read) starts.
        let id = self.ticket();
        let probe = store.subscribe();
        let mut watcher = store.subscribe();
        let build_store = store.clone();
        let (done, result) = watch::channel(None);
        actix_web::rt::spawn(async move {
            let built = match ddata::snapshot(&build_store, readable, hours).await {
                Ok(msg) => {
                    let snap = Snapshot::new(msg);
                    tracing::debug!(bytes = snap.json.len(), "built a shared snapshot");
                    Some(Arc::new(snap))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "building a shared snapshot failed");
                    None
                }
            };
            done.send_replace(Some(built));
        });
        let entries = Arc::downgrade(&self.entries);
        actix_web::rt::spawn(async move {
            tokio::select! {
                _ = watcher.recv() => {}
                _ = actix_web::rt::time::sleep(MAX_AGE) => {}
            }
            if let Some(entries) = entries.upgrade() {
                let mut entries = entries.lock().unwrap_or_else(|p| p.into_inner());
                if entries.get(&key).is_some_and(|e| e.ticket == id) {
                    entries.remove(&key);
                }
            }
        });
        Entry {
            ticket: id,
            built: Instant::now(),
            probe,
            result,
        }
    }
}

/// The `dataUpdate` delta frames of the last few commits, shared like snapshots: every session
/// that may read the same collections sends the same delta, so it is serialised (and
/// compressed) once per commit instead of once per client. A delta depends only on the change
/// set and the readable collections, so sharing it cannot show a client anything another
/// permission set would; its `lastUpdated` is when the first session built it.
#[derive(Default)]
pub struct SharedDeltas {
    /// The most recent change sets (kept alive here so pointer identity is unambiguous) with
    /// their frames by (readable collections, deflate); None when nothing is visible.
    recent: Mutex<Vec<DeltaFrames>>,
}

type DeltaFrames = (Arc<ChangeSet>, HashMap<(u8, bool), Option<Bytes>>);

/// Change sets remembered (sessions a little behind the others still find theirs).
const RECENT_SETS: usize = 4;

impl SharedDeltas {
    /// The frame for `set` as seen by a session whose readable collections are `readable`
    /// (a bit set over [`Collection::ALL`]), built by `build` the first time it is asked for.
    pub fn frame(
        &self,
        set: &Arc<ChangeSet>,
        readable: u8,
        deflate: bool,
        build: impl FnOnce() -> Option<Bytes>,
    ) -> Option<Bytes> {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let at = match recent.iter().position(|(s, _)| Arc::ptr_eq(s, set)) {
            Some(at) => at,
            None => {
                if recent.len() >= RECENT_SETS {
                    recent.remove(0);
                }
                recent.push((set.clone(), HashMap::new()));
                recent.len() - 1
            }
        };
        // Built under the lock: the others asking for the same frame wait for it rather than
        // build their own copy.
        recent[at]
            .1
            .entry((readable, deflate))
            .or_insert_with(build)
            .clone()
    }
}

/// `readable` as a bit set over [`Collection::ALL`] (for [`SharedDeltas::frame`]).
pub fn readable_bits(can_read: impl Fn(Collection) -> bool) -> u8 {
    Collection::ALL
        .iter()
        .enumerate()
        .filter(|(_, c)| can_read(**c))
        .fold(0, |bits, (i, _)| bits | (1 << i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The payload of an unmasked, uncompressed server frame.
    fn payload(frame: &[u8]) -> &[u8] {
        match frame[1] & 0x7F {
            126 => &frame[4..],
            127 => &frame[10..],
            _ => &frame[2..],
        }
    }

    fn ws_message(msg: Value) -> Value {
        let Value::Object(map) = msg else {
            panic!("an object")
        };
        let frame = Snapshot::new(map).ws_frame(false);
        assert_eq!(frame[0], 0x81, "a whole text frame");
        serde_json::from_slice(payload(&frame)).expect("JSON")
    }

    #[test]
    fn the_websocket_frame_is_the_snapshot_with_its_type() {
        let sgvs: Vec<Value> = (0..100).map(|i| json!({ "mgdl": i })).collect();
        let got = ws_message(json!({ "delta": false, "lastUpdated": 5, "sgvs": sgvs }));
        assert_eq!(
            got,
            json!({ "type": "dataUpdate", "delta": false, "lastUpdated": 5, "sgvs": sgvs })
        );
        assert_eq!(ws_message(json!({})), json!({ "type": "dataUpdate" }));
    }

    #[test]
    fn keys_tell_readable_sets_and_windows_apart() {
        let readable = ddata::readable(|_| true);
        let all = key(&readable, 24.0);
        assert_ne!(all, key(&[Collection::Entries], 24.0));
        assert_ne!(all, key(&readable, 48.0));
        assert_eq!(
            key(&[Collection::Treatments, Collection::Entries], 3.0),
            key(&[Collection::Entries, Collection::Treatments], 3.0)
        );
    }

    #[test]
    fn a_delta_frame_is_built_once_per_commit_and_readable_set() {
        let shared = SharedDeltas::default();
        let set = Arc::new(ChangeSet::default());
        let built = std::cell::Cell::new(0);
        let build = |text: &'static str| {
            built.set(built.get() + 1);
            Some(Bytes::from_static(text.as_bytes()))
        };
        let everything = readable_bits(|_| true);
        let entries = readable_bits(|c| c == Collection::Entries);
        assert_ne!(everything, entries);
        let a = shared.frame(&set, everything, false, || build("all"));
        let b = shared.frame(&set, everything, false, || build("again"));
        assert_eq!(
            (a.as_deref(), b.as_deref()),
            (Some(&b"all"[..]), Some(&b"all"[..]))
        );
        let c = shared.frame(&set, entries, false, || build("entries"));
        assert_eq!(c.as_deref(), Some(&b"entries"[..]));
        let d = shared.frame(&set, everything, true, || build("deflated"));
        assert_eq!(d.as_deref(), Some(&b"deflated"[..]));
        // Another commit is another frame.
        let other = Arc::new(ChangeSet::default());
        let e = shared.frame(&other, everything, false, || build("other"));
        assert_eq!(e.as_deref(), Some(&b"other"[..]));
        assert_eq!(built.get(), 4);
        // Nothing visible is remembered too.
        assert!(shared.frame(&other, entries, false, || None).is_none());
        assert!(shared
            .frame(&other, entries, false, || build("not asked"))
            .is_none());
    }
}
