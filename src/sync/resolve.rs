//! Settling a conflict: a document changed on both sides since the last sync (docs/sync.md
//! "Conflicts"). Which version is kept follows SYNC_CONFLICT; the other stays in the conflict
//! log (sync_conflicts), so no version is ever lost.

use serde_json::{Map, Value};

use super::content;
use crate::config::sync::Strategy;

/// One side's version.
#[derive(Debug, Clone)]
pub struct Side {
    pub doc: Map<String, Value>,
    pub valid: bool,
    /// Its modification time on its own server (srvModified); None when the site shows none.
    pub modified: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    Local,
    Remote,
}

impl Keep {
    pub fn name(self) -> &'static str {
        match self {
            Keep::Local => "local",
            Keep::Remote => "remote",
        }
    }

    pub fn parse(s: &str) -> Option<Keep> {
        match s {
            "local" => Some(Keep::Local),
            "remote" => Some(Keep::Remote),
            _ => None,
        }
    }
}

/// Which version `strategy` keeps, and why; None when it is held for a decision (manual).
pub fn decide(
    strategy: Strategy,
    local: &Side,
    remote: &Side,
    now: i64,
) -> Option<(Keep, &'static str)> {
    match strategy {
        Strategy::Manual => None,
        Strategy::LocalWins => Some((Keep::Local, "local-wins")),
        Strategy::RemoteWins => Some((Keep::Remote, "remote-wins")),
        Strategy::Newest => Some(newest(local, remote)),
        Strategy::Safe => Some(safe(local, remote, now)),
    }
}

/// The newer change by its origin's modification time; when the site shows none, or both
/// are the same, the local version (the site's is in the log).
fn newest(local: &Side, remote: &Side) -> (Keep, &'static str) {
    match (local.modified, remote.modified) {
        (Some(l), Some(r)) if r > l => (Keep::Remote, "the site's change is newer"),
        (Some(l), Some(r)) if l > r => (Keep::Local, "the change here is newer"),
        _ => (
            Keep::Local,
            "no newer change can be told: the version here is kept",
        ),
    }
}

/// The default rules, in order: a started override or temporary target only gets shorter; a
/// delete wins over an older edit; else the newer change.
fn safe(local: &Side, remote: &Side, now: i64) -> (Keep, &'static str) {
    if local.valid && remote.valid {
        if let Some(k) = shorter(local, remote, now) {
            return (
                k,
                "a started override or temporary target only gets shorter",
            );
        }
    }
    match (local.valid, remote.valid) {
        (false, true) => {
            if matches!((local.modified, remote.modified), (Some(l), Some(r)) if r > l) {
                (
                    Keep::Remote,
                    "the site's edit is newer than the delete here",
                )
            } else {
                (Keep::Local, "a delete wins over an older edit")
            }
        }
        (true, false) => {
            if matches!((local.modified, remote.modified), (Some(l), Some(r)) if l > r) {
                (Keep::Local, "the edit here is newer than the site's delete")
            } else {
                (Keep::Remote, "a delete wins over an older edit")
            }
        }
        _ => newest(local, remote),
    }
}

/// For an override or temporary target that has started, the version with the shorter
/// duration (one that runs until cancelled is the longest).
fn shorter(local: &Side, remote: &Side, now: i64) -> Option<Keep> {
    let (l, r) = (&local.doc, &remote.doc);
    if !(content::is_timed_adjustment(l) && content::is_timed_adjustment(r)) {
        return None;
    }
    let started = content::start_ms(l).or_else(|| content::start_ms(r))? <= now;
    if !started {
        return None;
    }
    let len = |d| content::duration_minutes(d).unwrap_or(f64::INFINITY);
    let (ll, rl) = (len(l), len(r));
    if ll < rl {
        Some(Keep::Local)
    } else if rl < ll {
        Some(Keep::Remote)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn side(doc: Value, valid: bool, modified: Option<i64>) -> Side {
        let Value::Object(doc) = doc else { panic!() };
        Side {
            doc,
            valid,
            modified,
        }
    }

    #[test]
    fn each_strategy_keeps_what_it_says() {
        let l = side(json!({"carbs": 10}), true, Some(200));
        let r = side(json!({"carbs": 12}), true, Some(100));
        let d = |s| decide(s, &l, &r, 0).map(|(k, _)| k);
        assert_eq!(d(Strategy::LocalWins), Some(Keep::Local));
        assert_eq!(d(Strategy::RemoteWins), Some(Keep::Remote));
        assert_eq!(d(Strategy::Newest), Some(Keep::Local));
        assert_eq!(d(Strategy::Safe), Some(Keep::Local));
        assert_eq!(d(Strategy::Manual), None);
        let r2 = side(json!({"carbs": 12}), true, Some(300));
        assert_eq!(
            decide(Strategy::Newest, &l, &r2, 0).unwrap().0,
            Keep::Remote
        );
        // No time on the site's side: the version here, the other logged.
        let r3 = side(json!({"carbs": 12}), true, None);
        assert_eq!(decide(Strategy::Safe, &l, &r3, 0).unwrap().0, Keep::Local);
    }

    #[test]
    fn a_delete_wins_over_an_older_edit_and_loses_to_a_newer_one() {
        let edit = side(json!({"carbs": 10}), true, Some(200));
        let old_delete = side(json!({"carbs": 9}), false, Some(100));
        let new_delete = side(json!({"carbs": 9}), false, Some(300));
        let k = |l: &Side, r: &Side| decide(Strategy::Safe, l, r, 0).unwrap();
        assert_eq!(k(&edit, &new_delete).0, Keep::Remote);
        assert_eq!(k(&new_delete, &edit).0, Keep::Local);
        assert_eq!(k(&edit, &old_delete).0, Keep::Local);
        assert_eq!(k(&old_delete, &edit).0, Keep::Remote);
        // Newest alone would keep the newer edit too; with no time the delete wins.
        let untimed_edit = side(json!({"carbs": 10}), true, None);
        assert_eq!(k(&new_delete, &untimed_edit).0, Keep::Local);
        assert_eq!(
            decide(Strategy::Newest, &untimed_edit, &new_delete, 0)
                .unwrap()
                .0,
            Keep::Local
        );
    }

    #[test]
    fn a_started_override_only_gets_shorter() {
        let at = "2026-12-07T10:00:00Z";
        // An hour after its start: started.
        let now = crate::dates::parse_iso(at).unwrap().ms + 3_600_000;
        let cancelled = side(
            json!({"eventType": "Temporary Override", "created_at": at, "duration": 20}),
            true,
            Some(100),
        );
        let longer = side(
            json!({"eventType": "Temporary Override", "created_at": at, "duration": 60}),
            true,
            Some(999),
        );
        // The longer one is the newer change, and still loses.
        assert_eq!(
            decide(Strategy::Safe, &cancelled, &longer, now).unwrap(),
            (
                Keep::Local,
                "a started override or temporary target only gets shorter"
            )
        );
        assert_eq!(
            decide(Strategy::Safe, &longer, &cancelled, now).unwrap().0,
            Keep::Remote
        );
        let indefinite = side(
            json!({"eventType": "Temporary Override", "created_at": at, "durationType": "indefinite"}),
            true,
            Some(999),
        );
        assert_eq!(
            decide(Strategy::Safe, &cancelled, &indefinite, now)
                .unwrap()
                .0,
            Keep::Local
        );
        // Not started yet: the newer change.
        assert_eq!(
            decide(Strategy::Safe, &cancelled, &longer, 0).unwrap().0,
            Keep::Remote
        );
        // Newest does not apply the rule.
        assert_eq!(
            decide(Strategy::Newest, &cancelled, &longer, now)
                .unwrap()
                .0,
            Keep::Remote
        );
    }
}
