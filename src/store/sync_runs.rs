//! The sync service's history and what its status shows (migrations/006-sync.sql,
//! docs/sync.md): one row per run in sync_runs, kept SYNC_HISTORY_DAYS; the conflict log
//! read and a held conflict decided. The engine's own tables are in sync.rs.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::error::Result;

/// What a finished run did, as sync_runs records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunTotals {
    pub uploaded: u64,
    pub downloaded: u64,
    pub conflicts: u64,
    pub refused: u64,
}

/// One row of sync_runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub id: i64,
    pub trigger: String,
    pub direction: String,
    pub started: i64,
    pub finished: Option<i64>,
    /// `complete`, `error`, `queued` (failed, tried again after a back-off); None while running.
    pub outcome: Option<String>,
    pub counts: RunTotals,
    pub error: Option<String>,
    /// The engine's report (per collection counts, integrity) as JSON.
    pub detail: Option<serde_json::Value>,
}

fn count(r: &Row, i: usize) -> rusqlite::Result<u64> {
    Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0))
}

const RUN_COLUMNS: &str = "id, trigger, direction, started_at, finished_at, outcome, uploaded, \
                           downloaded, conflicts, refused, error, detail";

fn run_of(r: &Row) -> rusqlite::Result<Run> {
    let detail: Option<String> = r.get(11)?;
    Ok(Run {
        id: r.get(0)?,
        trigger: r.get(1)?,
        direction: r.get(2)?,
        started: r.get(3)?,
        finished: r.get(4)?,
        outcome: r.get(5)?,
        counts: RunTotals {
            uploaded: count(r, 6)?,
            downloaded: count(r, 7)?,
            conflicts: count(r, 8)?,
            refused: count(r, 9)?,
        },
        error: r.get(10)?,
        detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
    })
}

/// Records the start of a run; returns its id.
pub fn start_run(
    conn: &Connection,
    remote: &str,
    trigger: &str,
    direction: &str,
    at: i64,
) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO sync_runs (remote, trigger, direction, started_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![remote, trigger, direction, at])?;
    Ok(conn.last_insert_rowid())
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    pub at: i64,
    pub outcome: &'a str,
    pub counts: RunTotals,
    /// Without credentials (the engine's messages never hold any).
    pub error: Option<&'a str>,
    pub detail: Option<String>,
}

/// Records the end of run `id`.
pub fn finish_run(conn: &Connection, id: i64, f: &Finish) -> Result<()> {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "UPDATE sync_runs SET finished_at = ?2, outcome = ?3, uploaded = ?4, downloaded = ?5,
                conflicts = ?6, refused = ?7, error = ?8, detail = ?9
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        f.at,
        f.outcome,
        n(f.counts.uploaded),
        n(f.counts.downloaded),
        n(f.counts.conflicts),
        n(f.counts.refused),
        f.error,
        f.detail,
    ])?;
    Ok(())
}

/// Forgets runs of every site started before `before`; returns how many.
pub fn prune_runs(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM sync_runs WHERE started_at < ?1")?
        .execute(params![before])?)
}

/// The runs with `remote`, newest first, at most `limit`.
pub fn runs(conn: &Connection, remote: &str, limit: usize) -> Result<Vec<Run>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RUN_COLUMNS} FROM sync_runs WHERE remote = ?1
         ORDER BY started_at DESC, id DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![remote, limit], run_of)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The newest run with `remote` that ended with `outcome` (any outcome when None).
pub fn last_run(conn: &Connection, remote: &str, outcome: Option<&str>) -> Result<Option<Run>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM sync_runs
             WHERE remote = ?1 AND (?2 IS NULL OR outcome = ?2)
             ORDER BY started_at DESC, id DESC LIMIT 1"
        ))?
        .query_row(params![remote, outcome], run_of)
        .optional()?)
}

/// (open: waiting for a decision, total) conflicts with `remote`.
pub fn conflict_counts(conn: &Connection, remote: &str) -> Result<(u64, u64)> {
    let (open, total): (i64, i64) = conn
        .prepare_cached(
            "SELECT count(*) FILTER (WHERE kept IS NULL), count(*)
             FROM sync_conflicts WHERE remote = ?1",
        )?
        .query_row(params![remote], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    Ok((n(open), n(total)))
}

/// What deciding a conflict came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    Done,
    NoSuchConflict,
    /// It was decided before (by its strategy or by a caller): nothing changed.
    AlreadyDecided,
}

/// Keeps `kept` (`local` or `remote`) for the held conflict `id` with `remote`; the next run
/// carries the decision out (applied = 0 until then).
pub fn decide(conn: &Connection, remote: &str, id: i64, kept: &str, at: i64) -> Result<Decided> {
    let n = conn
        .prepare_cached(
            "UPDATE sync_conflicts SET kept = ?3, resolved_at = ?4, applied = 0
             WHERE remote = ?1 AND id = ?2 AND kept IS NULL",
        )?
        .execute(params![remote, id, kept, at])?;
    if n > 0 {
        return Ok(Decided::Done);
    }
    let exists = conn
        .prepare_cached("SELECT 1 FROM sync_conflicts WHERE remote = ?1 AND id = ?2")?
        .exists(params![remote, id])?;
    Ok(if exists {
        Decided::AlreadyDecided
    } else {
        Decided::NoSuchConflict
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    use crate::store::sync::{newest_conflicts, Conflict};

    const SITE: &str = "https://cloud.example.org";

    fn held(conn: &Connection, remote: &str, at: i64) -> i64 {
        let here = (r#"{"notes":"here"}"#.to_string(), None);
        let there = (r#"{"notes":"there"}"#.to_string(), None);
        let c = Conflict::found("treatments", "t-1", at, "manual", here, there);
        crate::store::sync::add_conflict(conn, remote, &c).unwrap()
    }

    #[test]
    fn runs_are_recorded_listed_newest_first_and_pruned() {
        let conn = crate::store::open_in_memory().unwrap();
        let a = start_run(&conn, SITE, "start", "both", 1_000).unwrap();
        finish_run(
            &conn,
            a,
            &Finish {
                at: 1_500,
                outcome: "complete",
                counts: RunTotals {
                    uploaded: 3,
                    downloaded: 2,
                    conflicts: 1,
                    refused: 0,
                },
                error: None,
                detail: Some(r#"{"collections":[]}"#.into()),
            },
        )
        .unwrap();
        let b = start_run(&conn, SITE, "interval", "both", 2_000).unwrap();
        start_run(&conn, "https://other.example.org", "start", "both", 2_500).unwrap();
        let list = runs(&conn, SITE, 10).unwrap();
        assert_eq!(list.iter().map(|r| r.id).collect::<Vec<_>>(), [b, a]);
        assert_eq!(list[1].counts.uploaded, 3);
        assert_eq!(list[1].detail, Some(serde_json::json!({"collections": []})));
        assert_eq!(list[0].outcome, None);
        assert_eq!(
            last_run(&conn, SITE, Some("complete")).unwrap().unwrap().id,
            a
        );
        assert_eq!(last_run(&conn, SITE, None).unwrap().unwrap().id, b);
        assert_eq!(runs(&conn, SITE, 1).unwrap().len(), 1);
        assert_eq!(prune_runs(&conn, 2_000).unwrap(), 1);
        assert_eq!(runs(&conn, SITE, 10).unwrap().len(), 1);
    }

    #[test]
    fn only_a_held_conflict_of_this_site_is_decided() {
        let conn = crate::store::open_in_memory().unwrap();
        let id = held(&conn, SITE, 10);
        let other = held(&conn, "https://other.example.org", 20);
        assert_eq!(conflict_counts(&conn, SITE).unwrap(), (1, 1));
        assert_eq!(
            decide(&conn, SITE, other, "local", 30).unwrap(),
            Decided::NoSuchConflict
        );
        assert_eq!(
            decide(&conn, SITE, id + 100, "local", 30).unwrap(),
            Decided::NoSuchConflict
        );
        assert_eq!(
            decide(&conn, SITE, id, "remote", 30).unwrap(),
            Decided::Done
        );
        assert_eq!(
            decide(&conn, SITE, id, "local", 40).unwrap(),
            Decided::AlreadyDecided
        );
        let c = &newest_conflicts(&conn, SITE, 10).unwrap()[0];
        assert_eq!(c.kept.as_deref(), Some("remote"));
        assert_eq!(c.resolved_at, Some(30));
        assert!(!c.applied, "the next run carries it out");
        let listed = serde_json::to_value(c).unwrap();
        assert_eq!(listed["localDoc"], serde_json::json!({"notes": "here"}));
        assert_eq!(conflict_counts(&conn, SITE).unwrap(), (0, 1));
    }
}
