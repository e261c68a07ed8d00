//! SYNC_*: two-way sync with another Nightscout-compatible site (src/sync/, docs/sync.md).

use super::bridges::{remote_site, RemoteSite};
use super::table::Reader;
use super::{invalid, ConfigError};
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

/// The SYNC_* settings: None when SYNC_URL is unset (the others are read, and so checked,
/// all the same).
pub(super) fn read(r: &Reader) -> Result<Option<SyncSettings>, ConfigError> {
    let url = r.given("SYNC_URL")?;
    let token = r.given("SYNC_TOKEN")?;
    let secret = r.given("SYNC_API_SECRET")?;
    let direction = r.text("SYNC_DIRECTION")?;
    let mode = Mode::parse(&direction)
        .filter(|m| *m != Mode::Check)
        .ok_or_else(|| invalid("SYNC_DIRECTION", format!("'{direction}' is not known")))?;
    let interval_minutes = r.count("SYNC_INTERVAL_MINUTES")?;
    let mut collections = Vec::new();
    for name in r.list("SYNC_COLLECTIONS")? {
        let c = SYNC_COLLECTIONS
            .into_iter()
            .find(|c| c.table().eq_ignore_ascii_case(&name))
            .ok_or_else(|| {
                let names: Vec<&str> = SYNC_COLLECTIONS.iter().map(|c| c.table()).collect();
                invalid(
                    "SYNC_COLLECTIONS",
                    format!("'{name}' is not one of {}", names.join(", ")),
                )
            })?;
        if !collections.contains(&c) {
            collections.push(c);
        }
    }
    collections.sort_by_key(|c| SYNC_COLLECTIONS.iter().position(|k| k == c));
    let conflict_name = r.text("SYNC_CONFLICT")?;
    let conflict = Strategy::parse(&conflict_name)
        .ok_or_else(|| invalid("SYNC_CONFLICT", format!("'{conflict_name}' is not known")))?;
    let devicestatus_hours = r.count("SYNC_DEVICESTATUS_HOURS")?;
    let history_days = r.count("SYNC_HISTORY_DAYS")?;
    let Some(url) = url else {
        return Ok(None);
    };
    let site = remote_site("SYNC_URL", &url, token, secret)?;
    if site.token.is_none() && site.api_secret.is_none() {
        return Err(invalid(
            "SYNC_TOKEN",
            "must be set for SYNC_URL (or a ?token= on it, or SYNC_API_SECRET)",
        ));
    }
    if collections.is_empty() {
        return Err(invalid("SYNC_COLLECTIONS", "names no collection"));
    }
    Ok(Some(SyncSettings {
        site,
        mode,
        interval_minutes,
        collections,
        conflict,
        devicestatus_hours,
        history_days,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::bridges::tests::config;
    use super::*;

    fn error(pairs: &[(&str, &str)]) -> String {
        config(pairs).unwrap_err().to_string()
    }

    const URL: (&str, &str) = ("SYNC_URL", "https://cloud.example.org/?token=sync-123");

    #[test]
    fn no_sync_without_a_url_and_the_defaults_with_one() {
        assert_eq!(config(&[]).unwrap().sync, None);
        let s = config(&[URL]).unwrap().sync.unwrap();
        assert_eq!(s.site.base, "https://cloud.example.org");
        assert_eq!(s.remote_key(), "https://cloud.example.org");
        assert_eq!(s.site.token.as_ref().map(|t| t.reveal()), Some("sync-123"));
        assert_eq!(s, {
            let mut d = SyncSettings::for_site(s.site.clone(), Mode::Both);
            d.collections = SYNC_COLLECTIONS.to_vec();
            d
        });
    }

    #[test]
    fn every_setting_is_read_and_checked() {
        let s = config(&[
            ("SYNC_URL", "http://pi.local:1337"),
            ("SYNC_API_SECRET", "a long secret phrase"),
            ("SYNC_DIRECTION", "Upload"),
            ("SYNC_INTERVAL_MINUTES", "15"),
            ("SYNC_COLLECTIONS", "food, entries treatments entries"),
            ("SYNC_CONFLICT", "manual"),
            ("SYNC_DEVICESTATUS_HOURS", "6"),
            ("SYNC_HISTORY_DAYS", "7"),
        ])
        .unwrap()
        .sync
        .unwrap();
        assert_eq!(s.mode, Mode::Upload);
        assert_eq!(s.interval_minutes, 15);
        assert_eq!(
            s.collections,
            [
                Collection::Entries,
                Collection::Treatments,
                Collection::Food
            ]
        );
        assert_eq!(s.conflict, Strategy::Manual);
        assert_eq!((s.devicestatus_hours, s.history_days), (6, 7));
        assert!(s.site.token.is_none());
        assert!(s.site.api_secret.is_some());
    }

    #[test]
    fn bad_values_are_refused_naming_the_setting() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("SYNC_URL", "https://cloud.example.org")],
                "SYNC_TOKEN: must be set",
            ),
            (
                &[("SYNC_URL", "ftp://x.example"), ("SYNC_TOKEN", "t")],
                "SYNC_URL: must be",
            ),
            (
                &[URL, ("SYNC_DIRECTION", "check")],
                "SYNC_DIRECTION: 'check' is not both",
            ),
            (&[URL, ("SYNC_DIRECTION", "sideways")], "SYNC_DIRECTION:"),
            (
                &[URL, ("SYNC_INTERVAL_MINUTES", "0")],
                "SYNC_INTERVAL_MINUTES:",
            ),
            (
                &[URL, ("SYNC_COLLECTIONS", "entries settings")],
                "SYNC_COLLECTIONS: 'settings'",
            ),
            (
                &[URL, ("SYNC_COLLECTIONS", ",")],
                "SYNC_COLLECTIONS: names no",
            ),
            (&[URL, ("SYNC_CONFLICT", "mine")], "SYNC_CONFLICT:"),
            (
                &[URL, ("SYNC_DEVICESTATUS_HOURS", "0")],
                "SYNC_DEVICESTATUS_HOURS:",
            ),
            (&[URL, ("SYNC_HISTORY_DAYS", "x")], "SYNC_HISTORY_DAYS:"),
            // Checked even while SYNC_URL is unset.
            (&[("SYNC_CONFLICT", "mine")], "SYNC_CONFLICT:"),
        ];
        for (pairs, start) in cases {
            let e = error(pairs);
            assert!(e.starts_with(start), "{pairs:?}: {e}");
            assert!(!e.contains("sync-123"), "{e}");
        }
    }
}
