//! SYNC_*: two-way sync with another Nightscout-compatible site (src/sync/, docs/sync.md).

use super::bridges::RemoteSite;
use crate::store::Collection;

/// Which way a sync copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Download the site's changes, resolve conflicts, upload ours (SYNC_DIRECTION=both).
    Both,
    Upload,
    Download,
    /// Compare and report, change nothing (`nightlite sync --direction check` only).
    Check,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "both" => Some(Mode::Both),
            "upload" => Some(Mode::Upload),
            "download" => Some(Mode::Download),
            "check" => Some(Mode::Check),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Both => "both",
            Mode::Upload => "upload",
            Mode::Download => "download",
            Mode::Check => "check",
        }
    }

    pub fn uploads(self) -> bool {
        matches!(self, Mode::Both | Mode::Upload)
    }

    pub fn downloads(self) -> bool {
        matches!(self, Mode::Both | Mode::Download)
    }
}

/// How a document changed on both sides since the last sync is settled (SYNC_CONFLICT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The default: the newer change by its origin's modification time wins, a delete wins
    /// over an older edit, a started override or temporary target only ever gets shorter;
    /// the losing version is kept in the conflict log.
    Safe,
    LocalWins,
    RemoteWins,
    /// The newer change by its origin's modification time, nothing else considered.
    Newest,
    /// Both versions are held (neither side changes) until decided through the API.
    Manual,
}

impl Strategy {
    pub fn parse(s: &str) -> Option<Strategy> {
        match s {
            "safe" => Some(Strategy::Safe),
            "local-wins" => Some(Strategy::LocalWins),
            "remote-wins" => Some(Strategy::RemoteWins),
            "newest" => Some(Strategy::Newest),
            "manual" => Some(Strategy::Manual),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Safe => "safe",
            Strategy::LocalWins => "local-wins",
            Strategy::RemoteWins => "remote-wins",
            Strategy::Newest => "newest",
            Strategy::Manual => "manual",
        }
    }
}

/// The collections a sync copies, in the order it copies them.
pub const SYNC_COLLECTIONS: [Collection; 5] = [
    Collection::Entries,
    Collection::Treatments,
    Collection::DeviceStatus,
    Collection::Profile,
    Collection::Food,
];

/// The sync's settings (SYNC_URL and the rest), or those of a one-shot `nightlite sync`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncSettings {
    /// SYNC_URL with SYNC_TOKEN or SYNC_API_SECRET.
    pub site: RemoteSite,
    /// SYNC_DIRECTION (never Check for the service).
    pub mode: Mode,
    /// SYNC_INTERVAL_MINUTES: the periodic trigger.
    pub interval_minutes: u32,
    /// SYNC_COLLECTIONS, in [`SYNC_COLLECTIONS`] order.
    pub collections: Vec<Collection>,
    /// SYNC_CONFLICT.
    pub conflict: Strategy,
    /// SYNC_DEVICESTATUS_HOURS: how far back device statuses are copied at the first sync.
    pub devicestatus_hours: u32,
    /// SYNC_HISTORY_DAYS: how long runs are kept in the history.
    pub history_days: u32,
}

impl SyncSettings {
    /// One-shot settings for `site` with the defaults.
    pub fn for_site(site: RemoteSite, mode: Mode) -> SyncSettings {
        SyncSettings {
            site,
            mode,
            interval_minutes: 5,
            collections: SYNC_COLLECTIONS.to_vec(),
            conflict: Strategy::Safe,
            devicestatus_hours: 24,
            history_days: 30,
        }
    }

    /// The key the sync's cursors, known versions, conflicts and runs are kept under: the
    /// site's URL without credentials.
    pub fn remote_key(&self) -> &str {
        &self.site.base
    }
}
