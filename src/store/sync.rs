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

/// Forgets where the sync with `remote` stands (cursors and known versions; the conflict log
/// and the run history stay): the next run reads the site from its beginning and sends
/// everything here again (updates there, never copies). Returns the rows removed.
pub fn forget(conn: &Connection, remote: &str) -> Result<usize> {
    let a = conn.execute("DELETE FROM sync_cursors WHERE remote = ?1", [remote])?;
    let b = conn.execute("DELETE FROM sync_known WHERE remote = ?1", [remote])?;
    Ok(a + b)
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

/// Sets the cursors of `remote` in `coll`.
pub fn set_cursors(conn: &Connection, remote: &str, coll: Collection, c: &Cursors) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO sync_cursors (remote, collection, uploaded_through, remote_since, remote_dated)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (remote, collection) DO UPDATE SET uploaded_through = excluded.uploaded_through,
             remote_since = excluded.remote_since, remote_dated = excluded.remote_dated",
    )?
    .execute(params![
        remote,
        coll.table(),
        c.uploaded_through,
        c.remote_since,
        c.remote_dated
    ])?;
    Ok(())
}

/// The version of a document both sides held at the last sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub local_modified: Option<i64>,
    pub remote_modified: Option<i64>,
    pub hash: String,
}

pub fn known(
    conn: &Connection,
    remote: &str,
    coll: Collection,
    identity: &str,
) -> Result<Option<Known>> {
    Ok(conn
        .prepare_cached(
            "SELECT local_modified, remote_modified, hash FROM sync_known
             WHERE remote = ?1 AND collection = ?2 AND identity = ?3",
        )?
        .query_row(params![remote, coll.table(), identity], |r| {
            Ok(Known {
                local_modified: r.get(0)?,
                remote_modified: r.get(1)?,
                hash: r.get(2)?,
            })
        })
        .optional()?)
}

pub fn set_known(
    conn: &Connection,
    remote: &str,
    coll: Collection,
    identity: &str,
    k: &Known,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO sync_known (remote, collection, identity, local_modified, remote_modified, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (remote, collection, identity) DO UPDATE SET
             local_modified = excluded.local_modified,
             remote_modified = excluded.remote_modified, hash = excluded.hash",
    )?
    .execute(params![
        remote,
        coll.table(),
        identity,
        k.local_modified,
        k.remote_modified,
        k.hash
    ])?;
    Ok(())
}

/// The site's srvModified of a version both sides hold (known before only by content).
pub fn set_remote_modified(
    conn: &Connection,
    remote: &str,
    coll: Collection,
    identity: &str,
    remote_modified: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE sync_known SET remote_modified = ?4
         WHERE remote = ?1 AND collection = ?2 AND identity = ?3",
    )?
    .execute(params![remote, coll.table(), identity, remote_modified])?;
    Ok(())
}

/// The live documents of `coll` with time in [from, to] that came from `remote` through its
/// API v1 (known without the site's srvModified) and are unchanged here since: (identity,
/// srv_modified here, the known hash). Through the time index, so a window of a day reads a
/// day's rows. Each with its `_id` here.
pub fn known_without_stamp(
    conn: &Connection,
    remote: &str,
    coll: Collection,
    from: i64,
    to: i64,
) -> Result<Vec<(String, i64, String, String)>> {
    let t = coll.table();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT k.identity, r.srv_modified, k.hash, r.id FROM {t} r
         JOIN sync_known k ON k.remote = ?1 AND k.collection = ?2 AND k.identity = r.identifier
         WHERE r.mills BETWEEN ?3 AND ?4 AND r.is_valid = 1
           AND k.remote_modified IS NULL AND k.local_modified = r.srv_modified"
    ))?;
    let rows = stmt.query_map(params![remote, t, from, to], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One local change in the outbox.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub doc: super::StoredDoc,
    /// The version came from the site (a download), so it is not sent back.
    pub echo: bool,
    /// A conflict about it waits for a decision (SYNC_CONFLICT=manual): held, not sent.
    pub held: bool,
}

/// The next local changes of `coll` after local srv_modified `after`, oldest first, at most
/// `limit`, deleted ones included.
pub fn outbox(
    conn: &Connection,
    remote: &str,
    coll: Collection,
    after: i64,
    limit: usize,
) -> Result<Vec<Outgoing>> {
    let docs = super::v3::history(conn, coll, after, false, limit)?;
    let mut echo = conn.prepare_cached(
        "SELECT 1 FROM sync_known WHERE remote = ?1 AND collection = ?2
             AND identity IN (?3, ?4) AND local_modified = ?5",
    )?;
    let mut held = conn.prepare_cached(
        "SELECT 1 FROM sync_conflicts WHERE remote = ?1 AND collection = ?2
             AND identity IN (?3, ?4) AND kept IS NULL",
    )?;
    let mut out = Vec::with_capacity(docs.len());
    for raw in docs {
        let doc = super::StoredDoc::parse(raw)?;
        let identifier = doc
            .doc
            .get("identifier")
            .and_then(serde_json::Value::as_str)
            .unwrap_or(&doc.id)
            .to_string();
        let keys = params![remote, coll.table(), identifier, doc.id];
        let is_echo = echo
            .query_row(
                params![remote, coll.table(), identifier, doc.id, doc.srv_modified],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        let is_held = held.query_row(keys, |_| Ok(())).optional()?.is_some();
        out.push(Outgoing {
            doc,
            echo: is_echo,
            held: is_held,
        });
    }
    Ok(out)
}

/// A conflict: a document changed on both sides since the last sync. Serialized as the API
/// lists it (camelCase; both versions as JSON; the modification times left out).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conflict {
    pub id: i64,
    pub collection: String,
    pub identity: String,
    pub detected_at: i64,
    pub strategy: String,
    pub reason: String,
    /// "local" | "remote"; None while held for a decision.
    pub kept: Option<String>,
    /// The two versions, as JSON text.
    #[serde(serialize_with = "as_json")]
    pub local_doc: Option<String>,
    #[serde(serialize_with = "as_json")]
    pub remote_doc: Option<String>,
    #[serde(skip)]
    pub local_modified: Option<i64>,
    #[serde(skip)]
    pub remote_modified: Option<i64>,
    pub resolved_at: Option<i64>,
    /// Whether the decision has been carried out (false until the next run does).
    pub applied: bool,
}

impl Conflict {
    /// A conflict just found, to settle by `strategy` (held when it is `manual`).
    pub fn found(
        collection: &str,
        identity: &str,
        detected_at: i64,
        strategy: &str,
        (local_doc, local_modified): (String, Option<i64>),
        (remote_doc, remote_modified): (String, Option<i64>),
    ) -> Conflict {
        Conflict {
            id: 0,
            collection: collection.to_string(),
            identity: identity.to_string(),
            detected_at,
            strategy: strategy.to_string(),
            reason: "changed on both sides since the last sync".into(),
            kept: None,
            local_doc: Some(local_doc),
            remote_doc: Some(remote_doc),
            local_modified,
            remote_modified,
            resolved_at: None,
            applied: false,
        }
    }
}

/// A logged version (JSON text) as the JSON it holds; null when there is none.
fn as_json<S: serde::Serializer>(
    doc: &Option<String>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    let v: Option<serde_json::Value> = doc.as_deref().and_then(|t| serde_json::from_str(t).ok());
    serde::Serialize::serialize(&v, s)
}

const CONFLICT_COLUMNS: &str = "id, collection, identity, detected_at, strategy, reason, kept, \
     local_doc, remote_doc, local_modified, remote_modified, resolved_at, applied";

fn conflict_row(r: &rusqlite::Row) -> rusqlite::Result<Conflict> {
    Ok(Conflict {
        id: r.get(0)?,
        collection: r.get(1)?,
        identity: r.get(2)?,
        detected_at: r.get(3)?,
        strategy: r.get(4)?,
        reason: r.get(5)?,
        kept: r.get(6)?,
        local_doc: r.get(7)?,
        remote_doc: r.get(8)?,
        local_modified: r.get(9)?,
        remote_modified: r.get(10)?,
        resolved_at: r.get(11)?,
        applied: r.get::<_, i64>(12)? != 0,
    })
}

/// Logs a conflict (its `id` is ignored); returns its id.
pub fn add_conflict(conn: &Connection, remote: &str, c: &Conflict) -> Result<i64> {
    conn.prepare_cached(
        "INSERT INTO sync_conflicts (remote, collection, identity, detected_at, strategy, reason,
             kept, local_doc, remote_doc, local_modified, remote_modified, resolved_at, applied)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        remote,
        c.collection,
        c.identity,
        c.detected_at,
        c.strategy,
        c.reason,
        c.kept,
        c.local_doc,
        c.remote_doc,
        c.local_modified,
        c.remote_modified,
        c.resolved_at,
        i64::from(c.applied)
    ])?;
    Ok(conn.last_insert_rowid())
}

/// The conflict about this document still held for a decision, if any.
pub fn held_conflict(
    conn: &Connection,
    remote: &str,
    coll: Collection,
    identity: &str,
) -> Result<Option<Conflict>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {CONFLICT_COLUMNS} FROM sync_conflicts
             WHERE remote = ?1 AND collection = ?2 AND identity = ?3 AND kept IS NULL
             ORDER BY id DESC LIMIT 1"
        ))?
        .query_row(params![remote, coll.table(), identity], conflict_row)
        .optional()?)
}

/// A held conflict's site version replaced by a newer one.
pub fn update_held_remote(
    conn: &Connection,
    id: i64,
    remote_doc: &str,
    remote_modified: Option<i64>,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE sync_conflicts SET remote_doc = ?2, remote_modified = ?3
         WHERE id = ?1 AND kept IS NULL",
    )?
    .execute(params![id, remote_doc, remote_modified])?;
    Ok(())
}

/// The conflicts with `remote`, newest first, at most `limit` (the log the API shows).
pub fn newest_conflicts(conn: &Connection, remote: &str, limit: usize) -> Result<Vec<Conflict>> {
    conflicts_where(conn, remote, "1 ORDER BY detected_at DESC, id DESC", limit)
}

/// Conflicts decided (through the API) and not yet carried out, oldest first, at most `limit`.
pub fn decided(conn: &Connection, remote: &str, limit: usize) -> Result<Vec<Conflict>> {
    conflicts_where(
        conn,
        remote,
        "applied = 0 AND kept IS NOT NULL ORDER BY id",
        limit,
    )
}

/// Conflicts found by a run and not yet settled by its strategy (not `manual`), oldest first.
pub fn unsettled(conn: &Connection, remote: &str, limit: usize) -> Result<Vec<Conflict>> {
    conflicts_where(
        conn,
        remote,
        "kept IS NULL AND strategy <> 'manual' ORDER BY id",
        limit,
    )
}

/// The conflicts with `remote` matching `cond_order` (a condition and its ORDER BY).
fn conflicts_where(
    conn: &Connection,
    remote: &str,
    cond_order: &str,
    limit: usize,
) -> Result<Vec<Conflict>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CONFLICT_COLUMNS} FROM sync_conflicts WHERE remote = ?1 AND {cond_order}
         LIMIT ?2"
    ))?;
    let rows = stmt.query_map(
        params![remote, i64::try_from(limit).unwrap_or(i64::MAX)],
        conflict_row,
    )?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A decided conflict carried out.
pub fn mark_applied(conn: &Connection, id: i64) -> Result<()> {
    conn.prepare_cached("UPDATE sync_conflicts SET applied = 1 WHERE id = ?1")?
        .execute([id])?;
    Ok(())
}

/// A conflict settled: `kept` ("local" | "remote") for `reason`, carried out (`applied`) or
/// left for the next run.
pub fn settle(
    conn: &Connection,
    id: i64,
    kept: &str,
    reason: &str,
    at: i64,
    applied: bool,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE sync_conflicts SET kept = ?2, reason = ?3, resolved_at = ?4, applied = ?5
         WHERE id = ?1",
    )?
    .execute(params![id, kept, reason, at, i64::from(applied)])?;
    Ok(())
}

/// What the sync knows of one document of a site's page: the version both sides held at the
/// last sync, the local copy (deleted ones included), and a conflict held about it.
pub fn seen(
    conn: &Connection,
    remote: &str,
    coll: Collection,
    identity: &str,
) -> Result<(Option<Known>, Option<super::StoredDoc>, Option<Conflict>)> {
    Ok((
        known(conn, remote, coll, identity)?,
        super::v3::find(conn, coll, identity)?,
        held_conflict(conn, remote, coll, identity)?,
    ))
}
