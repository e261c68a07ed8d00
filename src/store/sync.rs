//! The sync's own tables (migrations/006-sync.sql, docs/sync.md): cursors, the versions both
//! sides held at the last sync, the outbox (local changes the site has not acknowledged),
//! conflicts and runs.

use rusqlite::{params, Connection, OptionalExtension};

use super::Collection;
use crate::error::Result;

/// Where the sync with `remote` stands in one collection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursors {
    /// Local srv_modified through which the site has every change.
    pub uploaded_through: i64,
    /// The site's srvModified read through (API v3 history); None before the first read.
    pub remote_since: Option<i64>,
    /// The site's document time read through by the API v1 pass.
    pub remote_dated: Option<i64>,
}

/// The cursors of `remote` in `coll`; None before the first run.
pub fn cursors(conn: &Connection, remote: &str, coll: Collection) -> Result<Option<Cursors>> {
    Ok(conn
        .prepare_cached(
            "SELECT uploaded_through, remote_since, remote_dated FROM sync_cursors
             WHERE remote = ?1 AND collection = ?2",
        )?
        .query_row(params![remote, coll.table()], |r| {
            Ok(Cursors {
                uploaded_through: r.get(0)?,
                remote_since: r.get(1)?,
                remote_dated: r.get(2)?,
            })
        })
        .optional()?)
}

/// How many local changes of `coll` wait for `remote` (the outbox: see the migration).
pub fn pending(conn: &Connection, remote: &str, coll: Collection) -> Result<u64> {
    let t = coll.table();
    let n: i64 = conn
        .prepare_cached(&format!(
            "SELECT count(*) FROM {t} r
             WHERE r.srv_modified > coalesce((SELECT uploaded_through FROM sync_cursors
                                              WHERE remote = ?1 AND collection = ?2), 0)
               AND NOT EXISTS (SELECT 1 FROM sync_known k
                               WHERE k.remote = ?1 AND k.collection = ?2
                                 AND k.identity IN (r.identifier, r.id)
                                 AND k.local_modified = r.srv_modified)"
        ))?
        .query_row(params![remote, t], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}
