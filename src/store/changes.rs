//! What each commit changed, for the live layer. Temporary triggers on the writer's connection
//! note every inserted, updated and deleted row in a temporary table; a rolled back write rolls
//! its notes back with it. After each commit the writer reads the notes with the rows' final
//! state and publishes them as one [`ChangeSet`] on a broadcast channel, which never blocks it:
//! a subscriber that falls behind loses messages and is told so by the channel (Lagged).

use std::sync::Arc;

use rusqlite::Connection;
use tokio::sync::broadcast;

use super::collection::Collection;
use super::StoredDoc;
use crate::error::Result;

/// How many change sets a subscriber may lag before it must resync.
pub const BUS_CAPACITY: usize = 256;

/// A commit that changed more rows than this, or more document text than
/// [`MAX_SET_DOC_BYTES`], is published as an overflow (no documents) instead: its parsed
/// documents would cost many times the request's size (a 20 MB batch of 458k entries held
/// about 670 MB here: docs/PERFORMANCE.md, "Memory per request"). Group commits of ordinary
/// uploads stay far below it.
pub const MAX_SET_CHANGES: i64 = 10_000;
pub const MAX_SET_DOC_BYTES: usize = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    /// Soft (the document is kept with isValid=false) or permanent (`doc` is None).
    Delete,
}

#[derive(Debug, Clone)]
pub struct Change {
    pub collection: Collection,
    pub op: Op,
    /// `_id` of the row.
    pub id: String,
    pub identifier: Option<String>,
    /// The row as committed; None once permanently deleted.
    pub doc: Option<StoredDoc>,
}

/// Everything one group commit changed.
#[derive(Debug, Clone, Default)]
pub struct ChangeSet {
    pub changes: Vec<Change>,
    /// Too much changed to send as documents (`changes` is then empty): subscribers resync as
    /// when they lag (read the current state again, or tell their client to reconnect).
    pub overflow: bool,
}

impl ChangeSet {
    fn overflowed() -> ChangeSet {
        ChangeSet {
            changes: Vec::new(),
            overflow: true,
        }
    }

    /// Whether subscribers have anything to hear.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && !self.overflow
    }
}

pub type Bus = broadcast::Sender<Arc<ChangeSet>>;

pub fn new_bus() -> Bus {
    broadcast::channel(BUS_CAPACITY).0
}

/// Creates the notes table and the triggers on the writer connection.
pub fn install(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS changes (
             tbl TEXT NOT NULL, seq INTEGER NOT NULL, op TEXT NOT NULL,
             id TEXT NOT NULL, identifier TEXT,
             PRIMARY KEY (tbl, seq))",
    )?;
    for c in Collection::ALL {
        let t = c.table();
        // An insert stays an insert when the same transaction updates the row again.
        conn.execute_batch(&format!(
            "CREATE TEMP TRIGGER IF NOT EXISTS {t}_note_insert AFTER INSERT ON main.{t} BEGIN
                 INSERT OR IGNORE INTO changes VALUES ('{t}', NEW.seq, 'insert', NEW.id, NEW.identifier);
             END;
             CREATE TEMP TRIGGER IF NOT EXISTS {t}_note_update AFTER UPDATE OF doc, is_valid ON main.{t} BEGIN
                 INSERT OR IGNORE INTO changes VALUES ('{t}', NEW.seq, 'update', NEW.id, NEW.identifier);
             END;
             CREATE TEMP TRIGGER IF NOT EXISTS {t}_note_delete AFTER DELETE ON main.{t} BEGIN
                 INSERT OR REPLACE INTO changes VALUES ('{t}', OLD.seq, 'delete', OLD.id, OLD.identifier);
             END;"
        ))?;
    }
    Ok(())
}

/// Forgets the notes (nobody listens).
pub fn clear(conn: &Connection) -> Result<()> {
    conn.execute_batch("DELETE FROM temp.changes")?;
    Ok(())
}

/// Forgets the notes of rows `seqs` (a JSON array) of `table`: for housekeeping deletes
/// (retention) that live clients need not be sent one by one.
pub fn forget(conn: &Connection, table: &str, seqs: &str) -> Result<()> {
    conn.prepare_cached(
        "DELETE FROM temp.changes WHERE tbl = ?1 AND seq IN (SELECT value FROM json_each(?2))",
    )?
    .execute([table, seqs])?;
    Ok(())
}

/// The committed changes, in write order per collection, and forgets the notes.
pub fn drain(conn: &Connection) -> Result<ChangeSet> {
    let notes: i64 = conn.query_row("SELECT count(*) FROM temp.changes", [], |r| r.get(0))?;
    if notes > MAX_SET_CHANGES {
        clear(conn)?;
        return Ok(ChangeSet::overflowed());
    }
    let mut out = ChangeSet::default();
    let mut doc_bytes = 0usize;
    'tables: for c in Collection::ALL {
        let t = c.table();
        let sql = format!(
            "SELECT n.op, n.id, n.identifier, {cols}
             FROM temp.changes n LEFT JOIN main.{t} d ON d.seq = n.seq
             WHERE n.tbl = '{t}' ORDER BY n.seq",
            cols = super::COLUMNS
                .split(", ")
                .map(|col| format!("d.{col}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], |r| {
            let op: String = r.get(0)?;
            let id: String = r.get(1)?;
            let identifier: Option<String> = r.get(2)?;
            let seq: Option<i64> = r.get(3)?;
            // No row joined: it was deleted for good.
            let raw = match seq {
                Some(_) => Some(StoredDoc::from_row_at(r, 3)?),
                None => None,
            };
            Ok((op, id, identifier, raw))
        })?;
        for row in rows {
            let (op, id, identifier, raw) = row?;
            doc_bytes += raw.as_ref().map_or(0, |r| r.doc.len());
            if doc_bytes > MAX_SET_DOC_BYTES {
                out = ChangeSet::overflowed();
                break 'tables;
            }
            let doc = raw.map(StoredDoc::parse).transpose()?;
            let op = match (op.as_str(), &doc) {
                ("delete", _) | (_, None) => Op::Delete,
                (_, Some(d)) if !d.is_valid => Op::Delete,
                ("insert", _) => Op::Insert,
                _ => Op::Update,
            };
            out.changes.push(Change {
                collection: c,
                op,
                id,
                identifier,
                doc,
            });
        }
    }
    clear(conn)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_follow_commits_and_rollbacks() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrate::migrate(&mut c).unwrap();
        install(&c).unwrap();
        c.execute_batch(
            "BEGIN;
             INSERT INTO entries (id, doc, mills, srv_created, srv_modified)
                 VALUES ('a', '{\"sgv\":1}', 1, 1, 1);
             INSERT INTO entries (id, doc, mills, srv_created, srv_modified)
                 VALUES ('b', '{}', 2, 1, 2);
             UPDATE entries SET doc = '{\"sgv\":2}' WHERE id = 'a';
             COMMIT;",
        )
        .unwrap();
        c.execute_batch(
            "BEGIN; SAVEPOINT s;
             INSERT INTO treatments (id, doc, mills, srv_created) VALUES ('t', '{}', 1, 1);
             ROLLBACK TO s; RELEASE s; COMMIT;",
        )
        .unwrap();
        let set = drain(&c).unwrap();
        assert_eq!(set.changes.len(), 2, "{set:?}");
        assert_eq!(set.changes[0].op, Op::Insert);
        assert_eq!(
            set.changes[0].doc.as_ref().unwrap().doc["sgv"],
            2,
            "final state"
        );
        assert!(set.changes[0].doc.as_ref().unwrap().srv_modified > 0);
        c.execute_batch(
            "UPDATE entries SET is_valid = 0 WHERE id = 'a'; DELETE FROM entries WHERE id = 'b';",
        )
        .unwrap();
        let set = drain(&c).unwrap();
        assert_eq!(
            set.changes.iter().map(|c| c.op).collect::<Vec<_>>(),
            vec![Op::Delete, Op::Delete]
        );
        assert!(set.changes[1].doc.is_none());
        assert!(drain(&c).unwrap().changes.is_empty());
    }

    #[test]
    fn a_commit_too_large_to_send_is_an_overflow() {
        let mut c = Connection::open_in_memory().unwrap();
        crate::store::migrate::migrate(&mut c).unwrap();
        install(&c).unwrap();
        let insert = |from: i64, n: i64, doc: &str| {
            c.execute(
                "WITH RECURSIVE k(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM k WHERE i < ?1 + ?2 - 1)
                 INSERT INTO entries (id, doc, mills, srv_created, srv_modified)
                 SELECT printf('%024x', i), ?3, i, 1, i FROM k",
                rusqlite::params![from, n, doc],
            )
            .unwrap();
        };
        // At the row cap: documents.
        insert(1, MAX_SET_CHANGES, "{}");
        let set = drain(&c).unwrap();
        assert!(!set.overflow);
        assert_eq!(set.changes.len(), MAX_SET_CHANGES as usize);
        // One more row: an overflow, and the notes are gone.
        insert(100_000, MAX_SET_CHANGES + 1, "{}");
        let set = drain(&c).unwrap();
        assert!(set.overflow && set.changes.is_empty() && !set.is_empty());
        assert!(drain(&c).unwrap().is_empty());
        // Few rows but more text than the budget: an overflow too.
        let big = format!("{{\"notes\":\"{}\"}}", "x".repeat(1 << 20));
        insert(300_000, 5, &big);
        assert!(drain(&c).unwrap().overflow);
    }
}
